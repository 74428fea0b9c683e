"""Learning-rate schedules, one small class each: ``schedule.rate(step, epoch)``.

``step`` counts optimiser steps already taken (0 for the first), ``epoch`` counts finished
epochs (0 during the first).
"""

from __future__ import annotations

from dataclasses import dataclass

from nncv.network.registry import build

__all__ = ["SCHEDULES", "ExponentialDecay", "InverseTimeDecay", "LinearDecay", "make_schedule"]


@dataclass(frozen=True)
class InverseTimeDecay:
    """NNFS decay per step: ``learning_rate / (1 + decay * step)``; constant when ``decay=0``."""

    learning_rate: float
    decay: float = 0.0

    def rate(self, step: int, epoch: int) -> float:
        return self.learning_rate / (1.0 + self.decay * step)


@dataclass(frozen=True)
class ExponentialDecay:
    """Per epoch, geometric from ``learning_rate`` to ``final_learning_rate`` at the last epoch:
    ``lr * (final / lr) ** (epoch / (n_epochs - 1))``."""

    learning_rate: float
    final_learning_rate: float
    n_epochs: int

    def rate(self, step: int, epoch: int) -> float:
        fraction = min(epoch, self.n_epochs - 1) / max(self.n_epochs - 1, 1)
        return self.learning_rate * (self.final_learning_rate / self.learning_rate) ** fraction


@dataclass(frozen=True)
class LinearDecay:
    """Per epoch, a straight line from ``learning_rate`` to ``final_learning_rate``:
    ``lr - (lr - final) * epoch / (n_epochs - 1)``."""

    learning_rate: float
    final_learning_rate: float
    n_epochs: int

    def rate(self, step: int, epoch: int) -> float:
        fraction = min(epoch, self.n_epochs - 1) / max(self.n_epochs - 1, 1)
        return self.learning_rate - (self.learning_rate - self.final_learning_rate) * fraction


SCHEDULES = {
    "inverse_time": InverseTimeDecay,
    "exponential": ExponentialDecay,
    "linear": LinearDecay,
}


def make_schedule(
    name: str,
    learning_rate: float,
    *,
    decay: float = 0.0,
    final_learning_rate: float | None = None,
    n_epochs: int = 1,
):
    """Build the schedule :data:`SCHEDULES` names, from the estimator's parameters.

    Each schedule takes those of ``learning_rate``, ``decay``, ``final_learning_rate`` and
    ``n_epochs`` its constructor names; one it requires but is not given is an error.
    """
    return build(
        SCHEDULES,
        "schedule",
        name,
        learning_rate=learning_rate,
        decay=decay,
        final_learning_rate=final_learning_rate,
        n_epochs=n_epochs,
    )
