"""Layers: ``Dense`` (with L1/L2 on weights and biases), ``BatchNorm``, ``Activation`` and
inverted ``Dropout``.

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

__all__ = [
    "Activation",
    "BatchNorm",
    "Dense",
    "Dropout",
    "batch_norm_backward",
    "batch_norm_inference",
    "batch_norm_training",
]


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


# ----------------------------------------------------------------- batch normalisation
# The math as pure functions over arrays of shape (..., n_rows, width): statistics are taken
# over the row axis (-2) and every leading axis is independent (a fold-stacked network can
# pass (k, n_rows, width) values with (k, width) scale and shift). ``row_scale`` is what
# ``Network.compute_gradients`` gets: the scalar ``1 / n_rows`` or a column ``w / sum(w)`` of
# shape (..., n_rows, 1); it weights the batch statistics as it weights the loss.


def _column_sums(values: np.ndarray, row_scale=None) -> np.ndarray:
    """``sum_i row_scale_i * values_i`` over the row axis (-2), as a BLAS product.

    ``row_scale`` None means 1 for every row; a scalar is the same for every row.
    """
    if not isinstance(row_scale, np.ndarray) or row_scale.ndim == 0:
        sums = np.matmul(ones(values.shape[-2], values.dtype), values)
        if row_scale is not None:
            sums *= row_scale
        return sums
    return np.matmul(np.swapaxes(row_scale, -1, -2), values)[..., 0, :]


def _as_row(vector: np.ndarray) -> np.ndarray:
    """A (..., width) vector as (..., 1, width), to broadcast over the rows."""
    return vector if vector.ndim == 1 else vector[..., None, :]


def batch_norm_training(
    inputs: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    row_scale,
    epsilon: float,
    out: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise ``inputs`` with the statistics of the batch, then scale and shift.

    ``mean = sum_i s_i z_i``, ``variance = sum_i s_i (z_i - mean)**2`` (``s = row_scale``,
    summing to one over the rows, None meaning ``1 / n_rows``: the biased, weighted batch
    variance), ``x_hat = (z - mean) / sqrt(variance + epsilon)``,
    ``out = gamma * x_hat + beta``.

    ``inputs`` is overwritten with ``x_hat`` (the backward pass needs it). Returns
    ``(mean, variance, inverse_std)``, each of shape (..., width).
    """
    if row_scale is None:
        row_scale = 1.0 / inputs.shape[-2]
    mean = _column_sums(inputs, row_scale)
    inputs -= _as_row(mean)
    np.multiply(inputs, inputs, out=out)
    variance = _column_sums(out, row_scale)
    inverse_std = 1.0 / np.sqrt(variance + epsilon)
    inputs *= _as_row(inverse_std)
    np.multiply(inputs, _as_row(gamma), out=out)
    out += _as_row(beta)
    return mean, variance, inverse_std


def batch_norm_backward(
    grad: np.ndarray,
    normalized: np.ndarray,
    gamma: np.ndarray,
    inverse_std: np.ndarray,
    row_scale,
    gamma_grad: np.ndarray,
    beta_grad: np.ndarray,
    scratch: np.ndarray,
) -> np.ndarray:
    """Gradients of :func:`batch_norm_training`, in place in ``grad``.

    With ``g = dL/d out``: ``dbeta = sum_i g_i``, ``dgamma = sum_i g_i x_hat_i`` (written
    into ``beta_grad`` and ``gamma_grad``), and, with ``d = gamma * g``,
    ``dL/dz_i = inverse_std * (d_i - s_i sum_j d_j - s_i x_hat_i sum_j d_j x_hat_j)`` —
    the batch statistics depend on every row, hence the two sums. ``scratch`` is a buffer
    shaped like ``grad``.
    """
    if row_scale is None:
        row_scale = 1.0 / grad.shape[-2]
    beta_grad[...] = _column_sums(grad)
    np.multiply(grad, normalized, out=scratch)
    gamma_grad[...] = _column_sums(scratch)
    grad *= _as_row(gamma)
    shift = gamma * beta_grad  # sum_j d_j
    slope = gamma * gamma_grad  # sum_j d_j x_hat_j
    np.multiply(normalized, _as_row(slope), out=scratch)
    scratch += _as_row(shift)
    scratch *= row_scale
    grad -= scratch
    grad *= _as_row(inverse_std)
    return grad


def batch_norm_inference(
    inputs: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_variance: np.ndarray,
    epsilon: float,
) -> np.ndarray:
    """``gamma * (z - running_mean) / sqrt(running_variance + epsilon) + beta``, in place.

    Row by row: a row's output never depends on the other rows of its batch.
    """
    scale = gamma / np.sqrt(running_variance + epsilon)
    inputs *= _as_row(scale)
    inputs += _as_row(beta - running_mean * scale)
    return inputs


@dataclass
class BatchNorm:
    """Batch normalisation of a hidden Dense layer's output (its pre-activation).

    In training, each unit is normalised with the mean and variance of the mini-batch
    (weighted by the sample weights), then scaled by ``gamma`` and shifted by ``beta``
    (learnt, updated by the optimiser like weights); the running mean and variance are
    updated as ``running = momentum * running + (1 - momentum) * batch``. At inference the
    running statistics replace the batch's, so each row is transformed on its own.

    Parameters
    ----------
    width : int
        Number of units.
    momentum : float, default=0.9
        Weight of the old running statistics at each training step, in [0, 1).
    epsilon : float, default=1e-5
        Added to the variance before the square root.
    """

    width: int
    momentum: float = 0.9
    epsilon: float = 1e-5
    gamma: np.ndarray = field(init=False, repr=False)
    beta: np.ndarray = field(init=False, repr=False)
    gamma_grad: np.ndarray = field(init=False, repr=False)
    beta_grad: np.ndarray = field(init=False, repr=False)
    running_mean: np.ndarray = field(init=False, repr=False)
    running_variance: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigurationError(
                f"batch-norm momentum must be in [0, 1), got {self.momentum!r}"
            )
        if not self.epsilon > 0:
            raise ConfigurationError(f"batch-norm epsilon must be positive, got {self.epsilon!r}")

    @property
    def n_parameters(self) -> int:
        return 2 * self.width

    @property
    def n_statistics(self) -> int:
        return 2 * self.width

    def bind(self, parameters: np.ndarray, gradients: np.ndarray, statistics: np.ndarray) -> None:
        """Make ``gamma, beta``, their gradients and ``running_mean, running_variance`` views
        into flat slices (``[gamma, beta]``, ``[mean, variance]``)."""
        self.gamma, self.beta = parameters[: self.width], parameters[self.width :]
        self.gamma_grad, self.beta_grad = gradients[: self.width], gradients[self.width :]
        self.running_mean = statistics[: self.width]
        self.running_variance = statistics[self.width :]

    def initialize(self) -> None:
        """``gamma = 1``, ``beta = 0``; running mean 0 and variance 1."""
        self.gamma[...] = 1
        self.beta[...] = 0
        self.running_mean[...] = 0
        self.running_variance[...] = 1

    def forward(
        self, inputs: np.ndarray, out: np.ndarray, *, training: bool, row_scale=None
    ) -> np.ndarray:
        """Training: batch statistics, written to ``out`` (``inputs`` becomes ``x_hat``) and
        folded into the running statistics. Inference: running statistics, in place."""
        self._training = training
        if not training:
            return batch_norm_inference(
                inputs,
                self.gamma,
                self.beta,
                self.running_mean,
                self.running_variance,
                self.epsilon,
            )
        if row_scale is None:
            row_scale = 1.0 / inputs.shape[-2]  # rows are the second-to-last axis (stacks too)
        self._row_scale = row_scale
        mean, variance, self._inverse_std = batch_norm_training(
            inputs, self.gamma, self.beta, row_scale, self.epsilon, out
        )
        self.normalized = inputs
        keep = self.momentum
        self.running_mean *= keep
        self.running_mean += (1 - keep) * mean
        self.running_variance *= keep
        self.running_variance += (1 - keep) * variance
        return out

    def backward(self, grad: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """Store ``dgamma``, ``dbeta``; return ``dL/dinputs`` (in place in ``grad``)."""
        if not getattr(self, "_training", False):
            raise ConfigurationError("BatchNorm.backward needs a forward pass in training mode")
        return batch_norm_backward(
            grad,
            self.normalized,
            self.gamma,
            self._inverse_std,
            self._row_scale,
            self.gamma_grad,
            self.beta_grad,
            scratch,
        )
