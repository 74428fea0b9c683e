"""Learning-rate schedules: NNFS inverse-time decay per step, exponential and linear per epoch.

Formulas (course notes, "Learning rate decay"): with ``N`` epochs the rate at epoch ``t``
(0-based) is ``lr - (lr - final) * t / (N - 1)`` (linear) or
``lr * ((final / lr) ** (1 / (N - 1))) ** t`` (exponential), reaching ``final`` at the last
epoch; NNFS decays per optimiser step: ``lr / (1 + decay * step)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from nncv.datasets import spiral
from nncv.exceptions import ConfigurationError
from nncv.network import Network, Trainer, optimizers, schedules


def test_inverse_time_decay_per_step():
    schedule = schedules.InverseTimeDecay(0.02, 5e-7)
    for step in (0, 1, 2, 10, 10_000, 3_000_000):
        expected = 0.02 * (1.0 / (1.0 + 5e-7 * step))  # NNFS: lr * (1 / (1 + decay * iterations))
        assert schedule.rate(step, 0) == pytest.approx(expected, rel=1e-15)
    # per step, not per epoch: the epoch is ignored
    assert schedule.rate(5, 0) == schedule.rate(5, 99)
    assert schedules.InverseTimeDecay(0.1, 1e-2).rate(100, 0) == pytest.approx(0.05)


def test_inverse_time_without_decay_is_constant():
    schedule = schedules.InverseTimeDecay(0.01)
    assert {schedule.rate(step, step // 7) for step in range(50)} == {0.01}


def test_exponential_decay_per_epoch_reaches_final():
    n_epochs, start, final = 11, 0.1, 0.001
    schedule = schedules.ExponentialDecay(start, final, n_epochs)
    factor = (final / start) ** (1.0 / (n_epochs - 1))
    for epoch in range(n_epochs):
        assert schedule.rate(0, epoch) == pytest.approx(start * factor**epoch, rel=1e-12)
        assert schedule.rate(123, epoch) == schedule.rate(0, epoch)  # per epoch, not per step
    assert schedule.rate(0, 0) == pytest.approx(start)
    assert schedule.rate(0, n_epochs - 1) == pytest.approx(final, rel=1e-12)
    assert schedule.rate(0, n_epochs + 5) == pytest.approx(final, rel=1e-12)  # stays there
    rates = [schedule.rate(0, e) for e in range(n_epochs)]
    ratios = np.array(rates[1:]) / np.array(rates[:-1])
    np.testing.assert_allclose(ratios, factor, rtol=1e-12)


def test_linear_decay_per_epoch_reaches_final():
    n_epochs, start, final = 5, 0.1, 0.02
    schedule = schedules.LinearDecay(start, final, n_epochs)
    expected = [start - (start - final) * t / (n_epochs - 1) for t in range(n_epochs)]
    np.testing.assert_allclose([schedule.rate(0, t) for t in range(n_epochs)], expected)
    assert expected[-1] == pytest.approx(final)
    assert schedule.rate(0, 50) == pytest.approx(final)
    steps = np.diff([schedule.rate(0, t) for t in range(n_epochs)])
    np.testing.assert_allclose(steps, -(start - final) / (n_epochs - 1))


def test_make_schedule_builds_each_and_rejects_bad_names():
    assert schedules.make_schedule("inverse_time", 0.1, decay=0.5) == schedules.InverseTimeDecay(
        0.1, 0.5
    )
    exponential = schedules.make_schedule("exponential", 0.1, final_learning_rate=0.01, n_epochs=3)
    assert exponential == schedules.ExponentialDecay(0.1, 0.01, 3)
    linear = schedules.make_schedule("linear", 0.1, final_learning_rate=0.01, n_epochs=3)
    assert linear == schedules.LinearDecay(0.1, 0.01, 3)
    with pytest.raises(ConfigurationError, match="unknown schedule 'cosine'.*exponential"):
        schedules.make_schedule("cosine", 0.1)
    with pytest.raises(ConfigurationError, match="needs final_learning_rate"):
        schedules.make_schedule("linear", 0.1, n_epochs=3)


def _trainer(schedule, batch_size):
    X, y = spiral(20, 3, random_state=0)
    network = Network(2, [4], 3, dtype=np.float64)
    network.initialize(np.random.default_rng(0))
    trainer = Trainer(
        network, optimizers.SGD(), schedule, rng=np.random.default_rng(0), batch_size=batch_size
    )
    return trainer, X, np.eye(3)[y]


def test_trainer_applies_inverse_time_per_step():
    """60 rows in batches of 16 = 4 steps per epoch; the record shows the last step's rate."""
    schedule = schedules.InverseTimeDecay(0.5, 0.1)
    trainer, X, Y = _trainer(schedule, 16)
    records = list(trainer.iter_epochs(X, Y, n_epochs=3))
    for epoch, record in enumerate(records, start=1):
        last_step = 4 * epoch - 1
        assert record["learning_rate"] == pytest.approx(0.5 / (1 + 0.1 * last_step))
    assert trainer.optimizer.iterations == 12


def test_trainer_applies_epoch_schedules_to_the_final_rate():
    schedule = schedules.LinearDecay(0.3, 0.1, 5)
    trainer, X, Y = _trainer(schedule, 16)
    rates = [record["learning_rate"] for record in trainer.iter_epochs(X, Y, n_epochs=5)]
    np.testing.assert_allclose(rates, [0.3, 0.25, 0.2, 0.15, 0.1])
    schedule = schedules.ExponentialDecay(0.1, 0.001, 3)
    trainer, X, Y = _trainer(schedule, None)
    rates = [record["learning_rate"] for record in trainer.iter_epochs(X, Y, n_epochs=3)]
    np.testing.assert_allclose(rates, [0.1, 0.01, 0.001])


def test_the_scheduled_rate_is_the_rate_used():
    """Plain SGD, full batch: the parameter change of epoch t is ``-rate(t) * gradient``."""
    schedule = schedules.InverseTimeDecay(0.5, 1.0)
    trainer, X, Y = _trainer(schedule, None)
    network = trainer.network
    for epoch in range(3):
        before = network.parameters.copy()
        network.compute_gradients(X, Y, 1.0 / len(X))
        gradient = network.gradients.copy()
        network.set_parameters(before)
        next(trainer.iter_epochs(X, Y, n_epochs=1))
        np.testing.assert_allclose(
            network.parameters, before - 0.5 / (1 + epoch) * gradient, rtol=1e-12
        )
