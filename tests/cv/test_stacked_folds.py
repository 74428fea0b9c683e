"""Folds trained as one stack give the numbers of the folds trained one after another."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_digits, make_regression
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GroupKFold, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nncv
from nncv import NNClassifier, NNRegressor
from nncv.cv import held_out
from nncv.cv.fold import Fold, FoldGroup, stack_refusal
from nncv.exceptions import DivergedError
from nncv.search import Float, SearchSpace

F64 = "float64"


def _digits(n=300):
    X, y = load_digits(return_X_y=True)
    return np.ascontiguousarray(X[:n]), y[:n]


def _both(estimator, X, y, **kwargs):
    stacked = nncv.cross_validate(estimator, X, y, stack_folds=True, **kwargs)
    alone = nncv.cross_validate(estimator, X, y, stack_folds=False, **kwargs)
    return stacked, alone


def _assert_same(stacked, alone):
    # In float64 within 1e-9 relative (a stacked matmul may sum in another order than a
    # single one, so the last bits can differ; scores of class labels are equal).
    pd.testing.assert_frame_equal(stacked.curves, alone.curves, rtol=1e-9, atol=0)
    for name in alone.scores:
        np.testing.assert_allclose(stacked.scores[name], alone.scores[name], rtol=1e-9)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"dropout": 0.2, "optimizer": "sgd", "momentum": 0.9},
        {"early_stopping": True, "patience": 2, "max_epochs": 30, "learning_rate": 0.05},
        {
            "hidden_layer_sizes": (16, 8),
            "schedule": "exponential",
            "final_learning_rate": 1e-4,
            "optimizer": "rmsprop",
        },
        {"batch_norm": True, "dropout": 0.1},
    ],
    ids=["plain", "dropout-sgd", "early-stopping", "deep-exponential", "batch-norm"],
)
def test_cross_validate_stacked_equals_sequential(params):
    X, y = _digits()
    settings = {"hidden_layer_sizes": 16, "max_epochs": 6, "batch_size": 32, **params}
    model = make_pipeline(StandardScaler(), NNClassifier(**settings, dtype=F64))
    stacked, alone = _both(model, X, y, cv=4, random_state=3, scoring=["accuracy", "neg_log_loss"])
    _assert_same(stacked, alone)
    if params.get("early_stopping"):
        assert len(set(stacked.curves.groupby("fold").epoch.max())) > 1  # folds stop apart


def test_sample_weights_groups_and_estimators():
    X, y = _digits()
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.2, 2.0, len(y))
    groups = np.arange(len(y)) % 7
    model = make_pipeline(
        StandardScaler(), NNClassifier(12, dtype=F64, max_epochs=4, batch_size=20)
    )
    stacked, alone = _both(
        model,
        X,
        y,
        cv=GroupKFold(3),
        groups=groups,
        sample_weight=weights,
        random_state=1,
        return_estimator=True,
    )
    _assert_same(stacked, alone)
    for a, b in zip(stacked.estimators, alone.estimators, strict=True):
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-9)
        assert a[-1].n_iter_ == b[-1].n_iter_ == 4
        pd.testing.assert_frame_equal(a[-1].history_, b[-1].history_)


def test_sparse_input_and_regression():
    X, y = _digits()
    X_sparse = sp.csr_matrix(X / 16.0)
    model = NNClassifier(10, dtype=F64, max_epochs=3, batch_size=25)
    _assert_same(*_both(model, X_sparse, y, cv=3, random_state=0))
    Xr, yr = make_regression(200, 6, noise=0.5, random_state=0)
    reg = make_pipeline(StandardScaler(), NNRegressor(8, max_epochs=5, batch_size=16, dtype=F64))
    _assert_same(*_both(reg, Xr, yr, cv=5, random_state=2, scoring="r2"))


def test_n_jobs_splits_the_stack_and_changes_nothing():
    X, y = _digits(200)
    model = make_pipeline(StandardScaler(), NNClassifier(8, dtype=F64, max_epochs=3, batch_size=32))
    one = nncv.cross_validate(model, X, y, cv=5, random_state=0, n_jobs=1)
    two = nncv.cross_validate(model, X, y, cv=5, random_state=0, n_jobs=2)
    # the same stacks of folds give bit-identical numbers in any process
    pd.testing.assert_frame_equal(one.curves, two.curves, check_exact=True)


def _make_group(model, X, y, n_folds=3, **kwargs):
    rows = np.arange(len(y))
    folds = [
        Fold(model, X, y, np.setdiff1d(rows, rows[i::n_folds]), rows[i::n_folds], index=i, seed=i)
        for i in range(n_folds)
    ]
    return FoldGroup(folds, **kwargs)


def test_group_says_which_folds_it_stacks():
    X, y = _digits(150)
    group = _make_group(
        make_pipeline(StandardScaler(), NNClassifier(8, dtype=F64, max_epochs=2)), X, y
    )
    group.start()
    assert group.stacked and group.refusal is None
    group.close()
    chatty = make_pipeline(StandardScaler(), NNClassifier(8, dtype=F64, max_epochs=2, verbose=1))
    group = _make_group(chatty, X, y)
    group.start()
    assert not group.stacked and "verbose" in group.refusal
    group.close()

    class Hooked(NNClassifier):
        def _prepare_fit(self, *args, **kwargs):
            return super()._prepare_fit(*args, **kwargs)

    group = _make_group(Hooked(8, max_epochs=2), X, y)
    group.start()
    assert "overrides _prepare_fit" in group.refusal
    group.close()
    assert stack_refusal([]) == "fewer than two folds to train"


def test_lockstep_chunks_equal_a_drained_stack():
    X, y = _digits(150)
    model = make_pipeline(
        StandardScaler(), NNClassifier(8, dtype=F64, max_epochs=5, early_stopping=True)
    )
    chunked = _make_group(model, X, y)
    chunked.start()
    means = []
    while not chunked.finished:
        chunked.advance(2)
        means.append(chunked.val_score())
    drained = _make_group(model, X, y, stack=False)
    drained.start()
    while not drained.finished:
        drained.advance(2)
    for a, b in zip(chunked.folds, drained.folds, strict=True):
        assert a.records == b.records
        assert a.val_score == b.val_score
    assert means[-1] == drained.val_score()


def test_diverged_folds_in_a_stack():
    X, y = load_breast_cancer(return_X_y=True)
    net = NNClassifier(16, max_epochs=6, learning_rate=1e4, optimizer="sgd", momentum=0.0, l2=0.0)
    model = make_pipeline(StandardScaler(), net)  # float32: the loss overflows
    with pytest.raises(DivergedError):
        nncv.cross_validate(model, X * 1e3, y, cv=3, random_state=0, error_score="raise")
    with pytest.warns(FitFailedWarning, match="DivergedError"):
        stacked, alone = _both(model, X * 1e3, y, cv=3, random_state=0, error_score=0.0)
    assert stacked.errors == alone.errors
    assert all(error and "DivergedError" in error for error in stacked.errors)


def test_study_stacked_equals_sequential():
    X, y = _digits(200)
    model = make_pipeline(StandardScaler(), NNClassifier(8, dtype=F64, max_epochs=4, batch_size=32))
    space = SearchSpace(learning_rate=Float(1e-3, 1e-1, log=True))
    results = [
        nncv.tune(X, y, model, space, n_trials=3, cv=3, random_state=0, stack_folds=stack)
        for stack in (True, False)
    ]
    frames = [result.trials_frame.drop(columns=["fit_time"], errors="ignore") for result in results]
    columns = [c for c in frames[0].columns if "time" not in c]
    pd.testing.assert_frame_equal(frames[0][columns], frames[1][columns], rtol=1e-9, atol=0)
    assert results[0].best_score == pytest.approx(results[1].best_score, rel=1e-9)
    np.testing.assert_allclose(
        results[0].best_estimator.predict_proba(X),
        results[1].best_estimator.predict_proba(X),
        rtol=1e-9,
    )


@pytest.mark.parametrize("dtype", ["float32", F64])
def test_stacked_held_out_scores_equal_the_per_fold_ones(dtype, monkeypatch):
    # 5 folds of 203 rows: held-out sizes 41, 41, 41, 40, 40 (two stacked passes per epoch),
    # with sample weights and early stopping (folds stop apart; the stopped drop out)
    X, y = _digits(203)
    weights = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    settings = {"max_epochs": 12, "batch_size": 32, "early_stopping": True, "patience": 2}
    model = make_pipeline(
        StandardScaler(), NNClassifier(8, **settings, learning_rate=0.05, dtype=dtype)
    )
    rows = np.arange(len(y))
    tests = [rows[i::5] for i in range(5)]

    def group(stack):
        folds = [
            Fold(model, X, y, np.setdiff1d(rows, t), t, index=i, seed=i, sample_weight=weights)
            for i, t in enumerate(tests)
        ]
        return FoldGroup(folds, stack=stack)

    one_by_one = held_out._NetworkEvaluator.__call__
    calls = []  # the folds' own (one by one) held-out evaluations
    monkeypatch.setattr(
        held_out._NetworkEvaluator, "__call__", lambda self: calls.append(1) or one_by_one(self)
    )
    stacked = group(True)
    stacked.start()
    assert stacked.stacked
    checked = 0
    while not stacked.finished:
        stacked.advance(1)
        for fold in stacked.folds:
            if not fold.finished:  # its network holds the weights its last epoch reached
                scores = fold._scoring.scores[fold.records[-1]["epoch"]]
                assert scores == one_by_one(fold._scoring.evaluate)  # bit for bit
                checked += 1
    stacked.close()
    assert calls == [], "the stacked folds' held-out rows were scored fold by fold"
    assert checked >= 5 * 3
    assert len({len(fold.records) for fold in stacked.folds}) > 1  # folds stop apart
    alone = group(False)
    alone.drain()
    for a, b in zip(stacked.folds, alone.folds, strict=True):
        pd.testing.assert_frame_equal(
            pd.DataFrame(a.records), pd.DataFrame(b.records), rtol=1e-9 if dtype == F64 else 1e-5
        )


def test_a_fold_whose_held_out_rows_all_weigh_nothing_fails_alone_both_ways():
    # The stacked held-out scoring raised NumPy's ZeroDivisionError out of the whole
    # cross_validate; now that fold fails (its scorer cannot weigh zero rows) and the
    # others are scored, as folds one after another do.
    X, y = _digits(150)
    weights = np.r_[np.zeros(50), np.ones(100)]
    model = make_pipeline(StandardScaler(), NNClassifier(8, max_epochs=2, dtype=F64))
    with pytest.warns(FitFailedWarning, match="fold 0 failed"):
        stacked, alone = _both(model, X, y, cv=KFold(3), sample_weight=weights, random_state=0)
    for result in (stacked, alone):
        assert np.isnan(result.scores["score"][0])
        assert np.isfinite(result.scores["score"][1:]).all()
    np.testing.assert_allclose(stacked.scores["score"], alone.scores["score"], rtol=1e-9)
    pd.testing.assert_frame_equal(stacked.curves, alone.curves, rtol=1e-9, atol=0)


def test_network_metrics_of_rows_that_weigh_nothing_are_nan():
    from nncv.network import metrics
    from nncv.network.losses import mean_loss

    p, y, zero = np.array([[0.9, 0.1], [0.2, 0.8]]), np.eye(2), np.zeros(2)
    assert np.isnan(metrics.accuracy(p, y, zero)) and np.isnan(metrics.r2(p, y, zero))
    assert np.isnan(mean_loss(np.array([0.1, 0.2]), zero))
    assert metrics.accuracy(p, y, np.array([0.0, 1.0])) == 1.0
