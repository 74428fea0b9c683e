"""Layers: ``Dense`` (with L1/L2 on weights and biases), ``Activation`` and inverted ``Dropout``.

Layers do not own memory: the :class:`~nncv.network.model.Network` hands each one views into
a flat parameter vector, a flat gradient vector and reusable activation buffers, so that a
training step allocates (almost) nothing. ``forward`` returns the layer's output;
``backward`` takes the gradient of the loss with respect to that output and returns the
gradient with respect to the layer's input (both may be computed in place).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from nncv.exceptions import ConfigurationError
from nncv.network._constants import ones
from nncv.network.activations import ACTIVATIONS, DERIVATIVES
from nncv.network.initializers import INITIALIZERS

__all__ = ["Activation", "Dense", "Dropout"]


@dataclass
class Dense:
    """Fully connected layer ``outputs = inputs @ weights + biases``.

    Parameters
    ----------
    n_inputs, n_outputs : int
        Layer width in and out.
    weight_l1, weight_l2, bias_l1, bias_l2 : float, default=0
        Regularisation strengths, as in NNFS: the loss gains
        ``weight_l1 * sum|W| + weight_l2 * sum W**2`` (and the same on the biases).
    init : str, default="glorot_uniform"
        Key of :data:`~nncv.network.initializers.INITIALIZERS` for the weights.
    """

    n_inputs: int
    n_outputs: int
    weight_l1: float = 0.0
    weight_l2: float = 0.0
    bias_l1: float = 0.0
    bias_l2: float = 0.0
    init: str = "glorot_uniform"
    weights: np.ndarray = field(init=False, repr=False)
    biases: np.ndarray = field(init=False, repr=False)
    weight_grad: np.ndarray = field(init=False, repr=False)
    bias_grad: np.ndarray = field(init=False, repr=False)
    #: ``[weights; biases]`` as one ``(n_inputs + 1, n_outputs)`` matrix (and its gradient):
    #: the flat layout stores the biases right after the weights, as this matrix's last row.
    stacked: np.ndarray = field(init=False, repr=False)
    stacked_grad: np.ndarray = field(init=False, repr=False)

    @property
    def n_parameters(self) -> int:
        return (self.n_inputs + 1) * self.n_outputs

    def bind(self, parameters: np.ndarray, gradients: np.ndarray) -> None:
        """Make the weights, biases and their gradients views into flat slices."""
        n_weights = self.n_inputs * self.n_outputs
        shape = (self.n_inputs, self.n_outputs)
        self.weights = parameters[:n_weights].reshape(shape)
        self.biases = parameters[n_weights:]
        self.weight_grad = gradients[:n_weights].reshape(shape)
        self.bias_grad = gradients[n_weights:]
        stacked_shape = (self.n_inputs + 1, self.n_outputs)
        self.stacked = parameters.reshape(stacked_shape)
        self.stacked_grad = gradients.reshape(stacked_shape)

    def initialize(self, rng: np.random.Generator) -> None:
        """Draw the weights from the initialiser; zero the biases."""
        initializer = INITIALIZERS[self.init]
        self.weights[...] = initializer(rng, self.n_inputs, self.n_outputs, self.weights.dtype)
        self.biases[...] = 0

    def forward(self, inputs, out: np.ndarray, augmented: np.ndarray | None = None) -> np.ndarray:
        """Write ``inputs @ W + b`` into ``out``; ``inputs`` may be a scipy CSR matrix.

        ``augmented`` is an optional ``(n_rows, n_inputs + 1)`` buffer whose last column
        holds ones: dense inputs are then copied (and cast) into it and one matrix product
        ``[inputs, 1] @ [W; b]`` replaces the product, the bias addition and, in
        :meth:`backward`, the bias gradient's column sums. That pays when the input is
        not much wider than the output (the model decides).
        """
        self._sparse_inputs = type(inputs) is not np.ndarray and sp.issparse(inputs)
        self._stacked_inputs = augmented is not None and not self._sparse_inputs
        if self._stacked_inputs:
            np.copyto(augmented[:, :-1], inputs, casting="unsafe")
            self.inputs = augmented
            return np.dot(augmented, self.stacked, out=out)
        self.inputs = inputs
        if self._sparse_inputs:
            out[...] = inputs @ self.weights
        else:
            np.dot(inputs, self.weights, out=out)
        out += self.biases
        return out

    def backward(self, grad: np.ndarray, input_grad: np.ndarray | None) -> np.ndarray | None:
        """Store ``dW = inputs.T @ grad``, ``db = sum(grad)``; return ``grad @ W.T``.

        ``input_grad`` is the buffer for the input gradient, or None for the first layer
        (whose input gradient nobody needs).
        """
        if self._stacked_inputs:
            np.dot(self.inputs.T, grad, out=self.stacked_grad)  # dW and db in one product
        else:
            if self._sparse_inputs:
                self.weight_grad[...] = self.inputs.T @ grad
            else:
                np.dot(self.inputs.T, grad, out=self.weight_grad)
            # Column sums as a matrix-vector product: several times faster than np.sum(axis=0).
            np.dot(ones(grad.shape[0], grad.dtype), grad, out=self.bias_grad)
        if input_grad is None:
            return None
        return np.dot(grad, self.weights.T, out=input_grad)


@dataclass
class Activation:
    """Element-wise activation applied in place; its derivative is taken from its output."""

    name: str

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        self.outputs = ACTIVATIONS[self.name](inputs)
        return self.outputs

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return DERIVATIVES[self.name](self.outputs, grad)


@dataclass
class Dropout:
    """Inverted dropout: in training, zero each unit with probability ``rate`` and scale
    the rest by ``1 / (1 - rate)``; at inference, the identity."""

    rate: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ConfigurationError(f"dropout rate must be in [0, 1), got {self.rate!r}")

    def forward(
        self, inputs: np.ndarray, out: np.ndarray, mask: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Draw a fresh mask from ``rng`` into ``mask`` and write ``inputs * mask`` into ``out``."""
        keep = 1.0 - self.rate
        rng.random(out=mask, dtype=mask.dtype)
        np.less(mask, keep, out=mask)
        mask *= 1.0 / keep
        self.mask = mask
        return np.multiply(inputs, mask, out=out)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        grad *= self.mask
        return grad
