"""Hidden-layer activations: forward and derivative as pure in-place functions in tables.

``ACTIVATIONS[name](z)`` overwrites ``z`` with the activation and returns it.
``DERIVATIVES[name](a, grad)`` multiplies ``grad`` in place by the derivative, expressed through
the activation's *output* ``a`` (every activation here allows that), and returns it.
Adding an activation is one function in each table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nncv.network._constants import zeros_like

__all__ = ["ACTIVATIONS", "DERIVATIVES", "LEAKY_RELU_SLOPE"]

LEAKY_RELU_SLOPE = 0.01


def identity(z: np.ndarray) -> np.ndarray:
    """Return ``z`` unchanged."""
    return z


def relu(z: np.ndarray) -> np.ndarray:
    """``max(z, 0)`` in place."""
    return np.maximum(z, zeros_like(z), out=z)


def leaky_relu(z: np.ndarray) -> np.ndarray:
    """``z`` where positive, ``0.01 z`` elsewhere, in place."""
    return np.maximum(z, z * LEAKY_RELU_SLOPE, out=z)


def tanh(z: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent in place."""
    return np.tanh(z, out=z)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-z))`` in place, without overflow warnings."""
    np.negative(z, out=z)
    with np.errstate(over="ignore"):
        np.exp(z, out=z)
    z += 1
    return np.reciprocal(z, out=z)


def identity_derivative(a: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Derivative of the identity: leaves ``grad`` as it is."""
    return grad


def relu_derivative(a: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Zero the gradient where the unit was inactive (``a <= 0``)."""
    grad *= a > 0
    return grad


def leaky_relu_derivative(a: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Scale the gradient by the leak slope where the unit was negative."""
    grad *= np.where(a > 0, 1.0, LEAKY_RELU_SLOPE).astype(grad.dtype, copy=False)
    return grad


def tanh_derivative(a: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Multiply by ``1 - a**2``."""
    grad *= 1 - a * a
    return grad


def sigmoid_derivative(a: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Multiply by ``a (1 - a)``."""
    grad *= a * (1 - a)
    return grad


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": identity,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "tanh": tanh,
    "sigmoid": sigmoid,
}

DERIVATIVES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "identity": identity_derivative,
    "relu": relu_derivative,
    "leaky_relu": leaky_relu_derivative,
    "tanh": tanh_derivative,
    "sigmoid": sigmoid_derivative,
}
