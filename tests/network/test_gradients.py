"""Finite-difference gradient checks (float64, central differences) of the scratch network.

The quantity checked is the *total* loss the trainer minimises: the weighted mean of
``network.loss.per_sample`` plus ``network.regularisation_loss()``, differentiated with respect
to the flat vector ``network.parameters``. ``Network.compute_gradients`` must fill
``network.gradients`` with exactly that derivative, for every activation, every loss, each of
the four regularisers, several hidden layers, sample weights, sparse input and dropout (with
the mask held fixed by handing each forward pass a fresh generator with the same seed).

Inputs are chosen away from the kinks of ReLU / leaky ReLU (pre-activations) and of the L1
penalty (parameters), and each test asserts that it really is, so a failure cannot be blamed
on a kink.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from nncv.network import Activation, Dense, Dropout, Network, check_gradients
from nncv.network.activations import ACTIVATIONS
from nncv.network.losses import LOSSES

STEP = 1e-6
TOLERANCE = 1e-6
KINK_MARGIN = 1e-3
N_ROWS = 7
N_INPUTS = 4
MASK_SEED = 0


# ------------------------------------------------------------------------------ helpers
def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``|a - n| / (|a| + |n|)`` over the whole vector (the usual gradient-check measure)."""
    denominator = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    assert denominator > 0, "both gradients are zero: the check would prove nothing"
    return float(np.linalg.norm(analytic - numeric) / denominator)


def numeric_gradient(function, vector: np.ndarray) -> np.ndarray:
    """Central differences of the scalar ``function()`` with respect to ``vector`` (in place)."""
    gradient = np.empty_like(vector)
    for index in range(vector.size):
        original = vector[index]
        vector[index] = original + STEP
        plus = function()
        vector[index] = original - STEP
        minus = function()
        vector[index] = original
        gradient[index] = (plus - minus) / (2 * STEP)
    return gradient


def random_targets(loss: str, n_rows: int, n_outputs: int, rng: np.random.Generator):
    if loss == "softmax_cross_entropy":
        return np.eye(n_outputs)[rng.integers(0, n_outputs, n_rows)]
    if loss == "sigmoid_cross_entropy":
        return rng.integers(0, 2, (n_rows, n_outputs)).astype(np.float64)
    return rng.standard_normal((n_rows, n_outputs))


def set_parameters_away_from_zero(network: Network, rng: np.random.Generator) -> None:
    """Magnitudes in [0.2, 0.8] with random signs: no parameter near the L1 kink at 0."""
    size = network.parameters.size
    signs = rng.choice([-1.0, 1.0], size)
    network.set_parameters(signs * rng.uniform(0.2, 0.8, size))


def hidden_pre_activations(network: Network, inputs) -> list[np.ndarray]:
    """Pre-activations of every hidden layer, recomputed independently of the network code."""
    values = inputs.toarray() if sp.issparse(inputs) else np.asarray(inputs)
    result = []
    for dense in network.dense_layers[:-1]:
        z = values @ dense.weights + dense.biases
        result.append(z)
        values = ACTIVATIONS[network.activation](z.copy())
    return result


def assert_away_from_kinks(network: Network, inputs) -> None:
    if network.activation in ("relu", "leaky_relu"):
        pre_activations = hidden_pre_activations(network, inputs)
        smallest = min(np.abs(z).min() for z in pre_activations)
        assert smallest > KINK_MARGIN, f"a pre-activation is {smallest:g}, too close to the kink"
        # both branches of the activation are exercised
        assert all((z > 0).any() and (z < 0).any() for z in pre_activations)
    l1 = any(d.weight_l1 or d.bias_l1 for d in network.dense_layers)
    if l1:
        assert np.abs(network.parameters).min() > KINK_MARGIN


def total_loss(network: Network, inputs, targets, sample_weight=None) -> float:
    """What training minimises, computed from the public pieces (fixed dropout mask)."""
    outputs = network.forward(inputs, training=True, rng=np.random.default_rng(MASK_SEED))
    per_sample = network.loss.per_sample(outputs, targets)
    if sample_weight is None:
        data = per_sample.mean()
    else:
        data = np.dot(per_sample, sample_weight) / sample_weight.sum()
    return float(data) + network.regularisation_loss()


def check_network(network: Network, inputs, targets, sample_weight=None) -> float:
    """Compare ``compute_gradients`` with finite differences, array by array, with
    :func:`nncv.network.check_gradients` (``tests/network/test_gradient_check.py`` checks
    the tool itself); return the worst relative difference."""
    assert_away_from_kinks(network, inputs)
    n_rows = inputs.shape[0]
    if sample_weight is None:
        scale = 1.0 / n_rows
    else:
        scale = (sample_weight / sample_weight.sum())[:, None]
    network.gradients[...] = np.nan  # compute_gradients must overwrite every entry
    network.compute_gradients(inputs, targets, scale, np.random.default_rng(MASK_SEED))
    assert np.isfinite(network.gradients).all()
    result = check_gradients(
        network,
        inputs,
        targets,
        sample_weight=sample_weight,
        step=STEP,
        threshold=TOLERANCE,
        random_state=MASK_SEED,
    )
    assert result.passed, result
    assert not any(array.zero for array in result), result  # every array really checked
    return result.worst


def make_network(
    *,
    hidden=(5, 4),
    n_outputs=3,
    activation="tanh",
    loss="softmax_cross_entropy",
    seed=0,
    **kwargs,
):
    rng = np.random.default_rng(seed)
    network = Network(
        N_INPUTS,
        list(hidden),
        n_outputs,
        activation=activation,
        loss=loss,
        dtype=np.float64,
        **kwargs,
    )
    set_parameters_away_from_zero(network, rng)
    inputs = rng.standard_normal((N_ROWS, N_INPUTS))
    targets = random_targets(loss, N_ROWS, n_outputs, rng)
    return network, inputs, targets, rng


# ---------------------------------------------------------------------- whole network
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation(activation):
    network, inputs, targets, _ = make_network(activation=activation, hidden=(6, 5, 4))
    check_network(network, inputs, targets)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss(loss):
    network, inputs, targets, _ = make_network(loss=loss, n_outputs=3)
    check_network(network, inputs, targets)


@pytest.mark.parametrize("loss", ["sigmoid_cross_entropy", "mse"])
def test_single_output_losses(loss):
    """One output column: binary classification, single-target regression."""
    network, inputs, targets, _ = make_network(loss=loss, n_outputs=1)
    check_network(network, inputs, targets)


@pytest.mark.parametrize("regulariser", ["weight_l1", "weight_l2", "bias_l1", "bias_l2"])
def test_each_regulariser_alone(regulariser):
    network, inputs, targets, _ = make_network(**{regulariser: [0.3, 0.05, 0.2]})
    assert network.regularisation_loss() > 0
    check_network(network, inputs, targets)


def test_all_regularisers_together_with_relu():
    network, inputs, targets, _ = make_network(
        activation="relu", weight_l1=0.01, weight_l2=0.02, bias_l1=0.03, bias_l2=0.04, seed=3
    )
    check_network(network, inputs, targets)


def test_regularisation_gradient_is_the_nnfs_formula():
    """``l1 * sign(p)`` and ``2 * l2 * p`` added to the data gradient, layer by layer."""
    network, inputs, targets, _ = make_network(
        weight_l1=0.1, weight_l2=0.2, bias_l1=0.3, bias_l2=0.4
    )
    plain, *_ = make_network()
    plain.set_parameters(network.parameters)
    network.compute_gradients(inputs, targets, 1.0 / N_ROWS)
    plain.compute_gradients(inputs, targets, 1.0 / N_ROWS)
    for dense, plain_dense in zip(network.dense_layers, plain.dense_layers, strict=True):
        w, b = dense.weights, dense.biases
        expected_w = plain_dense.weight_grad + 0.1 * np.sign(w) + 2 * 0.2 * w
        expected_b = plain_dense.bias_grad + 0.3 * np.sign(b) + 2 * 0.4 * b
        np.testing.assert_allclose(dense.weight_grad, expected_w, rtol=1e-12)
        np.testing.assert_allclose(dense.bias_grad, expected_b, rtol=1e-12)


def test_regularisation_applies_per_layer():
    """NNFS chapter 14 regularises the first layer only: the output layer adds nothing."""
    network, *_ = make_network(hidden=(5,), weight_l2=(0.5, 0.0), bias_l2=(0.5, 0.0))
    first, output = network.dense_layers
    expected = 0.5 * (np.sum(first.weights**2) + np.sum(first.biases**2))
    assert network.regularisation_loss() == pytest.approx(expected, rel=1e-12)


def test_no_hidden_layer():
    network, inputs, targets, _ = make_network(hidden=())
    check_network(network, inputs, targets)


def test_sample_weights():
    network, inputs, targets, rng = make_network(weight_l2=0.1)
    weights = rng.uniform(0.1, 3.0, N_ROWS)
    check_network(network, inputs, targets, sample_weight=weights)
    # and the weights matter: uniform weights give another gradient
    weighted = network.gradients.copy()
    network.compute_gradients(inputs, targets, 1.0 / N_ROWS)
    assert not np.allclose(weighted, network.gradients)


def test_integer_sample_weights_equal_repeated_rows():
    """A weight of 2 on a row is the same loss as that row twice."""
    network, inputs, targets, _ = make_network()
    weights = np.array([2.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0])
    network.compute_gradients(inputs, targets, (weights / weights.sum())[:, None])
    weighted = network.gradients.copy()
    repeat = np.repeat(np.arange(N_ROWS), weights.astype(int))
    network.compute_gradients(inputs[repeat], targets[repeat], 1.0 / len(repeat))
    np.testing.assert_allclose(weighted, network.gradients, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("stack_bias", [True, False], ids=["stacked-bias", "separate-bias"])
def test_first_layer_bias_folded_or_not(monkeypatch, stack_bias):
    """The first layer folds its bias into the product unless its input is much wider than
    its output; both ways give the finite-difference gradient and the same numbers."""
    import nncv.network.model as model

    if not stack_bias:
        monkeypatch.setattr(model, "STACKED_BIAS_MAX_WIDTH_RATIO", 0)
    network, inputs, targets, _ = make_network(activation="relu", hidden=(6,), seed=4)
    check_network(network, inputs, targets)
    assert (network._augmented is not None) is stack_bias
    gradients = network.gradients.copy()
    monkeypatch.setattr(model, "STACKED_BIAS_MAX_WIDTH_RATIO", 0 if stack_bias else 2)
    other = Network.from_config(network.get_config())
    other.set_parameters(network.parameters)
    other.compute_gradients(inputs, targets, 1.0 / N_ROWS)
    assert (other._augmented is not None) is not stack_bias
    np.testing.assert_allclose(other.gradients, gradients, rtol=1e-12, atol=1e-15)


def test_sparse_csr_input():
    rng = np.random.default_rng(5)
    dense_inputs = rng.standard_normal((N_ROWS, 12)) * (rng.random((N_ROWS, 12)) < 0.3)
    inputs = sp.csr_matrix(dense_inputs)
    network = Network(12, [5], 3, activation="tanh", dtype=np.float64, weight_l2=0.01)
    set_parameters_away_from_zero(network, rng)
    targets = random_targets("softmax_cross_entropy", N_ROWS, 3, rng)
    check_network(network, inputs, targets)
    sparse_gradient = network.gradients.copy()
    network.compute_gradients(dense_inputs, targets, 1.0 / N_ROWS)
    np.testing.assert_allclose(sparse_gradient, network.gradients, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_dropout_with_fixed_mask(activation):
    network, inputs, targets, _ = make_network(
        activation=activation, hidden=(8, 6), dropout=[0.4, 0.25], seed=11
    )
    check_network(network, inputs, targets)
    # the mask really drops units: the dropout loss differs from the inference loss
    outputs = network.forward(inputs).copy()
    inference = float(network.loss.per_sample(outputs, targets).mean())
    assert abs(total_loss(network, inputs, targets) - inference) > 1e-3


# ------------------------------------------------------------------- layers on their own
def bound_dense(n_inputs: int, n_outputs: int, rng: np.random.Generator) -> Dense:
    dense = Dense(n_inputs, n_outputs)
    dense.bind(np.empty(dense.n_parameters), np.empty(dense.n_parameters))
    dense.weights[...] = rng.standard_normal((n_inputs, n_outputs))
    dense.biases[...] = rng.standard_normal(n_outputs)
    return dense


@pytest.mark.parametrize("kind", ["dense", "csr", "stacked"])
def test_dense_backward_alone(kind):
    """For ``L = sum(upstream * (X W + b))``: dW, db and dX against finite differences
    (``stacked``: the bias folded into the product through a column of ones)."""
    rng = np.random.default_rng(1)
    dense = bound_dense(4, 3, rng)
    inputs = rng.standard_normal((5, 4))
    upstream = rng.standard_normal((5, 3))
    layer_inputs = sp.csr_matrix(inputs) if kind == "csr" else inputs

    def augmented() -> np.ndarray | None:
        if kind != "stacked":
            return None
        buffer = np.full((5, 5), np.nan)
        buffer[:, -1] = 1
        return buffer

    def loss() -> float:
        outputs = dense.forward(layer_inputs, np.empty((5, 3)), augmented())
        return float(np.sum(upstream * outputs))

    dense.forward(layer_inputs, np.empty((5, 3)), augmented())
    input_grad = dense.backward(upstream.copy(), np.empty((5, 4)))
    weight_grad, bias_grad = dense.weight_grad.copy(), dense.bias_grad.copy()

    assert (
        relative_error(weight_grad, numeric_gradient(loss, dense.weights.reshape(-1)).reshape(4, 3))
        < TOLERANCE
    )
    assert relative_error(bias_grad, numeric_gradient(loss, dense.biases)) < TOLERANCE

    def loss_of_inputs() -> float:
        return float(np.sum(upstream * dense.forward(inputs, np.empty((5, 3)))))

    numeric_input_grad = numeric_gradient(loss_of_inputs, inputs.reshape(-1)).reshape(5, 4)
    assert relative_error(input_grad, numeric_input_grad) < TOLERANCE


def test_dense_backward_without_input_gradient_buffer():
    """The first layer is given no buffer: it still fills dW and db and returns None."""
    rng = np.random.default_rng(2)
    dense = bound_dense(3, 2, rng)
    inputs = rng.standard_normal((4, 3))
    upstream = rng.standard_normal((4, 2))
    dense.forward(inputs, np.empty((4, 2)))
    assert dense.backward(upstream, None) is None
    np.testing.assert_allclose(dense.weight_grad, inputs.T @ upstream, rtol=1e-12)
    np.testing.assert_allclose(dense.bias_grad, upstream.sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_backward_alone(name):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((6, 5))
    z[np.abs(z) < 0.05] += 0.1  # away from the kink at 0
    upstream = rng.standard_normal((6, 5))
    layer = Activation(name)

    def loss() -> float:
        return float(np.sum(upstream * Activation(name).forward(z.copy())))

    layer.forward(z.copy())
    analytic = layer.backward(upstream.copy())
    numeric = numeric_gradient(loss, z.reshape(-1)).reshape(z.shape)
    assert relative_error(analytic, numeric) < TOLERANCE


def test_dropout_backward_alone_is_the_mask():
    rng = np.random.default_rng(4)
    inputs = rng.standard_normal((6, 5))
    upstream = rng.standard_normal((6, 5))
    layer = Dropout(0.5)

    def loss() -> float:
        out = layer.forward(inputs, np.empty((6, 5)), np.empty((6, 5)), np.random.default_rng(9))
        return float(np.sum(upstream * out))

    loss()
    analytic = layer.backward(upstream.copy())
    numeric = numeric_gradient(loss, inputs.reshape(-1)).reshape(inputs.shape)
    assert relative_error(analytic, numeric) < TOLERANCE


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_loss_gradient_alone(loss):
    """``gradient(output(z), y, scale)`` is the derivative of ``mean(per_sample)`` w.r.t. ``z``."""
    rng = np.random.default_rng(6)
    function = LOSSES[loss]
    logits = rng.standard_normal((5, 3))
    targets = random_targets(loss, 5, 3, rng)

    def mean_loss() -> float:
        return float(function.per_sample(function.output(logits.copy()), targets).mean())

    analytic = function.gradient(function.output(logits.copy()), targets, 1.0 / 5)
    numeric = numeric_gradient(mean_loss, logits.reshape(-1)).reshape(logits.shape)
    assert relative_error(analytic, numeric) < TOLERANCE


# ------------------------------------------------------------------------ against torch
def test_matches_torch_when_available():
    """An independent implementation (optional: skipped where torch is not installed)."""
    torch = pytest.importorskip("torch")
    network, inputs, targets, _ = make_network(
        activation="relu", hidden=(6,), weight_l2=(0.1, 0.0), bias_l2=(0.1, 0.0), seed=7
    )
    network.compute_gradients(inputs, targets, 1.0 / N_ROWS)
    first, output = network.dense_layers
    w1 = torch.tensor(first.weights.copy(), requires_grad=True)
    b1 = torch.tensor(first.biases.copy(), requires_grad=True)
    w2 = torch.tensor(output.weights.copy(), requires_grad=True)
    b2 = torch.tensor(output.biases.copy(), requires_grad=True)
    hidden = torch.relu(torch.tensor(inputs) @ w1 + b1)
    logits = hidden @ w2 + b2
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(targets.argmax(axis=1)))
    loss = loss + 0.1 * (w1**2).sum() + 0.1 * (b1**2).sum()
    loss.backward()
    expected = np.concatenate(
        [w1.grad.numpy().ravel(), b1.grad.numpy(), w2.grad.numpy().ravel(), b2.grad.numpy()]
    )
    np.testing.assert_allclose(network.gradients, expected, rtol=1e-10, atol=1e-12)
