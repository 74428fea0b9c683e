"""Row-wise scalers fitted and applied a block of rows at a time, in ``X``'s dtype.

Part of the fold engine (:mod:`nncv.cv.fold`). A *row-wise* scaler (an entry of
:data:`nncv.scalers.SCALERS` marked ``rowwise``: ``StandardScaler``, ``MinMaxScaler``,
``MaxAbsScaler``, ``RobustScaler``, exact types only) transforms each row on its own,
so applying it a block of rows at a time, in place, gives the numbers it gives on the whole array:

* :func:`fit_transform` fits a scaler on a fold's copied training rows and scales them in
  place; the first three learn their statistics block by block with ``partial_fit``
  (scikit-learn's one-shot ``StandardScaler.fit`` builds a float64 ``X - mean``
  temporary twice the size of a float32 fold);
* :func:`fit_on_rows` fits a chain of them on some rows of ``X`` without copying those
  rows whole, and :func:`transform_through` then applies the chain to any rows read
  later, so a network can train straight from ``X``; :func:`in_place_transform` is
  the same chain made cheaper for rows already known to be finite.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from sklearn import config_context
from sklearn.utils import _safe_indexing
from sklearn.utils._set_output import _get_output_config

from nncv.scalers import entry_of

__all__ = [
    "BLOCK_ROWS",
    "blocks",
    "fit_on_rows",
    "fit_transform",
    "in_place_transform",
    "is_rowwise",
    "take_rows",
    "transform",
    "transform_through",
]

#: Rows per block when scalers are fitted or applied, and held-out rows are scored.
BLOCK_ROWS = 4096


def _fits_blockwise(step: Any) -> bool:
    entry = entry_of(step)
    return entry is not None and entry.rowwise and entry.blockwise_fit


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


def blocks(n_rows: int) -> Iterator[slice]:
    """Slices of :data:`BLOCK_ROWS` rows covering ``range(n_rows)``.

    Examples
    --------
    >>> [(s.start, s.stop) for s in blocks(BLOCK_ROWS + 1)]
    [(0, 4096), (4096, 8192)]
    """
    for start in range(0, n_rows, BLOCK_ROWS):
        yield slice(start, start + BLOCK_ROWS)


def is_rowwise(step: Any) -> bool:
    """Whether ``step`` is a row-wise scaler giving plain arrays (no ``set_output``)."""
    entry = entry_of(step)
    return (
        entry is not None
        and entry.rowwise
        and _get_output_config("transform", step)["dense"] == "default"
    )


def _can_work_in_place(step: Any, X: Any) -> bool:
    return (
        is_rowwise(step)
        and isinstance(X, np.ndarray)
        and X.ndim == 2
        and X.dtype.kind == "f"
        and X.flags.writeable
        and X.flags.c_contiguous
    )


def _transform_in_place(step: Any, X: np.ndarray) -> np.ndarray:
    for block in blocks(len(X)):
        X[block] = step.transform(X[block])
    return X


def fit_transform(step: Any, X: Any, y: Any = None, **fit_params: Any) -> Any:
    """Fit ``step`` on ``X`` and return ``step.transform(X)``, in place where possible.

    ``y`` and ``fit_params`` reach ``step.fit_transform`` (a row-wise scaler given no fit
    parameters ignores ``y`` and works in place).
    """
    if fit_params or not _can_work_in_place(step, X):
        return step.fit_transform(X, y, **fit_params)
    if _fits_blockwise(step):
        for block in blocks(len(X)):
            step.partial_fit(X[block])
    else:
        step.fit(X)
    return _transform_in_place(step, X)


def transform(step: Any, X: Any) -> Any:
    """``step.transform(X)``, in place where possible."""
    if _can_work_in_place(step, X):
        return _transform_in_place(step, X)
    return step.transform(X)


def transform_through(steps: Sequence[Any], X: Any) -> Any:
    """``X`` through every fitted step in turn (in place where possible).

    Examples
    --------
    >>> values = np.array([[1.0], [3.0]])
    >>> from sklearn.preprocessing import StandardScaler
    >>> transform_through([StandardScaler().fit(values)], values.copy())
    array([[-1.],
           [ 1.]])
    """
    for step in steps:
        X = transform(step, X)
    return X


def fit_on_rows(steps: Sequence[Any], X: np.ndarray, rows: np.ndarray) -> None:
    """Fit each row-wise scaler of ``steps`` on ``X[rows]`` through the steps before it.

    What :func:`fit_transform` of each step in turn on a copy of ``X[rows]`` learns, bit
    for bit, without that copy: the rows are read :data:`BLOCK_ROWS` at a time, in the
    same blocks. Only a ``RobustScaler`` (its quantiles need every row at once) reads the
    rows whole, for the duration of its fit.
    """
    for number, step in enumerate(steps):
        before = steps[:number]
        if _fits_blockwise(step):
            for block in blocks(len(rows)):
                step.partial_fit(transform_through(before, take_rows(X, rows[block])))
        else:
            step.fit(transform_through(before, take_rows(X, rows)))


def in_place_transform(steps: Sequence[Any]) -> Callable[[np.ndarray], np.ndarray]:
    """``transform_through(steps, values)`` in place and unchecked, for rows read again.

    For rows that have been through the chain and checked once: each fitted scaler is
    applied, through a shallow copy with ``copy=False``, straight to ``values`` (a fresh
    writeable float array), and scikit-learn's finiteness check is skipped. The scalers'
    own ``transform`` computes, so the numbers are those of :func:`transform_through`.

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> scaler = StandardScaler().fit(np.array([[1.0], [3.0]]))
    >>> values = np.array([[3.0], [5.0]])
    >>> in_place_transform([scaler])(values) is values, values.ravel().tolist()
    (True, [1.0, 3.0])
    """
    unchecked = []
    for step in steps:
        step = copy.copy(step)  # shares the fitted statistics, not the ``copy`` flag
        step.copy = False
        unchecked.append(step)

    def apply(values: np.ndarray) -> np.ndarray:
        with config_context(assume_finite=True):
            for step in unchecked:
                values = step.transform(values)
        return values

    return apply
