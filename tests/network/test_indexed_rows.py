"""Training from :class:`IndexedRows` (rows read by index from a larger array and
transformed as they are read) gives the numbers of training on those rows copied out."""

from __future__ import annotations

import numpy as np
import pytest

from nncv.network import Network, Trainer, metrics, optimizers, schedules, training
from nncv.network.training import IndexedRows


def make_trainer(dtype, batch_size, seed=0) -> Trainer:
    network = Network(5, [8], 3, dtype=dtype, dropout=0.1)
    network.initialize(np.random.default_rng(seed))
    return Trainer(
        network,
        optimizers.Adam(),
        schedules.InverseTimeDecay(0.01),
        rng=np.random.default_rng(seed),
        batch_size=batch_size,
        score=metrics.accuracy,
    )


def standardise(values: np.ndarray) -> np.ndarray:
    """A row-wise transform in place, in the values' dtype (like a fitted scaler)."""
    values -= np.asarray([1.0, -2.0, 0.5, 3.0, 0.0], dtype=values.dtype)
    values /= np.asarray([2.0, 0.5, 3.0, 1.0, 7.0], dtype=values.dtype)
    return values


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 5)) * 3 + 1
    Y = np.eye(3)[rng.integers(0, 3, 400)]
    rows = rng.permutation(400)[:230]
    weights = rng.uniform(0.1, 2.0, 230)
    return X, Y, rows, weights


@pytest.mark.parametrize("batch_size", [1, 9, 16, 40, 41, 500, None])
@pytest.mark.parametrize(
    ("data_dtype", "dtype"), [(np.float64, np.float32), (np.float32, np.float32)]
)
@pytest.mark.parametrize("weighted", [False, True])
def test_indexed_rows_train_like_the_rows_copied_out(
    data, monkeypatch, batch_size, data_dtype, dtype, weighted
):
    X, Y, rows, weights = data
    X = X.astype(data_dtype)
    weights = weights if weighted else None
    monkeypatch.setattr(training, "GATHER_BYTES", 40 * 5 * 8)  # chunks of about 40 rows
    copied = standardise(X[rows].copy()).astype(dtype)
    indexed = IndexedRows(X, rows, standardise, np.dtype(dtype))
    reference, trainer = make_trainer(dtype, batch_size), make_trainer(dtype, batch_size)
    expected = list(reference.iter_epochs(copied, Y[rows], n_epochs=3, sample_weight=weights))
    got = list(trainer.iter_epochs(indexed, Y[rows], n_epochs=3, sample_weight=weights))
    assert got == expected
    np.testing.assert_array_equal(trainer.network.parameters, reference.network.parameters)
    trainer.release_buffers()
    assert trainer._whole is None and trainer._shuffle_buffers == {}


def test_indexed_rows_read_subset_and_blocks(data):
    X, _, rows, _ = data
    indexed = IndexedRows(X, rows, standardise, np.dtype(np.float32))
    whole = standardise(X[rows].copy()).astype(np.float32)
    assert indexed.shape == (230, 5) and len(indexed) == 230
    np.testing.assert_array_equal(indexed.read(), whole)
    np.testing.assert_array_equal(indexed.read(np.array([4, 0])), whole[[4, 0]])
    np.testing.assert_array_equal(indexed.subset(np.arange(10, 20)).read(), whole[10:20])
    blocks = list(indexed.blocks(100))
    assert [len(block) for block in blocks] == [100, 100, 30]
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    buffer = np.empty((2, 5))
    assert indexed.subset(np.arange(2)).read(np.arange(2), buffer=buffer).dtype == np.float32
    empty = IndexedRows(X, rows[:0])
    assert [block.shape for block in empty.blocks(100)] == [(0, 5)]
    X_before = X.copy()
    indexed.read()
    np.testing.assert_array_equal(X, X_before)  # the transform works on copies only
