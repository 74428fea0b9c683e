"""Turn a user's ``scoring`` argument into named scikit-learn scorers, and apply them.

The one place scorers are built, for :func:`nncv.cross_validate` and the search alike. It
only normalises what scikit-learn accepts — a metric name, a list/tuple/set of names, a dict
of scorers, a callable, or ``None`` for the estimator's own ``score`` — into one
``{name: scorer}`` dict, and scores through scikit-learn's ``_MultimetricScorer`` so that
``predict``/``predict_proba`` run once per fold however many metrics are asked for.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from sklearn import config_context
from sklearn.metrics import check_scoring, get_scorer
from sklearn.metrics._scorer import _check_multimetric_scoring, _MultimetricScorer

from nncv.exceptions import ScoringError

__all__ = ["accepts_sample_weight", "build_scorers", "score_fold"]


def accepts_sample_weight(function: Callable[..., Any]) -> bool:
    """Whether ``function``'s signature takes ``sample_weight`` (by name or ``**kwargs``).

    Examples
    --------
    >>> accepts_sample_weight(lambda estimator, X, y, sample_weight=None: 0.0)
    True
    >>> accepts_sample_weight(lambda estimator, X, y: 0.0)
    False
    """
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return "sample_weight" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


class _CallableScorer:
    """Adapter giving a plain ``scorer(estimator, X, y)`` the hook scikit-learn expects.

    ``_MultimetricScorer`` asks each scorer whether it takes ``sample_weight``; plain
    functions lack that method, so they are wrapped here and sent the weights only when
    their signature names them.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __call__(self, estimator: Any, X: Any, y: Any, **kwargs: Any) -> Any:
        return self.function(estimator, X, y, **kwargs)

    def _accept_sample_weight(self) -> bool:
        return accepts_sample_weight(self.function)


def _wrap(scorer: Any) -> Any:
    return scorer if hasattr(scorer, "_accept_sample_weight") else _CallableScorer(scorer)


def build_scorers(estimator: Any, scoring: Any) -> dict[str, Any]:
    """Normalise ``scoring`` into ``{name: scorer}``.

    Parameters
    ----------
    estimator : estimator
        Used for ``scoring=None`` (its ``score`` method) and to check the scorers.
    scoring : str, callable, list, tuple, set, dict or None
        As in :func:`sklearn.model_selection.cross_validate`. A single string keeps its
        name (``"accuracy"``); a callable and ``None`` are named ``"score"``; a set's
        names are sorted (so the first metric does not depend on hashing).

    Returns
    -------
    dict of str to scorer

    Raises
    ------
    ScoringError
        For an unknown metric name, an empty list, or a value of the wrong type.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> sorted(build_scorers(LogisticRegression(), ["accuracy", "f1_macro"]))
    ['accuracy', 'f1_macro']
    """
    try:
        if scoring is None:
            return {"score": check_scoring(estimator)}
        if isinstance(scoring, str):
            return {scoring: get_scorer(scoring)}
        if isinstance(scoring, (set, frozenset)):
            scoring = sorted(scoring)
        if isinstance(scoring, (list, tuple, Mapping)):
            if len(scoring) == 0:
                raise ScoringError("scoring is empty: name at least one metric")
            scorers = _check_multimetric_scoring(estimator, scoring=scoring)
            return {name: _wrap(scorer) for name, scorer in scorers.items()}
        if callable(scoring):
            return {"score": _wrap(check_scoring(estimator, scoring))}
    except ScoringError:
        raise
    except (ValueError, TypeError) as error:
        raise ScoringError(f"invalid scoring {scoring!r}: {error}") from error
    raise ScoringError(
        "scoring must be None, a metric name, a list/tuple/set of names, a dict of "
        f"scorers or a callable, got {type(scoring).__name__}"
    )


def score_fold(
    scorers: Mapping[str, Any],
    estimator: Any,
    X: Any,
    y: Any,
    sample_weight: np.ndarray | None = None,
) -> dict[str, float]:
    """Score a fitted estimator on one held-out fold with every scorer.

    ``sample_weight`` reaches the scorers whose metric accepts it (scikit-learn's rule
    without metadata routing, applied with routing enabled too: the fold engine has
    routed the weights already, so the scorers run with routing off). A callable that
    returns a dict contributes one entry per key.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    >>> score_fold(build_scorers(tree, "accuracy"), tree, X, y)
    {'accuracy': 1.0}
    """
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
    with config_context(enable_metadata_routing=False):
        raw = _MultimetricScorer(scorers=dict(scorers), raise_exc=True)(estimator, X, y, **kwargs)
    scores: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, Mapping):
            scores.update({str(key): float(item) for key, item in value.items()})
        else:
            scores[name] = float(value)
    return scores
