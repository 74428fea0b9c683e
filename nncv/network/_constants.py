"""Cached read-only arrays of ones and zeros, grown on demand and shared by the layers.

NumPy is several times faster at ``np.maximum(z, zeros)`` than at ``np.maximum(z, 0)`` (the
scalar goes through a broadcasting path), and at ``ones @ grad`` than at ``grad.sum(axis=0)``
(a BLAS matrix-vector product instead of a strided reduction). These helpers hand out such
operands without allocating per call.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ones", "zeros_like"]

_MIN_SIZE = 4096
_ONES: dict[np.dtype, np.ndarray] = {}
_ZEROS: dict[np.dtype, np.ndarray] = {}


def _cached(cache: dict[np.dtype, np.ndarray], fill: float, size: int, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    array = cache.get(dtype)
    if array is None or array.size < size:
        array = np.full(max(size, _MIN_SIZE), fill, dtype)
        array.flags.writeable = False
        cache[dtype] = array
    return array[:size]


def ones(n: int, dtype) -> np.ndarray:
    """A read-only vector of ``n`` ones.

    Examples
    --------
    >>> ones(3, np.float32)
    array([1., 1., 1.], dtype=float32)
    """
    return _cached(_ONES, 1.0, n, dtype)


def zeros_like(z: np.ndarray) -> np.ndarray:
    """A read-only array of zeros with the shape and dtype of ``z``.

    Examples
    --------
    >>> zeros_like(np.ones((2, 2))).sum()
    np.float64(0.0)
    """
    return _cached(_ZEROS, 0.0, z.size, z.dtype).reshape(z.shape)
