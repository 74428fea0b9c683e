"""Optimisers with the NNFS update formulas, each a small class that owns its state.

``optimizer.update(parameters, gradients, learning_rate)`` updates every array of
``parameters`` in place. The network passes one flat vector holding all weights and biases,
so a step is a handful of vectorised operations whatever the depth.

Formulas (``g`` gradient, ``lr`` the rate for this step, ``t`` steps taken before this one):

* SGD: ``v = momentum * v - lr * g``; ``p += v`` (NNFS);
  with Nesterov ``p += momentum * v - lr * g``.
* Adagrad: ``c += g**2``; ``p -= lr * g / (sqrt(c) + eps)``.
* RMSprop: ``c = rho * c + (1 - rho) * g**2``; ``p -= lr * g / (sqrt(c) + eps)``.
* Adam: ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g**2``;
  ``p -= lr * (m / (1 - b1**(t+1))) / (sqrt(v / (1 - b2**(t+1))) + eps)`` (computed from
  ``m / (1 - b1)`` and ``v / (1 - b2)``, see :class:`Adam`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["OPTIMIZERS", "SGD", "Adagrad", "Adam", "Optimizer", "RMSprop"]


class Optimizer:
    """Base class. Subclasses define ``_slots`` (names of per-parameter state) and ``_step``."""

    _slots: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.iterations = 0
        self.state: dict[str, list[np.ndarray]] = {}
        self._layout: tuple[int, ...] | None = None

    def _ensure_state(self, parameters: Sequence[np.ndarray]) -> None:
        """Allocate scratch space, and zero state for a new (or reshaped) parameter list."""
        if not _same_layout(getattr(self, "_scratch", []), parameters):
            self._scratch = [np.empty_like(p) for p in parameters]
        if any(not _same_layout(values, parameters) for values in self.state.values()) or (
            self._slots and not self.state
        ):
            self.state = {slot: [np.zeros_like(p) for p in parameters] for slot in self._slots}

    def update(
        self,
        parameters: Sequence[np.ndarray],
        gradients: Sequence[np.ndarray],
        learning_rate: float,
    ) -> None:
        """Apply one step to every parameter array in place, then count the step."""
        layout = tuple(id(p) for p in parameters)
        if layout != self._layout:  # checked once per parameter list, not every step
            self._ensure_state(parameters)
            self._slots_per_array = [
                {name: values[i] for name, values in self.state.items()}
                for i in range(len(parameters))
            ]
            self._layout = layout
        for index, (parameter, gradient) in enumerate(zip(parameters, gradients, strict=True)):
            self._step(
                parameter,
                gradient,
                learning_rate,
                self._scratch[index],
                **self._slots_per_array[index],
            )
        self.iterations += 1

    def _step(self, parameter, gradient, learning_rate, scratch, **slots) -> None:
        raise NotImplementedError

    def get_state(self) -> tuple[int, dict[str, np.ndarray]]:
        """Step count and state arrays (one flat array per slot), for persistence."""
        arrays = {
            f"{slot}_{i}": a for slot, values in self.state.items() for i, a in enumerate(values)
        }
        return self.iterations, arrays

    def set_state(self, iterations: int, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned."""
        self.iterations = int(iterations)
        self.state = {}
        self._layout = None
        for slot in self._slots:
            values = [
                arrays[key]
                for key in sorted(arrays, key=_index_of)
                if key.rsplit("_", 1)[0] == slot
            ]
            if values:
                self.state[slot] = [np.array(v) for v in values]


def _same_layout(arrays: Sequence[np.ndarray], parameters: Sequence[np.ndarray]) -> bool:
    return len(arrays) == len(parameters) and all(
        a.shape == p.shape and a.dtype == p.dtype for a, p in zip(arrays, parameters, strict=True)
    )


def _index_of(key: str) -> int:
    return int(key.rsplit("_", 1)[1])


def _scaled_update(parameter, direction, squares, learning_rate, epsilon, scratch) -> None:
    """``parameter -= learning_rate * direction / (sqrt(squares) + epsilon)``, in place."""
    np.sqrt(squares, out=scratch)
    scratch += epsilon
    np.divide(direction, scratch, out=scratch)
    scratch *= learning_rate
    parameter -= scratch


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum."""

    def __init__(self, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__()
        self.momentum = momentum
        self.nesterov = nesterov
        self._slots = ("velocity",) if momentum else ()

    def _step(self, parameter, gradient, learning_rate, scratch, velocity=None) -> None:
        np.multiply(gradient, learning_rate, out=scratch)
        if velocity is None:
            parameter -= scratch
            return
        velocity *= self.momentum
        velocity -= scratch
        if self.nesterov:
            parameter -= scratch
            np.multiply(velocity, self.momentum, out=scratch)
        else:
            scratch[...] = velocity
        parameter += scratch


class Adagrad(Optimizer):
    """Adagrad: per-parameter rates shrink with the sum of squared gradients."""

    _slots = ("cache",)

    def __init__(self, epsilon: float = 1e-7) -> None:
        super().__init__()
        self.epsilon = epsilon

    def _step(self, parameter, gradient, learning_rate, scratch, cache) -> None:
        np.multiply(gradient, gradient, out=scratch)
        cache += scratch
        _scaled_update(parameter, gradient, cache, learning_rate, self.epsilon, scratch)


class RMSprop(Optimizer):
    """RMSprop: a moving average of squared gradients scales each parameter's rate."""

    _slots = ("cache",)

    def __init__(self, rho: float = 0.9, epsilon: float = 1e-7) -> None:
        super().__init__()
        self.rho = rho
        self.epsilon = epsilon

    def _step(self, parameter, gradient, learning_rate, scratch, cache) -> None:
        np.multiply(gradient, gradient, out=scratch)
        scratch *= 1 - self.rho
        cache *= self.rho
        cache += scratch
        _scaled_update(parameter, gradient, cache, learning_rate, self.epsilon, scratch)


class Adam(Optimizer):
    """Adam with bias-corrected moments (NNFS formula, ``eps`` added after the square root).

    The state holds the moments without their ``(1 - beta)`` factors — ``gradient_sum``
    is ``m / (1 - beta_1)`` and ``squared_gradient_sum`` is ``v / (1 - beta_2)``, i.e.
    ``S = beta * S + g`` — so a step makes ten passes over the parameters instead of twelve;
    the factors are folded into the scalar rate and epsilon of the update.
    """

    _slots = ("gradient_sum", "squared_gradient_sum")
    #: State names written before the sums were kept unscaled, read for compatibility.
    _MOMENT_SLOTS = ("first_moment", "second_moment")

    def __init__(self, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7) -> None:
        super().__init__()
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def _step(
        self, parameter, gradient, learning_rate, scratch, gradient_sum, squared_gradient_sum
    ) -> None:
        rate, epsilon = self.coefficients(learning_rate, self.iterations + 1)
        self._apply(parameter, gradient, rate, epsilon, scratch, gradient_sum, squared_gradient_sum)

    def coefficients(self, learning_rate: float, step: int) -> tuple[float, float]:
        """The scalar ``(rate, epsilon)`` of step number ``step`` (1-based) for :meth:`_apply`.

        Split from the array work so that a stack of networks whose step counts differ
        (:mod:`nncv.network.stacked`) can compute them per network.
        """
        # With m = (1 - b1) S1 and v = (1 - b2) S2, Kingma & Ba's form of the NNFS update
        # lr * m_hat / (sqrt(v_hat) + eps) == lr_t * m / (sqrt(v) + eps * sqrt(1 - b2^t))
        # becomes rate * S1 / (sqrt(S2) + eps'):
        root_1_minus_beta_2 = math.sqrt(1 - self.beta_2)
        correction = math.sqrt(1 - self.beta_2**step)
        rate = (
            learning_rate
            * correction
            / (1 - self.beta_1**step)
            * (1 - self.beta_1)
            / root_1_minus_beta_2
        )
        return rate, self.epsilon * correction / root_1_minus_beta_2

    def _apply(
        self, parameter, gradient, rate, epsilon, scratch, gradient_sum, squared_gradient_sum
    ) -> None:
        """Update the sums and the parameters; ``rate`` and ``epsilon`` may be columns."""
        gradient_sum *= self.beta_1
        gradient_sum += gradient
        np.multiply(gradient, gradient, out=scratch)
        squared_gradient_sum *= self.beta_2
        squared_gradient_sum += scratch
        _scaled_update(parameter, gradient_sum, squared_gradient_sum, rate, epsilon, scratch)

    def set_state(self, iterations: int, arrays: dict[str, np.ndarray]) -> None:
        """Restore :meth:`get_state`'s output; moments saved as ``first_moment_*`` /
        ``second_moment_*`` (the scaled form) are converted to the sums."""
        converted = dict(arrays)
        for slot, old, beta in zip(
            self._slots, self._MOMENT_SLOTS, (self.beta_1, self.beta_2), strict=True
        ):
            for key in [k for k in arrays if k.rsplit("_", 1)[0] == old]:
                index = key.rsplit("_", 1)[1]
                converted[f"{slot}_{index}"] = np.asarray(converted.pop(key)) / (1 - beta)
        super().set_state(iterations, converted)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "adam": Adam,
    "sgd": SGD,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}
