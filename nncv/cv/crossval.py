"""k-fold cross-validation with per-epoch learning curves for every fold.

:func:`cross_validate` is scikit-learn's ``cross_validate`` made for neural networks:
the folds run in parallel worker processes (joblib), each one fitting a fresh clone of
the pipeline — scaler included — on its training rows only, while the network reports
the held-out loss and score after every epoch. The result keeps the per-fold scores of
any number of scikit-learn scorers and those learning curves as one tidy DataFrame.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import effective_n_jobs
from sklearn.exceptions import FitFailedWarning
from sklearn.utils import indexable
from sklearn.utils.validation import _num_samples, has_fit_parameter

from nncv._blas import one_blas_thread
from nncv._dask import BackendSpec, check_backend, parallel_map
from nncv._validation import check_training_data
from nncv.cv.fold import final_step, fit_fold, fit_fold_group, pipeline_steps
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


@dataclass(frozen=True, eq=False)
class CVResult(Mapping):
    """The outcome of :func:`cross_validate`: scikit-learn's result dict, plus the curves.

    A read-only mapping with the keys of :func:`sklearn.model_selection.cross_validate`:
    ``fit_time``, ``score_time``, ``test_<name>`` per scorer (``test_score`` for a single
    one: ``scoring`` None, a string or a callable), ``train_<name>`` with
    ``return_train_score``, ``estimator`` with ``return_estimator`` and ``indices``
    (``{"train": [...], "test": [...]}``) with ``return_indices``; so
    ``result["test_score"].mean()`` and ``pd.DataFrame(result)`` work as with
    scikit-learn. The attributes below hold the same numbers and the learning curves.

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
    train_scores : dict of str to ndarray or None
        Score of every fold on its training rows, with ``return_train_score=True``.
    train_indices : tuple of ndarray or None
        The training rows of each fold, with ``return_indices=True``.
    multimetric : bool
        Whether ``scoring`` named several scorers (the keys are then ``test_<name>``).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> result = cross_validate(LogisticRegression(max_iter=500), X, y, cv=3, random_state=0)
    >>> result.scores["score"].shape
    (3,)
    >>> sorted(result)
    ['fit_time', 'score_time', 'test_score']
    >>> bool((result["test_score"] == result.scores["score"]).all())
    True
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
    train_scores: dict[str, np.ndarray] | None = None
    train_indices: tuple[np.ndarray, ...] | None = None
    multimetric: bool = False

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())

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

    def as_dict(self) -> dict[str, Any]:
        """The dict :func:`sklearn.model_selection.cross_validate` returns, keys in its order.

        ``fit_time``, ``score_time``, ``estimator`` when kept, ``indices`` when kept, then
        per scorer ``test_<name>`` (``test_score`` for a single one, as scikit-learn names
        it) and ``train_<name>`` with training scores.
        """
        out: dict[str, Any] = {"fit_time": self.fit_time, "score_time": self.score_time}
        if self.estimators is not None:
            out["estimator"] = list(self.estimators)
        if self.train_indices is not None:
            out["indices"] = {"train": list(self.train_indices), "test": list(self.test_indices)}
        for name, values in self.scores.items():
            key = name if self.multimetric else "score"
            out[f"test_{key}"] = values
            if self.train_scores is not None:
                out[f"train_{key}"] = self.train_scores[name]
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
    params: Mapping[str, Any] | None = None,
    return_train_score: bool = False,
    return_estimator: bool = False,
    return_indices: bool = False,
    error_score: float | str = np.nan,
    verbose: int = 0,
    stack_folds: bool = True,
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
        and ``KFold`` otherwise: unshuffled when ``random_state`` is None, as
        scikit-learn's ``cv=5`` (so two identical calls use the same folds, and the same
        folds as :func:`sklearn.model_selection.cross_validate`), shuffled with
        ``random_state`` otherwise.
    scoring : str, callable, list, tuple, set, dict or None, default=None
        Any scikit-learn scoring; several at once give several entries in
        :attr:`CVResult.scores`. ``None`` uses ``estimator.score``.
    n_jobs : int or None, default=None
        Folds run in parallel (joblib's default ``loky`` process backend, or the backend
        of an enclosing ``joblib.parallel_config``). The numbers do not depend on it.
    sample_weight : array-like of shape (n_samples,), optional
        Split per fold: the training rows' weights go to the fit (to a Pipeline's last
        step), the held-out rows' weights to the validation loss and to every scorer
        that accepts weights. With metadata routing enabled
        (``sklearn.set_config(enable_metadata_routing=True)``) they go only where the
        final step requested them (``set_fit_request(sample_weight=True)``).
    random_state : int, numpy Generator or None, default=None
        Seeds the shuffling of an int ``cv`` and every ``random_state`` parameter of the
        estimator left at ``None``: fold ``k`` gets
        ``SeedSequence([random_state, k]).generate_state(1)[0]``.
    groups : array-like of shape (n_samples,), optional
        Group labels for group-aware splitters.
    params : dict, optional
        Fit parameters, as scikit-learn's ``params``: ``sample_weight`` (or
        ``<last step>__sample_weight``) as the argument above; ``<step>__<param>`` to a
        preprocessing step's ``fit`` (values with one entry per row are split per fold).
        With metadata routing enabled they are routed by the steps' requests instead.
    return_train_score : bool, default=False
        Also score each fold on its training rows (``train_<name>`` keys).
    return_estimator : bool, default=False
        Keep the fitted estimator of each fold.
    return_indices : bool, default=False
        Keep each fold's train and test rows (the ``indices`` key).
    error_score : "raise" or float, default=np.nan
        Score given to a fold whose fit fails, with a ``FitFailedWarning`` naming the
        error, as scikit-learn; ``"raise"`` raises. (Unlike scikit-learn, a result comes
        back even when every fold failed: :attr:`CVResult.errors` says why.)
    verbose : int, default=0
        joblib's progress messages.
    stack_folds : bool, default=True
        Train the folds of a worker as one stacked network where they share one network
        configuration (an nncv network; see
        :func:`nncv.cv.fold.stack_refusal`): each fold's numbers are those it gets
        alone, the per-batch overhead is paid once for all of them. With ``n_jobs``
        workers the folds are split into that many stacks (5 folds on 2 workers: stacks
        of 3 and 2). ``False`` trains every fold on its own (one joblib task per fold).
    backend : None, "loky", "dask", scheduler address or distributed.Client, default=None
        Where the folds run. None: joblib's configuration (loky processes, or the Dask
        cluster of an enclosing ``joblib.parallel_config(backend="dask")``); ``"dask"``:
        the running ``dask.distributed`` client; ``"tcp://host:8786"``: that scheduler.
        On a Dask cluster X, y and the weights are sent to every worker once (scattered),
        not once per fold; the numbers do not depend on it. See ``docs/scaling.md``.

    Returns
    -------
    CVResult
        A mapping with scikit-learn's keys, plus the curves (:attr:`CVResult.curves`).

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
    check_error_score(error_score)
    check_n_jobs(n_jobs)
    check_stack_folds(stack_folds)
    check_backend(backend)
    check_training_data(X, estimator, CVSetupError)  # ragged, text, overflowing values
    X, y, groups = check_data(X, y, groups)
    n_samples = _num_samples(X)
    sample_weight, step_fit_params = route_params(estimator, sample_weight, params)
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
        shuffle_seed=None if random_state is None else shuffle_seed(base),
    )
    seeds = tuple(fold_seed(base, fold) for fold in range(len(splits)))
    shared = {
        "caller_pid": os.getpid(),
        "estimator": estimator,
        "X": X,
        "y": y,
        "sample_weight": sample_weight,
        "scoring": scoring,
        "return_estimator": return_estimator,
        "return_train_score": return_train_score,
        "error_score": error_score,
        "step_fit_params": step_fit_params,
    }
    # BLAS at one thread: per worker process there, once for this process here (folds run
    # in threads or in this process restore each other's limits if each set its own).
    with one_blas_thread():
        if stack_folds and len(splits) > 1:
            n_groups = max(1, min(effective_n_jobs(n_jobs), len(splits)))
            parts = [(fold, train, test, seeds[fold]) for fold, (train, test) in enumerate(splits)]
            results = parallel_map(
                backend,
                _fit_fold_group_limited,
                shared=shared,
                calls=[
                    {"parts": [parts[i] for i in chunk]}
                    for chunk in np.array_split(np.arange(len(parts)), n_groups)
                ],
                n_jobs=n_jobs,
                verbose=verbose,
            )
            outcomes = [outcome for result in results for outcome in result]
        else:
            outcomes = parallel_map(
                backend,
                _fit_fold_limited,
                shared=shared,
                calls=[
                    {"train": train, "test": test, "fold": fold, "seed": seeds[fold]}
                    for fold, (train, test) in enumerate(splits)
                ],
                n_jobs=n_jobs,
                verbose=verbose,
            )
    outcomes = sorted(outcomes, key=lambda outcome: outcome.fold)
    _warn_about_failures(outcomes, error_score)
    fitted = [outcome for outcome in outcomes if outcome.error is None]
    names = list((fitted or outcomes)[0].scores)
    failed_score = np.nan if error_score == "raise" else float(error_score)

    def gather(scores_of: Any) -> dict[str, np.ndarray]:
        return {
            name: np.array([scores_of(o).get(name, failed_score) for o in outcomes])
            for name in names
        }

    return CVResult(
        scores=gather(lambda o: o.scores),
        fit_time=np.array([o.fit_time for o in outcomes]),
        score_time=np.array([o.score_time for o in outcomes]),
        curves=_curves(outcomes),
        test_indices=tuple(test for _, test in splits),
        fold_seeds=seeds,
        estimators=tuple(o.estimator for o in outcomes) if return_estimator else None,
        errors=tuple(o.error for o in outcomes),
        train_scores=gather(lambda o: o.train_scores or {}) if return_train_score else None,
        train_indices=tuple(
            np.flatnonzero(train) if train.dtype == bool else train for train, _ in splits
        )
        if return_indices
        else None,
        multimetric=not (scoring is None or isinstance(scoring, str) or callable(scoring)),
    )


def _fit_fold_group_limited(*, caller_pid: int, **kwargs: Any) -> Any:
    """:func:`~nncv.cv.fold.fit_fold_group`, BLAS at one thread in a worker process."""
    if os.getpid() == caller_pid:
        return fit_fold_group(**kwargs, limit_blas=False)
    with one_blas_thread():
        return fit_fold_group(**kwargs, limit_blas=False)


def _fit_fold_limited(*, caller_pid: int, **kwargs: Any) -> Any:
    """:func:`~nncv.cv.fold.fit_fold`, BLAS at one thread in a worker process.

    In the caller's own process (threading or sequential backend) the caller holds the
    limit around all the folds; a thread never sets process-wide limits of its own.
    """
    if os.getpid() == caller_pid:
        return fit_fold(**kwargs, limit_blas=False)
    with one_blas_thread():
        return fit_fold(**kwargs, limit_blas=False)


def check_n_jobs(n_jobs: Any) -> None:
    """``n_jobs`` is None or a nonzero int (negative: all CPUs but ``-n_jobs - 1``, as
    joblib), else a :class:`CVSetupError` naming it."""
    if n_jobs is None:
        return
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, (int, np.integer)):
        raise CVSetupError(f"n_jobs must be an int or None, got {n_jobs!r}")
    if n_jobs == 0:
        raise CVSetupError("n_jobs must not be 0: use None or 1 for one process, -1 for all CPUs")


def check_stack_folds(stack_folds: Any, error: type[Exception] = CVSetupError) -> None:
    """``stack_folds`` is True or False (NumPy's bool too), else ``error`` naming it."""
    if not isinstance(stack_folds, (bool, np.bool_)):
        raise error(f"stack_folds must be True or False, got {stack_folds!r}")


def check_error_score(error_score: Any) -> None:
    """``"raise"`` or a real number (NaN included), else a :class:`CVSetupError`."""
    if isinstance(error_score, str) and error_score == "raise":
        return
    if isinstance(error_score, (bool, np.bool_)) or not isinstance(
        error_score, (int, float, np.integer, np.floating)
    ):
        raise CVSetupError(f"error_score must be 'raise' or a number, got {error_score!r}")


def _warn_about_failures(outcomes: list[Any], error_score: Any) -> None:
    """A FitFailedWarning per failed fold (a worker's own warnings do not reach here)."""
    for outcome in outcomes:
        if outcome.error is not None:
            warnings.warn(
                f"fold {outcome.fold} failed and scores {error_score}: {outcome.error}",
                FitFailedWarning,
                stacklevel=3,
            )


def route_params(
    estimator: Any, sample_weight: Any, params: Mapping[str, Any] | None
) -> tuple[Any, dict[str, Any]]:
    """Split ``params`` into the final step's ``sample_weight`` and the other steps' params.

    Returns ``(sample_weight, step_fit_params)``, the latter keyed ``<step path>__<param>``.
    With metadata routing enabled, ``params`` and ``sample_weight`` are routed by the
    steps' requests (:mod:`nncv.cv._routing`).
    """
    from nncv.cv._routing import routed_fit_params, routing_enabled

    params = dict(params or {})
    if routing_enabled():
        if sample_weight is not None:
            if "sample_weight" in params:
                raise CVSetupError("sample_weight given both as an argument and in params")
            params["sample_weight"] = sample_weight
        return routed_fit_params(estimator, params)
    steps, (final_path, _) = pipeline_steps(estimator)
    step_paths = {path for path, _ in steps}
    step_fit_params: dict[str, Any] = {}
    for key, value in params.items():
        path = key.rpartition("__")[0]
        if key == "sample_weight" or (final_path and key == f"{final_path}__sample_weight"):
            if sample_weight is not None:
                raise CVSetupError(f"sample_weight given both as an argument and as {key!r}")
            sample_weight = value
        elif path in step_paths:
            step_fit_params[key] = value
        else:
            raise CVSetupError(
                f"fit parameter {key!r} is not supported: cross_validate takes sample_weight "
                f"(for the final step) and <step>__<param> for the preprocessing steps "
                f"{sorted(step_paths)}"
            )
    return sample_weight, step_fit_params


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
