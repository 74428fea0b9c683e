"""Fit and score one cross-validation fold, holding as little memory as possible.

Private helper of :mod:`nncv.cv`; :func:`fit_fold` is what each joblib worker runs.

Memory, for a float ndarray ``X`` (typically a read-only memory map from joblib):

* an nncv network, alone or after row-wise scalers (:func:`can_train_from_x`), trains
  straight from ``X``: the scalers learn their statistics from the training rows read a
  block at a time (``partial_fit``; see :mod:`nncv._rowwise`), and the network reads
  its mini-batches' rows from ``X`` a few batches at a time, scaling them as they are
  read (:func:`fit_on_rows_of_x`) — no copy of the training rows, bit for bit the
  numbers of the path below;
* anything else gets a copy of its training rows, in ``X``'s dtype (no float64 up-cast
  of float32 data), that row-wise scalers fit and scale in place, block by block
  (:func:`fit_on_fold`);
* while the network trains, the held-out rows are read from ``X`` a block at a time,
  scaled and scored after each epoch (:mod:`nncv._held_out`), so they are never held
  whole beside the training rows;
* the final scores are computed on the final step from already-transformed held-out
  rows (what ``Pipeline.predict`` would compute, without transforming them again per
  scorer): predicted block by block for an nncv network after row-wise scalers, else
  gathered once, after the training rows are released.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from nncv import _rowwise
from nncv._folds import seed_estimator
from nncv._held_out import HeldOut, network_evaluator, score_held_out, with_held_out_scores
from nncv._rowwise import fit_on_rows, in_place_transform, is_rowwise, take_rows
from nncv._scoring import build_scorers
from nncv.estimators import _BaseNN

__all__ = [
    "TRAIN_FROM_X",
    "FoldOutcome",
    "can_train_from_x",
    "fit_fold",
    "fit_on_fold",
    "fit_on_rows_of_x",
]

#: Train nncv networks straight from ``X``'s rows when :func:`can_train_from_x` allows;
#: ``False`` always copies the training rows first (the reference path, for tests).
TRAIN_FROM_X = True

# What a fit from X's rows runs in place of a fit on the copied rows: a subclass that
# overrides any of these may do something to the data the direct path would not.
_FIT_HOOKS = ("iter_fit", "_iter_fit", "_prepare_fit", "_validate_input", "_split_validation")


@dataclass(frozen=True)
class FoldOutcome:
    """What one fold sends back to the calling process."""

    fold: int
    scores: dict[str, float]
    fit_time: float
    score_time: float
    curves: pd.DataFrame | None
    estimator: Any | None
    error: str | None = None


def _split_pipeline(estimator: Any) -> tuple[list[Any], Any]:
    """A Pipeline's transformers (no passthrough) and final step; ``([], estimator)`` else.

    A Pipeline ending in a Pipeline is flattened: its steps follow the outer ones.
    """
    steps: list[Any] = []
    while isinstance(estimator, Pipeline):
        steps += [step for _, _, step in estimator._iter(with_final=False, filter_passthrough=True)]
        estimator = estimator._final_estimator
    return steps, estimator


def fit_on_fold(
    estimator: Any,
    X: Any,
    y: Any,
    sample_weight: np.ndarray | None,
    held_out: HeldOut,
) -> tuple[Any, list[dict[str, Any]] | None]:
    """Fit ``estimator`` on the training rows, scoring the held-out rows every epoch.

    A ``Pipeline`` has its transformers fitted on ``X`` only (and appended to
    ``held_out.transformers``); its final step gets ``sample_weight`` (what
    ``<step>__sample_weight`` would route). An nncv network trains with ``iter_fit``
    and, after each epoch, is scored on the held-out rows; with ``early_stopping=True``
    it still stops on its own ``validation_fraction`` split of the training rows, never
    on the rows it is scored on. Any other estimator is fitted with ``fit``.

    ``X`` may be overwritten (scaled in place).

    Returns
    -------
    final_estimator : estimator
        The fitted estimator that makes the predictions (a Pipeline's last step).
    curves : list of dict or None
        One record per epoch: the network's record with ``val_loss`` and ``val_score``
        measured on the held-out rows (its own early-stopping values, when any, under
        ``early_stopping_val_loss`` and ``early_stopping_val_score``).
    """
    steps, final = _split_pipeline(estimator)
    for step in steps:
        X = _rowwise.fit_transform(step, X)
        held_out.transformers.append(step)
    if final is None or final == "passthrough":
        raise TypeError("the Pipeline's last step is 'passthrough': nothing to fit")
    fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
    evaluate = network_evaluator(final, held_out) if hasattr(final, "iter_fit") else None
    if evaluate is None:
        final.fit(X, y, **fit_params)
        return final, None
    return final, list(with_held_out_scores(final.iter_fit(X, y, **fit_params), evaluate))


def can_train_from_x(estimator: Any, X: Any) -> bool:
    """Whether :func:`fit_on_rows_of_x` can fit ``estimator`` straight from ``X``'s rows.

    It can when ``X`` is a C-contiguous float32 or float64 ndarray (or memory map) and
    ``estimator`` is an nncv network (none of :data:`_FIT_HOOKS` overridden), alone or after
    row-wise scalers only (``StandardScaler``, ``MinMaxScaler``, ``MaxAbsScaler``,
    ``RobustScaler``, exact types, without ``set_output``).
    """
    if not (
        type(X) in (np.ndarray, np.memmap)
        and X.ndim == 2
        and X.dtype in (np.dtype(np.float32), np.dtype(np.float64))
        and X.flags.c_contiguous
    ):
        return False
    steps, final = _split_pipeline(estimator)
    return (
        isinstance(final, _BaseNN)
        and all(getattr(type(final), name) is getattr(_BaseNN, name) for name in _FIT_HOOKS)
        and all(is_rowwise(step) for step in steps)
    )


def fit_on_rows_of_x(
    estimator: Any,
    X: np.ndarray,
    rows: np.ndarray,
    y: Any,
    sample_weight: np.ndarray | None,
    held_out: HeldOut,
) -> tuple[Any, list[dict[str, Any]]]:
    """:func:`fit_on_fold` on ``take_rows(X, rows)``, bit for bit, without that copy.

    For what :func:`can_train_from_x` accepts. The scalers are fitted on ``X[rows]``
    block by block (:func:`nncv._rowwise.fit_on_rows`), and the network trains straight
    from ``X``: it reads its mini-batches' rows a few batches at a time and scales them
    there (``_iter_fit_rows``). ``y`` and ``sample_weight`` are the training rows'
    values already.
    """
    steps, final = _split_pipeline(estimator)
    fit_on_rows(steps, X, rows)
    held_out.transformers.extend(steps)
    transform = in_place_transform(steps) if steps else None
    evaluate = network_evaluator(final, held_out)
    epochs = final._iter_fit_rows(X, rows, y, sample_weight, transform=transform)
    return final, list(with_held_out_scores(epochs, evaluate))


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
) -> FoldOutcome:
    """Clone, seed, fit and score ``estimator`` on one fold (runs in a joblib worker).

    ``train`` is an index array or a boolean mask over the rows. With a numeric
    ``error_score`` a failure in fitting or scoring is returned in
    ``FoldOutcome.error`` (the caller warns: a worker's warnings do not reach it).
    The scorers are built here, against the step that predicts, from the user's
    ``scoring``. BLAS is held to one thread so the numbers do not depend on how many
    folds share the machine.
    """
    estimator = clone(estimator)
    seed_estimator(estimator, seed)
    if train.dtype == bool:
        train = np.flatnonzero(train)
    fit_time = score_time = 0.0
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        y_test, w_test = take_rows(y, test), take_rows(sample_weight, test)
        held_out = HeldOut(X, test, y_test, w_test)
        try:
            y_train, w_train = take_rows(y, train), take_rows(sample_weight, train)
            if TRAIN_FROM_X and can_train_from_x(estimator, X):
                final, records = fit_on_rows_of_x(estimator, X, train, y_train, w_train, held_out)
            else:
                final, records = fit_on_fold(
                    estimator, take_rows(X, train), y_train, w_train, held_out
                )
            fit_time = time.perf_counter() - start
            start = time.perf_counter()
            scorers = build_scorers(final, scoring)
            scores = score_held_out(scorers, final, held_out)
            score_time = time.perf_counter() - start
        except Exception as error:
            if error_score == "raise":
                raise
            names = build_scorers(estimator, scoring).keys()
            return FoldOutcome(
                fold=fold,
                scores=dict.fromkeys(names, float(error_score)),
                fit_time=fit_time or time.perf_counter() - start,
                score_time=score_time,
                curves=None,
                estimator=estimator if return_estimator else None,
                error=f"{type(error).__name__}: {error}",
            )
    return FoldOutcome(
        fold=fold,
        scores=scores,
        fit_time=fit_time,
        score_time=score_time,
        curves=None if records is None else pd.DataFrame(records),
        estimator=estimator if return_estimator else None,
    )
