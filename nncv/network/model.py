"""A stack of layers over one flat parameter vector: forward, backward, regularisation, state.

All weights and biases live in one contiguous vector ``network.parameters`` (and their
gradients in ``network.gradients``); each :class:`~nncv.network.layers.Dense` holds views into
it. Batch normalisation's ``gamma`` and ``beta`` extend that vector after the last Dense
layer (so the Dense part is laid out exactly as in a network without it), and its running
means and variances live in a second vector, ``network.running_statistics`` (empty without
batch normalisation), which the optimisers never touch. An optimiser step is therefore a few
vectorised operations on two arrays, and the network's whole state is those two vectors plus
a JSON-friendly :meth:`Network.get_config`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nncv.exceptions import ConfigurationError
from nncv.network.activations import ACTIVATIONS
from nncv.network.initializers import INITIALIZERS
from nncv.network.layers import Activation, BatchNorm, Dense, Dropout
from nncv.network.losses import LOSSES

__all__ = ["Network"]

PREDICT_CHUNK_ROWS = 4096
#: The first layer folds its bias into the matrix product (a column of ones appended to a
#: copy of the input) when its input is at most this many times wider than its output:
#: the copy then costs less than the bias addition and column sums it replaces.
STACKED_BIAS_MAX_WIDTH_RATIO = 2
_DENSE, _BATCH_NORM, _ACTIVATION, _DROPOUT = "dense", "batch_norm", "activation", "dropout"
#: Default momentum and epsilon of batch normalisation (PyTorch's: momentum 0.1 in its
#: convention, where the new batch gets weight 0.1).
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5


def _per_hidden_layer_flags(value: bool | Sequence[bool], n_hidden: int) -> list[bool]:
    """Broadcast a bool to every hidden layer, or check a sequence has one per hidden layer."""
    if np.ndim(value) == 0:
        return [bool(value)] * n_hidden
    flags = list(value)
    if len(flags) != n_hidden or not all(isinstance(f, bool | np.bool_) for f in flags):
        raise ConfigurationError(
            f"batch_norm must be a bool or one bool per hidden layer ({n_hidden}), got {value!r}"
        )
    return [bool(f) for f in flags]


def _per_layer(value: float | Sequence[float], n_layers: int, name: str) -> list[float]:
    """Broadcast a float to every layer, or check a sequence has one value per layer."""
    if np.ndim(value) == 0:
        return [float(value)] * n_layers
    values = [float(v) for v in value]
    if len(values) != n_layers:
        raise ConfigurationError(f"{name} has {len(values)} values but there are {n_layers} layers")
    return values


class Network:
    """A feed-forward network: Dense → (BatchNorm) → activation → (Dropout) … → Dense → loss.

    Parameters
    ----------
    n_inputs : int
        Number of input features.
    hidden_layer_sizes : sequence of int
        Width of each hidden layer (may be empty: a linear model).
    n_outputs : int
        Width of the output layer.
    activation : str, default="relu"
        Hidden activation, a key of :data:`~nncv.network.activations.ACTIVATIONS`.
    loss : str, default="softmax_cross_entropy"
        Output activation + loss, a key of :data:`~nncv.network.losses.LOSSES`.
    dropout : float or sequence of float, default=0
        Dropout rate after each hidden layer (one value for all, or one per hidden layer).
    init : str, default="glorot_uniform"
        Weight initialiser, a key of :data:`~nncv.network.initializers.INITIALIZERS`.
    weight_l1, weight_l2, bias_l1, bias_l2 : float or sequence of float, default=0
        Regularisation strengths per Dense layer (hidden layers, then output).
    dtype : numpy dtype, default=float32
        The one dtype of parameters, buffers and computations.
    batch_norm : bool or sequence of bool, default=False
        Batch-normalise the pre-activation of every hidden layer (or of those marked True):
        see :class:`~nncv.network.layers.BatchNorm`.
    batch_norm_momentum : float, default=0.9
        Weight of the old running mean and variance at each training step.
    batch_norm_epsilon : float, default=1e-5
        Added to the variance before its square root.

    Notes
    -----
    ``parameters`` holds, for each Dense layer in order, its weights (row-major) then its
    biases, and after the last Dense layer, for each batch-normalised hidden layer in order,
    its ``gamma`` then its ``beta``. ``running_statistics`` holds, for each batch-normalised
    layer in order, its running mean then its running variance. :meth:`parameter_layout`
    names every slice.

    Examples
    --------
    >>> import numpy as np
    >>> net = Network(2, [8], 3)
    >>> net.initialize(np.random.default_rng(0))
    >>> net.predict(np.zeros((4, 2), np.float32)).shape
    (4, 3)
    """

    def __init__(
        self,
        n_inputs: int,
        hidden_layer_sizes: Sequence[int],
        n_outputs: int,
        *,
        activation: str = "relu",
        loss: str = "softmax_cross_entropy",
        dropout: float | Sequence[float] = 0.0,
        init: str = "glorot_uniform",
        weight_l1: float | Sequence[float] = 0.0,
        weight_l2: float | Sequence[float] = 0.0,
        bias_l1: float | Sequence[float] = 0.0,
        bias_l2: float | Sequence[float] = 0.0,
        dtype: Any = np.float32,
        batch_norm: bool | Sequence[bool] = False,
        batch_norm_momentum: float = BATCH_NORM_MOMENTUM,
        batch_norm_epsilon: float = BATCH_NORM_EPSILON,
    ) -> None:
        for key, table, what in (
            (activation, ACTIVATIONS, "activation"),
            (loss, LOSSES, "loss"),
            (init, INITIALIZERS, "init"),
        ):
            if key not in table:
                raise ConfigurationError(f"unknown {what} {key!r}; choose one of {sorted(table)}")
        self.n_inputs = int(n_inputs)
        self.hidden_layer_sizes = [int(h) for h in hidden_layer_sizes]
        self.n_outputs = int(n_outputs)
        self.activation = activation
        self.loss_name = loss
        self.loss = LOSSES[loss]
        self.init = init
        self.dtype = np.dtype(dtype)
        n_dense = len(self.hidden_layer_sizes) + 1
        self.dropout = _per_layer(dropout, n_dense - 1, "dropout")
        for rate in self.dropout:
            if not 0.0 <= rate < 1.0:
                raise ConfigurationError(f"dropout rate must be in [0, 1), got {rate!r}")
        self.weight_l1 = _per_layer(weight_l1, n_dense, "weight_l1")
        self.weight_l2 = _per_layer(weight_l2, n_dense, "weight_l2")
        self.bias_l1 = _per_layer(bias_l1, n_dense, "bias_l1")
        self.bias_l2 = _per_layer(bias_l2, n_dense, "bias_l2")
        self.batch_norm = _per_hidden_layer_flags(batch_norm, n_dense - 1)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)

        widths = [self.n_inputs, *self.hidden_layer_sizes, self.n_outputs]
        self.layers: list[Dense | BatchNorm | Activation | Dropout] = []
        self.dense_layers: list[Dense] = []
        self.batch_norm_layers: list[BatchNorm] = []
        for index in range(n_dense):
            dense = Dense(
                widths[index],
                widths[index + 1],
                weight_l1=self.weight_l1[index],
                weight_l2=self.weight_l2[index],
                bias_l1=self.bias_l1[index],
                bias_l2=self.bias_l2[index],
                init=init,
            )
            self.layers.append(dense)
            self.dense_layers.append(dense)
            if index < n_dense - 1:
                if self.batch_norm[index]:
                    batch_norm_layer = BatchNorm(
                        widths[index + 1], self.batch_norm_momentum, self.batch_norm_epsilon
                    )
                    self.layers.append(batch_norm_layer)
                    self.batch_norm_layers.append(batch_norm_layer)
                self.layers.append(Activation(activation))
                if self.dropout[index] > 0:
                    self.layers.append(Dropout(self.dropout[index]))

        trained = [*self.dense_layers, *self.batch_norm_layers]
        total = sum(layer.n_parameters for layer in trained)
        self.parameters = np.zeros(total, dtype=self.dtype)
        self.gradients = np.zeros(total, dtype=self.dtype)
        n_statistics = sum(layer.n_statistics for layer in self.batch_norm_layers)
        self.running_statistics = np.zeros(n_statistics, dtype=self.dtype)
        self._l1, self._l2 = self._regularisation_vectors()
        # 2 * l2 is exact: the gradient 2 * l2 * w costs one multiplication per parameter.
        self._twice_l2 = None if self._l2 is None else self._l2 * 2
        offset = statistics_offset = 0
        for layer in trained:
            end = offset + layer.n_parameters
            if isinstance(layer, Dense):
                layer.bind(self.parameters[offset:end], self.gradients[offset:end])
            else:
                statistics_end = statistics_offset + layer.n_statistics
                statistics = self.running_statistics[statistics_offset:statistics_end]
                layer.bind(self.parameters[offset:end], self.gradients[offset:end], statistics)
                layer.initialize()
                statistics_offset = statistics_end
            offset = end
        self._capacity = 0
        self._plan: list[tuple[str, Any, np.ndarray | None, np.ndarray | None]] = []
        self._augmented: np.ndarray | None = None
        self._dropout_active = False

    # ------------------------------------------------------------------ set-up
    def _regularisation_vectors(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Per-parameter L1 and L2 strengths as flat vectors (None when all zero)."""
        l1_parts, l2_parts = [], []
        for dense in self.dense_layers:
            n_weights = dense.n_inputs * dense.n_outputs
            l1_parts += [
                np.full(n_weights, dense.weight_l1),
                np.full(dense.n_outputs, dense.bias_l1),
            ]
            l2_parts += [
                np.full(n_weights, dense.weight_l2),
                np.full(dense.n_outputs, dense.bias_l2),
            ]
        n_unregularised = sum(b.n_parameters for b in self.batch_norm_layers)  # gamma, beta
        l1 = np.concatenate([*l1_parts, np.zeros(n_unregularised)]).astype(self.dtype)
        l2 = np.concatenate([*l2_parts, np.zeros(n_unregularised)]).astype(self.dtype)
        self._scratch = np.empty_like(self.parameters)
        return (l1 if l1.any() else None), (l2 if l2.any() else None)

    def initialize(self, rng: np.random.Generator) -> None:
        """Draw fresh weights (biases to zero) from ``rng``; batch norm to the identity
        (``gamma = 1``, ``beta = 0``, running mean 0 and variance 1)."""
        for dense in self.dense_layers:
            dense.initialize(rng)
        for batch_norm in self.batch_norm_layers:
            batch_norm.initialize()

    def _reserve(self, n_rows: int) -> None:
        """Make sure activation and gradient buffers hold at least ``n_rows`` rows, and lay
        out the per-layer plan ``(kind, layer, buffer, second buffer)`` the passes loop over."""
        if n_rows <= self._capacity:
            return
        self._plan = []
        width = self.n_inputs
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                width = layer.n_outputs
                out = np.empty((n_rows, layer.n_outputs), self.dtype)
                input_grad = np.empty((n_rows, layer.n_inputs), self.dtype) if index else None
                self._plan.append((_DENSE, layer, out, input_grad))
            elif isinstance(layer, BatchNorm):
                # its output in training, scratch space in the backward pass
                self._plan.append((_BATCH_NORM, layer, np.empty((n_rows, width), self.dtype), None))
            elif isinstance(layer, Activation):
                self._plan.append((_ACTIVATION, layer, None, None))
            else:
                out = np.empty((n_rows, width), self.dtype)
                mask = np.empty((n_rows, width), self.dtype)
                self._plan.append((_DROPOUT, layer, out, mask))
        first = self.dense_layers[0]
        self._augmented = None
        if first.n_inputs <= STACKED_BIAS_MAX_WIDTH_RATIO * first.n_outputs:
            self._augmented = np.empty((n_rows, first.n_inputs + 1), self.dtype)
            self._augmented[:, -1] = 1
        self._capacity = n_rows

    def release_buffers(self) -> None:
        """Free the activation buffers (they come back on the next pass)."""
        self._plan = []
        self._augmented = None
        self._capacity = 0
        for layer in self.layers:
            for name in ("inputs", "outputs", "mask", "normalized", "_row_scale", "_inverse_std"):
                layer.__dict__.pop(name, None)

    # ------------------------------------------------------------ computation
    def forward(
        self,
        inputs,
        *,
        training: bool = False,
        rng: np.random.Generator | None = None,
        row_scale=None,
    ):
        """Output-layer activations (probabilities or predictions) for ``inputs``.

        The result is a view into a buffer the next call overwrites; copy it to keep it.
        With ``training=True``, dropout masks are drawn from ``rng``, and batch
        normalisation uses the batch's statistics weighted by ``row_scale`` (``1 / n_rows``
        when None, else a column ``w / sum(w)``) and updates its running statistics;
        otherwise it uses the running statistics.
        """
        n_rows = inputs.shape[0]
        self._reserve(n_rows)
        augmented = None
        if self._augmented is not None and isinstance(inputs, np.ndarray):
            augmented = self._augmented[:n_rows]  # the first layer copies (and casts) into it
        elif inputs.dtype != self.dtype:
            inputs = inputs.astype(self.dtype)  # CSR stays CSR
        self._dropout_active = training
        values = inputs
        for kind, layer, buffer, extra in self._plan:
            if kind is _DENSE:
                values = layer.forward(values, buffer[:n_rows], augmented)
                augmented = None
            elif kind is _BATCH_NORM:
                values = layer.forward(
                    values, buffer[:n_rows], training=training, row_scale=row_scale
                )
            elif kind is _ACTIVATION:
                values = layer.forward(values)
            elif training:
                if rng is None:
                    raise ConfigurationError("training with dropout needs a random generator")
                values = layer.forward(values, buffer[:n_rows], extra[:n_rows], rng)
        return self.loss.output(values)

    def backward(self, output_grad: np.ndarray) -> None:
        """Back-propagate the gradient with respect to the logits into ``self.gradients``
        (data part only; see :meth:`add_regularisation_gradient`)."""
        n_rows = output_grad.shape[0]
        grad = output_grad
        for kind, layer, buffer, extra in reversed(self._plan):
            if kind is _DENSE:
                grad = layer.backward(grad, None if extra is None else extra[:n_rows])
            elif kind is _BATCH_NORM:
                grad = layer.backward(grad, buffer[:n_rows])
            elif kind is _ACTIVATION or self._dropout_active:
                grad = layer.backward(grad)

    def regularisation_loss(self) -> float:
        """``sum(l1 * |p|) + sum(l2 * p**2)`` over every weight and bias."""
        total = 0.0
        if self._l1 is not None:
            total += float(np.dot(self._l1, np.abs(self.parameters)))
        if self._l2 is not None:
            total += float(np.dot(self._l2, self.parameters * self.parameters))
        return total

    def add_regularisation_gradient(self) -> None:
        """Add ``l1 * sign(p)`` (NNFS: +1 at zero) and ``2 * l2 * p`` to the gradients."""
        add_regularisation_gradient(
            self.parameters, self.gradients, self._scratch, self._l1, self._twice_l2
        )

    def compute_gradients(
        self, inputs, targets: np.ndarray, scale, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Forward, loss and backward for one batch; return the per-sample data losses.

        ``scale`` is ``1 / n_rows`` or a column ``w / sum(w)``: the weight of each sample
        in the batch loss. Regularisation gradients are added too.
        """
        outputs = self.forward(inputs, training=True, rng=rng, row_scale=scale)
        losses = self.loss.per_sample(outputs, targets)
        self.backward(self.loss.gradient(outputs, targets, scale))
        self.add_regularisation_gradient()
        return losses

    def predict(self, inputs) -> np.ndarray:
        """Outputs for ``inputs`` at inference (dropout off), in chunks; a new array."""
        n_rows = inputs.shape[0]
        result = np.empty((n_rows, self.n_outputs), dtype=self.dtype)
        for start in range(0, n_rows, PREDICT_CHUNK_ROWS):
            stop = min(start + PREDICT_CHUNK_ROWS, n_rows)
            result[start:stop] = self.forward(inputs[start:stop])
        return result

    # ------------------------------------------------------------------ state
    def get_config(self) -> dict[str, Any]:
        """Everything needed to rebuild the architecture, as JSON-friendly values."""
        return {
            "n_inputs": self.n_inputs,
            "hidden_layer_sizes": list(self.hidden_layer_sizes),
            "n_outputs": self.n_outputs,
            "activation": self.activation,
            "loss": self.loss_name,
            "dropout": list(self.dropout),
            "init": self.init,
            "weight_l1": list(self.weight_l1),
            "weight_l2": list(self.weight_l2),
            "bias_l1": list(self.bias_l1),
            "bias_l2": list(self.bias_l2),
            "dtype": self.dtype.name,
            "batch_norm": list(self.batch_norm),
            "batch_norm_momentum": self.batch_norm_momentum,
            "batch_norm_epsilon": self.batch_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Network:
        """Rebuild an (uninitialised) network from :meth:`get_config` (a configuration
        without the batch-norm keys, as written before they existed, means none)."""
        return cls(**config)

    def __getstate__(self) -> dict[str, Any]:
        # Layers hold views into the flat vectors; pickle the description, rebuild the views.
        return {
            "config": self.get_config(),
            "parameters": self.parameters.copy(),
            "running_statistics": self.running_statistics.copy(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])
        self.set_parameters(state["parameters"])
        self.set_running_statistics(state.get("running_statistics", self.running_statistics))

    def parameter_layout(self) -> list[tuple[str, slice, tuple[int, ...]]]:
        """Name, slice of :attr:`parameters` and shape of every parameter array, in order.

        Names are ``dense_<i>.weights``, ``dense_<i>.biases`` (``i`` counts Dense layers,
        the output layer last) and ``batch_norm_<i>.gamma``, ``batch_norm_<i>.beta`` (``i``
        is the hidden layer normalised).

        Examples
        --------
        >>> net = Network(2, [3], 1, batch_norm=True)
        >>> [name for name, _, _ in net.parameter_layout()][-2:]
        ['batch_norm_0.gamma', 'batch_norm_0.beta']
        """
        layout = []
        offset = 0
        for index, dense in enumerate(self.dense_layers):
            n_weights = dense.n_inputs * dense.n_outputs
            layout.append(
                (
                    f"dense_{index}.weights",
                    slice(offset, offset + n_weights),
                    (dense.n_inputs, dense.n_outputs),
                )
            )
            offset += n_weights
            layout.append(
                (
                    f"dense_{index}.biases",
                    slice(offset, offset + dense.n_outputs),
                    (dense.n_outputs,),
                )
            )
            offset += dense.n_outputs
        normalised = [index for index, flag in enumerate(self.batch_norm) if flag]
        for index, layer in zip(normalised, self.batch_norm_layers, strict=True):
            for name in ("gamma", "beta"):
                layout.append(
                    (
                        f"batch_norm_{index}.{name}",
                        slice(offset, offset + layer.width),
                        (layer.width,),
                    )
                )
                offset += layer.width
        return layout

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """``(n_inputs, n_outputs)`` of each Dense layer."""
        return [(d.n_inputs, d.n_outputs) for d in self.dense_layers]

    def set_parameters(self, parameters: np.ndarray) -> None:
        """Copy a flat parameter vector (as in :attr:`parameters`) into the network."""
        parameters = np.asarray(parameters)
        if parameters.shape != self.parameters.shape:
            raise ConfigurationError(
                f"parameter vector has shape {parameters.shape}, the network needs "
                f"{self.parameters.shape}"
            )
        np.copyto(self.parameters, parameters, casting="same_kind")

    def set_running_statistics(self, statistics: np.ndarray) -> None:
        """Copy a flat vector (as in :attr:`running_statistics`) into the batch-norm layers."""
        statistics = np.asarray(statistics)
        if statistics.shape != self.running_statistics.shape:
            raise ConfigurationError(
                f"running-statistics vector has shape {statistics.shape}, the network needs "
                f"{self.running_statistics.shape}"
            )
        np.copyto(self.running_statistics, statistics, casting="same_kind")


def add_regularisation_gradient(
    parameters: np.ndarray,
    gradients: np.ndarray,
    scratch: np.ndarray,
    l1: np.ndarray | None,
    twice_l2: np.ndarray | None,
) -> None:
    """``gradients += l1 * sign(parameters) + twice_l2 * parameters`` in place (NNFS's sign:
    +1 at zero; ``twice_l2`` is ``2 * l2``, so the L2 term is ``2 * l2 * w`` bit for bit),
    for one network's flat vectors or a stack's ``[k, n_parameters]`` arrays;
    ``l1``/``twice_l2`` are None where no parameter is penalised."""
    if l1 is not None:
        np.greater_equal(parameters, 0, out=scratch)
        scratch *= 2
        scratch -= 1
        scratch *= l1
        gradients += scratch
    if twice_l2 is not None:
        np.multiply(parameters, twice_l2, out=scratch)
        gradients += scratch
