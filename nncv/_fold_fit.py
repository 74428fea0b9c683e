"""Fit and score one cross-validation fold, holding as little memory as possible.

Private helper of :mod:`nncv.cv`; :func:`fit_fold` is what each joblib worker runs.

Memory, for a float ndarray ``X`` (typically a read-only memory map from joblib):

* the training rows and the held-out rows are each copied out of ``X`` exactly once,
  keeping ``X``'s dtype (no float64 up-cast of float32 data);
* the scalers of the pipeline (``StandardScaler``, ``MinMaxScaler``, ``MaxAbsScaler``)
  learn their statistics block by block with ``partial_fit`` — scikit-learn's one-shot
  ``StandardScaler.fit`` builds a float64 ``X - mean`` temporary twice the size of a
  float32 fold — and every row-wise scaler (those and ``RobustScaler``) then transforms
  the fold block by block *in place*: no second copy for the scaled fold;
* the network gets those arrays directly, the held-out fold as ``validation_data``, and
  the held-out scores are computed on the final step with the already-transformed rows
  (what ``Pipeline.predict`` would compute, without transforming them a second time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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

__all__ = ["BLOCK_ROWS", "FoldOutcome", "fit_fold", "fit_with_validation", "take_rows"]

#: Rows per block when scalers are fitted and applied block by block.
BLOCK_ROWS = 16_384

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
    history: pd.DataFrame | None
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


def _blocks(n_rows: int) -> list[slice]:
    return [slice(start, start + BLOCK_ROWS) for start in range(0, n_rows, BLOCK_ROWS)]


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


def fit_with_validation(
    estimator: Any,
    X: Any,
    y: Any,
    sample_weight: np.ndarray | None,
    X_val: Any,
    y_val: Any,
    sample_weight_val: np.ndarray | None,
) -> tuple[Any, Any]:
    """Fit ``estimator`` on ``(X, y)``, showing the network the held-out rows each epoch.

    A ``Pipeline`` has its transformers fitted on ``X`` only and applied to ``X_val``;
    its final step gets ``sample_weight`` (what ``<step>__sample_weight`` would route).
    An estimator with ``iter_fit`` (the nncv networks) trains with
    ``validation_data=(X_val, y_val[, sample_weight_val])`` so its ``history_`` holds
    the held-out loss and score of every epoch — unless it has ``early_stopping=True``:
    stopping on the rows it is then scored on would leak them, so it keeps its own
    ``validation_fraction`` split. Any other estimator is fitted with ``fit``.

    ``X`` and ``X_val`` may be overwritten (scaled in place).

    Returns
    -------
    final_estimator : estimator
        The fitted estimator that makes the predictions (a Pipeline's last step).
    X_val_transformed : array-like
        ``X_val`` as the final estimator sees it.
    """
    if isinstance(estimator, Pipeline):
        for _, _, step in estimator._iter(with_final=False, filter_passthrough=True):
            X = _fit_transform(step, X)
            X_val = _transform(step, X_val)
        final = estimator._final_estimator
        if final is None or final == "passthrough":
            raise TypeError("the Pipeline's last step is 'passthrough': nothing to fit")
        return fit_with_validation(final, X, y, sample_weight, X_val, y_val, sample_weight_val)
    fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
    if hasattr(estimator, "iter_fit") and not getattr(estimator, "early_stopping", False):
        validation = (X_val, y_val)
        if sample_weight_val is not None:
            validation = (X_val, y_val, sample_weight_val)
        for _ in estimator.iter_fit(X, y, validation_data=validation, **fit_params):
            pass
    else:
        estimator.fit(X, y, **fit_params)
    return estimator, X_val


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

    With a numeric ``error_score`` a failure in fitting or scoring is returned in
    ``FoldOutcome.error`` (the caller warns: a worker's warnings do not reach it).

    The scorers are built here, against the step that predicts, from the user's
    ``scoring``. BLAS is held to one thread so the numbers do not depend on how many
    folds share the machine.
    """
    estimator = clone(estimator)
    seed_estimator(estimator, seed)
    fit_time = score_time = 0.0
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        y_test, w_test = take_rows(y, test), take_rows(sample_weight, test)
        try:
            final, X_test = fit_with_validation(
                estimator,
                take_rows(X, train),
                take_rows(y, train),
                take_rows(sample_weight, train),
                take_rows(X, test),
                y_test,
                w_test,
            )
            fit_time = time.perf_counter() - start
            start = time.perf_counter()
            scores = score_fold(build_scorers(final, scoring), final, X_test, y_test, w_test)
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
                history=None,
                estimator=estimator if return_estimator else None,
                error=f"{type(error).__name__}: {error}",
            )
    history = getattr(final, "history_", None)
    return FoldOutcome(
        fold=fold,
        scores=scores,
        fit_time=fit_time,
        score_time=score_time,
        history=None if history is None else pd.DataFrame(history),
        estimator=estimator if return_estimator else None,
    )
