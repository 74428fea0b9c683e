"""Batch normalisation: the layer's gradients (float64 finite differences, training mode),
weighted batch statistics, running statistics, inference row by row, early stopping that
restores the running statistics, float32, sparse input, dropout and the network layout."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import nncv.network.layers as layers
from nncv.exceptions import ConfigurationError
from nncv.network import (
    BatchNorm,
    EarlyStopping,
    Network,
    Trainer,
    check_gradients,
    optimizers,
    schedules,
)

from .test_gradients import numeric_gradient, random_targets, relative_error

TOLERANCE = 1e-6


def bound_batch_norm(width: int, rng: np.random.Generator, momentum: float = 0.9) -> BatchNorm:
    layer = BatchNorm(width, momentum=momentum)
    layer.bind(np.empty(2 * width), np.empty(2 * width), np.empty(2 * width))
    layer.initialize()
    layer.gamma[...] = rng.uniform(0.5, 2.0, width)
    layer.beta[...] = rng.normal(size=width)
    return layer


# ------------------------------------------------------------------ the layer on its own
@pytest.mark.parametrize("weighted", [False, True], ids=["uniform", "weighted"])
def test_layer_backward_matches_finite_differences_in_training_mode(weighted):
    """For ``L = sum(upstream * BN(z))``: dgamma, dbeta and dz against central differences
    (float64), the batch statistics recomputed in every perturbed pass."""
    rng = np.random.default_rng(0)
    n_rows, width = 6, 4
    layer = bound_batch_norm(width, rng)
    z = rng.normal(size=(n_rows, width)) * 3 + 1
    upstream = rng.normal(size=(n_rows, width))
    row_scale = None
    if weighted:
        weights = rng.uniform(0.2, 3.0, n_rows)
        row_scale = (weights / weights.sum())[:, None]

    def loss() -> float:
        out = layer.forward(z.copy(), np.empty_like(z), training=True, row_scale=row_scale)
        return float(np.sum(upstream * out))

    work = z.copy()
    layer.forward(work, np.empty_like(z), training=True, row_scale=row_scale)
    input_grad = layer.backward(upstream.copy(), np.empty_like(z))
    gamma_grad, beta_grad = layer.gamma_grad.copy(), layer.beta_grad.copy()

    assert relative_error(gamma_grad, numeric_gradient(loss, layer.gamma)) < TOLERANCE
    assert relative_error(beta_grad, numeric_gradient(loss, layer.beta)) < TOLERANCE
    numeric_input_grad = numeric_gradient(loss, z.reshape(-1)).reshape(z.shape)
    assert relative_error(input_grad, numeric_input_grad) < TOLERANCE
    # the batch statistics matter: treating them as constants gives another input gradient
    naive = upstream * layer.gamma / np.sqrt(z.var(axis=0) + layer.epsilon)
    assert relative_error(naive, numeric_input_grad) > 1e-2


def test_training_output_is_normalised_then_scaled_and_shifted():
    rng = np.random.default_rng(1)
    layer = bound_batch_norm(3, rng)
    z = rng.normal(size=(50, 3)) * [1.0, 10.0, 0.1] + [5.0, -2.0, 0.0]
    expected = (z - z.mean(0)) / np.sqrt(z.var(0) + layer.epsilon) * layer.gamma + layer.beta
    out = layer.forward(z.copy(), np.empty_like(z), training=True)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_weighted_statistics_equal_repeated_rows():
    """A weight of 2 on a row is that row twice, in the statistics as in the loss."""
    rng = np.random.default_rng(2)
    network = Network(4, [5, 3], 3, activation="tanh", dtype=np.float64, batch_norm=True)
    network.initialize(rng)
    inputs = rng.normal(size=(6, 4))
    targets = random_targets("softmax_cross_entropy", 6, 3, rng)
    weights = np.array([2.0, 1.0, 3.0, 1.0, 1.0, 2.0])
    network.compute_gradients(inputs, targets, (weights / weights.sum())[:, None])
    weighted, weighted_statistics = network.gradients.copy(), network.running_statistics.copy()
    repeat = np.repeat(np.arange(6), weights.astype(int))
    other = Network.from_config(network.get_config())  # fresh running statistics
    other.set_parameters(network.parameters)
    other.compute_gradients(inputs[repeat], targets[repeat], 1.0 / len(repeat))
    np.testing.assert_allclose(other.gradients, weighted, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(other.running_statistics, weighted_statistics, rtol=1e-12)


def test_running_statistics_follow_the_momentum_formula():
    rng = np.random.default_rng(3)
    layer = bound_batch_norm(4, rng, momentum=0.8)
    batches = [rng.normal(size=(10, 4)) * 2 + 3 for _ in range(3)]
    mean, variance = np.zeros(4), np.ones(4)
    for batch in batches:
        layer.forward(batch.copy(), np.empty_like(batch), training=True)
        mean = 0.8 * mean + 0.2 * batch.mean(0)
        variance = 0.8 * variance + 0.2 * batch.var(0)
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_variance, variance, rtol=1e-12)
    # inference uses them, not the batch's statistics
    batch = batches[0]
    expected = (batch - mean) / np.sqrt(variance + layer.epsilon) * layer.gamma + layer.beta
    out = layer.forward(batch.copy(), np.empty_like(batch), training=False)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_layer_checks():
    with pytest.raises(ConfigurationError, match="momentum"):
        BatchNorm(3, momentum=1.0)
    with pytest.raises(ConfigurationError, match="epsilon"):
        BatchNorm(3, epsilon=0.0)
    layer = bound_batch_norm(2, np.random.default_rng(0))
    layer.forward(np.ones((3, 2)), np.empty((3, 2)), training=False)
    with pytest.raises(ConfigurationError, match="training mode"):
        layer.backward(np.ones((3, 2)), np.empty((3, 2)))


# ------------------------------------------------------------------------ in a network
def bn_network(**kwargs) -> tuple[Network, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(kwargs.pop("seed", 0))
    kwargs.setdefault("dtype", np.float64)
    network = Network(4, kwargs.pop("hidden", [6, 5]), 3, batch_norm=True, **kwargs)
    network.initialize(rng)
    network.set_parameters(network.parameters + rng.normal(scale=0.1, size=network.parameters.size))
    inputs = rng.normal(size=(9, 4))
    return network, inputs, random_targets("softmax_cross_entropy", 9, 3, rng)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"activation": "tanh"},
        {"activation": "sigmoid", "weight_l2": 0.05, "bias_l2": 0.05},
        {"activation": "tanh", "dropout": 0.3},
        {"activation": "tanh", "hidden": [6, 5, 4], "batch_norm": [True, False, True]},
    ],
    ids=["tanh", "sigmoid-l2", "dropout", "some-layers"],
)
def test_network_gradients_with_batch_norm(kwargs):
    flags = kwargs.pop("batch_norm", None)
    network, inputs, targets = bn_network(**kwargs)
    if flags is not None:
        network = Network.from_config({**network.get_config(), "batch_norm": flags})
        network.initialize(np.random.default_rng(1))
    result = check_gradients(network, inputs, targets)
    assert result.passed, result
    names = [a.name for a in result]
    assert sum(name.startswith("batch_norm") for name in names) == 2 * sum(network.batch_norm)


def test_network_gradients_with_batch_norm_sample_weights_and_sparse_input():
    rng = np.random.default_rng(4)
    dense = rng.normal(size=(9, 12)) * (rng.random((9, 12)) < 0.4)
    network = Network(12, [5], 3, activation="tanh", dtype=np.float64, batch_norm=True)
    network.initialize(rng)
    targets = random_targets("softmax_cross_entropy", 9, 3, rng)
    weights = rng.uniform(0.2, 2.0, 9)
    result = check_gradients(network, sp.csr_matrix(dense), targets, sample_weight=weights)
    assert result.passed, result


def test_layout_puts_gamma_and_beta_after_the_dense_layers():
    plain = Network(4, [6, 5], 3)
    network = Network(4, [6, 5], 3, batch_norm=[False, True])
    assert network.parameters.size == plain.parameters.size + 2 * 5
    assert network.running_statistics.size == 2 * 5
    assert plain.running_statistics.size == 0
    layout = network.parameter_layout()
    assert [name for name, _, _ in layout][-2:] == ["batch_norm_1.gamma", "batch_norm_1.beta"]
    assert layout[-2][1] == slice(plain.parameters.size, plain.parameters.size + 5)
    network.initialize(np.random.default_rng(0))
    layer = network.batch_norm_layers[0]
    assert np.shares_memory(layer.gamma, network.parameters)
    assert np.shares_memory(layer.running_variance, network.running_statistics)
    np.testing.assert_array_equal(network.parameters[-10:], [1] * 5 + [0] * 5)
    np.testing.assert_array_equal(network.running_statistics, [0] * 5 + [1] * 5)
    with pytest.raises(ConfigurationError, match="one bool per hidden layer"):
        Network(4, [6, 5], 3, batch_norm=[True])


def test_gamma_and_beta_are_not_regularised():
    network = Network(3, [4], 2, batch_norm=True, weight_l2=0.5, bias_l2=0.5, dtype=np.float64)
    network.initialize(np.random.default_rng(0))
    before = network.regularisation_loss()
    network.batch_norm_layers[0].gamma[...] = 7.0
    assert network.regularisation_loss() == before


def train(network: Network, inputs, targets, n_epochs: int, callbacks=(), validation=None):
    trainer = Trainer(
        network,
        optimizers.SGD(momentum=0.0),
        schedules.InverseTimeDecay(0.5),
        rng=np.random.default_rng(0),
        batch_size=8,
        callbacks=callbacks,
    )
    return list(trainer.iter_epochs(inputs, targets, n_epochs=n_epochs, validation_data=validation))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inference_does_not_depend_on_the_batch(dtype):
    rng = np.random.default_rng(5)
    inputs = rng.normal(size=(40, 4)) * 5 + 2
    targets = np.eye(3)[rng.integers(0, 3, 40)]
    network = Network(4, [8, 6], 3, batch_norm=True, dropout=0.2, dtype=dtype)
    network.initialize(rng)
    train(network, inputs, targets, 3)
    assert network.running_statistics.dtype == dtype and network.parameters.dtype == dtype
    whole = network.predict(inputs)
    one_by_one = np.vstack([network.predict(inputs[i : i + 1]) for i in range(40)])
    reversed_order = network.predict(inputs[::-1])[::-1]
    # equal up to BLAS's blocking of a product by the number of rows (plain networks too)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(whole, one_by_one, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(whole, reversed_order, rtol=tolerance, atol=tolerance)
    # whereas in training mode a row's output depends on its batch
    first = network.forward(inputs[:10], training=True, rng=np.random.default_rng(0))[0].copy()
    other = network.forward(inputs[:20], training=True, rng=np.random.default_rng(0))[0].copy()
    assert np.abs(first - other).max() > 1e-5


def test_early_stopping_restores_the_best_epochs_running_statistics():
    rng = np.random.default_rng(6)
    inputs = rng.normal(size=(30, 4))
    targets = np.eye(3)[rng.integers(0, 3, 30)]  # noise: the validation loss soon rises
    validation = (rng.normal(size=(30, 4)), np.eye(3)[rng.integers(0, 3, 30)])
    network = Network(4, [32], 3, batch_norm=True, dtype=np.float64)
    network.initialize(rng)
    snapshots = {}

    class Snapshot(EarlyStopping):
        def on_epoch_end(self, trainer, record):
            snapshots[record["epoch"]] = (
                trainer.network.parameters.copy(),
                trainer.network.running_statistics.copy(),
            )
            super().on_epoch_end(trainer, record)

    stopper = Snapshot(patience=3)
    records = train(network, inputs, targets, 100, [stopper], validation)
    best, last = stopper.best_epoch, records[-1]["epoch"]
    assert best < last
    np.testing.assert_array_equal(network.parameters, snapshots[best][0])
    np.testing.assert_array_equal(network.running_statistics, snapshots[best][1])
    assert not np.array_equal(network.running_statistics, snapshots[last][1])


def test_pickle_state_keeps_running_statistics():
    network, inputs, targets = bn_network()
    network.compute_gradients(inputs, targets, 1.0 / len(inputs))
    state = network.__getstate__()
    again = Network.__new__(Network)
    again.__setstate__(state)
    np.testing.assert_array_equal(again.running_statistics, network.running_statistics)
    np.testing.assert_array_equal(again.predict(inputs), network.predict(inputs))


def test_matches_torch_batch_norm_when_available():
    """Gradients of Dense → BatchNorm → ReLU → Dense → softmax CE against PyTorch's autograd
    (``torch.nn.functional.batch_norm`` in training mode), and the running mean."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    network = Network(4, [6], 3, activation="relu", dtype=np.float64, batch_norm=True)
    network.initialize(rng)
    layer = network.batch_norm_layers[0]
    layer.gamma[...] = rng.uniform(0.5, 1.5, 6)
    layer.beta[...] = rng.normal(size=6)
    inputs = rng.normal(size=(10, 4))
    labels = rng.integers(0, 3, 10)
    network.compute_gradients(inputs, np.eye(3)[labels], 1.0 / 10)
    first, output = network.dense_layers
    leaves = [
        torch.tensor(array.copy(), requires_grad=True)
        for array in (first.weights, first.biases, output.weights, output.biases)
    ]
    gamma = torch.tensor(layer.gamma.copy(), requires_grad=True)
    beta = torch.tensor(layer.beta.copy(), requires_grad=True)
    running_mean, running_var = (
        torch.zeros(6, dtype=torch.float64),
        torch.ones(6, dtype=torch.float64),
    )
    w1, b1, w2, b2 = leaves
    z = torch.tensor(inputs) @ w1 + b1
    normalised = torch.nn.functional.batch_norm(
        z, running_mean, running_var, gamma, beta, training=True, momentum=0.1, eps=1e-5
    )
    logits = torch.relu(normalised) @ w2 + b2
    torch.nn.functional.cross_entropy(logits, torch.tensor(labels)).backward()
    expected = np.concatenate([t.grad.numpy().ravel() for t in (*leaves, gamma, beta)])
    np.testing.assert_allclose(network.gradients, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.running_mean, running_mean.numpy(), rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True], ids=["uniform", "weighted"])
def test_pure_functions_stack_over_a_leading_fold_axis(weighted):
    """(k, n_rows, width) values with (k, width) gamma and beta give each fold's numbers."""
    rng = np.random.default_rng(8)
    k, n_rows, width = 3, 7, 4
    z = rng.normal(size=(k, n_rows, width)) * 2 + 1
    gamma, beta = rng.uniform(0.5, 2, (k, width)), rng.normal(size=(k, width))
    upstream = rng.normal(size=(k, n_rows, width))
    scale = 1.0 / n_rows
    if weighted:
        weights = rng.uniform(0.2, 2.0, (k, n_rows, 1))
        scale = weights / weights.sum(axis=1, keepdims=True)
    stacked_z, out = z.copy(), np.empty_like(z)
    _, _, inverse_std = layers.batch_norm_training(stacked_z, gamma, beta, scale, 1e-5, out)
    gamma_grad, beta_grad = np.empty((k, width)), np.empty((k, width))
    grad = layers.batch_norm_backward(
        upstream.copy(),
        stacked_z,
        gamma,
        inverse_std,
        scale,
        gamma_grad,
        beta_grad,
        np.empty_like(z),
    )
    inference = layers.batch_norm_inference(
        z.copy(), gamma, beta, z.mean(axis=1), z.var(axis=1), 1e-5
    )
    for fold in range(k):
        fold_scale = scale[fold] if weighted else scale
        fold_z, fold_out = z[fold].copy(), np.empty((n_rows, width))
        *_, fold_inverse_std = layers.batch_norm_training(
            fold_z, gamma[fold], beta[fold], fold_scale, 1e-5, fold_out
        )
        np.testing.assert_allclose(out[fold], fold_out, rtol=1e-12, atol=1e-12)
        fold_gamma_grad, fold_beta_grad = np.empty(width), np.empty(width)
        fold_grad = layers.batch_norm_backward(
            upstream[fold].copy(),
            fold_z,
            gamma[fold],
            fold_inverse_std,
            fold_scale,
            fold_gamma_grad,
            fold_beta_grad,
            np.empty((n_rows, width)),
        )
        np.testing.assert_allclose(grad[fold], fold_grad, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gamma_grad[fold], fold_gamma_grad, rtol=1e-12)
        np.testing.assert_allclose(beta_grad[fold], fold_beta_grad, rtol=1e-12)
        fold_inference = layers.batch_norm_inference(
            z[fold].copy(), gamma[fold], beta[fold], z[fold].mean(0), z[fold].var(0), 1e-5
        )
        np.testing.assert_allclose(inference[fold], fold_inference, rtol=1e-12)
