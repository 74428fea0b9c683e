"""The epoch loop: shuffling, batches, history, early stopping, callbacks, divergence, sparse
input and dtype."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from nncv.datasets import spiral
from nncv.exceptions import DivergedError, NncvError, StopTraining
from nncv.network import (
    Callback,
    EarlyStopping,
    EpochCallback,
    Network,
    Trainer,
    metrics,
    optimizers,
    schedules,
)

RECORD_KEYS = {"epoch", "loss", "data_loss", "val_loss", "val_score", "learning_rate"}


def spiral_data(n_per_class=20, seed=0, dtype=np.float64, noise=0.2):
    X, y = spiral(n_per_class, 3, noise=noise, random_state=seed)
    return X.astype(dtype), np.eye(3, dtype=dtype)[y]


def make_trainer(
    *,
    seed=0,
    network_seed=0,
    batch_size=16,
    dtype=np.float64,
    hidden=(16,),
    optimizer=None,
    learning_rate=0.02,
    n_inputs=2,
    n_outputs=3,
    loss="softmax_cross_entropy",
    callbacks=(),
    **network_kwargs,
) -> Trainer:
    network = Network(n_inputs, list(hidden), n_outputs, loss=loss, dtype=dtype, **network_kwargs)
    network.initialize(np.random.default_rng(network_seed))
    return Trainer(
        network,
        optimizer if optimizer is not None else optimizers.Adam(),
        schedules.InverseTimeDecay(learning_rate),
        rng=np.random.default_rng(seed),
        batch_size=batch_size,
        score=metrics.accuracy if loss != "mse" else metrics.r2,
        callbacks=callbacks,
    )


def train(trainer: Trainer, X, Y, n_epochs=5, **kwargs) -> list[dict]:
    return list(trainer.iter_epochs(X, Y, n_epochs=n_epochs, **kwargs))


# ----------------------------------------------------------------------------- shuffling
def test_same_seed_gives_identical_parameters():
    """Shuffling and dropout masks both come from the trainer's generator."""
    X, Y = spiral_data()
    first, second = make_trainer(seed=3, dropout=0.2), make_trainer(seed=3, dropout=0.2)
    train(first, X, Y)
    train(second, X, Y)
    np.testing.assert_array_equal(first.network.parameters, second.network.parameters)


def test_different_shuffling_seed_gives_different_parameters():
    """Same initial weights, only the trainer's generator differs: the batches differ."""
    X, Y = spiral_data()
    first, second = make_trainer(seed=3), make_trainer(seed=4)
    np.testing.assert_array_equal(first.network.parameters, second.network.parameters)
    train(first, X, Y)
    train(second, X, Y)
    assert not np.allclose(first.network.parameters, second.network.parameters)


def test_minibatches_follow_one_permutation_per_epoch():
    """Mini-batch training equals stepping through ``rng.permutation(n)`` in batch-size slices,
    the last batch smaller (60 rows, batch 16: 16, 16, 16, 12)."""
    X, Y = spiral_data()
    trainer = make_trainer(seed=5, batch_size=16)
    reference = make_trainer(seed=5, batch_size=16)
    network, optimizer = reference.network, optimizers.Adam()
    order_rng = np.random.default_rng(5)
    for _ in range(3):
        order = order_rng.permutation(len(X))
        for start in range(0, len(X), 16):
            rows = order[start : start + 16]
            network.compute_gradients(X[rows], Y[rows], 1.0 / len(rows))
            optimizer.update([network.parameters], [network.gradients], 0.02)
    train(trainer, X, Y, n_epochs=3)
    assert trainer.optimizer.iterations == 12
    np.testing.assert_allclose(trainer.network.parameters, network.parameters, rtol=1e-12)


def test_weighted_minibatches_scale_by_the_batch_weights():
    """Each step minimises the batch's weighted mean loss: scale ``w / sum(w)`` per batch."""
    X, Y = spiral_data()
    weights = np.random.default_rng(1).uniform(0.2, 3.0, len(X))
    trainer = make_trainer(seed=5, batch_size=16)
    reference = make_trainer(seed=5, batch_size=16)
    network, optimizer = reference.network, optimizers.Adam()
    order_rng = np.random.default_rng(5)
    for _ in range(2):
        order = order_rng.permutation(len(X))
        for start in range(0, len(X), 16):
            rows = order[start : start + 16]
            scale = (weights[rows] / weights[rows].sum())[:, None]
            network.compute_gradients(X[rows], Y[rows], scale)
            optimizer.update([network.parameters], [network.gradients], 0.02)
    train(trainer, X, Y, n_epochs=2, sample_weight=weights)
    np.testing.assert_allclose(trainer.network.parameters, network.parameters, rtol=1e-12)


def test_full_batch_is_one_step_per_epoch_on_all_rows():
    X, Y = spiral_data()
    full = make_trainer(batch_size=None)
    larger_than_data = make_trainer(batch_size=10_000)
    reference = make_trainer(batch_size=None)
    network, optimizer = reference.network, optimizers.Adam()
    for _ in range(4):
        network.compute_gradients(X, Y, 1.0 / len(X))
        optimizer.update([network.parameters], [network.gradients], 0.02)
    train(full, X, Y, n_epochs=4)
    train(larger_than_data, X, Y, n_epochs=4)
    assert full.optimizer.iterations == larger_than_data.optimizer.iterations == 4
    np.testing.assert_allclose(full.network.parameters, network.parameters, rtol=1e-12)
    np.testing.assert_array_equal(full.network.parameters, larger_than_data.network.parameters)
    mini = make_trainer(batch_size=16)
    train(mini, X, Y, n_epochs=4)
    assert mini.optimizer.iterations == 16
    assert not np.allclose(mini.network.parameters, full.network.parameters)


def test_integer_sample_weights_equal_repeated_rows_full_batch():
    """Full batch: integer weights are the same as repeating rows."""
    X, Y = spiral_data()
    weights = np.random.default_rng(0).integers(1, 4, len(X)).astype(np.float64)
    weighted = make_trainer(batch_size=None)
    records = train(weighted, X, Y, n_epochs=3, sample_weight=weights)
    repeat = np.repeat(np.arange(len(X)), weights.astype(int))
    repeated = make_trainer(batch_size=None)
    expected = train(repeated, X[repeat], Y[repeat], n_epochs=3)
    np.testing.assert_allclose(weighted.network.parameters, repeated.network.parameters, rtol=1e-10)
    assert records[-1]["data_loss"] == pytest.approx(expected[-1]["data_loss"], rel=1e-12)


# ------------------------------------------------------------------------------- history
def test_history_records():
    X, Y = spiral_data()
    X_val, Y_val = spiral_data(seed=1)
    trainer = make_trainer(weight_l2=1e-3)
    records = train(trainer, X, Y, n_epochs=4, validation_data=(X_val, Y_val))
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert trainer.history == records
    for record in records:
        assert set(record) == RECORD_KEYS
        assert all(math.isfinite(record[key]) for key in RECORD_KEYS)
        assert 0 <= record["val_score"] <= 1
    last = records[-1]
    # loss = data loss + regularisation at the end of the epoch
    assert last["loss"] - last["data_loss"] == pytest.approx(
        trainer.network.regularisation_loss(), rel=1e-9
    )
    assert trainer.network.regularisation_loss() > 0
    # validation figures are those of the final weights
    val_loss, val_score = trainer.evaluate(X_val, Y_val)
    assert (last["val_loss"], last["val_score"]) == (val_loss, val_score)
    probabilities = trainer.network.predict(X_val)
    expected_loss = -np.mean(np.log(np.sum(probabilities * Y_val, axis=1)))
    assert val_loss == pytest.approx(expected_loss, rel=1e-9)
    expected_accuracy = np.mean(probabilities.argmax(axis=1) == Y_val.argmax(axis=1))
    assert val_score == pytest.approx(expected_accuracy)
    # epochs keep counting over the trainer's life
    more = train(trainer, X, Y, n_epochs=2)
    assert [r["epoch"] for r in more] == [5, 6]
    assert math.isnan(more[0]["val_loss"]) and math.isnan(more[0]["val_score"])


def test_data_loss_is_the_mean_batch_loss_before_each_step():
    """Full batch: the epoch's data loss is the loss of the weights it started from."""
    X, Y = spiral_data()
    trainer = make_trainer(batch_size=None)
    before = -np.mean(np.log(np.sum(trainer.network.predict(X) * Y, axis=1)))
    record = train(trainer, X, Y, n_epochs=1)[0]
    assert record["data_loss"] == pytest.approx(before, rel=1e-12)


def test_weighted_validation_data():
    X, Y = spiral_data()
    X_val, Y_val = spiral_data(seed=1)
    weights = np.random.default_rng(2).uniform(0.1, 2.0, len(X_val))
    trainer = make_trainer()
    record = train(trainer, X, Y, n_epochs=1, validation_data=(X_val, Y_val, weights))[0]
    per_sample = -np.log(np.sum(trainer.network.predict(X_val) * Y_val, axis=1))
    assert record["val_loss"] == pytest.approx(np.average(per_sample, weights=weights), rel=1e-9)


# ------------------------------------------------------------------------ early stopping
class ParameterRecorder(Callback):
    """Keeps a copy of the parameters after every epoch."""

    def __init__(self) -> None:
        self.parameters: dict[int, np.ndarray] = {}

    def on_epoch_end(self, trainer, record) -> None:
        self.parameters[record["epoch"]] = trainer.network.parameters.copy()


def overfitting_setup(patience=5, restore=True):
    X, Y = spiral_data(15, noise=0.4)
    X_val, Y_val = spiral_data(100, seed=1)
    recorder = ParameterRecorder()
    stopper = EarlyStopping(patience=patience, restore_best_weights=restore)
    trainer = make_trainer(hidden=(64,), learning_rate=0.05, callbacks=[recorder, stopper])
    return trainer, recorder, stopper, (X, Y), (X_val, Y_val)


def test_early_stopping_restores_the_best_weights():
    trainer, recorder, stopper, (X, Y), validation = overfitting_setup(patience=5)
    records = train(trainer, X, Y, n_epochs=300, validation_data=validation)
    val_losses = [r["val_loss"] for r in records]
    best_epoch = int(np.argmin(val_losses)) + 1
    assert len(records) < 300, "did not stop early"
    assert stopper.best_epoch == best_epoch
    assert len(records) == best_epoch + 5  # exactly `patience` epochs without improvement
    assert min(val_losses[best_epoch:]) > val_losses[best_epoch - 1]
    np.testing.assert_array_equal(trainer.network.parameters, recorder.parameters[best_epoch])
    assert not np.array_equal(recorder.parameters[best_epoch], recorder.parameters[len(records)])
    # the restored network really is the best one
    assert trainer.evaluate(*validation)[0] == pytest.approx(min(val_losses), rel=1e-12)


def test_early_stopping_can_keep_the_last_weights():
    trainer, recorder, _, (X, Y), validation = overfitting_setup(restore=False)
    records = train(trainer, X, Y, n_epochs=300, validation_data=validation)
    np.testing.assert_array_equal(trainer.network.parameters, recorder.parameters[len(records)])


def test_early_stopping_on_a_maximised_score_with_min_delta():
    X, Y = spiral_data()
    X_val, Y_val = spiral_data(seed=1)
    stopper = EarlyStopping(patience=2, monitor="val_score", min_delta=2.0)
    trainer = make_trainer(callbacks=[stopper])
    records = train(trainer, X, Y, n_epochs=50, validation_data=(X_val, Y_val))
    # an accuracy cannot improve by 2: the first epoch stays the best, stop after 1 + 2
    assert len(records) == 3 and stopper.best_epoch == 1


def test_closing_the_generator_still_restores_the_best_weights():
    """The estimator's ``iter_fit`` may be closed early by the caller (pruning)."""
    trainer, recorder, stopper, (X, Y), validation = overfitting_setup(patience=1000)
    epochs = trainer.iter_epochs(X, Y, n_epochs=300, validation_data=validation)
    records = [next(epochs) for _ in range(25)]
    epochs.close()
    best = int(np.argmin([r["val_loss"] for r in records])) + 1
    assert best < 25
    np.testing.assert_array_equal(trainer.network.parameters, recorder.parameters[best])


# ----------------------------------------------------------------------------- callbacks
class Counter(Callback):
    def __init__(self) -> None:
        self.calls = {"begin": 0, "epoch": 0, "end": 0}

    def on_train_begin(self, trainer) -> None:
        self.calls["begin"] += 1

    def on_epoch_end(self, trainer, record) -> None:
        self.calls["epoch"] += 1

    def on_train_end(self, trainer) -> None:
        self.calls["end"] += 1


def test_epoch_callback_raising_stop_training_stops_after_that_epoch():
    X, Y = spiral_data()
    seen = []

    def stop_at_three(record):
        seen.append(record["epoch"])
        if record["epoch"] == 3:
            raise StopTraining

    counter = Counter()
    trainer = make_trainer(callbacks=[EpochCallback(stop_at_three), counter])
    records = train(trainer, X, Y, n_epochs=100)
    assert [r["epoch"] for r in records] == [1, 2, 3] == seen
    assert trainer.epochs_done == 3
    # the raising callback ends the epoch's callbacks; begin and end still ran once
    assert counter.calls == {"begin": 1, "epoch": 2, "end": 1}


def test_other_errors_from_callbacks_propagate_and_end_is_still_called():
    X, Y = spiral_data()

    def broken(record):
        raise RuntimeError("boom")

    counter = Counter()
    trainer = make_trainer(callbacks=[counter, EpochCallback(broken)])
    with pytest.raises(RuntimeError, match="boom"):
        train(trainer, X, Y)
    assert counter.calls == {"begin": 1, "epoch": 1, "end": 1}


# ----------------------------------------------------------------------------- divergence
def test_diverging_regression_raises_a_clear_error():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)) * 10
    Y = X @ rng.standard_normal((3, 1))
    trainer = make_trainer(
        n_inputs=3, n_outputs=1, loss="mse", optimizer=optimizers.SGD(), learning_rate=10.0
    )
    with pytest.raises(DivergedError, match=r"diverged at epoch \d+.*learning rate 10") as caught:
        train(trainer, X, Y, n_epochs=100)
    assert isinstance(caught.value, NncvError)
    assert len(trainer.history) < 100


def test_diverging_classifier_raises_a_clear_error():
    X, Y = spiral_data()
    counter = Counter()
    trainer = make_trainer(optimizer=optimizers.SGD(), learning_rate=1e200, callbacks=[counter])
    with pytest.raises(DivergedError, match="loss became nan.*lower the learning rate"):
        train(trainer, X, Y, n_epochs=10)
    assert counter.calls["end"] == 1


# ---------------------------------------------------------------------------------- input
def multi_hot(n_rows: int, n_features: int, words_per_row: int, seed: int) -> sp.csr_matrix:
    """A bag-of-words matrix as in the Keras IMDB seed: 0/1, a few words per row."""
    rng = np.random.default_rng(seed)
    columns = np.concatenate(
        [rng.choice(n_features, words_per_row, replace=False) for _ in range(n_rows)]
    )
    rows = np.repeat(np.arange(n_rows), words_per_row)
    data = np.ones(len(columns))
    return sp.csr_matrix((data, (rows, columns)), shape=(n_rows, n_features))


def test_sparse_input_trains_like_dense():
    X = multi_hot(60, 10_000, 30, seed=0)
    labels = np.random.default_rng(1).integers(0, 2, 60)
    Y = labels[:, None].astype(np.float64)
    X_val = multi_hot(20, 10_000, 30, seed=2)
    Y_val = np.random.default_rng(3).integers(0, 2, (20, 1)).astype(np.float64)
    results = []
    for inputs, val_inputs in ((X, X_val), (X.toarray(), X_val.toarray())):
        trainer = make_trainer(
            n_inputs=10_000, n_outputs=1, hidden=(8,), loss="sigmoid_cross_entropy", batch_size=16
        )
        records = train(trainer, inputs, Y, n_epochs=3, validation_data=(val_inputs, Y_val))
        results.append((trainer.network.parameters.copy(), records))
    (sparse_parameters, sparse_records), (dense_parameters, dense_records) = results
    np.testing.assert_allclose(sparse_parameters, dense_parameters, rtol=1e-9, atol=1e-12)
    for sparse_record, dense_record in zip(sparse_records, dense_records, strict=True):
        assert sparse_record["loss"] == pytest.approx(dense_record["loss"], rel=1e-9)
        assert sparse_record["val_loss"] == pytest.approx(dense_record["val_loss"], rel=1e-9)


@pytest.mark.parametrize("batch_size", [None, 64])
def test_sparse_input_is_never_densified(batch_size):
    """2 000 × 10 000 float32 would take 80 MB dense; training must stay far below that."""
    X = multi_hot(2_000, 10_000, 20, seed=0).astype(np.float32)
    Y = np.eye(2, dtype=np.float32)[np.random.default_rng(1).integers(0, 2, 2_000)]
    trainer = make_trainer(
        n_inputs=10_000, n_outputs=2, hidden=(8,), dtype=np.float32, batch_size=batch_size
    )
    dense_bytes = X.shape[0] * X.shape[1] * 4
    tracemalloc.start()
    try:
        train(trainer, X, Y, n_epochs=2, validation_data=(X, Y))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < dense_bytes / 10, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("batch_size", [None, 16])
def test_float32_end_to_end(batch_size):
    X, Y = spiral_data(dtype=np.float32)
    X_val, Y_val = spiral_data(seed=1, dtype=np.float32)
    weights = np.ones(len(X), np.float32)
    trainer = make_trainer(dtype=np.float32, batch_size=batch_size, dropout=0.1, weight_l2=1e-3)
    train(trainer, X, Y, n_epochs=3, validation_data=(X_val, Y_val), sample_weight=weights)
    network = trainer.network
    assert network.parameters.dtype == network.gradients.dtype == np.float32
    assert all(
        array.dtype == np.float32 for values in trainer.optimizer.state.values() for array in values
    )
    buffers = [b for _, _, *pair in network._plan for b in pair if b is not None]
    assert buffers and all(buffer.dtype == np.float32 for buffer in buffers)
    assert network.predict(X_val).dtype == np.float32
    assert network.forward(X_val, training=True, rng=np.random.default_rng(0)).dtype == np.float32
    losses = network.compute_gradients(X, Y, np.float32(1 / len(X)), np.random.default_rng(0))
    assert losses.dtype == np.float32


def test_float32_and_float64_agree():
    """The same run in both dtypes ends at nearly the same weights (float32 rounding only)."""
    results = []
    for dtype in (np.float32, np.float64):
        X, Y = spiral_data(dtype=dtype)
        trainer = make_trainer(dtype=dtype)
        train(trainer, X, Y, n_epochs=5)
        results.append(trainer.network.parameters.astype(np.float64))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-3, atol=1e-4)


# ------------------------------------------------------------- dtype casts and bad set-ups
def test_float64_input_to_a_float32_network_is_cast():
    """Findings F2: the core casts once instead of failing inside ``np.dot(out=...)``."""
    X64, Y64 = spiral_data()
    X32, Y32 = X64.astype(np.float32), Y64.astype(np.float32)
    from_64, from_32 = make_trainer(dtype=np.float32), make_trainer(dtype=np.float32)
    train(from_64, X64, Y64, n_epochs=2, validation_data=(X64, Y64))
    train(from_32, X32, Y32, n_epochs=2, validation_data=(X32, Y32))
    np.testing.assert_array_equal(from_64.network.parameters, from_32.network.parameters)
    assert from_64.network.parameters.dtype == np.float32
    predictions = from_64.network.predict(X64)
    assert predictions.dtype == np.float32
    np.testing.assert_array_equal(predictions, from_64.network.predict(X32))
    sparse = sp.csr_matrix(X64)
    np.testing.assert_allclose(from_64.network.predict(sparse), predictions, rtol=1e-6)


def test_early_stopping_refuses_a_nan_monitor():
    """Findings F3: ``val_loss`` without validation data is NaN — an error, not a silent stop."""
    X, Y = spiral_data()
    trainer = make_trainer(callbacks=[EarlyStopping(patience=2)])
    with pytest.raises(NncvError, match="'val_loss', which is NaN: pass validation_data"):
        train(trainer, X, Y, n_epochs=10)
    assert len(trainer.history) == 1


def test_early_stopping_refuses_an_unknown_monitor():
    X, Y = spiral_data()
    trainer = make_trainer(callbacks=[EarlyStopping(monitor="val_accuracy")])
    with pytest.raises(NncvError, match="'val_accuracy', which is not in the epoch record"):
        train(trainer, X, Y, n_epochs=3)


def test_early_stopping_on_the_training_loss_without_validation():
    X, Y = spiral_data()
    stopper = EarlyStopping(patience=3, monitor="loss", min_delta=10.0)
    trainer = make_trainer(callbacks=[stopper])
    assert len(train(trainer, X, Y, n_epochs=50)) == 4 and stopper.best_epoch == 1
