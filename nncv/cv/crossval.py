"""k-fold cross-validation with per-epoch learning curves for every fold.

:func:`cross_validate` is scikit-learn's ``cross_validate`` made for neural networks:
the folds run in parallel worker processes (joblib), each one fitting a fresh clone of
the pipeline — scaler included — on its training rows only, while the network reports
the held-out loss and score after every epoch. The result keeps the per-fold scores of
any number of scikit-learn scorers and those learning curves as one tidy DataFrame.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import FitFailedWarning
from sklearn.utils import indexable
from sklearn.utils.validation import _num_samples, has_fit_parameter

from nncv._dask import BackendSpec, check_backend, parallel_map
from nncv._validation import check_training_data
from nncv.cv.fold import final_step, fit_fold
from nncv.cv.scoring import build_scorers
from nncv.cv.splits import base_seed, fold_seed, make_splits, shuffle_seed
from nncv.exceptions import CVSetupError

__all__ = [
    "CURVE_COLUMNS",
    "CVResult",
    "check_accepts_weights",
    "check_data",
    "check_sample_weight",
    "cross_validate",
]

#: Leading columns of :attr:`CVResult.curves`; the network's other history columns follow.
CURVE_COLUMNS = ("fold", "epoch", "loss", "val_loss", "val_score")


@dataclass(frozen=True)
class CVResult:
    """The outcome of :func:`cross_validate`.

    Attributes
    ----------
    scores : dict of str to ndarray of shape (n_folds,)
        Held-out score of every fold, one entry per scorer (``"score"`` for
        ``scoring=None`` or a callable, else the metric names).
    fit_time, score_time : ndarray of shape (n_folds,)
        Seconds spent fitting (including preprocessing) and scoring each fold.
    curves : pandas.DataFrame
        One row per fold and epoch: ``fold``, ``epoch``, ``loss``, ``val_loss``,
        ``val_score`` and the network's other record columns (``data_loss``,
        ``learning_rate``). ``val_loss`` and ``val_score`` are measured on the fold's
        held-out rows after each epoch. A network with ``early_stopping=True`` stops on
        its own ``validation_fraction`` split of the training rows (never on the rows it
        is scored on); those values are in ``early_stopping_val_loss`` and
        ``early_stopping_val_score``. Empty for estimators that are not nncv networks.
    test_indices : tuple of ndarray
        The held-out rows of each fold.
    fold_seeds : tuple of int
        The seed each fold's ``random_state`` parameters got when they were ``None``.
    estimators : tuple of estimators or None
        The fitted estimators, when ``return_estimator=True``.
    errors : tuple of (str or None)
        Why a fold failed, when ``error_score`` is a number; ``None`` for folds that fitted.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> result = cross_validate(LogisticRegression(max_iter=500), X, y, cv=3, random_state=0)
    >>> result.scores["score"].shape
    (3,)
    >>> list(result.to_frame().columns)
    ['fold', 'score', 'fit_time', 'score_time']
    """

    scores: dict[str, np.ndarray]
    fit_time: np.ndarray
    score_time: np.ndarray
    curves: pd.DataFrame
    test_indices: tuple[np.ndarray, ...]
    fold_seeds: tuple[int, ...]
    estimators: tuple[Any, ...] | None = None
    errors: tuple[str | None, ...] = ()

    @property
    def n_folds(self) -> int:
        """Number of folds."""
        return len(self.fit_time)

    @property
    def metric_names(self) -> list[str]:
        """Names of the scorers, in the order they were given."""
        return list(self.scores)

    def mean(self, metric: str | None = None) -> float:
        """Mean held-out score over the folds (first scorer by default)."""
        return float(np.mean(self.scores[self._metric(metric)]))

    def std(self, metric: str | None = None) -> float:
        """Standard deviation of the held-out score over the folds (first scorer by default)."""
        return float(np.std(self.scores[self._metric(metric)]))

    def to_frame(self) -> pd.DataFrame:
        """One row per fold: ``fold``, every score, ``fit_time``, ``score_time``."""
        frame = pd.DataFrame({"fold": np.arange(self.n_folds)})
        for name, values in self.scores.items():
            frame[name] = values
        frame["fit_time"] = self.fit_time
        frame["score_time"] = self.score_time
        return frame

    def as_dict(self) -> dict[str, np.ndarray | list[Any]]:
        """The layout of :func:`sklearn.model_selection.cross_validate`.

        Keys ``fit_time``, ``score_time``, ``test_<name>`` per scorer (``test_score``
        for a single scorer, as scikit-learn names it) and ``estimator`` when kept.
        """
        single = len(self.scores) == 1
        out: dict[str, np.ndarray | list[Any]] = {
            "fit_time": self.fit_time,
            "score_time": self.score_time,
        }
        for name, values in self.scores.items():
            out["test_score" if single else f"test_{name}"] = values
        if self.estimators is not None:
            out["estimator"] = list(self.estimators)
        return out

    def _metric(self, metric: str | None) -> str:
        if metric is None:
            return next(iter(self.scores))
        if metric not in self.scores:
            raise KeyError(f"no scorer named {metric!r}; the scorers are {self.metric_names}")
        return metric

    def __repr__(self) -> str:
        summary = ", ".join(
            f"{name}={np.mean(values):.4f}±{np.std(values):.4f}"
            for name, values in self.scores.items()
        )
        return f"CVResult({self.n_folds} folds: {summary})"


def cross_validate(
    estimator: Any,
    X: Any,
    y: Any,
    cv: Any = 5,
    scoring: Any = None,
    n_jobs: int | None = None,
    sample_weight: Any = None,
    random_state: int | np.random.Generator | None = None,
    *,
    groups: Any = None,
    return_estimator: bool = False,
    error_score: float | str = "raise",
    verbose: int = 0,
    backend: BackendSpec = None,
) -> CVResult:
    """Cross-validate an estimator, recording the learning curves of every fold.

    Parameters
    ----------
    estimator : estimator
        Usually a ``Pipeline`` (scaler, then an ``NNClassifier``/``NNRegressor``); any
        scikit-learn estimator works (it then has no learning curves). Each fold fits a
        clone on its training rows only, scaler included.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Passed to the workers as a read-only memory map (joblib), never copied per fold
        and never up-cast: float32 stays float32.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    cv : int, splitter or iterable of (train, test), default=5
        An int gives ``StratifiedKFold`` for classifiers (binary or multiclass target)
        and ``KFold`` otherwise, shuffled with ``random_state``.
    scoring : str, callable, list, tuple, set, dict or None, default=None
        Any scikit-learn scoring; several at once give several entries in
        :attr:`CVResult.scores`. ``None`` uses ``estimator.score``.
    n_jobs : int or None, default=None
        Folds run in parallel (joblib's default ``loky`` process backend, or the backend
        of an enclosing ``joblib.parallel_config``). The numbers do not depend on it.
    sample_weight : array-like of shape (n_samples,), optional
        Split per fold: the training rows' weights go to the fit (to a Pipeline's last
        step), the held-out rows' weights to the validation loss and to every scorer
        that accepts weights.
    random_state : int, numpy Generator or None, default=None
        Seeds the shuffling of an int ``cv`` and every ``random_state`` parameter of the
        estimator left at ``None``: fold ``k`` gets
        ``SeedSequence([random_state, k]).generate_state(1)[0]``.
    groups : array-like of shape (n_samples,), optional
        Group labels for group-aware splitters.
    return_estimator : bool, default=False
        Keep the fitted estimator of each fold.
    error_score : "raise" or float, default="raise"
        Score given to a fold whose fit fails (a warning names the error), or raise.
    verbose : int, default=0
        joblib's progress messages.
    backend : None, "loky", "dask", scheduler address or distributed.Client, default=None
        Where the folds run. None: joblib's configuration (loky processes, or the Dask
        cluster of an enclosing ``joblib.parallel_config(backend="dask")``); ``"dask"``:
        the running ``dask.distributed`` client; ``"tcp://host:8786"``: that scheduler.
        On a Dask cluster X, y and the weights are sent to every worker once (scattered),
        not once per fold; the numbers do not depend on it. See ``docs/scaling.md``.

    Returns
    -------
    CVResult

    Raises
    ------
    CVSetupError
        Inconsistent lengths, bad weights, a bad ``cv`` or ``random_state``.
    ScoringError
        An unknown metric or a scoring of the wrong type.
    nncv.BackendError
        An unknown ``backend``, or a Dask one that is not installed or not reachable.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), LogisticRegression())
    >>> result = cross_validate(model, X, y, cv=5, scoring=["accuracy", "roc_auc"],
    ...                         random_state=0)
    >>> result.mean("accuracy") > 0.95
    True

    With an nncv network, ``result.curves`` holds one row per fold and epoch::

        model = make_pipeline(StandardScaler(), nncv.NNClassifier(max_epochs=30))
        result = nncv.cross_validate(model, X, y, n_jobs=2, random_state=0)
        result.curves.groupby("epoch").val_score.mean()
    """
    if not hasattr(estimator, "fit"):
        raise CVSetupError(f"estimator must have a fit method, got {type(estimator).__name__}")
    if error_score != "raise" and not isinstance(error_score, (int, float)):
        raise CVSetupError(f"error_score must be 'raise' or a number, got {error_score!r}")
    check_backend(backend)
    check_training_data(X, estimator, CVSetupError)  # ragged, text, overflowing values
    X, y, groups = check_data(X, y, groups)
    n_samples = _num_samples(X)
    sample_weight = check_sample_weight(sample_weight, n_samples)
    if sample_weight is not None:
        check_accepts_weights(estimator)
    build_scorers(estimator, scoring)  # fail here, not in every worker
    base = base_seed(random_state)
    splits = make_splits(
        cv,
        X,
        y,
        estimator=estimator,
        groups=groups,
        shuffle_seed=shuffle_seed(base),
    )
    seeds = tuple(fold_seed(base, fold) for fold in range(len(splits)))
    outcomes = parallel_map(
        backend,
        fit_fold,
        shared={
            "estimator": estimator,
            "X": X,
            "y": y,
            "sample_weight": sample_weight,
            "scoring": scoring,
            "return_estimator": return_estimator,
            "error_score": error_score,
        },
        calls=[
            {"train": train, "test": test, "fold": fold, "seed": seeds[fold]}
            for fold, (train, test) in enumerate(splits)
        ],
        n_jobs=n_jobs,
        verbose=verbose,
    )
    outcomes = sorted(outcomes, key=lambda outcome: outcome.fold)
    for outcome in outcomes:
        if outcome.error is not None:
            warnings.warn(
                f"fold {outcome.fold} failed and scores {error_score}: {outcome.error}",
                FitFailedWarning,
                stacklevel=2,
            )
    fitted = [outcome for outcome in outcomes if outcome.error is None]
    names = list((fitted or outcomes)[0].scores)
    failed_score = np.nan if error_score == "raise" else float(error_score)
    return CVResult(
        scores={
            name: np.array([o.scores.get(name, failed_score) for o in outcomes]) for name in names
        },
        fit_time=np.array([o.fit_time for o in outcomes]),
        score_time=np.array([o.score_time for o in outcomes]),
        curves=_curves(outcomes),
        test_indices=tuple(test for _, test in splits),
        fold_seeds=seeds,
        estimators=tuple(o.estimator for o in outcomes) if return_estimator else None,
        errors=tuple(o.error for o in outcomes),
    )


def check_data(X: Any, y: Any, groups: Any) -> tuple[Any, Any, Any]:
    """``X``, ``y`` and ``groups`` made indexable, or a :class:`CVSetupError` naming why not."""
    if X is None or y is None:
        raise CVSetupError("cross_validate needs both X and y")
    if isinstance(X, list):
        X = np.asarray(X)
    if isinstance(y, list):
        y = np.asarray(y)
    if getattr(X, "ndim", 2) != 2:
        raise CVSetupError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    try:
        return tuple(indexable(X, y, groups))
    except ValueError as error:
        raise CVSetupError(f"X, y (and groups) must have the same length: {error}") from error


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """Finite non-negative float weights, one per row, or a :class:`CVSetupError`."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "fiub":
        raise CVSetupError(f"sample_weight must be numeric, got dtype {weights.dtype}")
    if weights.shape != (n_samples,):
        raise CVSetupError(
            f"sample_weight must have shape ({n_samples},) like X, got {weights.shape}"
        )
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise CVSetupError("sample_weight must be finite and non-negative")
    if weights.dtype.kind != "f":
        weights = weights.astype(np.float64)
    return weights


def check_accepts_weights(estimator: Any) -> None:
    """Refuse weights for a final step whose ``fit`` cannot take them."""
    final = final_step(estimator)
    if hasattr(final, "iter_fit") or has_fit_parameter(final, "sample_weight"):
        return
    raise CVSetupError(
        f"sample_weight was given but {type(final).__name__}.fit does not accept sample_weight"
    )


def _curves(outcomes: list[Any]) -> pd.DataFrame:
    frames = [
        outcome.curves.assign(fold=outcome.fold)
        for outcome in outcomes
        if outcome.curves is not None and len(outcome.curves)
    ]
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype=float) for name in CURVE_COLUMNS}).astype(
            {"fold": np.int64, "epoch": np.int64}
        )
    curves = pd.concat(frames, ignore_index=True)
    for name in CURVE_COLUMNS:
        if name not in curves:
            curves[name] = np.nan
    rest = [name for name in curves.columns if name not in CURVE_COLUMNS]
    return curves[[*CURVE_COLUMNS, *rest]]
