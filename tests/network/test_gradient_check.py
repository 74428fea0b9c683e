"""``nncv.network.check_gradients``: it agrees with an independent finite-difference helper,
catches broken back-propagation (naming the arrays), leaves the model untouched, and accepts
networks, fitted and unfitted estimators and pipelines."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import nncv.network.layers as layers
from nncv import NNClassifier, NNRegressor
from nncv.datasets import load
from nncv.exceptions import ConfigurationError
from nncv.network import Network, check_gradients
from nncv.network.activations import DERIVATIVES

from .test_gradients import numeric_gradient, random_targets, relative_error


def small_network(**kwargs):
    rng = np.random.default_rng(0)
    network = Network(4, [5, 4], 3, activation="tanh", dtype=np.float64, **kwargs)
    network.initialize(rng)
    network.set_parameters(network.parameters + rng.normal(scale=0.1, size=network.parameters.size))
    inputs = rng.normal(size=(8, 4))
    return network, inputs, random_targets("softmax_cross_entropy", 8, 3, rng)


@pytest.fixture(scope="module")
def iris():
    X, y = load("iris")
    return X[::5], y[::5]


def test_agrees_with_an_independent_finite_difference_per_array():
    network, inputs, targets = small_network(weight_l2=0.1)
    result = check_gradients(network, inputs, targets)
    network.compute_gradients(inputs, targets, 1.0 / len(inputs))
    analytic = network.gradients.copy()

    def loss():
        outputs = network.forward(inputs, training=True)
        return network.loss.per_sample(outputs, targets).mean() + network.regularisation_loss()

    numeric = numeric_gradient(loss, network.parameters)
    for (name, where, shape), array in zip(network.parameter_layout(), result, strict=True):
        assert array.name == name and array.shape == shape and array.n_checked == np.prod(shape)
        expected = relative_error(analytic[where], numeric[where])
        assert array.relative_difference == pytest.approx(expected, rel=1e-3, abs=1e-11)
        assert array.gradient_norm == pytest.approx(np.linalg.norm(analytic[where]), rel=1e-12)
    assert result.passed and result.worst < 1e-7


def test_a_wrong_activation_derivative_fails_upstream_arrays(monkeypatch):
    network, inputs, targets = small_network()
    right = DERIVATIVES["tanh"]
    monkeypatch.setitem(DERIVATIVES, "tanh", lambda a, grad: right(a, grad) * 1.01)
    result = check_gradients(network, inputs, targets)
    assert not result.passed
    failed = {a.name for a in result if not a.passed}
    assert failed == {"dense_0.weights", "dense_0.biases", "dense_1.weights", "dense_1.biases"}
    assert "FAILED" in repr(result) and "NO" in repr(result)


def test_batch_norm_treated_as_constant_statistics_fails(monkeypatch):
    """A backward pass that forgets the batch statistics depend on the inputs is caught."""
    network, inputs, targets = small_network(batch_norm=True)

    def forgetful(grad, normalized, gamma, inverse_std, row_scale, gamma_grad, beta_grad, scratch):
        beta_grad[...] = grad.sum(0)
        gamma_grad[...] = (grad * normalized).sum(0)
        grad *= gamma * inverse_std
        return grad

    assert check_gradients(network, inputs, targets).passed
    monkeypatch.setattr(layers, "batch_norm_backward", forgetful)
    result = check_gradients(network, inputs, targets)
    assert not result.passed
    assert not result["dense_0.weights"].passed
    assert result["batch_norm_1.gamma"].passed  # its own gradient is still right


def test_zero_gradient_of_a_bias_before_batch_norm_passes_as_zero():
    network, inputs, targets = small_network(batch_norm=True)
    result = check_gradients(network, inputs, targets)
    assert result["dense_0.biases"].zero and result["dense_0.biases"].passed
    assert not result["dense_2.biases"].zero
    assert "yes (zero)" in repr(result)


def test_the_model_is_not_changed():
    network, inputs, targets = small_network(batch_norm=True, dropout=0.3)
    network = Network.from_config({**network.get_config(), "dtype": "float32"})
    network.initialize(np.random.default_rng(0))
    parameters = network.parameters.copy()
    statistics = network.running_statistics.copy()
    result = check_gradients(network, inputs, targets)
    assert result.passed, result
    assert network.parameters.dtype == np.float32
    assert network.parameters.tobytes() == parameters.tobytes()
    assert network.running_statistics.tobytes() == statistics.tobytes()


def test_entries_per_array_draws_a_subset():
    network, inputs, targets = small_network()
    result = check_gradients(network, inputs, targets, entries_per_array=3)
    assert [a.n_checked for a in result] == [3, 3, 3, 3, 3, 3]
    assert result.passed


def test_fitted_and_unfitted_estimators_and_pipelines(iris):
    X, y = iris
    params = {"hidden_layer_sizes": (6,), "batch_norm": True, "dropout": 0.2, "max_epochs": 3}
    unfitted = NNClassifier(**params, random_state=0)
    assert check_gradients(unfitted, X, y).passed
    assert not hasattr(unfitted, "network_")
    fitted = NNClassifier(**params, random_state=0).fit(X, y)
    weights = fitted.network_.parameters.copy()
    assert check_gradients(fitted, X, y, sample_weight=np.arange(len(y)) % 3 + 1.0).passed
    assert fitted.network_.parameters.tobytes() == weights.tobytes()
    pipe = Pipeline([("scale", StandardScaler()), ("net", NNRegressor(**params))])
    target = X[:, 0] * 3.0
    assert check_gradients(pipe, X, target).passed
    assert check_gradients(pipe.fit(X, target), X, target).passed


def test_bad_arguments(iris):
    network, inputs, targets = small_network()
    with pytest.raises(ConfigurationError, match="2-D target matrix"):
        check_gradients(network, inputs, targets[:, 0])
    with pytest.raises(ConfigurationError, match="not StandardScaler"):
        check_gradients(StandardScaler(), inputs, targets)
    with pytest.raises(ConfigurationError, match="step"):
        check_gradients(network, inputs, targets, step=0.0)
    with pytest.raises(ConfigurationError, match="sample_weight"):
        check_gradients(network, inputs, targets, sample_weight=np.zeros(8))
    with pytest.raises(ConfigurationError, match="entries_per_array"):
        check_gradients(network, inputs, targets, entries_per_array=0)


def test_repr_and_rows():
    network, inputs, targets = small_network()
    result = check_gradients(network, inputs, targets)
    text = repr(result)
    assert text.startswith("GradientCheck: passed")
    assert all(a.name in text for a in result)
    rows = result.rows()
    assert [r["array"] for r in rows] == [a.name for a in result]
    assert all(r["passed"] for r in rows)
    with pytest.raises(KeyError, match="no parameter array"):
        result["nope"]
