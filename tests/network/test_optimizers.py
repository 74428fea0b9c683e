"""Each optimiser's first two updates against a hand computation of the NNFS formula.

The expected values are written out element by element in plain Python floats, independently
of the vectorised, in-place code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nncv.network import optimizers

START = [0.5, -1.0, 2.0]
GRADIENT_1 = [0.2, -0.4, 1.0]
GRADIENT_2 = [-0.1, 0.3, 0.5]
RATE_1, RATE_2 = 0.1, 0.05  # a different rate per step, as a schedule would give


def run_two_steps(optimizer, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    parameters = np.array(START, dtype=dtype)
    optimizer.update([parameters], [np.array(GRADIENT_1, dtype=dtype)], RATE_1)
    after_first = parameters.copy()
    optimizer.update([parameters], [np.array(GRADIENT_2, dtype=dtype)], RATE_2)
    return after_first, parameters.copy()


def hand_sgd():
    first = [p - RATE_1 * g for p, g in zip(START, GRADIENT_1, strict=True)]
    second = [p - RATE_2 * g for p, g in zip(first, GRADIENT_2, strict=True)]
    return first, second


def hand_momentum(momentum: float, nesterov: bool):
    first, second = [], []
    for p, g1, g2 in zip(START, GRADIENT_1, GRADIENT_2, strict=True):
        # NNFS: update = momentum * previous_update - lr * gradient; parameter += update
        v1 = momentum * 0.0 - RATE_1 * g1
        p1 = p + (momentum * v1 - RATE_1 * g1 if nesterov else v1)
        v2 = momentum * v1 - RATE_2 * g2
        p2 = p1 + (momentum * v2 - RATE_2 * g2 if nesterov else v2)
        first.append(p1)
        second.append(p2)
    return first, second


def hand_adagrad(epsilon: float):
    first, second = [], []
    for p, g1, g2 in zip(START, GRADIENT_1, GRADIENT_2, strict=True):
        cache = g1**2
        p1 = p - RATE_1 * g1 / (math.sqrt(cache) + epsilon)
        cache += g2**2
        p2 = p1 - RATE_2 * g2 / (math.sqrt(cache) + epsilon)
        first.append(p1)
        second.append(p2)
    return first, second


def hand_rmsprop(rho: float, epsilon: float):
    first, second = [], []
    for p, g1, g2 in zip(START, GRADIENT_1, GRADIENT_2, strict=True):
        cache = rho * 0.0 + (1 - rho) * g1**2
        p1 = p - RATE_1 * g1 / (math.sqrt(cache) + epsilon)
        cache = rho * cache + (1 - rho) * g2**2
        p2 = p1 - RATE_2 * g2 / (math.sqrt(cache) + epsilon)
        first.append(p1)
        second.append(p2)
    return first, second


def hand_adam(beta_1: float, beta_2: float, epsilon: float):
    first, second = [], []
    for p, g1, g2 in zip(START, GRADIENT_1, GRADIENT_2, strict=True):
        m = (1 - beta_1) * g1
        v = (1 - beta_2) * g1**2
        m_hat, v_hat = m / (1 - beta_1**1), v / (1 - beta_2**1)
        p1 = p - RATE_1 * m_hat / (math.sqrt(v_hat) + epsilon)
        m = beta_1 * m + (1 - beta_1) * g2
        v = beta_2 * v + (1 - beta_2) * g2**2
        m_hat, v_hat = m / (1 - beta_1**2), v / (1 - beta_2**2)
        p2 = p1 - RATE_2 * m_hat / (math.sqrt(v_hat) + epsilon)
        first.append(p1)
        second.append(p2)
    return first, second


CASES = {
    "sgd": (lambda: optimizers.SGD(), hand_sgd),
    "sgd_momentum": (lambda: optimizers.SGD(momentum=0.9), lambda: hand_momentum(0.9, False)),
    "sgd_nesterov": (
        lambda: optimizers.SGD(momentum=0.8, nesterov=True),
        lambda: hand_momentum(0.8, True),
    ),
    "adagrad": (lambda: optimizers.Adagrad(epsilon=1e-7), lambda: hand_adagrad(1e-7)),
    "rmsprop": (
        lambda: optimizers.RMSprop(rho=0.9, epsilon=1e-7),
        lambda: hand_rmsprop(0.9, 1e-7),
    ),
    "rmsprop_rho": (
        lambda: optimizers.RMSprop(rho=0.5, epsilon=1e-3),
        lambda: hand_rmsprop(0.5, 1e-3),
    ),
    "adam": (lambda: optimizers.Adam(), lambda: hand_adam(0.9, 0.999, 1e-7)),
    "adam_betas": (
        lambda: optimizers.Adam(beta_1=0.7, beta_2=0.9, epsilon=1e-2),
        lambda: hand_adam(0.7, 0.9, 1e-2),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_first_two_updates_match_hand_computation(name):
    make, hand = CASES[name]
    expected_first, expected_second = hand()
    first, second = run_two_steps(make())
    np.testing.assert_allclose(first, expected_first, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(second, expected_second, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_stays_float32(name):
    make, hand = CASES[name]
    optimizer = make()
    first, second = run_two_steps(optimizer, np.float32)
    assert first.dtype == second.dtype == np.float32
    for values in optimizer.state.values():
        assert all(array.dtype == np.float32 for array in values)
    np.testing.assert_allclose(second, hand()[1], rtol=1e-5)


def test_momentum_differs_from_plain_and_nesterov_from_momentum():
    """The cases above would pass trivially if the variants were the same; they are not."""
    plain = run_two_steps(optimizers.SGD())[1]
    momentum = run_two_steps(optimizers.SGD(momentum=0.8))[1]
    nesterov = run_two_steps(optimizers.SGD(momentum=0.8, nesterov=True))[1]
    assert not np.allclose(plain, momentum)
    assert not np.allclose(momentum, nesterov)


def test_nnfs_defaults():
    """The book's defaults: Adam β1 0.9, β2 0.999, ε 1e-7; RMSprop ρ 0.9; Adagrad ε 1e-7."""
    adam = optimizers.Adam()
    assert (adam.beta_1, adam.beta_2, adam.epsilon) == (0.9, 0.999, 1e-7)
    rmsprop = optimizers.RMSprop()
    assert (rmsprop.rho, rmsprop.epsilon) == (0.9, 1e-7)
    assert optimizers.Adagrad().epsilon == 1e-7
    assert optimizers.SGD().momentum == 0


def test_several_parameter_arrays_are_independent():
    """Updating two arrays in one call equals updating each with its own optimiser."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    gradients = [[rng.standard_normal(a.shape) for a in arrays] for _ in range(3)]
    together = [a.copy() for a in arrays]
    optimizer = optimizers.Adam()
    for step in gradients:
        optimizer.update(together, step, 0.01)
    for index, array in enumerate(arrays):
        alone = array.copy()
        single = optimizers.Adam()
        for step in gradients:
            single.update([alone], [step[index]], 0.01)
        np.testing.assert_array_equal(together[index], alone)
    assert optimizer.iterations == 3


@pytest.mark.parametrize("name", ["sgd_momentum", "adagrad", "rmsprop", "adam"])
def test_state_round_trip_resumes_identically(name):
    """``get_state``/``set_state`` carry the moments and step count (persistence relies on it)."""
    make, _ = CASES[name]
    original = make()
    parameters = np.array(START)
    original.update([parameters], [np.array(GRADIENT_1)], RATE_1)
    iterations, arrays = original.get_state()
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    resumed = make()
    resumed.set_state(iterations, {key: value.copy() for key, value in arrays.items()})
    resumed.update([parameters], [np.array(GRADIENT_2)], RATE_2)
    np.testing.assert_allclose(parameters, run_two_steps(make())[1], rtol=1e-15)
    assert resumed.iterations == 2


def test_adam_reads_moments_saved_in_the_scaled_form():
    """State written as ``first_moment``/``second_moment`` (``m`` and ``v`` themselves, as
    before Adam kept unscaled sums) resumes to the hand-computed second step."""
    beta_1, beta_2 = 0.9, 0.999
    m = [(1 - beta_1) * g for g in GRADIENT_1]
    v = [(1 - beta_2) * g**2 for g in GRADIENT_1]
    resumed = optimizers.Adam(beta_1, beta_2, epsilon=1e-7)
    resumed.set_state(1, {"first_moment_0": np.array(m), "second_moment_0": np.array(v)})
    assert set(resumed.state) == {"gradient_sum", "squared_gradient_sum"}
    parameters = np.array(hand_adam(beta_1, beta_2, 1e-7)[0])
    resumed.update([parameters], [np.array(GRADIENT_2)], RATE_2)
    np.testing.assert_allclose(parameters, hand_adam(beta_1, beta_2, 1e-7)[1], rtol=1e-12)
