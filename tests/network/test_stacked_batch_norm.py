"""Stacked training with batch normalisation: each fold equals that fold trained alone, bit
for bit.

As in ``test_stacked.py``, every test trains the same folds twice — each alone with
:meth:`Trainer.iter_epochs`, and all together with :class:`StackedTrainer` — from identical
set-ups and compares **exactly** (``np.array_equal`` on parameters, running statistics and
optimiser state, ``==`` on every history value). The batch-norm functions take a fold's
statistics over its own rows with the same NumPy calls per fold as a single network makes
(one ``np.matmul`` per fold, element-wise work), so nothing is merely close. Folds differ in
size (different numbers of batches, shorter last batches that run as smaller stacks).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from nncv.exceptions import ConfigurationError
from nncv.network import EarlyStopping, Network, Trainer, metrics, optimizers, schedules
from nncv.network import layers as layers_module
from nncv.network import model as model_module
from nncv.network import stacked as stacked_module
from nncv.network.layers import batch_norm_training
from nncv.network.stacked import StackedNetwork
from nncv.network.stacked_training import FoldData, StackedTrainer

N_ROWS, N_FEATURES = 240, 6
FOLD_ROWS = [np.arange(0, 180), np.arange(50, 240), np.arange(20, 203), np.arange(7, 172)]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_ROWS, N_FEATURES)) * [1, 3, 0.5, 2, 1, 4] + [0, 1, -2, 0, 3, 0]
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1.5)
    return X, np.eye(3)[labels]


def _trainer(fold, *, dtype=np.float64, hidden=(12, 10), batch_norm=True, dropout=0.0,
             optimizer=("adam", {}), schedule=None, batch_size=32, patience=None,
             momentum=0.9):  # fmt: skip
    network = Network(
        N_FEATURES, list(hidden), 3, dropout=dropout, dtype=dtype, weight_l2=1e-3,
        batch_norm=batch_norm, batch_norm_momentum=momentum,
    )  # fmt: skip
    network.initialize(np.random.default_rng(fold))
    name, params = optimizer
    optimizer = {"adam": optimizers.Adam, "sgd": optimizers.SGD}[name](**params)
    callbacks = [] if patience is None else [EarlyStopping(patience=patience)]
    return Trainer(
        network,
        optimizer,
        schedule or schedules.InverseTimeDecay(0.01, 1e-3),
        rng=np.random.default_rng(1000 + fold),
        batch_size=batch_size,
        score=metrics.accuracy,
        callbacks=callbacks,
    )


def _fold_data(X, Y, *, weights=None, dtype=np.float64, sparse=False):
    folds = []
    for rows in FOLD_ROWS:
        held_out = np.setdiff1d(np.arange(N_ROWS), rows)[:30]
        inputs = X[rows].astype(dtype)
        if sparse:
            inputs = sp.csr_matrix(np.where(np.abs(inputs) > 0.8, inputs, 0.0))
        folds.append(
            FoldData(inputs, Y[rows], None if weights is None else weights[rows],
                     (X[held_out], Y[held_out]))
        )  # fmt: skip
    return folds


def _alone(folds, n_epochs, **params):
    trainers = []
    for index, fold in enumerate(folds):
        trainer = _trainer(index, **params)
        for _ in trainer.iter_epochs(
            fold.inputs,
            fold.targets,
            n_epochs=n_epochs,
            sample_weight=fold.sample_weight,
            validation_data=fold.validation_data,
        ):
            pass
        trainers.append(trainer)
    return trainers


def _stacked(folds, n_epochs, max_stack=None, **params):
    trainers = [_trainer(index, **params) for index in range(len(folds))]
    with StackedTrainer(trainers, folds, max_stack=max_stack) as stack:
        epochs = list(stack.advance(n_epochs))
    return trainers, epochs, stack


def _assert_same(alone, stacked):
    for fold, (a, b) in enumerate(zip(alone, stacked, strict=True)):
        assert a.epochs_done == b.epochs_done, fold
        assert len(a.history) == len(b.history), fold
        for record_a, record_b in zip(a.history, b.history, strict=True):
            assert record_a.keys() == record_b.keys()
            for key, value in record_a.items():
                other = record_b[key]
                assert value == other or (math.isnan(value) and math.isnan(other)), (fold, key)
        assert np.array_equal(a.network.parameters, b.network.parameters), fold
        assert np.array_equal(a.network.running_statistics, b.network.running_statistics), fold
        assert a.optimizer.iterations == b.optimizer.iterations, fold
        for slot, values in a.optimizer.state.items():
            assert np.array_equal(values[0], b.optimizer.state[slot][0]), (fold, slot)
        assert a.rng.bit_generator.state == b.rng.bit_generator.state, fold


def _assert_statistics_trained(trainers):
    """The running statistics moved away from their start (mean 0, variance 1)."""
    for trainer in trainers:
        statistics = trainer.network.running_statistics
        assert statistics.size and not np.allclose(statistics[: statistics.size // 2], 0)


@pytest.mark.parametrize("batch_size", [32, None])  # mini-batches; each fold's whole set
def test_batch_norm_with_dropout_matches_folds_trained_alone(batch_size):
    X, Y = _data()
    folds = _fold_data(X, Y)
    params = {"dropout": 0.2, "batch_size": batch_size}
    alone = _alone(folds, 4, **params)
    stacked, epochs, _ = _stacked(folds, 4, **params)
    _assert_same(alone, stacked)
    _assert_statistics_trained(stacked)
    assert [record["epoch"] for record in epochs[-1]] == [4, 4, 4, 4]


def test_batch_norm_with_sample_weights_matches_including_a_batch_without_weight():
    X, Y = _data()
    weights = np.random.default_rng(3).uniform(0.0, 2.0, N_ROWS)
    weights[FOLD_ROWS[1][10:40]] = 0.0  # some batches of fold 1 weigh nothing: skipped
    folds = _fold_data(X, Y, weights=weights)
    params = {"batch_size": 8, "optimizer": ("sgd", {"momentum": 0.9})}
    alone = _alone(folds, 3, **params)
    stacked = _stacked(folds, 3, **params)[0]
    _assert_same(alone, stacked)
    # the weights really weighted the batch statistics: unweighted training differs
    unweighted = _stacked(_fold_data(X, Y, weights=np.ones(N_ROWS)), 3, **params)[0]
    assert not np.array_equal(
        stacked[0].network.running_statistics, unweighted[0].network.running_statistics
    )


def test_batch_norm_early_stopping_restores_each_folds_best_parameters_and_statistics():
    X, Y = _data()
    folds = _fold_data(X, Y)
    params = {"schedule": schedules.InverseTimeDecay(0.2), "patience": 2, "hidden": (24,)}
    alone = _alone(folds, 40, **params)
    stacked, epochs, stack = _stacked(folds, 40, **params)
    _assert_same(alone, stacked)
    lengths = sorted(len(t.history) for t in alone)
    assert lengths[0] < lengths[-1] < 40, "the folds must stop at different epochs"
    assert len(epochs) == lengths[-1]
    for fold, trainer in enumerate(stacked):
        stopper = trainer.callbacks[0]
        assert stopper.best_epoch < len(trainer.history)
        assert all(records[fold] is None for records in epochs[len(trainer.history) :])
        assert np.array_equal(trainer.network.parameters, stopper.best_parameters)
        assert np.array_equal(trainer.network.running_statistics, stopper.best_running_statistics)
    assert stack.running == [False] * 4


@pytest.mark.parametrize("batch_norm", [(True, False), (False, True)])
def test_batch_norm_per_layer_flags_match(batch_norm):
    X, Y = _data()
    folds = _fold_data(X, Y)
    params = {"batch_norm": batch_norm, "dropout": 0.1, "momentum": 0.7}
    alone = _alone(folds, 3, **params)
    stacked = _stacked(folds, 3, **params)[0]
    _assert_same(alone, stacked)
    assert stacked[0].network.running_statistics.size == 2 * (12 if batch_norm[0] else 10)


def test_batch_norm_float32_matches():
    X, Y = _data()
    folds = _fold_data(X, Y, dtype=np.float32)
    params = {"dtype": np.float32, "batch_size": 16, "dropout": 0.2}
    alone = _alone(folds, 3, **params)
    stacked = _stacked(folds, 3, **params)[0]
    assert stacked[0].network.running_statistics.dtype == np.float32
    _assert_same(alone, stacked)


@pytest.mark.parametrize("max_stack", [1, 3])
def test_batch_norm_any_stack_size_and_sparse_inputs_match(max_stack):
    X, Y = _data()
    folds = _fold_data(X, Y, sparse=True)
    params = {"dropout": 0.1}
    alone = _alone(folds, 3, **params)
    trainers, _, stack = _stacked(folds, 3, max_stack=max_stack, **params)
    assert stack.max_stack == max_stack
    _assert_same(alone, trainers)


def test_statistics_pooled_over_folds_or_padding_rows_would_be_caught(monkeypatch):
    # The comparison above is sensitive to where batch statistics come from: a stack that
    # pooled its folds' rows into one statistic (or counted padding rows) trains differently.
    def pooled(inputs, gamma, beta, row_scale, epsilon, out):
        if inputs.ndim == 3 and type(row_scale) is float:
            n_stack, n_rows, width = inputs.shape
            flat = inputs.reshape(1, n_stack * n_rows, width)
            mean, variance, inverse_std = batch_norm_training(
                flat, np.ones(width), np.zeros(width), 1.0 / (n_stack * n_rows), epsilon,
                out.reshape(flat.shape),
            )  # fmt: skip
            out[...] = inputs * gamma[:, None, :] + beta[:, None, :]
            return tuple(np.repeat(m, n_stack, axis=0) for m in (mean, variance, inverse_std))
        return batch_norm_training(inputs, gamma, beta, row_scale, epsilon, out)

    monkeypatch.setattr(layers_module, "batch_norm_training", pooled)  # 3-D inputs: the stack
    X, Y = _data()
    folds = _fold_data(X, Y)
    alone = _alone(folds, 1)
    stacked = _stacked(folds, 1)[0]
    with pytest.raises(AssertionError):
        _assert_same(alone, stacked)


@pytest.mark.parametrize("sparse", [False, True])
def test_stacked_predict_with_batch_norm_equals_each_network_predict(monkeypatch, sparse):
    monkeypatch.setattr(stacked_module, "PREDICT_CHUNK_ROWS", 16)
    monkeypatch.setattr(model_module, "PREDICT_CHUNK_ROWS", 16)
    rng = np.random.default_rng(7)
    networks = []
    for seed in range(3):
        network = Network(
            N_FEATURES, [9, 5], 2, loss="sigmoid_cross_entropy", dropout=0.5,
            batch_norm=(True, True),
        )  # fmt: skip
        network.initialize(np.random.default_rng(seed))
        # trained-looking gamma, beta and running statistics, different per network
        for name, where, _ in network.parameter_layout():
            if name.startswith("batch_norm"):
                network.parameters[where] = rng.uniform(0.5, 1.5, where.stop - where.start)
        statistics = rng.uniform(0.2, 2.0, network.running_statistics.size)
        network.set_running_statistics(statistics)
        networks.append(network)
    stack = StackedNetwork(networks[0], 3)
    stack.load_networks(networks)
    inputs = rng.normal(size=(50, N_FEATURES))
    if sparse:
        inputs = sp.csr_matrix(np.where(inputs > 0.5, inputs, 0.0))
    outputs = stack.predict(inputs)
    assert outputs.shape == (3, 50, 2)
    for row, network in enumerate(networks):
        assert np.array_equal(outputs[row], network.predict(inputs))
    # the running statistics are used: the stack's own rows changed, its outputs change
    stack.running_statistics[1] += 0.5
    assert not np.array_equal(stack.predict(inputs)[1], outputs[1])


def test_stacked_network_lays_batch_norm_out_as_a_single_network():
    template = Network(N_FEATURES, [4, 3], 2, batch_norm=(True, True))
    stack = StackedNetwork(template, 2)
    assert stack.parameters.shape == (2, template.parameters.size)
    assert stack.running_statistics.shape == (2, template.running_statistics.size)
    layout = dict((name, where) for name, where, _ in template.parameter_layout())
    batch_norms = [layer for kind, layer in stack._layers if kind == "batch_norm"]
    stack.parameters[...] = np.arange(stack.parameters.size).reshape(stack.parameters.shape)
    for index, layer in enumerate(batch_norms):
        assert np.array_equal(layer.gamma, stack.parameters[:, layout[f"batch_norm_{index}.gamma"]])
        assert np.array_equal(layer.beta, stack.parameters[:, layout[f"batch_norm_{index}.beta"]])


def test_load_networks_refuses_a_wrong_count_or_configuration():
    template = Network(N_FEATURES, [4], 2, batch_norm=True)
    stack = StackedNetwork(template, 2)
    with pytest.raises(ConfigurationError, match="holds 2 networks, got 1"):
        stack.load_networks([template])
    other = Network(N_FEATURES, [4], 2, batch_norm=False)
    with pytest.raises(ConfigurationError, match="network 1's configuration differs"):
        stack.load_networks([template, other])
