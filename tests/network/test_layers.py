"""Initialisers (statistics, bounds, zeros), dropout (inverted, identity at inference) and the
network's construction checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nncv.exceptions import ConfigurationError, NncvError
from nncv.network import Dropout, Network
from nncv.network.initializers import INITIALIZERS

N_IN, N_OUT = 400, 300  # 120 000 draws: sample std within ~0.5 % of the target


@pytest.mark.parametrize(
    ("name", "std"),
    [
        ("nnfs", 0.01),
        ("he", math.sqrt(2 / N_IN)),
        ("he_normal", math.sqrt(2 / N_IN)),
        ("glorot_normal", math.sqrt(2 / (N_IN + N_OUT))),
        ("xavier_normal", math.sqrt(2 / (N_IN + N_OUT))),
    ],
)
def test_normal_initialisers_have_the_documented_std(name, std):
    weights = INITIALIZERS[name](np.random.default_rng(0), N_IN, N_OUT, np.float64)
    assert weights.shape == (N_IN, N_OUT)
    assert abs(weights.mean()) < 0.02 * std
    assert weights.std() == pytest.approx(std, rel=0.015)
    # normal, not uniform: the excess kurtosis of a normal is 0 (uniform's is -1.2)
    kurtosis = np.mean((weights / weights.std()) ** 4) - 3
    assert abs(kurtosis) < 0.1


@pytest.mark.parametrize("name", ["glorot_uniform", "xavier_uniform"])
def test_glorot_uniform_bounds(name):
    limit = math.sqrt(6 / (N_IN + N_OUT))
    weights = INITIALIZERS[name](np.random.default_rng(0), N_IN, N_OUT, np.float64)
    assert weights.min() >= -limit and weights.max() <= limit
    assert weights.min() < -0.99 * limit and weights.max() > 0.99 * limit  # bounds reached
    assert weights.std() == pytest.approx(limit / math.sqrt(3), rel=0.015)


def test_zeros():
    weights = INITIALIZERS["zeros"](np.random.default_rng(0), 3, 4, np.float32)
    assert weights.dtype == np.float32 and weights.shape == (3, 4) and not weights.any()


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_initialisers_respect_dtype_and_seed(name, dtype):
    first = INITIALIZERS[name](np.random.default_rng(7), 5, 6, dtype)
    again = INITIALIZERS[name](np.random.default_rng(7), 5, 6, dtype)
    assert first.dtype == dtype
    np.testing.assert_array_equal(first, again)
    if name != "zeros":
        other = INITIALIZERS[name](np.random.default_rng(8), 5, 6, dtype)
        assert not np.array_equal(first, other)


def test_network_initialise_draws_weights_and_zeroes_biases():
    network = Network(3, [5, 4], 2, init="nnfs", dtype=np.float64)
    network.set_parameters(np.full(network.parameters.size, 7.0))
    network.initialize(np.random.default_rng(0))
    for dense in network.dense_layers:
        assert not dense.biases.any()
        assert 0 < np.abs(dense.weights).max() < 0.1  # 0.01 · N(0, 1)
    rng = np.random.default_rng(0)  # same draws, layer after layer, from the one generator
    expected = [0.01 * rng.standard_normal(shape) for shape in network.layer_shapes]
    for dense, weights in zip(network.dense_layers, expected, strict=True):
        np.testing.assert_allclose(dense.weights, weights, rtol=1e-15)


# ------------------------------------------------------------------------------- dropout
def test_dropout_keeps_the_mean_in_training():
    layer = Dropout(0.3)
    inputs = np.ones((400, 500))
    out = layer.forward(
        inputs, np.empty_like(inputs), np.empty_like(inputs), np.random.default_rng(0)
    )
    dropped = out == 0
    assert dropped.mean() == pytest.approx(0.3, abs=0.005)
    np.testing.assert_allclose(out[~dropped], 1 / 0.7)  # inverted: survivors scaled up
    assert out.mean() == pytest.approx(1.0, abs=0.01)


def test_dropout_rate_zero_is_identity_in_training():
    inputs = np.random.default_rng(0).standard_normal((20, 10))
    out = Dropout(0.0).forward(
        inputs, np.empty_like(inputs), np.empty_like(inputs), np.random.default_rng(0)
    )
    np.testing.assert_array_equal(out, inputs)


def test_dropout_mask_comes_from_the_generator():
    inputs = np.ones((50, 40))

    def mask(seed):
        return Dropout(0.5).forward(
            inputs, np.empty_like(inputs), np.empty_like(inputs), np.random.default_rng(seed)
        )

    np.testing.assert_array_equal(mask(1), mask(1))
    assert not np.array_equal(mask(1), mask(2))


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_rate_validation(rate):
    with pytest.raises(ConfigurationError, match="dropout rate must be in"):
        Dropout(rate)
    with pytest.raises(ConfigurationError, match="dropout rate must be in"):
        Network(3, [4], 2, dropout=rate)


def test_network_dropout_is_identity_at_inference():
    rng = np.random.default_rng(0)
    with_dropout = Network(3, [16, 8], 2, dropout=0.5, dtype=np.float64)
    with_dropout.initialize(rng)
    without = Network(3, [16, 8], 2, dtype=np.float64)
    without.set_parameters(with_dropout.parameters)
    inputs = rng.standard_normal((30, 3))
    np.testing.assert_array_equal(with_dropout.predict(inputs), without.predict(inputs))
    np.testing.assert_array_equal(with_dropout.predict(inputs), with_dropout.predict(inputs))
    training = with_dropout.forward(inputs, training=True, rng=np.random.default_rng(1)).copy()
    assert not np.allclose(training, without.predict(inputs))


def test_network_dropout_training_needs_a_generator():
    network = Network(3, [4], 2, dropout=0.2)
    network.initialize(np.random.default_rng(0))
    with pytest.raises(ConfigurationError, match="random generator"):
        network.forward(np.zeros((2, 3), np.float32), training=True)


def test_dropout_per_layer_rates():
    network = Network(3, [4, 5, 6], 2, dropout=[0.1, 0.0, 0.3])
    rates = [layer.rate for layer in network.layers if isinstance(layer, Dropout)]
    assert rates == [0.1, 0.3]
    with pytest.raises(ConfigurationError, match="dropout has 2 values but there are 3 layers"):
        Network(3, [4, 5, 6], 2, dropout=[0.1, 0.2])


# ------------------------------------------------------------------ network construction
@pytest.mark.parametrize(
    ("key", "value"), [("activation", "relu6"), ("loss", "hinge"), ("init", "orthogonal")]
)
def test_unknown_names_are_rejected_with_the_choices(key, value):
    with pytest.raises(ConfigurationError, match=f"unknown {key} '{value}'; choose one of"):
        Network(3, [4], 2, **{key: value})


def test_regulariser_per_layer_length_is_checked():
    with pytest.raises(ConfigurationError, match="weight_l2 has 3 values but there are 2 layers"):
        Network(3, [4], 2, weight_l2=[0.1, 0.2, 0.3])


def test_any_number_of_hidden_layers():
    for hidden in ([], [7], [7, 6, 5, 4, 3]):
        network = Network(3, hidden, 2, dtype=np.float64)
        network.initialize(np.random.default_rng(0))
        widths = [3, *hidden, 2]
        assert network.layer_shapes == list(zip(widths[:-1], widths[1:], strict=True))
        assert network.parameters.size == sum((a + 1) * b for a, b in network.layer_shapes)
        probabilities = network.predict(np.random.default_rng(1).standard_normal((9, 3)))
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)


def test_config_round_trip_rebuilds_the_same_function():
    network = Network(
        3,
        [5, 4],
        2,
        activation="tanh",
        dropout=[0.1, 0.2],
        weight_l2=[0.1, 0.0, 0.0],
        loss="sigmoid_cross_entropy",
        dtype=np.float64,
    )
    network.initialize(np.random.default_rng(0))
    copy = Network.from_config(network.get_config())
    copy.set_parameters(network.parameters)
    inputs = np.random.default_rng(1).standard_normal((6, 3))
    np.testing.assert_array_equal(copy.predict(inputs), network.predict(inputs))
    assert copy.regularisation_loss() == network.regularisation_loss()


def test_set_parameters_checks_the_shape():
    network = Network(3, [4], 2)
    with pytest.raises(ConfigurationError, match=r"parameter vector has shape \(5,\)"):
        network.set_parameters(np.zeros(5))


def test_predict_in_chunks_equals_one_forward():
    """``predict`` works in chunks of 4096 rows; the chunks join up exactly."""
    network = Network(3, [8], 4, dtype=np.float64)
    network.initialize(np.random.default_rng(0))
    inputs = np.random.default_rng(1).standard_normal((10_000, 3))
    expected = network.forward(inputs).copy()
    np.testing.assert_allclose(network.predict(inputs), expected, rtol=1e-14)


def test_configuration_errors_are_nncv_errors_and_value_errors():
    """Findings F5: one root for every nncv error, still a ``ValueError`` for scikit-learn."""
    assert issubclass(ConfigurationError, NncvError) and issubclass(ConfigurationError, ValueError)


# ---------------------------------------------------------------------------- activations
def test_activation_values():
    from nncv.network.activations import ACTIVATIONS

    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    expected = {
        "identity": z,
        "relu": np.maximum(z, 0),
        "leaky_relu": np.where(z > 0, z, 0.01 * z),
        "tanh": np.tanh(z),
        "sigmoid": 1 / (1 + np.exp(-z)),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(ACTIVATIONS[name](z.copy()), values, rtol=1e-15)


def test_sigmoid_saturates_without_warnings():
    from nncv.network.activations import ACTIVATIONS

    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        values = ACTIVATIONS["sigmoid"](np.array([-1000.0, 1000.0], np.float32))
    np.testing.assert_array_equal(values, [0.0, 1.0])


@pytest.mark.parametrize("n_rows", [9, 200])
@pytest.mark.parametrize("n_classes", [1, 3, 16, 17, 40])
def test_softmax_rows_sum_to_one_without_overflow(n_classes, n_rows):
    """Narrow outputs take row maxima column by column, wide ones with a reduction: both
    give the textbook softmax, also for logits far beyond exp's range."""
    from nncv.network.losses import LOSSES

    rng = np.random.default_rng(n_classes)
    logits = rng.standard_normal((n_rows, n_classes)) * 3
    logits[0] += 1000.0  # exp(1000) overflows: the shift by the row maximum must happen
    logits[1] -= 1000.0
    shifted = logits - logits.max(axis=1, keepdims=True)
    expected = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    with np.errstate(over="raise", invalid="raise"):
        probabilities = LOSSES["softmax_cross_entropy"].output(logits.copy())
    np.testing.assert_allclose(probabilities, expected, rtol=1e-13)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-13)


@pytest.mark.parametrize("n_columns", [1, 2, 3, 10, 64])
@pytest.mark.parametrize("n_rows", [0, 1, 32, 160])
def test_softmax_row_max_is_numpys_row_max(n_rows, n_columns):
    from nncv.network.losses import _row_max

    z = np.random.default_rng(n_rows + n_columns).normal(size=(n_rows, n_columns))
    if n_rows > 1:
        z[0, -1], z[1, 0] = np.nan, -np.inf  # NaN propagates, as in NumPy's maximum
    for dtype in (np.float32, np.float64):
        values = z.astype(dtype)
        expected = values.max(axis=1) if n_rows else np.empty(0, dtype)
        found = _row_max(values)
        assert found.dtype == dtype and np.array_equal(found, expected, equal_nan=True)
