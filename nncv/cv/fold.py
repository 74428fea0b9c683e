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
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import _num_samples

from nncv._blas import one_blas_thread
from nncv.cv.held_out import (
    HeldOut,
    HeldOutScoring,
    StackedHeldOutScoring,
    network_evaluator,
    score_held_out,
)
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
    "fit_fold_group",
    "stack_refusal",
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
        self.fit_data: tuple | None = None
        self.stacked = False
        self.error: Exception | None = None

    # ------------------------------------------------------------------ training
    def start(self, launch: bool = True) -> None:
        """Clone and seed the estimator, fit the preprocessing, get ready to train.

        An estimator without ``iter_fit`` is fitted here whole (the fold is then finished).
        With ``launch=False`` the network's training is not begun: :attr:`fit_data` holds
        what its ``iter_fit`` would get (a :class:`FoldGroup` may train it in a stack) and
        :meth:`launch` begins it alone.
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
            if launch and self.fit_data is not None:
                self.launch()
        finally:
            self.fit_time += time.perf_counter() - started

    def trains_on_copy(self) -> bool:
        """Whether :meth:`start` will copy the training rows (not train from ``X``'s rows)."""
        if self.copy_rows or self.step_fit_params:
            return True
        estimator = clone(self.template)
        if self.params:
            estimator.set_params(**self.params)
        return not can_train_from_x(estimator, self.X)

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
        self.fit_data = (X, y, sample_weight)

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
        self.fit_data = (source, y, sample_weight)

    def launch(self) -> None:
        """Begin training the network alone on :attr:`fit_data` (after ``start(False)``)."""
        X, y, sample_weight = self.fit_data
        self.fit_data = None
        fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
        self._epochs = self.final.iter_fit(X, y, **fit_params, callbacks=[self._scoring])
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
        return None if self._scoring is None else pd.DataFrame(self.records)


def _is_per_row(value: Any, X: Any) -> bool:
    if value is None or np.isscalar(value) or not hasattr(value, "__len__"):
        return False
    try:
        return _num_samples(value) == _num_samples(X)
    except TypeError:
        return False


class FoldGroup:
    """The folds of one configuration, advanced together.

    With ``stack=True`` (the default) the folds whose networks share one configuration
    (:func:`stack_refusal` says when they do not) train as one stacked network
    (:class:`nncv._stacked_fit.StackedFit`): each fold's numbers are those it reaches
    alone, the per-batch overhead is paid once for all of them. Other folds (or all, with
    ``stack=False``) advance one after another.

    Parameters
    ----------
    folds : sequence of Fold
    stack : bool, default=True
        Train the folds of one configuration as one stack.
    keep_errors : bool, default=False
        A fold whose start or training fails keeps its exception in :attr:`Fold.error`
        and finishes, while the others go on (``cross_validate`` with a numeric
        ``error_score``); by default the exception propagates.

    Attributes
    ----------
    stacked : bool
        Whether the folds train as a stack (set by :meth:`start`).
    refusal : str or None
        Why they do not, when ``stack=True`` but they could not be stacked.
    """

    def __init__(
        self, folds: Sequence[Fold], *, stack: bool = True, keep_errors: bool = False
    ) -> None:
        self.folds = list(folds)
        self.stack = stack
        self.keep_errors = keep_errors
        self.stacked = False
        self.refusal: str | None = None
        self._fit: Any = None
        self._members: list[Fold] = []

    @property
    def finished(self) -> bool:
        """Whether every fold has finished."""
        return all(fold.finished for fold in self.folds)

    @property
    def epochs(self) -> int:
        """Epochs trained so far by the fold that trained most."""
        return max((len(fold.records) for fold in self.folds), default=0)

    def start(self) -> None:
        """Start every fold (:meth:`Fold.start`), as one stack where they allow it."""
        for fold in self.folds:
            self._guard(fold, fold.start, not self.stack)
        if not self.stack:
            return
        waiting = [f for f in self.folds if f.fit_data is not None and f.error is None]
        self.refusal = stack_refusal(waiting)
        if self.refusal is None:
            self._start_stack(waiting)
        else:
            for fold in waiting:
                self._guard(fold, fold.launch)

    def _guard(self, fold: Fold, method: Any, *args: Any) -> Any:
        """``method(*args)``; with :attr:`keep_errors` a failure finishes ``fold`` only."""
        if not self.keep_errors:
            return method(*args)
        try:
            return method(*args)
        except Exception as error:
            fold.error = error
            fold.close()
            return []

    def _start_stack(self, members: list[Fold]) -> None:
        from nncv._stacked_fit import StackedFit  # the fold engine's own use of it

        started = time.perf_counter()
        try:
            self._fit = StackedFit(
                [fold.final for fold in members],
                [fold.fit_data for fold in members],
                callbacks=[[fold._scoring] for fold in members],
                stack_callbacks=[StackedHeldOutScoring([fold._scoring for fold in members])],
            )
        except Exception as error:  # bad data: each fold fails alone, as it would alone
            self.refusal = f"{type(error).__name__}: {error}"
            for fold in members:
                self._guard(fold, fold.launch)
            return
        share = (time.perf_counter() - started) / len(members)
        for fold in members:
            fold.fit_data = None
            fold.stacked = True
            fold.fit_time += share
        self._members = members
        self.stacked = True

    def advance(self, n_epochs: int | None = None) -> int:
        """Advance every unfinished fold by up to ``n_epochs``; return the new records.

        A fold of the stack whose loss diverged raises its
        :class:`~nncv.exceptions.DivergedError` (as its fit alone does), unless
        :attr:`keep_errors`; it is kept in :attr:`Fold.error` either way.
        """
        new = sum(
            len(self._guard(fold, fold.advance, n_epochs))
            for fold in self.folds
            if not fold.finished and not fold.stacked
        )
        if self._fit is not None:
            new += self._advance_stack(n_epochs)
        return new

    def _advance_stack(self, n_epochs: int | None) -> int:
        fit, members = self._fit, self._members
        running = [fold for fold in members if not fold.finished]
        started = time.perf_counter()
        new = 0
        try:
            for records in fit.advance(n_epochs):
                for fold, record in zip(members, records, strict=True):
                    if record is not None:
                        fold.records.append(fold._scoring.annotate(record))
                        new += 1
            for position, fold in enumerate(members):
                if fold.finished:
                    continue
                if position in fit.errors:
                    fold.finished = True
                    fold.error = fit.errors[position]
                elif fit.done or not fit.stack.running[position]:
                    fit.finish(position)
                    fold.finished = True
            if fit.done:
                fit.close()
                self._fit = None
        finally:
            share = (time.perf_counter() - started) / max(1, len(running))
            for fold in running:
                fold.fit_time += share
        errors = [fold.error for fold in running if fold.error is not None]
        if errors and not self.keep_errors:
            raise errors[0]
        return new

    def drain(self) -> None:
        """Start the folds, train every one to its end, and close: what a plain fit does."""
        try:
            self.start()
            while not self.finished:
                if not self.advance(None):
                    break
        finally:
            self.close()

    def val_score(self) -> float:
        """Mean over the folds of :attr:`Fold.val_score` (a finished fold's final one)."""
        return float(np.mean([fold.val_score for fold in self.folds]))

    def close(self) -> None:
        """Stop every fold still training."""
        if self._fit is not None:
            self._fit.close()
            self._fit = None
        for fold in self.folds:
            fold.close()


#: Parameters that may differ between the folds of one stack.
_PER_FOLD_PARAMS = frozenset({"random_state"})


def stack_refusal(folds: Sequence[Fold]) -> str | None:
    """Why ``folds`` (started with ``launch=False``) cannot train as one stack, or None.

    They can when there are at least two, each an nncv network (none of its fit hooks
    overridden), of one class with the same parameters except ``random_state``, without
    ``warm_start`` or ``verbose`` progress output.
    """
    if len(folds) < 2:
        return "fewer than two folds to train"
    first = folds[0].final
    kind = type(first)
    if not isinstance(first, _BaseNN):
        return f"{kind.__name__} is not an nncv network"
    overridden = [
        name
        for name in (*_FIT_HOOKS, "_finish_fit")
        if getattr(kind, name, None) is not getattr(_BaseNN, name)
    ]
    if overridden:
        return f"{kind.__name__} overrides {', '.join(overridden)}"
    params = {k: v for k, v in first.get_params(deep=False).items() if k not in _PER_FOLD_PARAMS}
    if params.get("warm_start") or params.get("verbose"):
        return "warm_start or verbose training"
    for fold in folds[1:]:
        if type(fold.final) is not kind:
            return "the folds' networks are of different classes"
        other = {
            k: v for k, v in fold.final.get_params(deep=False).items() if k not in _PER_FOLD_PARAMS
        }
        if not _same_params(params, other):
            return "the folds' networks have different parameters"
    return None


def _same_params(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for key, value in a.items():
        try:
            same = bool(np.all(value == b[key])) if not isinstance(value, str) else value == b[key]
        except (TypeError, ValueError):
            same = value is b[key]
        if not same:
            return False
    return True


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
    with one_blas_thread() if limit_blas else nullcontext():
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
            return _failed_outcome(
                fold, one, error, names, error_score, return_estimator, return_train_score
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


#: Most bytes of copied training rows :func:`fit_fold_group` holds at once to stack folds
#: that train on copies (a non-row-wise step, a DataFrame or sparse ``X``); above it the
#: folds train one after another, each copy freed before the next is made.
STACK_COPY_BYTES = 2**26


def _bytes_per_row(X: Any) -> float:
    n_rows = max(1, _num_samples(X))
    if sp.issparse(X):
        return (X.data.nbytes + X.indices.nbytes) / n_rows
    if hasattr(X, "memory_usage") and hasattr(X, "columns"):
        return float(X.memory_usage(index=False, deep=False).sum()) / n_rows
    width = X.shape[1] if len(getattr(X, "shape", ())) == 2 else 1
    return float(getattr(X, "nbytes", 8 * n_rows * width)) / n_rows


def fit_fold_group(
    estimator: Any,
    X: Any,
    y: Any,
    sample_weight: np.ndarray | None,
    parts: Sequence[tuple[int, np.ndarray, np.ndarray, int]],
    *,
    scoring: Any,
    return_estimator: bool,
    error_score: float | str,
    stack: bool = True,
    return_train_score: bool = False,
    step_fit_params: Mapping[str, Any] | None = None,
    limit_blas: bool = True,
) -> list[FoldOutcome]:
    """Fit and score some folds ``(fold, train, test, seed)`` as one :class:`FoldGroup`.

    What each joblib worker of :func:`nncv.cross_validate` runs: its share of the folds,
    trained as one stack where they allow it (else one after another). The numbers of each
    fold are those :func:`fit_fold` gives it. Folds that train on copies of their rows are
    stacked only while those copies take at most :data:`STACK_COPY_BYTES` together.
    """
    keep = error_score != "raise"
    one_by_one = not stack or len(parts) < 2
    if not one_by_one:
        first = Fold(estimator, X, y, parts[0][1], parts[0][2], step_fit_params=step_fit_params)
        train_rows = sum(len(train) for _, train, _, _ in parts)
        one_by_one = first.trains_on_copy() and _bytes_per_row(X) * train_rows > STACK_COPY_BYTES
    if one_by_one:  # each fold's copy of its rows is held only while it trains
        return [
            fit_fold(
                estimator,
                X,
                y,
                sample_weight,
                train,
                test,
                fold=index,
                seed=seed,
                scoring=scoring,
                return_estimator=return_estimator,
                error_score=error_score,
                return_train_score=return_train_score,
                step_fit_params=step_fit_params,
                limit_blas=limit_blas,
            )
            for index, train, test, seed in parts
        ]
    folds = [
        Fold(
            estimator,
            X,
            y,
            train,
            test,
            index=index,
            seed=seed,
            sample_weight=sample_weight,
            step_fit_params=step_fit_params,
        )
        for index, train, test, seed in parts
    ]
    group = FoldGroup(folds, keep_errors=keep)
    scores: dict[int, dict[str, float]] = {}
    train_scores: dict[int, Any] = {}
    with one_blas_thread() if limit_blas else nullcontext():
        group.drain()
        for fold in folds:
            if fold.error is None:
                scores[fold.index] = group._guard(fold, fold.score, scoring)
            if fold.error is None and return_train_score:
                train_scores[fold.index] = group._guard(fold, fold.score_train, scoring)
    outcomes = []
    for fold in folds:
        if fold.error is not None:
            names = build_scorers(estimator, scoring).keys()
            outcomes.append(
                _failed_outcome(
                    fold.index,
                    fold,
                    fold.error,
                    names,
                    error_score,
                    return_estimator,
                    return_train_score,
                )
            )
        else:
            outcomes.append(
                FoldOutcome(
                    fold=fold.index,
                    scores=scores[fold.index],
                    fit_time=fold.fit_time,
                    score_time=fold.score_time,
                    curves=fold.curves(),
                    estimator=fold.estimator if return_estimator else None,
                    train_scores=train_scores.get(fold.index),
                )
            )
    return outcomes


def _failed_outcome(
    index: int,
    fold: Fold,
    error: BaseException,
    names: Any,
    error_score: Any,
    return_estimator: bool,
    return_train_score: bool,
) -> FoldOutcome:
    """The outcome of a fold whose fit or scoring failed: ``error_score`` for every metric."""
    failed = dict.fromkeys(names, float(error_score))
    return FoldOutcome(
        fold=index,
        scores=failed,
        fit_time=fold.fit_time,
        score_time=fold.score_time,
        curves=None,
        estimator=fold.estimator if return_estimator else None,
        error=f"{type(error).__name__}: {error}",
        train_scores=dict(failed) if return_train_score else None,
    )
