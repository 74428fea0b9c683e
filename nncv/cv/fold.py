"""One fold of a cross-validation, and a group of folds advanced together.

The fold engine of nncv: :func:`nncv.cross_validate` drains one :class:`Fold` per joblib
worker; the search's objective advances a :class:`FoldGroup` (every fold of one trial) a
chunk of epochs at a time and reports to the pruner between chunks. A fold

1. clones the estimator, sets the parameters it is given and seeds every
   ``random_state`` left at ``None`` (:func:`nncv.cv.splits.seed_estimator`);
2. fits the preprocessing steps on its training rows only;
3. trains the final step epoch by epoch (``iter_fit``), scoring the held-out rows after
   every epoch with a training callback (:class:`nncv.cv.held_out.HeldOutScoring`), so
   each record has ``val_loss``/``val_score`` measured on them;
4. scores the fitted step on the held-out rows with the user's scorers at the end.

Memory, for a float ndarray ``X`` (typically a read-only memory map from joblib):

* an nncv network, alone or after row-wise scalers (:func:`can_train_from_x`), trains
  straight from ``X``: the scalers learn their statistics from the training rows read a
  block at a time (``partial_fit``; see :mod:`nncv.cv.rows`), and the network reads
  its mini-batches' rows from ``X`` a few batches at a time, scaling them as they are
  read (:class:`nncv.network.training.IndexedRows`) — no copy of the training rows, bit
  for bit the numbers of the path below;
* anything else gets a copy of its training rows, in ``X``'s dtype (no float64 up-cast
  of float32 data), that row-wise scalers fit and scale in place, block by block.

Either way the held-out rows are read from ``X``, transformed and scored after each
epoch a block at a time (:mod:`nncv.cv.held_out`), so they are never held whole.

A :class:`FoldGroup` is the interface the callers talk to: today it advances each of its
folds in turn; a stack of the folds of one configuration trained as one network can take
its place without changing them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import _num_samples
from threadpoolctl import threadpool_limits

from nncv.cv.held_out import HeldOut, HeldOutScoring, network_evaluator, score_held_out
from nncv.cv.rows import fit_on_rows, fit_transform, in_place_transform, is_rowwise, take_rows
from nncv.cv.scoring import build_scorers
from nncv.cv.splits import seed_estimator
from nncv.estimators import _BaseNN
from nncv.network.training import IndexedRows

__all__ = [
    "Fold",
    "FoldGroup",
    "FoldOutcome",
    "can_train_from_x",
    "final_step",
    "fit_fold",
    "pipeline_steps",
]

# What a fit from X's rows runs in place of a fit on the copied rows: a subclass that
# overrides any of these may do something to the data the direct path would not.
_FIT_HOOKS = ("iter_fit", "_iter_fit", "_prepare_fit", "_validate_input", "_split_validation")


def pipeline_steps(estimator: Any) -> tuple[list[tuple[str, Any]], tuple[str, Any]]:
    """A Pipeline's transformers as ``(path, step)`` (no passthrough) and its final step.

    A Pipeline ending in a Pipeline is flattened: its steps follow the outer ones, their
    paths joined with ``__`` (``"inner__scale"``), as ``set_params`` names them. A bare
    estimator gives ``([], ("", estimator))``.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from nncv import NNClassifier
    >>> steps, (path, final) = pipeline_steps(make_pipeline(StandardScaler(), NNClassifier()))
    >>> [name for name, _ in steps], path
    (['standardscaler'], 'nnclassifier')
    """
    steps: list[tuple[str, Any]] = []
    prefix = ""
    while isinstance(estimator, Pipeline):
        steps += [
            (prefix + name, step)
            for _, name, step in estimator._iter(with_final=False, filter_passthrough=True)
        ]
        name, estimator = estimator.steps[-1]
        prefix += f"{name}__"
    return steps, (prefix[:-2], estimator)


def final_step(estimator: Any) -> Any:
    """The step that predicts: a (nested) Pipeline's last step, else ``estimator``."""
    return pipeline_steps(estimator)[1][1]


def can_train_from_x(estimator: Any, X: Any) -> bool:
    """Whether a fold can train ``estimator`` straight from ``X``'s rows.

    It can when ``X`` is a C-contiguous float32 or float64 ndarray (or memory map) and
    ``estimator`` is an nncv network (none of its fit hooks overridden), alone or after
    row-wise scalers only (:func:`nncv.cv.rows.is_rowwise`). Anything else is fitted on a
    copy of the fold's training rows.
    """
    if not (
        type(X) in (np.ndarray, np.memmap)
        and X.ndim == 2
        and X.dtype in (np.dtype(np.float32), np.dtype(np.float64))
        and X.flags.c_contiguous
    ):
        return False
    steps, (_, final) = pipeline_steps(estimator)
    return (
        isinstance(final, _BaseNN)
        and all(getattr(type(final), name) is getattr(_BaseNN, name) for name in _FIT_HOOKS)
        and all(is_rowwise(step) for _, step in steps)
    )


def _params_of(path: str, fit_params: Mapping[str, Any]) -> dict[str, Any]:
    """The fit parameters addressed to the step at ``path`` (``"<path>__<param>"``)."""
    head = f"{path}__"
    return {
        key[len(head) :]: value
        for key, value in fit_params.items()
        if key.startswith(head) and "__" not in key[len(head) :]
    }


@dataclass(frozen=True)
class FoldOutcome:
    """What one fold of :func:`nncv.cross_validate` sends back to the calling process."""

    fold: int
    scores: dict[str, float]
    fit_time: float
    score_time: float
    curves: pd.DataFrame | None
    estimator: Any | None
    error: str | None = None
    train_scores: dict[str, float] | None = None


class Fold:
    """One fold: a clone of the estimator trained on some rows, scored on others.

    Parameters
    ----------
    estimator : estimator
        The template; the fold works on a clone.
    X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)
        The whole data; the fold reads its rows by index.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    train, test : ndarray
        The fold's rows: index arrays (``train`` may be a boolean mask).
    index : int
        The fold's number (``fold`` in the records).
    seed : int
        Given to every ``random_state`` parameter left at ``None`` after ``params``.
    params : dict, optional
        ``set_params`` values for the clone (a trial's parameters).
    sample_weight : array-like of shape (n_samples,), optional
        Split by rows: the training rows' weights go to the final step's fit, the held-out
        rows' to the per-epoch validation loss and to every scorer that accepts weights.
    step_fit_params : dict, optional
        ``"<step path>__<param>"`` values for the preprocessing steps' ``fit``; values
        with one entry per row of ``X`` are split by rows.
    copy_rows : bool, default=False
        Fit on a copy of the training rows even when :func:`can_train_from_x` allows
        training straight from ``X`` (the reference path; the numbers are the same).

    Attributes
    ----------
    estimator : estimator
        The clone (fitted once the fold has finished).
    final : estimator
        Its step that predicts.
    records : list of dict
        One record per epoch trained so far (see :data:`nncv.network.training.RECORD_KEYS`),
        ``val_loss``/``val_score`` measured on the held-out rows.
    finished : bool
    fit_time, score_time : float
        Seconds spent fitting (preprocessing included) and scoring.
    """

    def __init__(
        self,
        estimator: Any,
        X: Any,
        y: Any,
        train: np.ndarray,
        test: np.ndarray,
        *,
        index: int = 0,
        seed: int | None = None,
        params: Mapping[str, Any] | None = None,
        sample_weight: np.ndarray | None = None,
        step_fit_params: Mapping[str, Any] | None = None,
        copy_rows: bool = False,
    ) -> None:
        self.template = estimator
        self.X, self.y = X, y
        self.train = np.flatnonzero(train) if train.dtype == bool else train
        self.test = test
        self.index = index
        self.seed = seed
        self.params = dict(params or {})
        self.sample_weight = sample_weight
        self.step_fit_params = dict(step_fit_params or {})
        self.copy_rows = copy_rows
        self.estimator: Any = None
        self.final: Any = None
        self.records: list[dict[str, Any]] = []
        self.finished = False
        self.fit_time = 0.0
        self.score_time = 0.0
        self._epochs: Iterator[dict[str, Any]] | None = None
        self._scoring: HeldOutScoring | None = None
        self._held_out: HeldOut | None = None
        self._max_epochs: int | None = None

    # ------------------------------------------------------------------ training
    def start(self) -> None:
        """Clone and seed the estimator, fit the preprocessing, get ready to train.

        An estimator without ``iter_fit`` is fitted here whole (the fold is then finished).
        """
        started = time.perf_counter()
        try:
            estimator = clone(self.template)
            if self.params:
                estimator.set_params(**self.params)
            if self.seed is not None:
                seed_estimator(estimator, self.seed)
            self.estimator = estimator
            rows = self.train
            self._held_out = HeldOut(
                self.X, self.test, take_rows(self.y, self.test), self._weights(self.test)
            )
            y_train, w_train = take_rows(self.y, rows), self._weights(rows)
            if (
                not self.copy_rows
                and not self.step_fit_params
                and can_train_from_x(estimator, self.X)
            ):
                self._start_from_rows_of_x(y_train, w_train)
            else:
                self._start_on_copy(take_rows(self.X, rows), y_train, w_train)
        finally:
            self.fit_time += time.perf_counter() - started

    def _weights(self, rows: np.ndarray) -> np.ndarray | None:
        return take_rows(self.sample_weight, rows)

    def _start_on_copy(self, X: Any, y: Any, sample_weight: np.ndarray | None) -> None:
        """Fit the transformers on the copied training rows (``X`` may be scaled in place)."""
        steps, (_, final) = pipeline_steps(self.estimator)
        for path, step in steps:
            params = {
                key: take_rows(value, self.train) if _is_per_row(value, self.X) else value
                for key, value in _params_of(path, self.step_fit_params).items()
            }
            X = fit_transform(step, X, y, **params)
            self._held_out.transformers.append(step)
        if final is None or final == "passthrough":
            raise TypeError("the Pipeline's last step is 'passthrough': nothing to fit")
        self.final = final
        fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
        evaluate = network_evaluator(final, self._held_out) if hasattr(final, "iter_fit") else None
        if evaluate is None:
            final.fit(X, y, **fit_params)
            self.finished = True
            return
        self._scoring = HeldOutScoring(evaluate)
        self._epochs = final.iter_fit(X, y, **fit_params, callbacks=[self._scoring])
        self._begin()

    def _start_from_rows_of_x(self, y: Any, sample_weight: np.ndarray | None) -> None:
        """:meth:`_start_on_copy` on ``X[train]``, bit for bit, without that copy."""
        steps, (_, final) = pipeline_steps(self.estimator)
        transformers = [step for _, step in steps]
        fit_on_rows(transformers, self.X, self.train)
        self._held_out.transformers.extend(transformers)
        self.final = final
        source = IndexedRows(
            self.X,
            np.asarray(self.train, dtype=np.intp),
            in_place_transform(transformers) if transformers else None,
            np.dtype(final.dtype),
        )
        self._scoring = HeldOutScoring(network_evaluator(final, self._held_out))
        self._epochs = final.iter_fit(source, y, sample_weight, callbacks=[self._scoring])
        self._begin()

    def _begin(self) -> None:
        max_epochs = getattr(self.final, "max_epochs", None)
        warm = getattr(self.final, "warm_start", False)
        self._max_epochs = int(max_epochs) if max_epochs and not warm else None

    def advance(self, n_epochs: int | None = None) -> list[dict[str, Any]]:
        """Train up to ``n_epochs`` more epochs (all that remain for ``None``).

        Returns the new records. The fold is :attr:`finished` once its network has
        stopped — after its ``max_epochs``th epoch, or when early stopping ended it — and
        its estimator is then fitted (best weights restored, when early stopping does so).
        """
        if self.finished:
            return []
        started = time.perf_counter()
        new: list[dict[str, Any]] = []
        try:
            while n_epochs is None or len(new) < n_epochs:
                try:
                    record = self._scoring.annotate(next(self._epochs))
                except StopIteration:
                    self.finished = True
                    break
                new.append(record)
                self.records.append(record)
                if self._max_epochs is not None and len(self.records) >= self._max_epochs:
                    for record in self._epochs:  # lets the network finish its fit
                        new.append(self._scoring.annotate(record))
                        self.records.append(new[-1])
                    self.finished = True
                    break
        finally:
            self.fit_time += time.perf_counter() - started
        return new

    def close(self) -> None:
        """Stop training (the estimator is left fitted with the epochs done so far)."""
        if self._epochs is not None and not self.finished:
            self._epochs.close()
        self.finished = True

    # ------------------------------------------------------------------- results
    @property
    def val_score(self) -> float:
        """The held-out score of the weights the fold holds now.

        Once finished with early stopping's best weights restored, that best epoch's
        score; else the last epoch's. NaN before any epoch.
        """
        if self.finished:
            best = getattr(self.final, "best_epoch_", None)
            for record in self.records:
                if best is not None and record.get("epoch") == best:
                    return float(record.get("val_score", math.nan))
        if not self.records:
            return math.nan
        return float(self.records[-1].get("val_score", math.nan))

    def score(self, scoring: Any) -> dict[str, float]:
        """Score the fitted final step on the held-out rows with every scorer of ``scoring``."""
        started = time.perf_counter()
        try:
            scorers = build_scorers(self.final, scoring)
            return score_held_out(scorers, self.final, self._held_out)
        finally:
            self.score_time += time.perf_counter() - started

    def score_train(self, scoring: Any) -> dict[str, float]:
        """Score the fitted final step on the fold's training rows (``return_train_score``).

        Read through the fitted transformers a block at a time, as the held-out rows are.
        """
        started = time.perf_counter()
        try:
            rows = HeldOut(
                self.X, self.train, take_rows(self.y, self.train), self._weights(self.train)
            )
            rows.transformers.extend(self._held_out.transformers)
            return score_held_out(build_scorers(self.final, scoring), self.final, rows)
        finally:
            self.score_time += time.perf_counter() - started

    def curves(self) -> pd.DataFrame | None:
        """The records as a DataFrame; ``None`` for an estimator without ``iter_fit``."""
        return None if self._epochs is None else pd.DataFrame(self.records)


def _is_per_row(value: Any, X: Any) -> bool:
    if value is None or np.isscalar(value) or not hasattr(value, "__len__"):
        return False
    try:
        return _num_samples(value) == _num_samples(X)
    except TypeError:
        return False


class FoldGroup:
    """The folds of one configuration, advanced together.

    Today it advances each fold in turn; training the folds as one stacked network can
    take its place behind the same methods.

    Parameters
    ----------
    folds : sequence of Fold
    """

    def __init__(self, folds: Sequence[Fold]) -> None:
        self.folds = list(folds)

    @property
    def finished(self) -> bool:
        """Whether every fold has finished."""
        return all(fold.finished for fold in self.folds)

    @property
    def epochs(self) -> int:
        """Epochs trained so far by the fold that trained most."""
        return max((len(fold.records) for fold in self.folds), default=0)

    def start(self) -> None:
        """Start every fold (:meth:`Fold.start`)."""
        for fold in self.folds:
            fold.start()

    def advance(self, n_epochs: int | None = None) -> int:
        """Advance every unfinished fold by up to ``n_epochs``; return the new records."""
        return sum(len(fold.advance(n_epochs)) for fold in self.folds if not fold.finished)

    def val_score(self) -> float:
        """Mean over the folds of :attr:`Fold.val_score` (a finished fold's final one)."""
        return float(np.mean([fold.val_score for fold in self.folds]))

    def close(self) -> None:
        """Stop every fold still training."""
        for fold in self.folds:
            fold.close()


def fit_fold(
    estimator: Any,
    X: Any,
    y: Any,
    sample_weight: np.ndarray | None,
    train: np.ndarray,
    test: np.ndarray,
    *,
    fold: int,
    seed: int,
    scoring: Any,
    return_estimator: bool,
    error_score: float | str,
    copy_rows: bool = False,
    return_train_score: bool = False,
    step_fit_params: Mapping[str, Any] | None = None,
    limit_blas: bool = True,
) -> FoldOutcome:
    """Fit and score one :class:`Fold` to the end (what each joblib worker runs).

    With a numeric ``error_score`` a failure in fitting or scoring is returned in
    ``FoldOutcome.error`` (the caller warns: a worker's warnings do not reach it). With
    ``limit_blas`` BLAS is held to one thread meanwhile, so the numbers do not depend on
    how many folds share the machine; a caller running folds in threads of one process
    passes False and limits BLAS once around all of them (limits set and restored from
    several threads restore each other's).
    """
    one = Fold(
        estimator,
        X,
        y,
        train,
        test,
        index=fold,
        seed=seed,
        sample_weight=sample_weight,
        step_fit_params=step_fit_params,
        copy_rows=copy_rows,
    )
    train_scores = None
    with threadpool_limits(limits=1, user_api="blas") if limit_blas else nullcontext():
        try:
            one.start()
            one.advance(None)
            scores = one.score(scoring)
            if return_train_score:
                train_scores = one.score_train(scoring)
        except Exception as error:
            if error_score == "raise":
                raise
            one.close()
            names = build_scorers(estimator, scoring).keys()
            return FoldOutcome(
                fold=fold,
                scores=dict.fromkeys(names, float(error_score)),
                fit_time=one.fit_time,
                score_time=one.score_time,
                curves=None,
                estimator=one.estimator if return_estimator else None,
                error=f"{type(error).__name__}: {error}",
                train_scores=dict.fromkeys(names, float(error_score))
                if return_train_score
                else None,
            )
    return FoldOutcome(
        fold=fold,
        scores=scores,
        fit_time=one.fit_time,
        score_time=one.score_time,
        curves=one.curves(),
        estimator=one.estimator if return_estimator else None,
        train_scores=train_scores,
    )
