"""Weight initialisers, in a table keyed by the public name.

Each takes ``(rng, n_inputs, n_outputs, dtype)`` and returns a new ``(n_inputs, n_outputs)``
array. Biases always start at zero (as in NNFS and Keras).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["INITIALIZERS"]

Initializer = Callable[[np.random.Generator, int, int, np.dtype], np.ndarray]


def nnfs(rng: np.random.Generator, n_inputs: int, n_outputs: int, dtype) -> np.ndarray:
    """``0.01 * N(0, 1)``, the NNFS book's initialisation."""
    return (0.01 * rng.standard_normal((n_inputs, n_outputs))).astype(dtype)


def he_normal(rng: np.random.Generator, n_inputs: int, n_outputs: int, dtype) -> np.ndarray:
    """He et al.: ``N(0, 2 / n_inputs)``, suited to ReLU."""
    scale = np.sqrt(2.0 / n_inputs)
    return (scale * rng.standard_normal((n_inputs, n_outputs))).astype(dtype)


def glorot_normal(rng: np.random.Generator, n_inputs: int, n_outputs: int, dtype) -> np.ndarray:
    """Glorot/Xavier normal: ``N(0, 2 / (n_inputs + n_outputs))``."""
    scale = np.sqrt(2.0 / (n_inputs + n_outputs))
    return (scale * rng.standard_normal((n_inputs, n_outputs))).astype(dtype)


def glorot_uniform(rng: np.random.Generator, n_inputs: int, n_outputs: int, dtype) -> np.ndarray:
    """Glorot/Xavier uniform: ``U(-a, a)`` with ``a = sqrt(6 / (n_inputs + n_outputs))``."""
    limit = np.sqrt(6.0 / (n_inputs + n_outputs))
    return rng.uniform(-limit, limit, (n_inputs, n_outputs)).astype(dtype)


def zeros(rng: np.random.Generator, n_inputs: int, n_outputs: int, dtype) -> np.ndarray:
    """All zeros (only sensible for the output layer or for tests)."""
    return np.zeros((n_inputs, n_outputs), dtype=dtype)


INITIALIZERS: dict[str, Initializer] = {
    "nnfs": nnfs,
    "he": he_normal,
    "he_normal": he_normal,
    "glorot_normal": glorot_normal,
    "xavier_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "xavier_uniform": glorot_uniform,
    "zeros": zeros,
}
