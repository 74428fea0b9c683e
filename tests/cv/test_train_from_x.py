"""cross_validate trains nncv networks straight from X's rows (nncv/cv/fold.py,
nncv/cv/rows.py): the same numbers, bit for bit, as fitting on a copy of the fold, and
the copying path for everything the direct one does not cover."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.decomposition import PCA
from sklearn.exceptions import FitFailedWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

from nncv import NNClassifier, NNRegressor, estimators
from nncv.cv import cross_validate
from nncv.cv import fold as _fold_fit
from nncv.cv import rows as _rowwise
from nncv.network import training

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks and gathered chunks of a few rows, so that small data spans many of them."""
    monkeypatch.setattr(_rowwise, "BLOCK_ROWS", 40)
    monkeypatch.setattr(estimators, "VALIDATION_BLOCK_ROWS", 30)
    monkeypatch.setattr(training, "GATHER_BYTES", 50 * 30 * 8)  # 50 rows of the cancer set


@pytest.fixture
def direct_fits(monkeypatch):
    """Counts the fits that went straight from X (``iter_fit`` given ``IndexedRows``)."""
    calls = []
    original = estimators._BaseNN.iter_fit

    def spy(self, X, *args, **kwargs):
        if isinstance(X, training.IndexedRows):
            calls.append(type(self).__name__)
        return original(self, X, *args, **kwargs)

    monkeypatch.setattr(estimators._BaseNN, "iter_fit", spy)
    return calls


def both_paths(monkeypatch, model, X, y, **kwargs):
    """``cross_validate`` through the direct path, then through the copying one."""
    kwargs = {"cv": 3, "random_state": 0, "return_estimator": True, **kwargs}
    direct = cross_validate(model, X, y, **kwargs)
    with monkeypatch.context() as patch:  # the reference path: a copy of the rows
        patch.setattr(_fold_fit, "can_train_from_x", lambda estimator, X: False)
        copied = cross_validate(model, X, y, **kwargs)
    return direct, copied


def assert_identical(direct, copied):
    assert direct.scores.keys() == copied.scores.keys()
    for name in direct.scores:
        np.testing.assert_array_equal(direct.scores[name], copied.scores[name])
    pd.testing.assert_frame_equal(direct.curves, copied.curves, check_exact=True)
    assert direct.errors == copied.errors
    for ours, theirs in zip(direct.estimators, copied.estimators, strict=True):
        ours = ours[-1] if hasattr(ours, "steps") else ours
        theirs = theirs[-1] if hasattr(theirs, "steps") else theirs
        np.testing.assert_array_equal(ours.network_.parameters, theirs.network_.parameters)
        assert ours.best_epoch_ == theirs.best_epoch_
        assert ours.n_features_in_ == theirs.n_features_in_


def net(**params):
    options = {"hidden_layer_sizes": (12,), "max_epochs": 5, "batch_size": 16, **params}
    return NNClassifier(**options)


# ------------------------------------------------------------------ bit for bit


@pytest.mark.parametrize(
    ("dtype", "net_dtype"),
    [(np.float32, "float32"), (np.float64, "float32"), (np.float64, "float64")],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_the_direct_path_gives_the_copying_paths_numbers(
    cancer, monkeypatch, small_blocks, direct_fits, dtype, net_dtype, weighted
):
    X, y = cancer
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(y)) if weighted else None
    model = make_pipeline(StandardScaler(), net(dtype=net_dtype, dropout=0.1))
    direct, copied = both_paths(
        monkeypatch,
        model,
        X.astype(dtype),
        y,
        sample_weight=weights,
        scoring=["accuracy", "neg_log_loss"],
    )
    assert direct_fits == ["NNClassifier"] * 3
    assert_identical(direct, copied)
    assert direct.mean("accuracy") > 0.85


@pytest.mark.parametrize("weighted", [False, True])
def test_early_stopping_splits_the_same_rows_off(
    cancer, monkeypatch, small_blocks, direct_fits, weighted
):
    X, y = cancer
    weights = np.where(y == 0, 3.0, 0.5) if weighted else None
    model = make_pipeline(
        StandardScaler(), net(early_stopping=True, patience=2, max_epochs=30, batch_size=8)
    )
    direct, copied = both_paths(monkeypatch, model, X, y, sample_weight=weights)
    assert len(direct_fits) == 3
    assert "early_stopping_val_loss" in direct.curves
    assert direct.curves.groupby("fold").epoch.max().lt(30).any()  # some fold stopped early
    assert_identical(direct, copied)


@pytest.mark.parametrize(
    "scalers",
    [
        [MinMaxScaler(feature_range=(-1, 2), clip=True)],
        [MaxAbsScaler(), RobustScaler()],
        [RobustScaler(quantile_range=(10, 90)), StandardScaler(with_mean=False)],
        [StandardScaler(with_std=False), "passthrough", MinMaxScaler()],
        [],
    ],
    ids=["minmax-clip", "maxabs-robust", "robust-standard", "passthrough", "bare"],
)
def test_every_row_wise_scaler_chain_and_a_bare_network(
    cancer, monkeypatch, small_blocks, direct_fits, scalers
):
    X, y = cancer
    X = X.astype(np.float32)
    model = make_pipeline(*scalers, net()) if scalers else net()
    direct, copied = both_paths(monkeypatch, model, X, y)
    assert len(direct_fits) == 3
    assert_identical(direct, copied)


@pytest.mark.parametrize("batch_size", [1, 7, 49, 50, 51, 120, "full"])
def test_batches_spanning_or_filling_the_gathered_chunks(
    monkeypatch, small_blocks, direct_fits, batch_size
):
    X, y = load_iris(return_X_y=True)
    monkeypatch.setattr(training, "GATHER_BYTES", 50 * X.shape[1] * 8)  # 50 rows of 100
    model = make_pipeline(StandardScaler(), net(batch_size=batch_size, max_epochs=3))
    direct, copied = both_paths(monkeypatch, model, X, y)
    assert len(direct_fits) == 3
    assert_identical(direct, copied)


def test_regressor_multilabel_string_classes_and_unsorted_training_rows(
    monkeypatch, small_blocks, direct_fits
):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 6)).astype(np.float32) * 5 + 2
    targets = np.c_[X[:, 0] - X[:, 1], X[:, 2] * 0.5]
    rows = rng.permutation(300)
    splits = [(rows[:200], rows[200:]), (rows[100:], rows[:100])]  # unsorted training rows
    regressor = make_pipeline(
        StandardScaler(), NNRegressor(hidden_layer_sizes=(8,), max_epochs=4, early_stopping=True)
    )
    assert_identical(*both_paths(monkeypatch, regressor, X, targets, cv=splits))
    labels = np.array(["low", "mid", "high"])[np.digitize(targets[:, 0], [-3, 3])]
    assert_identical(*both_paths(monkeypatch, make_pipeline(MinMaxScaler(), net()), X, labels))
    multilabel = (targets > 0).astype(np.int64)
    assert_identical(*both_paths(monkeypatch, make_pipeline(RobustScaler(), net()), X, multilabel))
    assert len(direct_fits) == 2 + 3 + 3


def test_a_read_only_memory_map_in_one_or_two_workers(cancer, monkeypatch, tmp_path, direct_fits):
    X, y = cancer
    path = tmp_path / "X.npy"
    np.save(path, X.astype(np.float32))
    mapped = np.load(path, mmap_mode="r")
    model = make_pipeline(StandardScaler(), net())
    direct, copied = both_paths(monkeypatch, model, mapped, y)
    assert len(direct_fits) == 3
    assert_identical(direct, copied)
    # two workers reading joblib's own memory map of X (memory-mapped whatever its size),
    # which the direct path takes
    with joblib.parallel_config(max_nbytes=0):
        seen = joblib.Parallel(n_jobs=2)(
            joblib.delayed(_fold_fit.can_train_from_x)(model, X.astype(np.float32))
            for _ in range(2)
        )
        assert seen == [True, True]
        parallel = cross_validate(model, X.astype(np.float32), y, cv=3, n_jobs=2, random_state=0)
    for name in parallel.scores:
        np.testing.assert_array_equal(parallel.scores[name], direct.scores[name])
    pd.testing.assert_frame_equal(parallel.curves, direct.curves, check_exact=True)


def test_nan_in_the_training_rows_fails_the_fold_as_before(cancer, monkeypatch, direct_fits):
    X, y = cancer
    X = X.copy()
    X[5, 2] = np.nan
    model = make_pipeline(StandardScaler(), net())
    with pytest.warns(FitFailedWarning):
        direct, copied = both_paths(monkeypatch, model, X, y, error_score=np.nan)
    assert direct.errors == copied.errors
    # two folds train on the row, the third scores it: all fail, for the same reason
    assert all("Input X contains NaN" in error for error in direct.errors)
    assert len(direct_fits) == 3


# ------------------------------------------------------------- the copying path


class ShiftedScaler(StandardScaler):
    """A subclass may change what transform means: never taken for row-wise."""


class EpochCounter(NNClassifier):
    """Overrides iter_fit: trained through it, never straight from X."""

    def iter_fit(self, X, y, sample_weight=None, **kwargs):
        yield from super().iter_fit(X, y, sample_weight, **kwargs)


class Squared(NNClassifier):
    """Changes its input in _validate_input: what it trains on is not X's rows."""

    def _validate_input(self, X, y=None, *, reset):
        checked = super()._validate_input(X, y, reset=reset)
        return (checked[0] ** 2, checked[1]) if y is not None else checked**2


@pytest.mark.parametrize(
    ("make_model", "convert"),
    [
        (lambda: make_pipeline(MaxAbsScaler(), net()), sp.csr_matrix),
        (lambda: make_pipeline(StandardScaler(), net()), pd.DataFrame),
        (lambda: make_pipeline(StandardScaler(), net()), np.asfortranarray),
        (lambda: make_pipeline(StandardScaler(), net()), lambda X: X.astype(np.float16)),
        (lambda: make_pipeline(StandardScaler(), net()), lambda X: (X * 100).astype(np.int64)),
        (lambda: make_pipeline(StandardScaler(), PCA(5), net()), np.asarray),
        (lambda: make_pipeline(ShiftedScaler(), net()), np.asarray),
        (lambda: make_pipeline(StandardScaler().set_output(transform="pandas"), net()), np.asarray),
        (lambda: make_pipeline(StandardScaler(), EpochCounter(max_epochs=3)), np.asarray),
        (lambda: make_pipeline(StandardScaler(), Squared(max_epochs=3)), np.asarray),
    ],
    ids=[
        "sparse",
        "dataframe",
        "fortran",
        "float16",
        "int",
        "pca",
        "subclass-scaler",
        "pandas-output",
        "iter-fit-override",
        "validate-input-override",
    ],
)
def test_what_the_direct_path_does_not_cover_is_fitted_on_a_copy(
    cancer, monkeypatch, direct_fits, make_model, convert
):
    X, y = cancer
    direct, copied = both_paths(monkeypatch, make_model(), convert(X), y)
    assert direct_fits == []
    assert_identical(direct, copied)
    assert direct.mean() > 0.6
