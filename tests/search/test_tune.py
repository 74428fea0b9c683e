"""nncv.tune: lockstep pruning, fixed splits, seeds, divergence, refit, result tables."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import accuracy_score

from nncv import NNClassifier
from nncv.cv.splits import derive_seed as fold_seed
from nncv.search import Float, Int, SearchSpace, tune
from nncv.search._study import decode_splits

from .conftest import small_classifier, small_regressor, small_space

COMPLETE = optuna.trial.TrialState.COMPLETE
PRUNED = optuna.trial.TrialState.PRUNED
FAIL = optuna.trial.TrialState.FAIL


def _enqueued_study(path, name, space, values_list):
    """A journal study with trials queued, which tune then continues."""
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    for values in values_list:
        study.enqueue_trial(space.trial_params(**values))
    return str(path)


def test_result_is_the_mean_over_folds_and_refits(iris):
    X, y = iris
    result = tune(X, y, small_classifier(), small_space(), n_trials=3, cv=3, random_state=0)
    best = result.best_trial
    scores = best.user_attrs["nncv_fold_scores"]["score"]
    assert len(scores) == 3
    assert isinstance(result.best_score, float)
    assert result.best_score == pytest.approx(np.mean(scores))
    assert result.best_score_std == pytest.approx(np.std(scores))
    assert result.best_score == max(t.value for t in result.study.trials if t.state == COMPLETE)
    assert set(result.best_params) == {"net__learning_rate", "net__hidden_layer_sizes"}
    net = result.best_estimator[-1]
    assert net.learning_rate == result.best_params["net__learning_rate"]
    assert net.hidden_layer_sizes == result.best_params["net__hidden_layer_sizes"]
    assert accuracy_score(y, result.best_estimator.predict(X)) > 0.5


def test_trials_frame_is_trial_by_fold_by_epoch_by_metric(iris):
    X, y = iris
    result = tune(
        X,
        y,
        small_classifier(max_epochs=4),
        small_space(),
        n_trials=2,
        cv=3,
        pruner="none",
        random_state=0,
    )
    frame = result.trials_frame
    assert list(frame.columns) == ["trial", "state", "fold", "epoch", "metric", "value"]
    assert len(frame) == 2 * 3 * 4 * 5
    assert set(frame["metric"]) == {"loss", "data_loss", "val_loss", "val_score", "learning_rate"}
    per_trial = frame.groupby(["trial", "fold"])["epoch"].max()
    assert (per_trial == 4).all()
    # The table holds what the folds reported: the mean of epoch 4's val_score is the
    # last value the trial reported to the pruner.
    for trial in result.study.trials:
        last = frame[(frame.trial == trial.number) & (frame.metric == "val_score")]
        mean_at_4 = last[last.epoch == 4]["value"].mean()
        assert trial.intermediate_values[4] == pytest.approx(mean_at_4)


def test_lockstep_pruning_stops_a_hopeless_trial_on_all_folds(iris, tmp_path):
    X, y = iris
    space = SearchSpace(learning_rate=Float(1e-6, 1e-1, log=True))
    good = [{"learning_rate": lr} for lr in (0.02, 0.03, 0.04, 0.05, 0.06)]
    path = _enqueued_study(tmp_path / "s.log", "prune", space, [*good, {"learning_rate": 1e-6}])
    max_epochs = 15
    result = tune(
        X,
        y,
        small_classifier(max_epochs=max_epochs),
        space,
        n_trials=6,
        cv=3,
        storage=path,
        study_name="prune",
        random_state=0,
    )
    trials = result.study.trials
    assert [t.state for t in trials[:5]] == [COMPLETE] * 5
    hopeless = trials[5]
    assert hopeless.params["learning_rate"] == 1e-6
    assert hopeless.state == PRUNED
    history = hopeless.user_attrs["nncv_history"]
    folds, epochs = np.array(history["fold"]), np.array(history["epoch"])
    last_epoch = {f: epochs[folds == f].max() for f in range(3)}
    # Every fold advanced together and none finished: the pruner saw all of them.
    assert len(set(last_epoch.values())) == 1
    assert next(iter(last_epoch.values())) < max_epochs
    scores = np.array(history["val_score"])
    for step, value in hopeless.intermediate_values.items():
        assert value == pytest.approx(scores[epochs == step].mean())


def test_splits_are_fixed_for_the_study_and_recorded(iris, tmp_path):
    X, y = iris
    path = str(tmp_path / "study.log")
    first = tune(
        X,
        y,
        small_classifier(max_epochs=3),
        small_space(),
        n_trials=3,
        cv=3,
        storage=path,
        study_name="s",
        random_state=1,
    )
    again = tune(
        X,
        y,
        small_classifier(max_epochs=3),
        small_space(),
        n_trials=2,
        cv=3,
        storage=path,
        study_name="s",
    )
    trials = again.study.trials
    assert len(trials) == 5
    digests = {t.user_attrs["nncv_splits_sha256"] for t in trials}
    assert digests == {again.study.user_attrs["nncv_splits_sha256"]}
    assert first.study.user_attrs["nncv_splits"] == again.study.user_attrs["nncv_splits"]
    # The stored folds partition the rows and are stratified.
    splits = decode_splits(again.study.user_attrs["nncv_splits"])
    tests = np.concatenate([test for _, test in splits])
    assert sorted(tests.tolist()) == list(range(len(y)))
    for train, test in splits:
        assert np.intersect1d(train, test).size == 0
        counts = np.bincount(y[test])
        assert counts.max() - counts.min() <= 1  # stratified


def test_fold_seeds_follow_the_study_seed_trial_and_fold(iris):
    X, y = iris
    result = tune(
        X,
        y,
        small_classifier(max_epochs=3),
        small_space(),
        n_trials=2,
        cv=2,
        pruner="none",
        random_state=7,
    )
    seed = result.study.user_attrs["nncv_seed"]
    assert seed == 7
    splits = decode_splits(result.study.user_attrs["nncv_splits"])
    trial = result.study.trials[1]
    params = result.space.suggest(optuna.trial.FixedTrial(trial.params), 1)
    # Rebuild fold 1 by hand from the documented seed: same score as the study's.
    train, test = splits[1]
    pipe = clone(small_classifier(max_epochs=3)).set_params(
        net__learning_rate=params["learning_rate"],
        net__hidden_layer_sizes=params["hidden_layer_sizes"],
        net__random_state=fold_seed(7, 1, 1),
    )
    pipe.fit(X[train], y[train])
    expected = accuracy_score(y[test], pipe.predict(X[test]))
    assert trial.user_attrs["nncv_fold_scores"]["score"][1] == expected


def test_early_stopping_folds_are_plain_fits_that_never_see_their_held_out_rows(iris):
    # With early stopping, a fold stops on its own validation split of the training rows
    # (as fit does), so its score is a plain fit's held-out score, as cross_val_score
    # would give, not the best point of the held-out curve.
    X, y = iris
    estimator = small_classifier(max_epochs=40, early_stopping=True, patience=2)
    space = SearchSpace(learning_rate=Float(0.05, 0.1, log=True), hidden_size=Int(4, 8))
    result = tune(X, y, estimator, space, n_trials=2, cv=3, pruner="none", random_state=3)
    splits = decode_splits(result.study.user_attrs["nncv_splits"])
    history = pd.DataFrame(result.study.trials[1].user_attrs["nncv_history"])
    assert {"early_stopping_val_loss", "early_stopping_val_score"} <= set(history.columns)
    for trial in result.study.trials:
        params = result.space.suggest(optuna.trial.FixedTrial(trial.params), 1)
        history = pd.DataFrame(trial.user_attrs["nncv_history"])
        for fold, (train, test) in enumerate(splits):
            pipe = clone(estimator).set_params(
                net__learning_rate=params["learning_rate"],
                net__hidden_layer_sizes=params["hidden_layer_sizes"],
                net__random_state=fold_seed(3, trial.number, fold),
            )
            pipe.fit(X[train], y[train])
            expected = accuracy_score(y[test], pipe.predict(X[test]))
            assert trial.user_attrs["nncv_fold_scores"]["score"][fold] == expected
            assert trial.user_attrs["nncv_best_epochs"][fold] == pipe[-1].best_epoch_
            mine = history[history["fold"] == fold]
            # the held-out curve is the plain fit's accuracy epoch by epoch
            assert mine["val_score"].iloc[pipe[-1].best_epoch_ - 1] == expected
            assert mine["early_stopping_val_score"].tolist() == pytest.approx(
                pipe[-1].validation_scores_
            )


def test_same_seed_same_study(iris):
    X, y = iris
    runs = [
        tune(
            X,
            y,
            small_classifier(max_epochs=4),
            small_space(),
            n_trials=3,
            cv=2,
            random_state=3,
            refit=False,
        )
        for _ in range(2)
    ]
    assert [t.params for t in runs[0].study.trials] == [t.params for t in runs[1].study.trials]
    assert [t.value for t in runs[0].study.trials] == [t.value for t in runs[1].study.trials]


def test_same_trial_scores_with_one_or_two_workers(iris, tmp_path):
    X, y = iris
    space = small_space()
    values = [
        {"learning_rate": lr, "hidden_size": h}
        for lr, h in [(0.01, 4), (0.05, 8), (0.02, 6), (0.08, 5)]
    ]
    scores = {}
    for n_workers in (1, 2):
        path = _enqueued_study(tmp_path / f"w{n_workers}.log", "w", space, values)
        result = tune(
            X,
            y,
            small_classifier(max_epochs=5),
            space,
            n_trials=4,
            cv=3,
            pruner="none",
            storage=path,
            study_name="w",
            n_workers=n_workers,
            random_state=11,
            refit=False,
        )
        trials = sorted(result.study.trials, key=lambda t: t.number)
        assert [t.state for t in trials] == [COMPLETE] * 4
        scores[n_workers] = {t.number: (t.params, t.value) for t in trials}
    assert scores[1] == scores[2]


def test_two_workers_without_storage_use_a_temporary_journal(iris):
    X, y = iris
    result = tune(
        X,
        y,
        small_classifier(max_epochs=3),
        small_space(),
        n_trials=3,
        cv=2,
        n_workers=2,
        random_state=0,
    )
    assert isinstance(result.study._storage, optuna.storages.InMemoryStorage)
    assert len(result.study.trials) == 3
    assert result.best_estimator is not None


def test_diverging_trial_is_failed_with_its_reason_and_the_study_goes_on(regression, tmp_path):
    X, y = regression
    space = SearchSpace(learning_rate=Float(1e-3, 10.0, log=True))
    values = [{"learning_rate": 0.01}, {"learning_rate": 10.0}, {"learning_rate": 0.02}]
    path = _enqueued_study(tmp_path / "nan.log", "nan", space, values)
    result = tune(
        X,
        y,
        small_regressor(optimizer="sgd"),
        space,
        n_trials=3,
        cv=3,
        pruner="none",
        storage=path,
        study_name="nan",
        random_state=0,
    )
    trials = result.study.trials
    assert len(trials) == 3
    assert trials[1].state == FAIL
    assert "diverged" in trials[1].user_attrs["fail_reason"]
    assert "learning rate 10" in trials[1].user_attrs["fail_reason"]
    assert trials[1].user_attrs["nncv_history"]["fold"] == []  # fold 0 died in epoch 1
    assert [trials[i].state for i in (0, 2)] == [COMPLETE] * 2
    assert result.best_trial.number != 1


def test_no_completed_trial_is_a_clear_error(regression):
    X, y = regression
    space = SearchSpace(learning_rate=Float(10.0, 10.0, log=True))
    with pytest.raises(Exception, match="no trial of study .* completed .*2 fail.*diverged"):
        tune(X, y, small_regressor(optimizer="sgd"), space, n_trials=2, cv=2, random_state=0)


def test_refit_uses_the_epoch_where_the_folds_peaked(iris):
    X, y = iris
    estimator = small_classifier(max_epochs=60, early_stopping=True, patience=3)
    space = SearchSpace(learning_rate=Float(0.05, 0.1, log=True), hidden_size=Int(4, 8))
    result = tune(X, y, estimator, space, n_trials=2, cv=3, pruner="none", random_state=0)
    best = result.best_trial
    history = pd.DataFrame(best.user_attrs["nncv_history"])
    best_epochs = best.user_attrs["nncv_best_epochs"]
    curves = history.pivot(index="epoch", columns="fold", values="val_score")
    assert curves.isna().any().any()  # some fold stopped before another: the case at hand
    for fold in curves.columns:  # a stopped fold keeps its restored (best-epoch) score
        curves.loc[curves[fold].isna(), fold] = curves.loc[best_epochs[fold], fold]
    assert result.refit_epochs == int(curves.mean(axis=1).idxmax())
    assert best.user_attrs["nncv_peak_epoch"] == result.refit_epochs
    net = result.best_estimator[-1]
    assert net.early_stopping is False
    assert net.n_iter_ == result.refit_epochs


def test_regression_default_estimator_and_scorers(regression):
    X, y = regression
    result = tune(
        X,
        y,
        space=SearchSpace(learning_rate=Float(1e-3, 1e-1, log=True)),
        n_trials=2,
        cv=2,
        scoring=["r2", "neg_mean_absolute_error"],
        random_state=0,
    )
    assert type(result.best_estimator[-1]).__name__ == "NNRegressor"
    assert result.metric == "r2"
    assert set(result.fold_scores) == {"r2", "neg_mean_absolute_error"}
    assert all(v <= 0 for v in result.fold_scores["neg_mean_absolute_error"])


def test_bare_estimator_is_tuned_without_a_pipeline(iris):
    X, y = iris
    result = tune(
        X,
        y,
        NNClassifier(hidden_layer_sizes=4, max_epochs=3),
        small_space(),
        n_trials=2,
        cv=2,
        random_state=0,
    )
    assert isinstance(result.best_estimator, NNClassifier)
