"""Fit and score one cross-validation fold, holding as little memory as possible.

Private helper of :mod:`nncv.cv`; :func:`fit_fold` is what each joblib worker runs.

Memory, for a float ndarray ``X`` (typically a read-only memory map from joblib):

* the training rows are copied out of ``X`` once, keeping ``X``'s dtype (no float64
  up-cast of float32 data);
* the pipeline's scalers (``StandardScaler``, ``MinMaxScaler``, ``MaxAbsScaler``) learn
  their statistics block by block with ``partial_fit`` — scikit-learn's one-shot
  ``StandardScaler.fit`` builds a float64 ``X - mean`` temporary twice the size of a
  float32 fold — and every row-wise scaler (those and ``RobustScaler``) then transforms
  the training rows block by block *in place*: no second copy for the scaled fold;
* while the network trains, the held-out rows are read from ``X`` a block at a time,
  scaled and scored after each epoch (:class:`HeldOut`), so they are never held whole
  beside the training rows;
* the training rows are released before the held-out rows are gathered for the final
  scores, which are computed on the final step from already-transformed rows (what
  ``Pipeline.predict`` would compute, without transforming them again per scorer).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.utils import _safe_indexing
from sklearn.utils._set_output import _get_output_config
from threadpoolctl import threadpool_limits

from nncv._folds import seed_estimator
from nncv._scoring import build_scorers, score_fold

__all__ = ["BLOCK_ROWS", "FoldOutcome", "HeldOut", "fit_fold", "fit_on_fold", "take_rows"]

#: Rows per block when scalers are fitted or applied, and held-out rows are scored.
BLOCK_ROWS = 4096

# Exact types only: a subclass may change what fit or transform means.
_BLOCKWISE_FIT = (StandardScaler, MinMaxScaler, MaxAbsScaler)
_ROWWISE_TRANSFORM = (*_BLOCKWISE_FIT, RobustScaler)


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


def take_rows(data: Any, rows: np.ndarray) -> Any:
    """Copy ``rows`` out of ``data`` (array, memory map, DataFrame, list or ``None``).

    A memory-mapped array gives a plain in-memory ``ndarray`` of the same dtype.

    Examples
    --------
    >>> take_rows(np.arange(6.0).reshape(3, 2), np.array([2, 0]))
    array([[4., 5.],
           [0., 1.]])
    """
    if data is None:
        return None
    if isinstance(data, np.ndarray):
        return np.asarray(data).take(rows, axis=0)
    return _safe_indexing(data, rows)


def _blocks(n_rows: int) -> Iterator[slice]:
    for start in range(0, n_rows, BLOCK_ROWS):
        yield slice(start, start + BLOCK_ROWS)


def _can_work_in_place(step: Any, X: Any) -> bool:
    return (
        type(step) in _ROWWISE_TRANSFORM
        and isinstance(X, np.ndarray)
        and X.ndim == 2
        and X.dtype.kind == "f"
        and X.flags.writeable
        and X.flags.c_contiguous
        and _get_output_config("transform", step)["dense"] == "default"
    )


def _transform_in_place(step: Any, X: np.ndarray) -> np.ndarray:
    for block in _blocks(len(X)):
        X[block] = step.transform(X[block])
    return X


def _fit_transform(step: Any, X: Any) -> Any:
    """Fit ``step`` on ``X`` and return ``step.transform(X)``, in place where possible."""
    if not _can_work_in_place(step, X):
        return step.fit_transform(X)
    if type(step) in _BLOCKWISE_FIT:
        for block in _blocks(len(X)):
            step.partial_fit(X[block])
    else:
        step.fit(X)
    return _transform_in_place(step, X)


def _transform(step: Any, X: Any) -> Any:
    if _can_work_in_place(step, X):
        return _transform_in_place(step, X)
    return step.transform(X)


@dataclass
class HeldOut:
    """A fold's held-out rows of ``X``, read through the fitted transformers on demand."""

    X: Any
    rows: np.ndarray
    y: Any
    sample_weight: np.ndarray | None
    transformers: list[Any] = field(default_factory=list)

    def blocks(self) -> Iterator[Any]:
        """The transformed held-out rows, ``BLOCK_ROWS`` at a time."""
        for block in _blocks(len(self.rows)):
            values = take_rows(self.X, self.rows[block])
            for step in self.transformers:
                values = _transform(step, values)
            yield values

    def materialize(self) -> Any:
        """All transformed held-out rows at once (for the final scores)."""
        values = take_rows(self.X, self.rows)
        for step in self.transformers:
            values = _transform(step, values)
        return values


def _network_evaluator(net: Any, held_out: HeldOut) -> Callable[[], tuple[float, float]] | None:
    """``evaluate() -> (val_loss, val_score)`` of ``net`` on ``held_out``, block by block.

    The same numbers as the network's own ``validation_data`` evaluation (its loss and
    score applied to all held-out outputs at once), without holding the held-out rows
    whole. ``None`` when ``net`` lacks the nncv network hooks.
    """
    hooks = ("_encode_targets", "_score_function", "_validate_input")
    if not all(hasattr(net, name) for name in hooks):
        return None
    from nncv.network.losses import mean_loss

    weights = None
    if held_out.sample_weight is not None:
        weights = np.asarray(held_out.sample_weight, dtype=np.float64)
    encoded: list[np.ndarray] = []

    def evaluate() -> tuple[float, float]:
        network = net.network_
        if not encoded:  # the targets' encoding exists once training has started
            encoded.append(net._encode_targets(held_out.y, reset=False))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            outputs = np.concatenate(
                [
                    network.predict(net._validate_input(block, reset=False))
                    for block in held_out.blocks()
                ]
            )
            loss = mean_loss(network.loss.per_sample(outputs, encoded[0]), weights)
            score = net._score_function()(outputs, encoded[0], weights)
        return loss, score

    return evaluate


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
    if isinstance(estimator, Pipeline):
        for _, _, step in estimator._iter(with_final=False, filter_passthrough=True):
            X = _fit_transform(step, X)
            held_out.transformers.append(step)
        final = estimator._final_estimator
        if final is None or final == "passthrough":
            raise TypeError("the Pipeline's last step is 'passthrough': nothing to fit")
        return fit_on_fold(final, X, y, sample_weight, held_out)
    fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
    evaluate = _network_evaluator(estimator, held_out) if hasattr(estimator, "iter_fit") else None
    if evaluate is None:
        estimator.fit(X, y, **fit_params)
        return estimator, None
    records = []
    for record in estimator.iter_fit(X, y, **fit_params):
        record = dict(record)
        own_loss, own_score = record.get("val_loss", math.nan), record.get("val_score", math.nan)
        record["val_loss"], record["val_score"] = evaluate()
        if not (math.isnan(own_loss) and math.isnan(own_score)):
            record["early_stopping_val_loss"] = own_loss
            record["early_stopping_val_score"] = own_score
        records.append(record)
    return estimator, records


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
            final, records = fit_on_fold(
                estimator,
                take_rows(X, train),
                take_rows(y, train),
                take_rows(sample_weight, train),
                held_out,
            )
            fit_time = time.perf_counter() - start
            start = time.perf_counter()
            scorers = build_scorers(final, scoring)
            scores = score_fold(scorers, final, held_out.materialize(), y_test, w_test)
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
