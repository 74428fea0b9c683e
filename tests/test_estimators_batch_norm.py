"""``batch_norm`` on NNClassifier / NNRegressor: validation, dtypes, sparse input, sample
weights, dropout, partial_fit and early stopping."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils._param_validation import InvalidParameterError

from nncv import NNClassifier, NNRegressor
from nncv.datasets import load

SMALL = {"hidden_layer_sizes": (16, 8), "max_epochs": 5, "batch_size": 16, "random_state": 0}


@pytest.fixture(scope="module")
def iris():
    X, y = load("iris")
    return (X - X.mean(0)) / X.std(0), y


@pytest.mark.parametrize(
    ("value", "message"),
    [((True,), "one bool per hidden layer"), ("yes", "batch_norm"), ((1, 0), "one bool")],
)
def test_bad_batch_norm_is_refused(iris, value, message):
    X, y = iris
    with pytest.raises(InvalidParameterError, match=message):
        NNClassifier(**SMALL, batch_norm=value).fit(X, y)


def test_bad_momentum_is_refused(iris):
    with pytest.raises(InvalidParameterError, match="batch_norm_momentum"):
        NNClassifier(**SMALL, batch_norm=True, batch_norm_momentum=1.0).fit(*iris)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("estimator", [NNClassifier, NNRegressor])
def test_fits_in_both_dtypes_with_dropout(iris, dtype, estimator):
    X, y = iris
    model = estimator(**SMALL, batch_norm=(True, False), dropout=0.2, dtype=dtype).fit(X, y)
    network = model.network_
    assert network.batch_norm == [True, False]
    assert network.parameters.dtype == network.running_statistics.dtype == np.dtype(dtype)
    assert network.running_statistics.size == 2 * 16
    assert not np.array_equal(network.running_statistics[:16], np.zeros(16))  # updated
    assert np.isfinite(model.predict(X)).all() if estimator is NNRegressor else True
    assert model.score(X, y) > (0.6 if estimator is NNClassifier else 0.3)


def test_sparse_input_equals_dense(iris):
    X, y = iris
    dense = NNClassifier(**SMALL, batch_norm=True, dtype="float64").fit(X, y)
    sparse = NNClassifier(**SMALL, batch_norm=True, dtype="float64").fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(
        sparse.network_.running_statistics, dense.network_.running_statistics, rtol=1e-7, atol=1e-10
    )
    np.testing.assert_allclose(
        sparse.predict_proba(X), dense.predict_proba(X), rtol=1e-7, atol=1e-10
    )


def test_zero_sample_weights_remove_rows_from_the_statistics(iris):
    """Full batch: a zero weight removes a row from the loss and from the batch statistics."""
    X, y = iris
    keep = np.arange(len(y)) % 3 != 0
    params = {**SMALL, "batch_size": "full", "batch_norm": True, "dtype": "float64"}
    weighted = NNClassifier(**params).fit(X, y, sample_weight=keep.astype(float))
    subset = NNClassifier(**params).fit(X[keep], y[keep])
    np.testing.assert_allclose(
        weighted.network_.running_statistics,
        subset.network_.running_statistics,
        rtol=1e-7,
        atol=1e-10,
    )
    np.testing.assert_allclose(
        weighted.predict_proba(X), subset.predict_proba(X), rtol=1e-7, atol=1e-10
    )


def test_partial_fit_updates_the_running_statistics(iris):
    X, y = iris
    model = NNClassifier(**SMALL, batch_norm=True)
    model.partial_fit(X, y, classes=np.unique(y))
    first = model.network_.running_statistics.copy()
    model.partial_fit(X + 1.0, y)
    assert not np.array_equal(first, model.network_.running_statistics)
    assert model.n_iter_ == 2


def test_early_stopping_keeps_the_best_epochs_statistics(iris):
    """The restored model scores the validation data exactly as the best epoch did: its
    weights and its running statistics are back (the last epoch's statistics would give
    another loss)."""
    X, y = iris
    order = np.random.default_rng(0).permutation(len(y))
    train, val = order[:100], order[100:]
    model = NNClassifier(
        hidden_layer_sizes=(32,),
        batch_norm=True,
        early_stopping=True,
        patience=2,
        max_epochs=300,
        learning_rate=0.05,
        batch_size=8,
        random_state=0,
        dtype="float64",
    )
    for _ in model.iter_fit(X[train], y[train], validation_data=(X[val], y[val])):
        pass
    assert model.best_epoch_ < model.n_iter_
    best_loss = model.history_.set_index("epoch").loc[model.best_epoch_, "val_loss"]
    network = model.network_
    targets = np.eye(3)[y[val]]
    loss = network.loss.per_sample(network.predict(X[val]), targets).mean()
    assert loss == pytest.approx(best_loss, rel=1e-12)
    statistics = network.running_statistics.copy()
    network.set_running_statistics(np.concatenate([np.zeros(32), np.ones(32)]))
    other = network.loss.per_sample(network.predict(X[val]), targets).mean()
    network.set_running_statistics(statistics)
    assert abs(other - best_loss) > 1e-6


def test_batch_norm_lets_plain_sgd_train_where_it_diverges_without():
    """digits, two hidden layers of 100 ReLU units, SGD without momentum at learning rate
    1.5, trained on half the images: the loss becomes NaN (epoch 2 here) without batch
    normalisation; with it the network trains (0.65 on the other half; docs/network.md has the
    figures over folds and seeds)."""
    from nncv import make_pipeline
    from nncv.exceptions import DivergedError

    X, y = load("digits")
    params = {
        "hidden_layer_sizes": (100, 100),
        "optimizer": "sgd",
        "momentum": 0.0,
        "learning_rate": 1.5,
        "max_epochs": 20,
        "random_state": 0,
    }
    with pytest.raises(DivergedError, match="diverged"):
        make_pipeline("standard", **params).fit(X[::2], y[::2])
    model = make_pipeline("standard", batch_norm=True, **params).fit(X[::2], y[::2])
    assert np.isfinite(model[-1].loss_curve_).all()
    assert model.score(X[1::2], y[1::2]) > 0.5  # chance is 0.1
