"""Stacked training: each fold of a stack equals that fold trained alone, bit for bit.

Every test trains the same folds twice — each alone with :meth:`Trainer.iter_epochs`, and all
together with :class:`StackedTrainer` — from identical set-ups (same initial weights, same
generators) and compares the results **exactly** (``np.array_equal`` on parameters and
optimiser state, ``==`` on every history value): the stack makes the same NumPy calls per fold
(``np.matmul`` over the fold axis calls the same BLAS routine per fold as ``np.dot``, and the
element-wise work is element-wise), so nothing is merely close. Folds differ in size here
(different numbers of batches, different last batches) unless a test says otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from nncv.exceptions import ConfigurationError
from nncv.network import (
    EarlyStopping,
    Network,
    Trainer,
    metrics,
    optimizers,
    schedules,
    stacked_training,
)
from nncv.network import model as model_module
from nncv.network import stacked as stacked_module
from nncv.network.stacked import StackedNetwork
from nncv.network.stacked_training import FoldData, StackedTrainer
from nncv.network.training import IndexedRows

N_ROWS, N_FEATURES = 240, 6
FOLD_ROWS = [np.arange(0, 180), np.arange(50, 240), np.arange(20, 203), np.arange(7, 172)]


def _data(n_outputs=3, kind="multiclass", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_ROWS, N_FEATURES))
    if kind == "multiclass":
        labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
        Y = np.eye(n_outputs)[labels]
    elif kind == "multilabel":
        Y = (X[:, :n_outputs] + 0.3 * rng.normal(size=(N_ROWS, n_outputs)) > 0).astype(float)
    else:
        Y = X[:, :n_outputs] @ rng.normal(size=(n_outputs, n_outputs)) + 0.1 * rng.normal(
            size=(N_ROWS, n_outputs)
        )
    return X, Y


def _trainer(fold, *, dtype=np.float64, hidden=(12,), n_outputs=3, loss="softmax_cross_entropy",
             dropout=0.0, optimizer=("adam", {}), schedule=None, batch_size=32, l1=0.0, l2=1e-3,
             patience=None, score=metrics.accuracy):  # fmt: skip
    network = Network(
        N_FEATURES, list(hidden), n_outputs, loss=loss, dropout=dropout, dtype=dtype,
        weight_l1=l1, weight_l2=l2, bias_l2=l2 / 2,
    )  # fmt: skip
    network.initialize(np.random.default_rng(fold))
    name, params = optimizer
    optimizer = {
        "adam": optimizers.Adam, "sgd": optimizers.SGD, "adagrad": optimizers.Adagrad,
        "rmsprop": optimizers.RMSprop,
    }[name](**params)  # fmt: skip
    callbacks = [] if patience is None else [EarlyStopping(patience=patience)]
    return Trainer(
        network,
        optimizer,
        schedule or schedules.InverseTimeDecay(0.01, 1e-3),
        rng=np.random.default_rng(1000 + fold),
        batch_size=batch_size,
        score=score,
        callbacks=callbacks,
    )


def _fold_data(X, Y, *, weights=None, inputs="dense", validation=True, dtype=np.float64):
    folds = []
    for rows in FOLD_ROWS:
        if inputs == "dense":
            fold_inputs = X[rows]
        elif inputs == "sparse":
            fold_inputs = sp.csr_matrix(np.where(np.abs(X[rows]) > 0.8, X[rows], 0.0))
        else:  # rows of X read by index, scaled as they are read
            fold_inputs = IndexedRows(X, rows, lambda v: (v - 0.1) * 1.5, np.dtype(dtype))
        validation_data = None
        if validation:
            held_out = np.setdiff1d(np.arange(N_ROWS), rows)[:30]
            validation_data = (X[held_out], Y[held_out])
        folds.append(
            FoldData(fold_inputs, Y[rows], None if weights is None else weights[rows],
                     validation_data)
        )  # fmt: skip
    return folds


def _alone(folds, n_epochs, **trainer_params):
    trainers = []
    for index, fold in enumerate(folds):
        trainer = _trainer(index, **trainer_params)
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


def _stacked(folds, n_epochs, max_stack=None, **trainer_params):
    trainers = [_trainer(index, **trainer_params) for index in range(len(folds))]
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
        assert a.optimizer.iterations == b.optimizer.iterations, fold
        for slot, values in a.optimizer.state.items():
            assert np.array_equal(values[0], b.optimizer.state[slot][0]), (fold, slot)
        # the generators were drawn from exactly as often
        assert a.rng.bit_generator.state == b.rng.bit_generator.state, fold


@pytest.mark.parametrize(
    "optimizer",
    [
        ("sgd", {}),
        ("sgd", {"momentum": 0.9}),
        ("sgd", {"momentum": 0.8, "nesterov": True}),
        ("adagrad", {}),
        ("rmsprop", {"rho": 0.8}),
        ("adam", {"beta_1": 0.85}),
    ],
)
@pytest.mark.parametrize(
    "schedule",
    [
        schedules.InverseTimeDecay(0.02, 1e-2),
        schedules.ExponentialDecay(0.02, 0.002, 5),
        schedules.LinearDecay(0.02, 0.001, 5),
    ],
    ids=["inverse_time", "exponential", "linear"],
)
def test_every_optimizer_and_schedule_matches_folds_trained_alone(optimizer, schedule):
    X, Y = _data()
    folds = _fold_data(X, Y)
    params = {"optimizer": optimizer, "schedule": schedule, "dropout": 0.2}
    alone = _alone(folds, 5, **params)
    stacked, epochs, _ = _stacked(folds, 5, **params)
    _assert_same(alone, stacked)
    assert len(epochs) == 5
    assert [record["epoch"] for record in epochs[-1]] == [5, 5, 5, 5]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_deep_network_with_l1_l2_matches(dtype):
    X, Y = _data()
    folds = _fold_data(X, Y, dtype=dtype)
    params = {"dtype": dtype, "hidden": (10, 8), "dropout": 0.3, "l1": 1e-3, "l2": 1e-3}
    _assert_same(_alone(folds, 4, **params), _stacked(folds, 4, **params)[0])


def test_sample_weights_match_including_a_batch_without_weight():
    X, Y = _data()
    weights = np.random.default_rng(3).uniform(0.0, 2.0, N_ROWS)
    weights[FOLD_ROWS[1][10:]] = 0.0  # most batches of fold 1 weigh nothing: skipped
    folds = _fold_data(X, Y, weights=weights)
    params = {"batch_size": 8, "dropout": 0.1}
    alone = _alone(folds, 3, **params)
    _assert_same(alone, _stacked(folds, 3, **params)[0])
    # fold 1 really skipped batches: it took fewer steps than its batch count
    assert alone[1].optimizer.iterations < 3 * math.ceil(len(FOLD_ROWS[1]) / 8)


@pytest.mark.parametrize("weight_dtype", [np.float32, np.int64])
def test_float32_and_integer_sample_weights_match(weight_dtype):
    X, Y = _data()
    weights = np.random.default_rng(4).integers(0, 4, N_ROWS).astype(weight_dtype)
    folds = _fold_data(X, Y, weights=weights, dtype=np.float32)
    params = {"dtype": np.float32, "batch_size": 16}
    _assert_same(_alone(folds, 2, **params), _stacked(folds, 2, **params)[0])


def test_sparse_inputs_match():
    X, Y = _data()
    folds = _fold_data(X, Y, inputs="sparse")
    params = {"dropout": 0.2, "optimizer": ("rmsprop", {})}
    _assert_same(_alone(folds, 3, **params), _stacked(folds, 3, **params)[0])


@pytest.mark.parametrize("batch_size", [16, None])
def test_rows_read_by_index_match(batch_size):
    X, Y = _data()
    folds = _fold_data(X, Y, inputs="indexed")
    params = {"batch_size": batch_size}
    _assert_same(_alone(folds, 3, **params), _stacked(folds, 3, **params)[0])


@pytest.mark.parametrize("inputs", ["indexed", "dense"])
def test_rows_gathered_in_several_chunks_match(monkeypatch, inputs):
    # A budget of a few batches per chunk: rows are read chunk by chunk (not kept), and the
    # chunks of unequal folds end at different steps.
    monkeypatch.setattr(stacked_training, "GATHER_BYTES", 4 * 8 * N_FEATURES * 16)
    X, Y = _data()
    weights = np.random.default_rng(5).uniform(0.5, 1.5, N_ROWS)
    folds = _fold_data(X, Y, inputs=inputs, weights=weights)
    params = {"batch_size": 8, "dropout": 0.1}
    trainers, _, stack = _stacked(folds, 2, **params)
    assert not any(fold.keep for fold in stack._inputs)
    _assert_same(_alone(folds, 2, **params), trainers)


def test_full_batch_of_unequal_folds_matches():
    X, Y = _data()
    folds = _fold_data(X, Y)
    params = {"batch_size": None, "optimizer": ("sgd", {"momentum": 0.5})}
    _assert_same(_alone(folds, 4, **params), _stacked(folds, 4, **params)[0])


def test_multilabel_matches():
    X, Y = _data(n_outputs=4, kind="multilabel")
    folds = _fold_data(X, Y)
    params = {"n_outputs": 4, "loss": "sigmoid_cross_entropy", "dropout": 0.1}
    _assert_same(_alone(folds, 3, **params), _stacked(folds, 3, **params)[0])


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regression_matches(n_outputs):
    X, Y = _data(n_outputs=n_outputs, kind="regression")
    folds = _fold_data(X, Y)
    params = {"n_outputs": n_outputs, "loss": "mse", "score": metrics.r2, "hidden": (8,)}
    _assert_same(_alone(folds, 3, **params), _stacked(folds, 3, **params)[0])


@pytest.mark.parametrize("max_stack", [1, 2, 3])
def test_any_stack_size_gives_the_same_numbers(max_stack):
    X, Y = _data()
    folds = _fold_data(X, Y)
    alone = _alone(folds, 3, dropout=0.2)
    trainers, _, stack = _stacked(folds, 3, max_stack=max_stack, dropout=0.2)
    assert stack.max_stack == max_stack
    _assert_same(alone, trainers)


def test_early_stopping_folds_stop_and_stay_put_while_others_go_on():
    X, Y = _data()
    folds = _fold_data(X, Y)
    params = {"schedule": schedules.InverseTimeDecay(0.2), "patience": 2, "hidden": (24,)}
    alone = _alone(folds, 40, **params)
    stacked, epochs, stack = _stacked(folds, 40, **params)
    _assert_same(alone, stacked)
    lengths = sorted(len(t.history) for t in alone)
    assert lengths[0] < lengths[-1] < 40, "the folds must stop at different epochs"
    assert len(epochs) == lengths[-1]  # the stack ends when the last fold stops
    for fold, trainer in enumerate(stacked):
        stopped_after = len(trainer.history)
        assert all(records[fold] is None for records in epochs[stopped_after:])
        # best weights restored, as a fold alone restores them
        assert trainer.callbacks[0].best_epoch < stopped_after
        assert np.array_equal(trainer.network.parameters, trainer.callbacks[0].best_parameters)
    assert stack.running == [False] * 4


def test_advance_in_chunks_equals_one_run_and_close_ends_training():
    X, Y = _data()
    folds = _fold_data(X, Y)
    alone = _alone(folds, 5, dropout=0.2)
    trainers = [_trainer(index, dropout=0.2) for index in range(len(folds))]
    stack = StackedTrainer(trainers, folds)
    for n_epochs in (2, 1, 2):
        assert len(list(stack.advance(n_epochs))) == n_epochs
    stack.close()
    assert stack.running == [False] * 4
    assert list(stack.advance(3)) == []
    _assert_same(alone, trainers)


def test_single_trainers_continue_where_the_stack_left_them():
    X, Y = _data()
    folds = _fold_data(X, Y)
    alone = _alone(folds, 5)
    trainers, _, _ = _stacked(folds, 3)
    for trainer, fold in zip(trainers, folds, strict=True):
        for _ in trainer.iter_epochs(
            fold.inputs, fold.targets, n_epochs=2, validation_data=fold.validation_data
        ):
            pass
    _assert_same(alone, trainers)


def test_a_diverging_fold_stops_with_its_error_and_the_others_go_on():
    X, Y = _data()
    folds = _fold_data(X, Y)
    poisoned = folds[2].targets.copy()
    poisoned[5] = np.inf
    folds[2] = FoldData(folds[2].inputs, poisoned, None, folds[2].validation_data)
    params = {"loss": "mse", "score": metrics.r2}
    trainers, epochs, stack = _stacked(folds, 3, **params)
    assert set(stack.errors) == {2}
    assert "diverged at epoch 1" in str(stack.errors[2])
    assert epochs[0][2] is None and len(trainers[2].history) == 0
    assert all(len(trainers[fold].history) == 3 for fold in (0, 1, 3))
    healthy = [f for f in range(4) if f != 2]
    _assert_same(_alone([folds[f] for f in healthy], 3, **params)[:1], [trainers[healthy[0]]])


def test_folds_of_different_configurations_are_refused():
    X, Y = _data()
    folds = _fold_data(X, Y)[:2]
    with pytest.raises(ConfigurationError, match="fold 1's network differs"):
        StackedTrainer([_trainer(0), _trainer(1, hidden=(5,))], folds)
    with pytest.raises(ConfigurationError, match="fold 1's optimiser differs"):
        StackedTrainer([_trainer(0), _trainer(1, optimizer=("adam", {"beta_1": 0.5}))], folds)
    with pytest.raises(ConfigurationError, match="fold 1's learning-rate schedule differs"):
        StackedTrainer([_trainer(0), _trainer(1, schedule=schedules.InverseTimeDecay(0.5))], folds)
    with pytest.raises(ConfigurationError, match="fold 1's batch size differs"):
        StackedTrainer([_trainer(0), _trainer(1, batch_size=7)], folds)
    with pytest.raises(ConfigurationError, match="2 trainers but 1 folds"):
        StackedTrainer([_trainer(0), _trainer(1)], folds[:1])
    with pytest.raises(ConfigurationError, match="fold 1 has 5 features"):
        StackedTrainer([_trainer(0), _trainer(1)], [folds[0], FoldData(X[:9, :5], Y[:9])])
    with pytest.raises(ConfigurationError, match="fold 1's targets have shape"):
        StackedTrainer([_trainer(0), _trainer(1)], [folds[0], FoldData(X[:9], Y[:9, :2])])
    with pytest.raises(ConfigurationError, match="all sparse or all dense"):
        StackedTrainer([_trainer(0), _trainer(1)], [folds[0], FoldData(sp.csr_matrix(X), Y)])
    with pytest.raises(ConfigurationError, match="max_stack"):
        StackedTrainer([_trainer(0), _trainer(1)], folds, max_stack=0)


def test_stacked_network_forward_equals_each_network_forward():
    template = Network(N_FEATURES, [9, 7], 4, dtype=np.float64)
    networks = []
    for seed in range(3):
        network = Network(N_FEATURES, [9, 7], 4, dtype=np.float64)
        network.initialize(np.random.default_rng(seed))
        networks.append(network)
    stack = StackedNetwork(template, 3)
    for row, network in enumerate(networks):
        stack.parameters[row] = network.parameters
    inputs = np.random.default_rng(9).normal(size=(3, 11, N_FEATURES))
    outputs = stack.forward(inputs).copy()
    for row, network in enumerate(networks):
        assert np.array_equal(outputs[row], network.predict(inputs[row]))


@pytest.mark.parametrize("hidden", [(12,), (2,)], ids=["bias_in_product", "bias_added"])
def test_first_layer_with_or_without_the_bias_in_its_product_matches(hidden):
    # 6 inputs -> 12 units: the stack gathers rows beside a column of ones for the product;
    # 6 -> 2: more than twice as wide, the rows are gathered plain and the bias added.
    X, Y = _data()
    folds = _fold_data(X, Y, inputs="indexed")
    assert StackedNetwork(_trainer(0, hidden=hidden).network, 2).augments_inputs == (
        hidden == (12,)
    )
    alone = _alone(folds, 3, hidden=hidden)
    stacked, _, _ = _stacked(folds, 3, hidden=hidden)
    _assert_same(alone, stacked)


def test_stacked_forward_takes_inputs_that_already_end_in_ones():
    network = Network(N_FEATURES, [9], 4, dtype=np.float64)
    network.initialize(np.random.default_rng(0))
    stack = StackedNetwork(network, 2)
    stack.parameters[:] = network.parameters
    inputs = np.random.default_rng(1).normal(size=(2, 5, N_FEATURES))
    plain = stack.forward(inputs).copy()
    augmented = np.concatenate([inputs, np.ones((2, 5, 1))], axis=2)
    assert np.array_equal(stack.forward(augmented, augmented=True), plain)
    with pytest.raises(ConfigurationError, match=rf"\[n_stack, n_rows, {N_FEATURES + 1}\]"):
        stack.forward(inputs, augmented=True)
    wide = StackedNetwork(Network(N_FEATURES, [2], 4), 2)  # adds its bias: takes no ones
    assert not wide.augments_inputs
    with pytest.raises(ConfigurationError, match="folds its bias"):
        wide.forward(augmented.astype(np.float32), augmented=True)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_inputs", [N_FEATURES, 40])  # bias folded into the product, or not
def test_stacked_predict_equals_each_network_predict(monkeypatch, sparse, n_inputs):
    monkeypatch.setattr(stacked_module, "PREDICT_CHUNK_ROWS", 16)
    monkeypatch.setattr(model_module, "PREDICT_CHUNK_ROWS", 16)
    networks = []
    for seed in range(3):
        network = Network(n_inputs, [9], 2, loss="sigmoid_cross_entropy", dropout=0.5)
        network.initialize(np.random.default_rng(seed))
        networks.append(network)
    stack = StackedNetwork(networks[0], 3)
    for row, network in enumerate(networks):
        stack.parameters[row] = network.parameters
    inputs = np.random.default_rng(9).normal(size=(50, n_inputs))
    if sparse:
        inputs = sp.csr_matrix(np.where(inputs > 0.5, inputs, 0.0))
    outputs = stack.predict(inputs)
    assert outputs.shape == (3, 50, 2) and outputs.dtype == np.float32
    for row, network in enumerate(networks):
        assert np.array_equal(outputs[row], network.predict(inputs))
