"""best_params apply to the estimator tuned (GridSearchCV's names); TuneResult reads like Optuna."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from sklearn.base import clone

from nncv.search import NNSearchCV, tune

from .conftest import small_classifier, small_space


def test_search_best_params_apply_to_a_clone_of_the_pipeline(iris):
    X, y = iris
    pipe = small_classifier()
    search = NNSearchCV(pipe, small_space(), n_trials=2, cv=3, random_state=0).fit(X, y)
    assert set(search.best_params_) == {"net__learning_rate", "net__hidden_layer_sizes"}
    applied = clone(pipe).set_params(**search.best_params_)  # raised before: no step prefix
    assert applied.get_params()["net__learning_rate"] == search.best_params_["net__learning_rate"]
    assert search.cv_results_["params"][search.best_index_] == search.best_params_
    assert "param_net__learning_rate" in search.cv_results_
    # the refit estimator was fitted with them
    assert search.best_estimator_[-1].learning_rate == search.best_params_["net__learning_rate"]


def test_tune_keeps_the_space_names_reachable(iris):
    X, y = iris
    result = tune(X, y, small_classifier(), small_space(), n_trials=2, cv=3, random_state=0)
    clone(small_classifier()).set_params(**result.best_params)
    space = result.best_space_params
    assert set(space) == {"learning_rate", "hidden_layer_sizes"}
    assert space["learning_rate"] == result.best_params["net__learning_rate"]
    assert result.best_trial.params["learning_rate"] == space["learning_rate"]
    nncv_params = result.best_trial.user_attrs["nncv_params"]
    assert nncv_params["learning_rate"] == space["learning_rate"]


def test_a_bare_network_keeps_its_plain_names(iris):
    X, y = iris
    net = small_classifier()[-1]
    result = tune(X, y, net, small_space(), n_trials=2, cv=3, random_state=0)
    assert set(result.best_params) == {"learning_rate", "hidden_layer_sizes"}
    clone(net).set_params(**result.best_params)


def test_tune_result_reads_like_an_optuna_study(iris):
    X, y = iris
    result = tune(
        X,
        y,
        small_classifier(),
        small_space(),
        n_trials=3,
        cv=3,
        random_state=0,
        pruner=None,
        scoring=["accuracy", "f1_macro"],
    )
    assert result.best_value == result.best_score == result.study.best_value
    frame = result.trials_dataframe()
    assert len(frame) == 3
    assert list(frame["number"]) == [0, 1, 2]
    assert set(frame["state"]) == {"COMPLETE"}
    for column in (
        "value",
        "params_net__learning_rate",
        "params_net__hidden_layer_sizes",
        "mean_accuracy",
        "std_accuracy",
        "mean_f1_macro",
        "std_f1_macro",
        "duration",
        "epochs",
    ):
        assert column in frame.columns, column
    for trial in result.study.trials:
        row = frame.set_index("number").loc[trial.number]
        folds = trial.user_attrs["nncv_fold_scores"]
        assert row["mean_accuracy"] == pytest.approx(np.mean(folds["accuracy"]))
        assert row["std_f1_macro"] == pytest.approx(np.std(folds["f1_macro"]))
        assert row["value"] == pytest.approx(trial.value)
        assert row["duration"] == pytest.approx(trial.duration.total_seconds())
        assert row["params_net__learning_rate"] == trial.params["learning_rate"]
    assert (frame["epochs"] == 8).all()  # small_classifier trains 8 epochs, no pruning
    # trials_frame stays the tidy trial x fold x epoch table
    assert {"trial", "fold", "epoch", "metric", "value"} <= set(result.trials_frame.columns)


def test_trials_dataframe_of_a_pruned_trial_has_nan_scores(iris):
    X, y = iris
    result = tune(X, y, small_classifier(), small_space(), n_trials=2, cv=3, random_state=0)
    study = result.study
    frozen = study.trials[0]
    pruned = optuna.trial.create_trial(
        params=frozen.params,
        distributions=frozen.distributions,
        state=optuna.trial.TrialState.PRUNED,
        user_attrs={"nncv_params": frozen.user_attrs["nncv_params"]},
    )
    study.add_trial(pruned)
    frame = result.trials_dataframe()
    last = frame.iloc[-1]
    assert last["state"] == "PRUNED"
    assert np.isnan(last["mean_score"]) and last["epochs"] == 0
