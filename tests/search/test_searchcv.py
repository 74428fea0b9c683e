"""NNSearchCV: GridSearchCV's interface, nested CV, multi-metric refit, per-fold fit params."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from scipy.stats import rankdata
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from nncv.exceptions import SearchError
from nncv.search import Float, NNSearchCV, SearchSpace

from .conftest import small_classifier, small_space


def test_cv_results_follow_gridsearchcv_layout(iris):
    X, y = iris
    search = NNSearchCV(
        small_classifier(max_epochs=4), small_space(), n_trials=3, cv=3, random_state=0
    ).fit(X, y)
    grid = GridSearchCV(small_classifier(max_epochs=1), {"net__learning_rate": [0.01]}, cv=3)
    grid.fit(X, y)
    expected = {k for k in grid.cv_results_ if not k.startswith("param_")}
    assert expected <= set(search.cv_results_)
    assert {"param_net__learning_rate", "param_net__hidden_layer_sizes"} <= set(search.cv_results_)
    assert len(search.cv_results_["params"]) == 3
    index = search.best_index_
    assert search.cv_results_["rank_test_score"][index] == 1
    assert search.cv_results_["mean_test_score"][index] == pytest.approx(search.best_score_)
    assert search.cv_results_["params"][index] == search.best_params_
    assert search.predict(X).shape == y.shape
    assert search.predict_proba(X).shape == (150, 3)
    assert list(search.classes_) == [0, 1, 2]
    assert 0 <= search.score(X, y) <= 1
    assert is_classifier(search)
    assert isinstance(search.study_, optuna.Study)
    assert set(search.trials_frame_["trial"]) == {0, 1, 2}


def test_multi_metric_refit_names_the_metric(iris):
    X, y = iris
    search = NNSearchCV(
        small_classifier(max_epochs=3),
        small_space(),
        n_trials=3,
        cv=2,
        scoring=["accuracy", "f1_macro"],
        refit="f1_macro",
        random_state=0,
    ).fit(X, y)
    results = search.cv_results_
    for metric in ("accuracy", "f1_macro"):
        assert f"mean_test_{metric}" in results and f"split1_test_{metric}" in results
    best = int(np.nanargmax(results["mean_test_f1_macro"]))
    assert search.best_index_ == best
    assert search.best_score_ == pytest.approx(results["mean_test_f1_macro"][best])
    assert [t.value for t in search.study_.trials] == pytest.approx(
        list(results["mean_test_f1_macro"])
    )
    assert search.multimetric_ and set(search.scorer_) == {"accuracy", "f1_macro"}


def test_multi_metric_needs_a_refit_name(iris):
    X, y = iris
    search = NNSearchCV(small_classifier(), small_space(), scoring=["accuracy", "f1_macro"])
    with pytest.raises(SearchError, match="refit must name"):
        search.fit(X, y)
    with pytest.raises(SearchError, match="'recall' is not one of the scorers"):
        search.set_params(refit="recall").fit(X, y)


def test_nested_cross_val_score_runs_one_fresh_study_per_outer_fold(iris, tmp_path):
    X, y = iris
    path = str(tmp_path / "nested.log")
    search = NNSearchCV(
        small_classifier(max_epochs=3),
        small_space(),
        n_trials=2,
        cv=2,
        storage=path,
        random_state=0,
    )
    outer = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(search, X, y, cv=outer)
    assert scores.shape == (3,)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    names = optuna.get_all_study_names(storage)
    assert len(names) == 3
    fingerprints, sizes = set(), []
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        assert len(study.trials) == 2
        fingerprints.add(study.user_attrs["nncv_data_sha256"])
        sizes.append(study.user_attrs["nncv_splits"]["n_samples"])
    assert len(fingerprints) == 3  # each study saw its own outer training fold only
    assert sorted(sizes) == sorted(len(train) for train, _ in outer.split(X))
    assert search.get_params()["study_name"] is None  # the clone's params were not touched


def test_nested_cv_over_one_named_study_is_refused(iris, tmp_path):
    X, y = iris
    search = NNSearchCV(
        small_classifier(max_epochs=2),
        small_space(),
        n_trials=1,
        cv=2,
        storage=str(tmp_path / "s.log"),
        study_name="shared",
    )
    with pytest.raises(SearchError, match="other data"):
        cross_val_score(search, X, y, cv=2, error_score="raise")


def test_sample_weight_reaches_each_fold_sliced():
    # Each point appears twice: with its true label (weight 1) and flipped (weight 0).
    # Only a search that hands each fold its own rows' weights, in training and in
    # scoring, sees a learnable problem.
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, size=(150, 2))
    labels = (points[:, 0] > 0).astype(int)
    X = np.vstack([points, points])
    y = np.concatenate([labels, 1 - labels])
    w = np.concatenate([np.ones(150), np.zeros(150)])
    order = rng.permutation(300)
    X, y, w = X[order], y[order], w[order]
    space = SearchSpace(learning_rate=Float(0.02, 0.05, log=True))
    search = NNSearchCV(
        small_classifier(max_epochs=15), space, n_trials=2, cv=3, pruner="none", random_state=0
    )
    weighted = clone(search).fit(X, y, sample_weight=w)
    assert min(weighted.result_.fold_scores["score"]) > 0.9
    true_rows = w == 1
    assert np.mean(weighted.predict(X[true_rows]) == y[true_rows]) > 0.9
    # The same search misaligned (weights shuffled) or without weights cannot learn it.
    shuffled = clone(search).fit(X, y, sample_weight=rng.permutation(w))
    assert shuffled.best_score_ < 0.75
    plain = clone(search).fit(X, y)
    assert plain.best_score_ < 0.75


def test_fit_params_for_other_steps_and_unknown_ones(iris):
    X, y = iris
    search = NNSearchCV(small_classifier(max_epochs=2), small_space(), n_trials=1, cv=2)
    search.fit(X, y, scale__sample_weight=np.ones(150), net__sample_weight=np.ones(150))
    with pytest.raises(SearchError, match="unsupported fit parameters \\['epochs'\\]"):
        search.fit(X, y, epochs=3)
    with pytest.raises(SearchError, match="names no pipeline step"):
        search.fit(X, y, scaler__sample_weight=np.ones(150))
    with pytest.raises(SearchError, match="inconsistent"):
        search.fit(X, y, sample_weight=np.ones(10))


def test_refit_false_keeps_no_estimator(iris):
    X, y = iris
    search = NNSearchCV(
        small_classifier(max_epochs=2), small_space(), n_trials=1, cv=2, refit=False
    ).fit(X, y)
    assert not hasattr(search, "best_estimator_")
    assert search.best_params_
    with pytest.raises(SearchError, match="refit"):
        search.predict(X)


def test_pruned_and_failed_trials_rank_last_with_nan_scores(iris, tmp_path):
    X, y = iris
    space = SearchSpace(learning_rate=Float(1e-6, 10.0, log=True))
    path = str(tmp_path / "s.log")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    for lr in (0.02, 0.03, 0.04, 0.05, 0.06, 1e-6):
        study.enqueue_trial({"learning_rate": lr})
    search = NNSearchCV(
        small_classifier(max_epochs=15),
        space,
        n_trials=6,
        cv=3,
        storage=path,
        study_name="s",
        random_state=0,
    ).fit(X, y)
    results = search.cv_results_
    assert list(results["trial_state"]) == ["COMPLETE"] * 5 + ["PRUNED"]
    assert np.isnan(results["mean_test_score"][5])
    assert np.isnan(results["split0_test_score"][5])
    assert results["rank_test_score"][5] == 6
    assert results["mean_fit_time"][5] > 0  # the epochs it ran are timed
    assert sorted(results["rank_test_score"][:5]) == sorted(
        rankdata(-results["mean_test_score"][:5], method="min")
    )
