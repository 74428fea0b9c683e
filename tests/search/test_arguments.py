"""tune / NNSearchCV refuse bad arguments and out-of-range spaces before anything runs.

Issue 14 section 2: ``n_trials=2.5`` ran 3 trials, ``timeout=nan`` was ignored,
``n_trials=0``/``-1``/``timeout=-5`` ended with "no trial completed"; ``dropout`` in
[1.0, 1.5] was found in trial 0 after the study was written to storage.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from nncv import NNClassifier, NNSearchCV, cross_validate
from nncv.cv import CVSetupError
from nncv.exceptions import SearchError
from nncv.search import Categorical, Float, Int, SearchSpace, tune

from .conftest import small_classifier

SPACE = SearchSpace(learning_rate=Float(1e-3, 1e-2, log=True))


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"n_trials": 2.5}, "n_trials must be a positive integer or None, got 2.5"),
        ({"n_trials": 0}, "n_trials must be a positive integer or None, got 0"),
        ({"n_trials": -1}, "n_trials must be a positive integer or None, got -1"),
        ({"n_trials": True}, "n_trials must be a positive integer or None, got True"),
        ({"n_trials": "3"}, "n_trials must be a positive integer"),
        ({"timeout": math.nan}, "timeout must be a positive, finite number of seconds"),
        ({"timeout": -5}, "timeout must be a positive, finite number of seconds or None, got -5"),
        ({"timeout": 0}, "timeout must be a positive, finite number"),
        ({"timeout": math.inf}, "timeout must be a positive, finite number"),
        ({"timeout": "60"}, "timeout must be a positive number of seconds"),
        ({"cv": 1}, "cv must be at least 2 folds"),
        ({"cv": 2.5}, "cv must be an int >= 2"),
        ({"cv": True}, "cv must be an int >= 2"),
        ({"n_workers": 0}, "n_workers must be a positive integer"),
        ({"random_state": -1}, "random_state must be a non-negative int"),
        ({"random_state": 1.5}, "random_state must be an int or None"),
        ({"study_name": ""}, "study_name must be a non-empty string"),
        ({"study_name": 3}, "study_name must be a non-empty string"),
        ({"sampler": "tpee"}, "unknown sampler 'tpee'"),
        ({"refit": "yes"}, "refit must be True, False, 'ensemble' or 'seed_ensemble'"),
        ({"ensemble_size": 0}, "ensemble_size must be an int of at least 1, got 0"),
        ({"stack_folds": "yes"}, "stack_folds must be True or False, got 'yes'"),
        ({"stack_folds": 1}, "stack_folds must be True or False, got 1"),
    ],
)
def test_tune_arguments_refused_by_name_before_any_storage(arguments, message, iris, tmp_path):
    X, y = iris
    storage = tmp_path / "study.log"
    params = {"n_trials": 2, "cv": 2, "storage": str(storage), "study_name": "s", **arguments}
    with pytest.raises(SearchError) as info:
        tune(X, y, small_classifier(max_epochs=2), SPACE, **params)
    assert message in str(info.value)
    assert not storage.exists()


@pytest.mark.parametrize("n_trials, timeout", [(2.5, None), (0, None), (3, math.nan), (3, -5)])
def test_searchcv_checks_its_limits_first(n_trials, timeout, iris):
    X, y = iris
    search = NNSearchCV(small_classifier(), SPACE, n_trials=n_trials, timeout=timeout, cv=2)
    with pytest.raises(SearchError, match="n_trials|timeout"):
        search.fit(X, y)


@pytest.mark.parametrize(
    "space, message",
    [
        (SearchSpace(dropout=Float(1.0, 1.5)), "dropout=1.0"),
        (SearchSpace(dropout=Float(0.0, 1.5)), "dropout=1.5 (its high end)"),
        (SearchSpace(learning_rate=Float(0.0, 0.1)), "learning_rate=0.0"),
        (SearchSpace(l2=Float(-1e-3, 1e-3)), "l2=-0.001"),
        (SearchSpace(batch_size=Categorical((32, 0))), "batch_size=0 (a choice)"),
        (SearchSpace(hidden_size=Int(0, 8)), "hidden_size=0"),
        (SearchSpace(momentum=Float(0.5, 1.0)), "momentum=1.0 (its high end)"),
        (SearchSpace(activation=Categorical(("relu", "swish"))), "activation='swish'"),
        (
            SearchSpace(final_learning_rate=Float(1e-5, 1e-3, or_zero=True)),
            "final_learning_rate=0.0 (the 0 of or_zero)",
        ),
        (SearchSpace(scale__with_mean=Categorical((True, "no"))), "StandardScaler"),
    ],
)
def test_space_outside_the_estimator_s_range_refused_before_any_trial(
    space, message, iris, tmp_path
):
    X, y = iris
    storage = tmp_path / "study.db"
    with pytest.raises(SearchError, match="no trial was run") as info:
        tune(
            X,
            y,
            small_classifier(max_epochs=2),
            space,
            n_trials=2,
            cv=2,
            storage=f"sqlite:///{storage}",
            study_name="bounds",
        )
    assert message in str(info.value)
    assert not storage.exists()  # nothing was created in the storage


def test_space_inside_the_ranges_still_runs(iris):
    X, y = iris
    space = SearchSpace(
        dropout=Float(0.0, 0.9),
        hidden_size=Int(2, 8),
        n_layers=Int(1, 2),
        batch_size=Categorical((16, "full")),
        decay=Float(1e-6, 1e-2, log=True, or_zero=True),
    )
    result = tune(X, y, small_classifier(max_epochs=2), space, n_trials=2, cv=2, random_state=0)
    assert len(result.study.trials) == 2


def test_per_layer_estimator_values_checked_against_the_searched_depth(iris):
    X, y = iris
    estimator = small_classifier(dropout=(0.1,), max_epochs=2)
    space = SearchSpace(hidden_size=Int(4, 8), n_layers=Int(1, 3))
    with pytest.raises(SearchError, match="n_layers=3 .*'dropout'"):
        tune(X, y, estimator, space, n_trials=1, cv=2)


@pytest.mark.parametrize(
    "X, message",
    [
        ([[1.0, 2.0]] * 100 + [[1.0]] * 50, "X is a ragged list: row 0 has 2 values but row 100"),
        (np.array([["a", 1.0]] * 150, dtype=object), "X must hold numbers only.*'a'"),
        (np.ones((150, 2)) * 1e300, "X has values up to 1e\\+300.*overflow float64"),
    ],
)
def test_bad_x_named_before_any_fold(X, message, iris):
    _, y = iris
    with pytest.raises(SearchError, match=message):
        tune(X, y, None, SPACE, n_trials=1, cv=2)
    with pytest.raises(CVSetupError, match=message):
        cross_validate(small_classifier(max_epochs=1), X, y, cv=2)


def test_text_x_left_to_a_pipeline_that_encodes_it():
    X = np.array([["a"], ["b"], ["c"]] * 20, dtype=object)
    y = np.array([0, 1, 1] * 20)
    model = Pipeline([("encode", OneHotEncoder()), ("net", NNClassifier(max_epochs=2))])
    result = cross_validate(model, X, y, cv=2, random_state=0)
    assert len(result.to_frame()) >= 2


def test_overflow_message_reaches_the_user_through_a_standard_scaler(iris):
    """Fitting the pipeline outside nncv's search still fails, but inside it is named."""
    X, y = iris
    model = Pipeline([("scale", StandardScaler()), ("net", NNClassifier(max_epochs=1))])
    with pytest.raises(CVSetupError, match="overflow"):
        cross_validate(model, X * 1e300, y, cv=2)


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.where(np.arange(150) == 7, -1.0, 1.0), "non-negative.*at index 7"),
        (np.where(np.arange(150) == 7, np.nan, 1.0), "finite"),
    ],
)
def test_bad_sample_weight_refused_before_the_study(weights, message, iris, tmp_path):
    X, y = iris
    storage = tmp_path / "study.log"
    search = NNSearchCV(
        small_classifier(max_epochs=2), SPACE, n_trials=2, cv=2, storage=str(storage)
    )
    with pytest.raises(SearchError, match=message):
        search.fit(X, y, net__sample_weight=weights)
    assert not storage.exists()


@pytest.mark.parametrize("stack_folds", ["no", 0, None])
def test_cross_validate_and_searchcv_refuse_a_stack_folds_that_is_not_a_bool(stack_folds, iris):
    X, y = iris
    with pytest.raises(CVSetupError, match="stack_folds must be True or False"):
        cross_validate(small_classifier(max_epochs=1), X, y, cv=2, stack_folds=stack_folds)
    search = NNSearchCV(small_classifier(), SPACE, n_trials=1, cv=2, stack_folds=stack_folds)
    with pytest.raises(SearchError, match="stack_folds must be True or False"):
        search.fit(X, y)
    # NumPy's bools are bools
    cross_validate(small_classifier(max_epochs=1), X, y, cv=2, stack_folds=np.False_)


def test_hyperband_prunes_the_same_trials_on_every_run_of_an_in_memory_study(iris):
    # Optuna draws Hyperband's brackets from the study name: the fresh study of
    # storage=None has a fixed name, so the same random_state gives the same study.
    X, y = iris
    space = SearchSpace(learning_rate=Float(1e-3, 3e-2, log=True), dropout=Float(0.0, 0.3))
    runs = []
    for _ in range(2):
        result = tune(X, y, small_classifier(max_epochs=9), space, n_trials=6, cv=3,
                      pruner="hyperband", random_state=0, refit=False)  # fmt: skip
        assert result.study.study_name == "nncv"
        runs.append([(t.state, t.value, dict(t.intermediate_values)) for t in result.study.trials])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2", True])
def test_cross_validate_refuses_an_n_jobs_that_joblib_cannot_take(n_jobs, iris):
    X, y = iris
    with pytest.raises(CVSetupError, match="n_jobs must"):
        cross_validate(small_classifier(max_epochs=1), X, y, cv=2, n_jobs=n_jobs)
