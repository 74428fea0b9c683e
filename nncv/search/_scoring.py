"""Scikit-learn scorers by name, for one metric or several (GridSearchCV's conventions)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from sklearn.metrics import check_scoring

from nncv.exceptions import SearchError

__all__ = ["make_scorers", "score"]

Scorer = Callable[..., float]


def make_scorers(estimator: Any, scoring: Any, refit: Any = True) -> tuple[dict[str, Scorer], str]:
    """Return ``({name: scorer}, metric the study maximises)``.

    ``scoring`` is None (the estimator's ``score``: accuracy or R²), a scorer name, a
    callable ``scorer(estimator, X, y)``, or a list/tuple/set of names or a dict of
    name → scorer. With several metrics, ``refit`` names the one to maximise and refit on
    (as in GridSearchCV); ``refit=True``/``False`` then picks the first one.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> scorers, metric = make_scorers(LogisticRegression(), ["accuracy", "f1_macro"], "f1_macro")
    >>> sorted(scorers), metric
    (['accuracy', 'f1_macro'], 'f1_macro')
    """
    try:
        if scoring is None:
            scorers = {"score": check_scoring(estimator)}
        elif isinstance(scoring, str):
            scorers = {scoring: check_scoring(estimator, scoring=scoring)}
        elif callable(scoring):
            scorers = {"score": scoring}
        elif isinstance(scoring, Mapping):
            if not scoring:
                raise SearchError("scoring is an empty dict")
            scorers = {str(k): check_scoring(estimator, scoring=v) for k, v in scoring.items()}
        elif isinstance(scoring, list | tuple | set | frozenset):
            names = sorted(scoring) if isinstance(scoring, set | frozenset) else list(scoring)
            if not names or len(set(names)) != len(names):
                raise SearchError(f"scoring must list distinct scorer names, got {scoring!r}")
            scorers = {name: check_scoring(estimator, scoring=name) for name in names}
        else:
            raise SearchError(
                f"scoring must be None, a name, a callable, a list or a dict, got {scoring!r}"
            )
    except (ValueError, TypeError) as error:
        if isinstance(error, SearchError):
            raise
        raise SearchError(f"invalid scoring {scoring!r}: {error}") from error
    if isinstance(refit, str):
        if refit not in scorers:
            raise SearchError(f"refit={refit!r} is not one of the scorers {list(scorers)}")
        return scorers, refit
    if len(scorers) > 1 and refit is True:
        raise SearchError(
            f"with several scorers {list(scorers)}, refit must name the one to maximise and "
            "refit on, e.g. refit='accuracy'"
        )
    return scorers, next(iter(scorers))


def _accepts_sample_weight(scorer: Scorer) -> bool:
    try:
        parameters = inspect.signature(scorer).parameters
    except (TypeError, ValueError):
        return False
    return "sample_weight" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def score(scorer: Scorer, estimator: Any, X: Any, y: Any, sample_weight: Any = None) -> float:
    """Apply a scorer, weighting by ``sample_weight`` when given and the scorer accepts it."""
    if sample_weight is not None and _accepts_sample_weight(scorer):
        return float(scorer(estimator, X, y, sample_weight=sample_weight))
    return float(scorer(estimator, X, y))
