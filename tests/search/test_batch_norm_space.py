"""A study can tune batch normalisation: ``SearchSpace(batch_norm=Categorical([False, True]))``."""

from __future__ import annotations

import optuna

from nncv.search import Categorical, SearchSpace, tune

from .conftest import small_classifier, small_space

COMPLETE = optuna.trial.TrialState.COMPLETE


def test_tune_over_batch_norm(iris, tmp_path):
    X, y = iris
    space = small_space(batch_norm=Categorical([False, True]))
    assert SearchSpace.from_toml_string(space.to_toml_string()) == space
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.log"))
    )
    study = optuna.create_study(storage=storage, study_name="bn", direction="maximize")
    for flag in (False, True):  # both values tried, whatever the sampler draws
        study.enqueue_trial(space.trial_params(learning_rate=0.05, hidden_size=6, batch_norm=flag))
    result = tune(
        X,
        y,
        small_classifier(),
        space,
        n_trials=2,
        cv=3,
        pruner=None,
        storage=str(tmp_path / "study.log"),
        study_name="bn",
        random_state=0,
    )
    trials = [t for t in result.study.trials if t.state == COMPLETE]
    assert sorted(t.params["batch_norm"] for t in trials) == [False, True]
    scores = {t.params["batch_norm"]: t.value for t in trials}
    assert scores[False] != scores[True]  # the flag reached the networks
    best = result.best_estimator[-1]
    assert best.batch_norm is result.best_params["net__batch_norm"]
    assert any(best.network_.batch_norm) is best.batch_norm
