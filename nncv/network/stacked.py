"""k networks of one architecture as one stack: weights ``[k, n_in, n_out]``, one pass for all.

:class:`StackedNetwork` holds the flat parameter vectors of ``k`` networks of the same
configuration as the rows of one ``(k, n_parameters)`` array, in exactly the layout of
:attr:`nncv.network.model.Network.parameters`: row ``f`` *is* network ``f``'s vector. Each
Dense layer is a strided view ``[k, n_in, n_out]`` into it, the forward and backward passes
are ``np.matmul`` over the fold axis and element-wise work over the whole stack, so the
per-batch cost of Python and NumPy calls is paid once for ``k`` networks (the k folds of
one configuration in cross-validation). Activations, losses, dropout, batch normalisation
and regularisation reuse the single network's functions and tables; each network draws its
dropout masks from its own generator, exactly as it would alone. Batch normalisation takes
each network's statistics over its own rows only (the leading fold axis of the pure
functions in :mod:`nncv.network.layers` is independent), and the networks' running
statistics are the rows of a ``(k, n_statistics)`` array laid out as
:attr:`nncv.network.model.Network.running_statistics`.

:class:`StackedOptimizer` applies one optimiser's update rule to the whole stack, with each
network's own step count (and so its own learning rate and Adam bias corrections).

Both are the machinery of :class:`nncv.network.stacked_training.StackedTrainer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from nncv.exceptions import ConfigurationError
from nncv.network._constants import ones
from nncv.network.activations import ACTIVATIONS, DERIVATIVES
from nncv.network.layers import (
    Activation,
    BatchNorm,
    Dense,
    Dropout,
)
from nncv.network.model import (
    PREDICT_CHUNK_ROWS,
    STACKED_BIAS_MAX_WIDTH_RATIO,
    Network,
    add_regularisation_gradient,
)
from nncv.network.optimizers import Adam, Optimizer

__all__ = ["StackedNetwork", "StackedOptimizer"]

_DENSE, _BATCH_NORM, _ACTIVATION, _DROPOUT = "dense", "batch_norm", "activation", "dropout"


class _StackedDense:
    """Views of one Dense layer over the stacked parameter and gradient arrays."""

    def __init__(self, dense: Dense, offset: int, parameters: np.ndarray, gradients: np.ndarray):
        n_in, n_out = dense.n_inputs, dense.n_outputs
        n_stack = parameters.shape[0]
        end = offset + dense.n_parameters
        n_weights = n_in * n_out
        self.n_inputs, self.n_outputs = n_in, n_out
        block, grad_block = parameters[:, offset:end], gradients[:, offset:end]
        self.weights = block[:, :n_weights].reshape(n_stack, n_in, n_out)
        self.biases = block[:, n_weights:]
        self.weight_grad = grad_block[:, :n_weights].reshape(n_stack, n_in, n_out)
        self.bias_grad = grad_block[:, n_weights:]
        self.stacked = block.reshape(n_stack, n_in + 1, n_out)
        self.stacked_grad = grad_block.reshape(n_stack, n_in + 1, n_out)

    def forward(self, inputs, out: np.ndarray, augmented: np.ndarray | None) -> np.ndarray:
        """``inputs @ W + b`` for every network: ``inputs`` is ``[k, n, n_in]`` or a list of
        ``k`` CSR matrices (then one sparse product per network)."""
        self._sparse_inputs = isinstance(inputs, list)
        self._stacked_inputs = augmented is not None and not self._sparse_inputs
        if self._stacked_inputs:
            if augmented is not inputs:  # else the caller's rows already end in a 1
                np.copyto(augmented[..., :-1], inputs, casting="unsafe")
            self.inputs = augmented
            return np.matmul(augmented, self.stacked, out=out)
        self.inputs = inputs
        if self._sparse_inputs:
            for index, matrix in enumerate(inputs):
                out[index] = matrix @ self.weights[index]
        else:
            np.matmul(inputs, self.weights, out=out)
        out += self.biases[:, None, :]
        return out

    def backward(self, grad: np.ndarray, input_grad: np.ndarray | None) -> np.ndarray | None:
        """Store every network's ``dW`` and ``db``; return ``grad @ W.T`` (or None)."""
        if self._stacked_inputs:
            np.matmul(self.inputs.transpose(0, 2, 1), grad, out=self.stacked_grad)
        else:
            if self._sparse_inputs:
                for index, matrix in enumerate(self.inputs):
                    self.weight_grad[index] = matrix.T @ grad[index]
            else:
                np.matmul(self.inputs.transpose(0, 2, 1), grad, out=self.weight_grad)
            np.matmul(ones(grad.shape[1], grad.dtype), grad, out=self.bias_grad)
        if input_grad is None:
            return None
        return np.matmul(grad, self.weights.transpose(0, 2, 1), out=input_grad)


class _StackedBatchNorm(BatchNorm):
    """Views of one BatchNorm layer over the stacked parameter, gradient and running-statistics
    arrays: ``gamma``, ``beta``, their gradients and the running mean and variance are
    ``(n_stack, width)``, row ``f`` being network ``f``'s. Forward and backward are
    :class:`BatchNorm`'s: its statistics are over the row axis of ``[k, n, width]`` inputs,
    each network's own."""

    def __init__(
        self,
        batch_norm: BatchNorm,
        offset: int,
        statistics_offset: int,
        parameters: np.ndarray,
        gradients: np.ndarray,
        statistics: np.ndarray,
    ):
        width = batch_norm.width
        self.width = width
        self.momentum, self.epsilon = batch_norm.momentum, batch_norm.epsilon
        middle, end = offset + width, offset + 2 * width
        self.gamma, self.beta = parameters[:, offset:middle], parameters[:, middle:end]
        self.gamma_grad, self.beta_grad = gradients[:, offset:middle], gradients[:, middle:end]
        middle, end = statistics_offset + width, statistics_offset + 2 * width
        self.running_mean = statistics[:, statistics_offset:middle]
        self.running_variance = statistics[:, middle:end]


class StackedNetwork:
    """``n_stack`` networks with the configuration of ``template``, trained as one stack.

    Parameters
    ----------
    template : Network
        Gives the architecture, dtype and regularisation (its own parameters are not used).
    n_stack : int
        Number of networks in the stack.

    Attributes
    ----------
    parameters, gradients : ndarray of shape (n_stack, n_parameters)
        Row ``f`` is network ``f``'s flat vector, laid out as ``Network.parameters``
        (batch norm's ``gamma`` and ``beta`` after the Dense layers, as there).
    running_statistics : ndarray of shape (n_stack, n_statistics)
        Row ``f`` is network ``f``'s batch-norm running mean and variance, laid out as
        ``Network.running_statistics`` (no columns without batch norm). Training steps
        update each row from its own network's batches; inference uses them.

    Examples
    --------
    >>> import numpy as np
    >>> template = Network(2, [8], 3, dtype=np.float64)
    >>> stack = StackedNetwork(template, 4)
    >>> stack.parameters.shape
    (4, 51)
    >>> stack.forward(np.zeros((4, 5, 2))).shape
    (4, 5, 3)
    >>> StackedNetwork(Network(2, [8], 3, batch_norm=True), 4).running_statistics.shape
    (4, 16)
    """

    def __init__(self, template: Network, n_stack: int) -> None:
        self.template = template
        self.n_stack = int(n_stack)
        self.dtype = template.dtype
        self.loss = template.loss
        n_parameters = template.parameters.size
        self.parameters = np.zeros((self.n_stack, n_parameters), self.dtype)
        self.gradients = np.zeros((self.n_stack, n_parameters), self.dtype)
        self.running_statistics = np.zeros(
            (self.n_stack, template.running_statistics.size), self.dtype
        )
        self._scratch = np.empty_like(self.parameters)
        self._l1, self._twice_l2 = template._l1, template._twice_l2
        self._layers: list[tuple[str, Any]] = []
        offset = 0
        # gamma and beta follow every Dense layer's parameters, as in Network.parameters
        batch_norm_offset = sum(dense.n_parameters for dense in template.dense_layers)
        statistics_offset = 0
        for layer in template.layers:
            if isinstance(layer, Dense):
                self._layers.append(
                    (_DENSE, _StackedDense(layer, offset, self.parameters, self.gradients))
                )
                offset += layer.n_parameters
            elif isinstance(layer, BatchNorm):
                stacked = _StackedBatchNorm(
                    layer,
                    batch_norm_offset,
                    statistics_offset,
                    self.parameters,
                    self.gradients,
                    self.running_statistics,
                )
                self._layers.append((_BATCH_NORM, stacked))
                batch_norm_offset += layer.n_parameters
                statistics_offset += layer.n_statistics
            elif isinstance(layer, Activation):
                self._layers.append((_ACTIVATION, layer.name))
            elif isinstance(layer, Dropout):
                self._layers.append((_DROPOUT, layer.rate))
            else:  # pragma: no cover - a layer kind added to Network but not here
                raise ConfigurationError(f"a stack cannot hold {type(layer).__name__} layers")
        first = template.dense_layers[0]
        self._augment = first.n_inputs <= STACKED_BIAS_MAX_WIDTH_RATIO * first.n_outputs
        self._views: dict[int, list] = {}
        self._flat: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ buffers
    def _buffer(self, name: str, n_rows: int, width: int) -> np.ndarray:
        """A contiguous ``(n_stack, n_rows, width)`` view of a flat buffer grown on demand."""
        size = self.n_stack * n_rows * width
        flat = self._flat.get(name)
        if flat is None or flat.size < size:
            flat = np.empty(size, self.dtype)
            self._flat[name] = flat
        return flat[:size].reshape(self.n_stack, n_rows, width)

    def _plan(self, n_rows: int) -> list:
        """Per layer ``(kind, layer, out buffer, extra buffer)`` for batches of ``n_rows``."""
        plan = self._views.get(n_rows)
        if plan is not None:
            return plan
        plan = []
        width = self.template.n_inputs
        for index, (kind, layer) in enumerate(self._layers):
            if kind is _DENSE:
                out = self._buffer(f"out{index}", n_rows, layer.n_outputs)
                input_grad = self._buffer(f"grad{index}", n_rows, layer.n_inputs) if index else None
                plan.append((kind, layer, out, input_grad))
                width = layer.n_outputs
            elif kind is _BATCH_NORM:  # its training output; scratch space in backward
                plan.append((kind, layer, self._buffer(f"out{index}", n_rows, width), None))
            elif kind is _ACTIVATION:
                # in place on the previous layer's output (Dense, or batch norm in training):
                # the backward pass takes the derivative from that buffer
                plan.append((kind, layer, plan[-1][2], None))
            else:
                out = self._buffer(f"out{index}", n_rows, width)
                mask = self._buffer(f"mask{index}", n_rows, width)
                plan.append((kind, layer, out, mask))
        augmented = None
        if self._augment:
            augmented = self._buffer("augmented", n_rows, self.template.n_inputs + 1)
            augmented[..., -1] = 1
        plan.append(augmented)
        self._views[n_rows] = plan
        return plan

    # ------------------------------------------------------------- computation
    def forward(
        self,
        inputs,
        *,
        training: bool = False,
        rngs: Sequence[np.random.Generator] | None = None,
        row_scale=None,
        activate_output: bool = True,
        augmented: bool = False,
    ) -> np.ndarray:
        """Output activations ``[n_stack, n_rows, n_outputs]`` (a view the next call reuses).

        ``inputs`` is ``[n_stack, n_rows, n_inputs]`` in the network's dtype, or a list of
        ``n_stack`` CSR matrices with ``n_rows`` rows each. With ``training=True``, network
        ``f`` draws its dropout masks from ``rngs[f]``, layer by layer, as it would alone,
        and batch normalisation uses each network's batch statistics, weighted by
        ``row_scale`` (``1 / n_rows`` when None, else ``[n_stack, n_rows, 1]`` of
        ``w / sum(w)`` per network), and updates its row of :attr:`running_statistics`;
        otherwise it uses the running statistics. With ``activate_output=False`` the
        output layer's pre-activations (logits) are returned, for the caller to apply
        ``loss.output`` network by network. With ``augmented=True`` (only when
        :attr:`augments_inputs`), ``inputs`` is ``[n_stack, n_rows, n_inputs + 1]`` whose
        last column is all ones: the first layer's product takes it as it is, instead of
        copying the rows beside a column of ones itself.
        """
        n_rows = inputs[0].shape[0] if isinstance(inputs, list) else inputs.shape[1]
        *plan, ones_column = self._plan(n_rows)
        if isinstance(inputs, list):
            ones_column = None
        elif augmented:
            if not self._augment or inputs.shape[2] != self.template.n_inputs + 1:
                raise ConfigurationError(
                    f"augmented inputs must be [n_stack, n_rows, {self.template.n_inputs + 1}]"
                    " for a stack whose first layer folds its bias into the product"
                )
            ones_column = inputs
        self._dropout_active = training
        values = inputs
        for kind, layer, buffer, extra in plan:
            if kind is _DENSE:
                values = layer.forward(values, buffer, ones_column)  # the first layer's only
                ones_column = None
            elif kind is _BATCH_NORM:
                values = layer.forward(values, buffer, training=training, row_scale=row_scale)
            elif kind is _ACTIVATION:
                values = ACTIVATIONS[layer](values)  # in place on the Dense layer's buffer
            elif training:
                if rngs is None:
                    raise ConfigurationError("training with dropout needs random generators")
                values = self._dropout(layer, values, buffer, extra, rngs)
        if not activate_output:
            return values
        logits = values.reshape(-1, values.shape[2])
        self.loss.output(logits)
        return values

    @staticmethod
    def _dropout(rate: float, inputs, out, mask, rngs) -> np.ndarray:
        """:class:`~nncv.network.layers.Dropout` over the stack, one generator per network."""
        keep = 1.0 - rate
        for index, rng in enumerate(rngs):
            rng.random(out=mask[index], dtype=mask.dtype)
        np.less(mask, keep, out=mask)
        mask *= 1.0 / keep
        return np.multiply(inputs, mask, out=out)

    def backward(self, output_grad: np.ndarray) -> None:
        """Back-propagate ``[n_stack, n_rows, n_outputs]`` logit gradients into
        :attr:`gradients` (data part only)."""
        n_rows = output_grad.shape[1]
        *plan, _ = self._plan(n_rows)
        grad = output_grad
        for kind, layer, buffer, extra in reversed(plan):
            if kind is _DENSE:
                grad = layer.backward(grad, extra)
            elif kind is _BATCH_NORM:
                grad = layer.backward(grad, buffer)
            elif kind is _ACTIVATION:
                grad = DERIVATIVES[layer](buffer, grad)
            elif self._dropout_active:
                grad *= extra

    def add_regularisation_gradient(self) -> None:
        """:meth:`Network.add_regularisation_gradient` for every network at once."""
        add_regularisation_gradient(
            self.parameters, self.gradients, self._scratch, self._l1, self._twice_l2
        )

    @property
    def augments_inputs(self) -> bool:
        """Whether the first layer folds its bias into its product (a column of ones beside
        the inputs): then :meth:`forward` and :meth:`compute_gradients` take inputs that
        already end in that column (``augmented=True``) without copying them."""
        return self._augment

    def compute_gradients(
        self,
        inputs,
        targets: np.ndarray,
        scale,
        rngs: Sequence[np.random.Generator] | None,
        augmented: bool = False,
    ) -> np.ndarray:
        """Forward, loss and backward for one batch per network; the per-sample data losses
        as ``[n_stack, n_rows]``.

        ``targets`` is ``[n_stack, n_rows, n_outputs]``; ``scale`` is ``1 / n_rows`` (a float) or
        ``[n_stack, n_rows, 1]`` of ``w / sum(w)`` per network (as in
        :meth:`Network.compute_gradients`); it weights each network's batch-norm statistics
        as it weights its loss. ``augmented``: as in :meth:`forward`.
        """
        outputs = self.forward(
            inputs, training=True, rngs=rngs, row_scale=scale, augmented=augmented
        )
        n_stack, n_rows, n_outputs = outputs.shape
        flat_outputs = outputs.reshape(-1, n_outputs)
        flat_targets = targets.reshape(-1, n_outputs)
        losses = self.loss.per_sample(flat_outputs, flat_targets)
        flat_scale = scale if type(scale) is float else scale.reshape(-1, 1)
        self.loss.gradient(flat_outputs, flat_targets, flat_scale)
        self.backward(outputs)
        self.add_regularisation_gradient()
        return losses.reshape(n_stack, n_rows)

    def load_networks(self, networks: Sequence[Network]) -> None:
        """Copy ``networks[f]``'s parameters and batch-norm running statistics into row ``f``
        (what a fold ensemble does before :meth:`predict`).

        Raises
        ------
        ConfigurationError
            When the number of networks or their configuration is not the stack's.
        """
        if len(networks) != self.n_stack:
            raise ConfigurationError(
                f"the stack holds {self.n_stack} networks, got {len(networks)}"
            )
        config = self.template.get_config()
        for row, network in enumerate(networks):
            if network.get_config() != config:
                raise ConfigurationError(f"network {row}'s configuration differs from the stack's")
            self.parameters[row] = network.parameters
            self.running_statistics[row] = network.running_statistics

    def predict(self, inputs) -> np.ndarray:
        """Every network's outputs for the same ``inputs`` (dropout off), as a new
        ``[n_stack, n_rows, n_outputs]`` array: ``result[f]`` equals network ``f``'s
        :meth:`Network.predict`, computed in its chunks of
        :data:`~nncv.network.model.PREDICT_CHUNK_ROWS` rows (a fold ensemble's one pass).

        ``inputs`` is an ``(n_rows, n_inputs)`` array or a CSR matrix, in any float dtype.
        """
        n_rows = inputs.shape[0]
        sparse = type(inputs) is not np.ndarray and sp.issparse(inputs)
        if inputs.dtype != self.dtype:
            inputs = inputs.astype(self.dtype)
        result = np.empty((self.n_stack, n_rows, self.template.n_outputs), self.dtype)
        for start in range(0, n_rows, PREDICT_CHUNK_ROWS):
            stop = min(start + PREDICT_CHUNK_ROWS, n_rows)
            chunk = inputs[start:stop]
            if sparse:
                stacked = [chunk] * self.n_stack
            else:
                stacked = np.broadcast_to(chunk, (self.n_stack, *chunk.shape))
            result[:, start:stop] = self.forward(stacked)
        return result


class StackedOptimizer:
    """One optimiser's update rule over a stack of flat parameter vectors.

    Parameters
    ----------
    template : Optimizer
        Gives the rule and its hyperparameters (its own state is not used).
    shape : tuple of int
        ``(n_stack, n_parameters)``.
    dtype : numpy dtype

    Attributes
    ----------
    iterations : ndarray of int64, shape (n_stack,)
        Steps taken by each network.
    state : dict of str to ndarray of shape (n_stack, n_parameters)
        The optimiser's per-parameter state (moments, caches), one row per network.
    """

    def __init__(self, template: Optimizer, shape: tuple[int, int], dtype) -> None:
        self.template = template
        self.iterations = np.zeros(shape[0], np.int64)
        self.state = {slot: np.zeros(shape, dtype) for slot in template._slots}
        self._scratch = np.empty(shape, dtype)
        self.dtype = np.dtype(dtype)
        self._common: int | None | bool = 0

    def common_step(self) -> int | None:
        """The step count every network shares, or None when they differ."""
        if self._common is False:
            first = int(self.iterations[0])
            self._common = first if (self.iterations == first).all() else None
        return self._common

    def iterations_changed(self) -> None:
        """Call after writing :attr:`iterations` from outside."""
        self._common = False

    def update(
        self, parameters: np.ndarray, gradients: np.ndarray, learning_rates: list[float]
    ) -> None:
        """One step for every network; ``learning_rates[f]`` is network ``f``'s rate."""
        template = self.template
        common = self.common_step()
        if common is not None and learning_rates.count(learning_rates[0]) == len(learning_rates):
            # Python floats, exactly as for a network trained alone.
            template.iterations = common
            template._step(parameters, gradients, learning_rates[0], self._scratch, **self.state)
        elif isinstance(template, Adam):
            pairs = [
                template.coefficients(rate, int(step) + 1)
                for rate, step in zip(learning_rates, self.iterations, strict=True)
            ]
            rate, epsilon = (self._column(values) for values in zip(*pairs, strict=True))
            template._apply(parameters, gradients, rate, epsilon, self._scratch, **self.state)
        else:
            rate = self._column(learning_rates)
            template._step(parameters, gradients, rate, self._scratch, **self.state)
        self.iterations += 1
        if common is not None:
            self._common = common + 1

    def _column(self, values: Sequence[float]) -> np.ndarray:
        # Cast to the parameters' dtype as NumPy casts a Python float scalar (NEP 50).
        return np.asarray(values, dtype=np.float64).astype(self.dtype)[:, None]
