"""Tests for nncv.cross_validate (nncv/cv.py and its helpers)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, make_scorer
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold
from sklearn.model_selection import cross_validate as sk_cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

from nncv import NNClassifier, NNRegressor
from nncv.cv import CVResult, CVSetupError, ScoringError, cross_validate
from nncv.cv import fold as _fold_fit
from nncv.cv import rows as _rowwise
from nncv.exceptions import DivergedError, NncvError


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


def logistic_pipeline():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


# --------------------------------------------------------------------------- scores


def test_scores_match_scikit_learn_on_the_same_splits(cancer):
    X, y = cancer
    ours = cross_validate(logistic_pipeline(), X, y, cv=5, scoring="accuracy", random_state=3)
    theirs = sk_cross_validate(
        logistic_pipeline(),
        X,
        y,
        cv=StratifiedKFold(5, shuffle=True, random_state=3),
        scoring="accuracy",
    )
    np.testing.assert_allclose(ours.scores["accuracy"], theirs["test_score"])
    assert isinstance(ours, CVResult)
    assert ours.n_folds == 5
    np.testing.assert_allclose(ours.as_dict()["test_score"], theirs["test_score"])


def test_int_cv_splits_like_a_shuffled_stratified_kfold_for_classifiers(cancer):
    X, y = cancer
    result = cross_validate(logistic_pipeline(), X, y, cv=4, random_state=11)
    expected = [test for _, test in StratifiedKFold(4, shuffle=True, random_state=11).split(X, y)]
    assert len(result.test_indices) == 4
    for ours, theirs in zip(result.test_indices, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_int_cv_splits_like_a_shuffled_kfold_for_regressors():
    X, y = load_diabetes(return_X_y=True)
    result = cross_validate(Ridge(), X, y, cv=3, scoring="r2", random_state=5)
    expected = [test for _, test in KFold(3, shuffle=True, random_state=5).split(X)]
    for ours, theirs in zip(result.test_indices, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert result.scores["r2"].mean() > 0.3


def test_any_splitter_and_groups_are_accepted(cancer):
    X, y = cancer
    groups = np.arange(len(y)) % 7
    result = cross_validate(logistic_pipeline(), X, y, cv=GroupKFold(7), groups=groups)
    assert result.n_folds == 7
    for test in result.test_indices:
        assert len(np.unique(groups[test])) == 1


def test_several_scorers_as_list_dict_and_callable(cancer):
    X, y = cancer
    listed = cross_validate(
        logistic_pipeline(),
        X,
        y,
        cv=3,
        scoring=["accuracy", "roc_auc", "neg_log_loss"],
        random_state=0,
    )
    assert listed.metric_names == ["accuracy", "roc_auc", "neg_log_loss"]
    assert np.all(listed.scores["roc_auc"] > listed.scores["accuracy"] - 0.05)
    assert np.all(listed.scores["neg_log_loss"] < 0)

    named = cross_validate(
        logistic_pipeline(),
        X,
        y,
        cv=3,
        scoring={"acc": "accuracy", "hand": make_scorer(accuracy_score)},
        random_state=0,
    )
    np.testing.assert_array_equal(named.scores["acc"], named.scores["hand"])
    np.testing.assert_array_equal(named.scores["acc"], listed.scores["accuracy"])
    assert set(named.as_dict()) == {"fit_time", "score_time", "test_acc", "test_hand"}

    def error_count(estimator, X_test, y_test):
        return float(np.sum(estimator.predict(X_test) != y_test))

    counted = cross_validate(logistic_pipeline(), X, y, cv=3, scoring=error_count, random_state=0)
    sizes = np.array([len(test) for test in counted.test_indices])
    np.testing.assert_allclose(counted.scores["score"], sizes * (1 - listed.scores["accuracy"]))


def test_default_scoring_is_the_estimator_score(cancer):
    X, y = cancer
    default = cross_validate(logistic_pipeline(), X, y, cv=3, random_state=0)
    accuracy = cross_validate(logistic_pipeline(), X, y, cv=3, scoring="accuracy", random_state=0)
    np.testing.assert_array_equal(default.scores["score"], accuracy.scores["accuracy"])
    frame = default.to_frame()
    assert list(frame.columns) == ["fold", "score", "fit_time", "score_time"]
    assert (frame.fit_time > 0).all()
    assert default.mean() == pytest.approx(frame.score.mean())
    with pytest.raises(KeyError, match="no scorer named 'f1'"):
        default.mean("f1")


# ------------------------------------------------------------------ no leakage


def test_the_scaler_is_fitted_on_the_training_rows_only(cancer):
    X, y = cancer
    result = cross_validate(logistic_pipeline(), X, y, cv=3, random_state=0, return_estimator=True)
    for estimator, test in zip(result.estimators, result.test_indices, strict=True):
        train = np.setdiff1d(np.arange(len(y)), test)
        scaler = estimator[0]
        np.testing.assert_allclose(scaler.mean_, X[train].mean(axis=0), rtol=1e-10)
        np.testing.assert_allclose(scaler.scale_, X[train].std(axis=0), rtol=1e-10)
        assert not np.allclose(scaler.mean_, X.mean(axis=0), rtol=1e-6)


# --------------------------------------------------------------- sample weights


def test_sample_weight_is_split_per_fold_for_fit_and_scoring(cancer):
    X, y = cancer
    weights = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    result = cross_validate(
        logistic_pipeline(),
        X,
        y,
        cv=3,
        scoring="accuracy",
        sample_weight=weights,
        random_state=1,
        return_estimator=True,
    )
    theirs = sk_cross_validate(
        logistic_pipeline(),
        X,
        y,
        cv=StratifiedKFold(3, shuffle=True, random_state=1),
        params={"logisticregression__sample_weight": weights},
        return_estimator=True,
    )
    for fold, test in enumerate(result.test_indices):
        ours, reference = result.estimators[fold], theirs["estimator"][fold]
        np.testing.assert_allclose(ours[-1].coef_, reference[-1].coef_, rtol=1e-6, atol=1e-8)
        expected = accuracy_score(y[test], ours.predict(X[test]), sample_weight=weights[test])
        assert result.scores["accuracy"][fold] == pytest.approx(expected)
    unweighted = cross_validate(logistic_pipeline(), X, y, cv=3, random_state=1)
    assert not np.array_equal(unweighted.scores["score"], result.scores["accuracy"])


# ------------------------------------------------------------ reproducibility


def test_fold_seeds_go_to_unset_random_states_only(cancer):
    X, y = cancer
    unset = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(4,), max_iter=5))
    fixed = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=99)
    )
    with pytest.warns(Warning):
        seeded = cross_validate(unset, X, y, cv=3, random_state=8, return_estimator=True)
        kept = cross_validate(fixed, X, y, cv=3, random_state=8, return_estimator=True)
    assert [e[-1].random_state for e in seeded.estimators] == list(seeded.fold_seeds)
    assert len(set(seeded.fold_seeds)) == 3
    assert [e[-1].random_state for e in kept.estimators] == [99, 99, 99]
    assert unset[-1].random_state is None  # the user's estimator is left alone


def test_random_state_none_still_gives_consistent_folds(cancer):
    X, y = cancer
    result = cross_validate(logistic_pipeline(), X, y, cv=3)
    covered = np.sort(np.concatenate(result.test_indices))
    np.testing.assert_array_equal(covered, np.arange(len(y)))


# --------------------------------------------------------------------- memory


@pytest.mark.parametrize("scaler_type", [StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler])
def test_scalers_work_in_place_in_blocks_without_upcasting(scaler_type):
    rng = np.random.default_rng(0)
    n_rows = 2 * _rowwise.BLOCK_ROWS + 123  # three blocks
    X = (rng.standard_normal((n_rows, 3)) * [1.0, 10.0, 0.1] + [5.0, -2.0, 0.0]).astype(np.float32)
    expected = scaler_type().fit(X).transform(X)
    work = X.copy()
    scaler = scaler_type()
    out = _rowwise.fit_transform(scaler, work)
    assert out is work and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    validation = X[:100].copy()
    assert _rowwise.transform(scaler, validation) is validation
    np.testing.assert_allclose(validation, expected[:100], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("train_from_x", [True, False])
def test_a_fold_holds_no_copy_of_its_training_rows_or_one_when_it_must(monkeypatch, train_from_x):
    # 88 MB of float32; the training rows of a fold take 70 MB, the held-out rows 18 MB
    X = np.random.default_rng(0).standard_normal((220_000, 100), dtype=np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = make_pipeline(
        StandardScaler(), NNClassifier(hidden_layer_sizes=(8,), max_epochs=1, batch_size=512)
    )
    if not train_from_x:
        monkeypatch.setattr(_fold_fit, "can_train_from_x", lambda estimator, X: False)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        result = cross_validate(model, X, y, cv=5, random_state=0, n_jobs=1)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert result.mean() > 0.8
    if train_from_x:
        # the network reads its batches straight from X and is scored on the held-out
        # rows block by block: what remains is blocks (a few MB) and per-row vectors
        assert peak < 0.25 * X.nbytes
    else:
        # 0.8 X for the scaled training rows, plus blocks; a float64 up-cast,
        # StandardScaler's one-shot fit or a whole held-out copy during training would
        # each add 0.2 X or more
        assert 0.8 * X.nbytes < peak < 1.1 * X.nbytes


def test_float32_data_reaches_the_estimator_as_float32(cancer):
    X, y = cancer
    result = cross_validate(
        make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(4,), max_iter=3)),
        X.astype(np.float32),
        y,
        cv=2,
        n_jobs=2,
        random_state=0,
        return_estimator=True,
    )
    # MLPClassifier keeps its weights in the dtype of the data it was given
    assert all(e[-1].coefs_[0].dtype == np.float32 for e in result.estimators)


def test_dataframe_input_keeps_feature_names(cancer):
    data = load_breast_cancer(as_frame=True)
    result = cross_validate(
        logistic_pipeline(), data.data, data.target, cv=3, random_state=0, return_estimator=True
    )
    assert list(result.estimators[0].feature_names_in_) == list(data.data.columns)
    assert result.mean() > 0.9


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"y": np.zeros(10)}, CVSetupError, "same length"),
        ({"sample_weight": np.ones(3)}, CVSetupError, "sample_weight must have shape"),
        ({"sample_weight": -np.ones(150)}, CVSetupError, "non-negative"),
        ({"cv": 1}, CVSetupError, "at least 2 folds"),
        ({"cv": "five"}, CVSetupError, "cv must be"),
        ({"scoring": "acuracy"}, ScoringError, "acuracy"),
        ({"scoring": []}, ScoringError, "empty"),
        ({"scoring": 3}, ScoringError, "scoring must be"),
        ({"random_state": -1}, CVSetupError, "random_state"),
        ({"error_score": "ignore"}, CVSetupError, "error_score"),
    ],
)
def test_bad_input_is_a_clear_nncv_error(kwargs, error, message):
    X, y = load_iris(return_X_y=True)
    arguments = {"estimator": LogisticRegression(), "X": X, "y": y, **kwargs}
    with pytest.raises(error, match=message) as caught:
        cross_validate(**arguments)
    assert isinstance(caught.value, NncvError)


def test_weights_for_an_estimator_that_cannot_take_them_are_refused():
    X, y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), KNeighborsClassifier())
    with pytest.raises(CVSetupError, match="KNeighborsClassifier.fit does not accept"):
        cross_validate(model, X, y, sample_weight=np.ones(len(y)))


def test_a_failing_fold_scores_error_score_with_a_warning():
    X, y = load_iris(return_X_y=True)
    X = X.copy()
    X[0, 0] = np.nan
    rows = np.arange(1, len(y))
    # fold 0 trains on the NaN row; fold 1 never sees it
    splits = [(np.r_[0, rows[::2]], rows[1::2]), (rows[1::2], rows[::2])]
    with pytest.warns(FitFailedWarning, match="fold 0 failed and scores -1.0"):
        result = cross_validate(LogisticRegression(), X, y, cv=splits, error_score=-1.0)
    assert "NaN" in result.errors[0] and result.errors[1] is None
    assert result.scores["score"][0] == -1.0
    assert result.scores["score"][1] > 0.9
    with pytest.raises(ValueError, match="NaN"):
        cross_validate(LogisticRegression(), X, y, cv=splits, error_score="raise")
    # the default is scikit-learn's: NaN and a warning
    with pytest.warns(FitFailedWarning, match="fold 0 failed and scores nan"):
        result = cross_validate(LogisticRegression(), X, y, cv=splits)
    assert np.isnan(result["test_score"][0]) and result["test_score"][1] > 0.9


# ------------------------------------------------------------ nncv networks


def small_net_pipeline(**params):
    options = {"hidden_layer_sizes": (16,), "max_epochs": 6, "batch_size": 32, **params}
    return make_pipeline(StandardScaler(), NNClassifier(**options))


def test_curves_hold_every_fold_and_epoch_scored_on_the_held_out_rows(cancer):
    X, y = cancer
    result = cross_validate(
        small_net_pipeline(), X, y, cv=3, scoring="accuracy", random_state=0, n_jobs=1
    )
    curves = result.curves
    assert list(curves.columns[:5]) == ["fold", "epoch", "loss", "val_loss", "val_score"]
    assert len(curves) == 3 * 6
    assert curves.groupby("fold").epoch.apply(list).tolist() == [list(range(1, 7))] * 3
    assert curves[["loss", "val_loss", "val_score"]].notna().all().all()
    last = curves.groupby("fold").val_score.last().to_numpy()
    np.testing.assert_allclose(last, result.scores["accuracy"])


def test_blockwise_held_out_scores_equal_the_networks_own_validation(cancer, monkeypatch):
    X, y = cancer
    monkeypatch.setattr(_rowwise, "BLOCK_ROWS", 50)  # several blocks per held-out fold
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    result = cross_validate(small_net_pipeline(), X, y, cv=3, sample_weight=weights, random_state=2)
    for fold, test in enumerate(result.test_indices):
        train = np.setdiff1d(np.arange(len(y)), test)
        scaler = StandardScaler().fit(X[train])
        net = NNClassifier(
            hidden_layer_sizes=(16,), max_epochs=6, random_state=result.fold_seeds[fold]
        )
        validation = (scaler.transform(X[test]), y[test], weights[test])
        for _ in net.iter_fit(
            scaler.transform(X[train]), y[train], weights[train], validation_data=validation
        ):
            pass
        ours = result.curves[result.curves.fold == fold]
        np.testing.assert_allclose(ours.val_loss, net.history_.val_loss, rtol=1e-6)
        np.testing.assert_allclose(ours.val_score, net.history_.val_score, rtol=1e-12)
        np.testing.assert_allclose(ours.loss, net.history_.loss, rtol=1e-6)


def test_networks_give_the_same_numbers_for_one_and_two_jobs(cancer):
    X, y = cancer
    X = X.astype(np.float32)
    runs = [
        cross_validate(
            small_net_pipeline(dropout=0.1),
            X,
            y,
            cv=3,
            scoring=["accuracy", "neg_log_loss"],
            n_jobs=n_jobs,
            random_state=5,
        )
        for n_jobs in (1, 2)
    ]
    for name in runs[0].scores:
        np.testing.assert_array_equal(runs[0].scores[name], runs[1].scores[name])
    pd.testing.assert_frame_equal(runs[0].curves, runs[1].curves)


def test_sample_weight_reaches_each_networks_fold(cancer):
    X, y = cancer
    weights = np.where(y == 0, 5.0, 0.2)
    result = cross_validate(
        small_net_pipeline(),
        X,
        y,
        cv=3,
        sample_weight=weights,
        random_state=3,
        return_estimator=True,
    )
    for fold, test in enumerate(result.test_indices):
        train = np.setdiff1d(np.arange(len(y)), test)
        reference = small_net_pipeline(random_state=result.fold_seeds[fold])
        reference.fit(X[train], y[train], nnclassifier__sample_weight=weights[train])
        np.testing.assert_array_equal(
            result.estimators[fold].predict_proba(X[test]), reference.predict_proba(X[test])
        )
    plain = cross_validate(small_net_pipeline(), X, y, cv=3, random_state=3)
    assert not np.allclose(plain.curves.loss, result.curves.loss)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_never_stops_on_the_scored_rows(cancer):
    X, y = cancer
    result = cross_validate(
        small_net_pipeline(early_stopping=True, patience=2, max_epochs=30),
        X,
        y,
        cv=3,
        scoring="accuracy",
        random_state=0,
        return_estimator=True,
    )
    curves = result.curves
    assert {"early_stopping_val_loss", "early_stopping_val_score"} <= set(curves.columns)
    # the held-out and the early-stopping validation rows differ, so do their losses
    assert not np.allclose(curves.val_loss, curves.early_stopping_val_loss)
    for fold, estimator in enumerate(result.estimators):
        stopper = curves[curves.fold == fold]
        best = stopper.early_stopping_val_loss.idxmin()
        assert estimator[-1].best_epoch_ == stopper.epoch[best]


def test_a_diverging_fold_is_reported(cancer):
    X, y = cancer
    model = small_net_pipeline(learning_rate=1e4, optimizer="sgd", momentum=0.0, l2=0.0)
    with pytest.raises(DivergedError):
        cross_validate(model, X * 1e3, y, cv=2, random_state=0, error_score="raise")
    with pytest.warns(FitFailedWarning, match="DivergedError"):
        result = cross_validate(model, X * 1e3, y, cv=2, random_state=0, error_score=np.nan)
    assert np.isnan(result.scores["score"]).all()


def test_regressor_curves_score_r2_on_the_held_out_rows():
    X, y = load_diabetes(return_X_y=True)
    model = make_pipeline(
        StandardScaler(), NNRegressor(hidden_layer_sizes=(16,), max_epochs=5, learning_rate=0.01)
    )
    result = cross_validate(
        model, X, y, cv=3, scoring=["r2", "neg_mean_squared_error"], random_state=0
    )
    last = result.curves.groupby("fold").tail(1)
    np.testing.assert_allclose(last.val_score, result.scores["r2"], rtol=1e-5)
    # the loss is in the network's standardised target units (variance 1 on the train rows)
    variances = [np.delete(y, test).var() for test in result.test_indices]
    np.testing.assert_allclose(
        last.val_loss * variances, -result.scores["neg_mean_squared_error"], rtol=1e-3
    )
