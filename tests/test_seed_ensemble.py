"""Ensembles predicted in one stacked pass, and refit="seed_ensemble": members on all rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_regression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

import nncv
from nncv import FoldEnsemble, NNClassifier, NNRegressor, SeedEnsemble
from nncv.cli import app
from nncv.ensemble import member_seeds, stacked_outputs
from nncv.exceptions import ConfigurationError, SearchError
from nncv.network.model import Network
from nncv.search import Float, NNSearchCV, SearchSpace

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SPACE = SearchSpace(learning_rate=Float(1e-3, 3e-2, log=True))


def _model(hidden=16, dtype="float64", **params):
    return make_pipeline(
        StandardScaler(), NNClassifier(hidden, max_epochs=4, dtype=dtype, **params)
    )


def _fold_members(X, y, hidden=(16, 16, 16), dtype="float64", **params):
    """Fitted members as folds give them: each its own rows, scaler and seed."""
    rows = [np.arange(len(y)) % 3 != f for f in range(len(hidden))]
    return [
        _model(h, dtype, random_state=f, **params).fit(X[r], y[r])
        for f, (h, r) in enumerate(zip(hidden, rows, strict=True))
    ]


# --------------------------------------------------------------- one stacked pass
@pytest.mark.parametrize("params", [{}, {"dropout": 0.2}, {"batch_norm": True}])
def test_stacked_pass_equals_each_member_alone_bit_for_bit_in_float64(digits, params):
    X, y = digits
    members = _fold_members(X, y, **params)
    outputs = stacked_outputs(members, X)
    assert outputs is not None  # one architecture: one stacked pass
    for member, output in zip(members, outputs, strict=True):
        alone = member[-1]._forward(member[0].transform(X))
        np.testing.assert_array_equal(output, alone)  # bit-identical, float64
    ensemble = FoldEnsemble.from_fitted(members)
    loop = np.mean([m.predict_proba(X) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(X), loop, rtol=0, atol=1e-12)


def test_stacked_pass_float32_and_more_rows_than_one_chunk(digits, monkeypatch):
    X, y = digits
    members = _fold_members(X, y, dtype="float32")
    monkeypatch.setattr("nncv.ensemble.PREDICT_CHUNK_ROWS", 64)  # 300 rows: 5 chunks
    monkeypatch.setattr("nncv.network.model.PREDICT_CHUNK_ROWS", 64)
    outputs = stacked_outputs(members, X)
    for member, output in zip(members, outputs, strict=True):
        alone = member[-1]._forward(member[0].transform(X))
        np.testing.assert_allclose(output, alone, rtol=1e-6, atol=1e-7)
    ensemble = FoldEnsemble.from_fitted(members)
    loop = np.mean([m.predict_proba(X).astype(np.float64) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(X), loop, rtol=0, atol=1e-6)


def test_one_stacked_network_runs_instead_of_one_network_per_member(digits, monkeypatch):
    X, y = digits
    ensemble = FoldEnsemble.from_fitted(_fold_members(X, y))
    calls = []
    original = Network.predict
    monkeypatch.setattr(Network, "predict", lambda self, i: calls.append(1) or original(self, i))
    ensemble.predict_proba(X)
    assert calls == []  # the members' networks were not run one by one
    mixed = FoldEnsemble.from_fitted(_fold_members(X, y, hidden=(16, 8, 16)))
    assert stacked_outputs(mixed.estimators_, X) is None  # different hidden sizes: the loop
    mixed.predict_proba(X)
    assert len(calls) == 3


def test_different_architectures_fall_back_to_the_loop_with_the_same_numbers(digits):
    X, y = digits
    members = _fold_members(X, y, hidden=(16, 8, 24))
    ensemble = FoldEnsemble.from_fitted(members)
    loop = np.mean([m.predict_proba(X) for m in members], axis=0)
    np.testing.assert_array_equal(ensemble.predict_proba(X), loop)


def test_regression_stacked_pass_is_the_mean_prediction():
    X, y = make_regression(120, 5, noise=1.0, random_state=0)
    members = [
        make_pipeline(StandardScaler(), NNRegressor(8, max_epochs=5, random_state=s)).fit(
            X[s::2] if s < 2 else X, y[s::2] if s < 2 else y
        )
        for s in range(3)
    ]
    ensemble = FoldEnsemble.from_fitted(members)
    assert stacked_outputs(members, X) is not None
    expected = np.mean([m.predict(X) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict(X), expected, rtol=1e-12)


# --------------------------------------------------------------- seed ensembles
@pytest.fixture(scope="module")
def seed_result(digits):
    X, y = digits
    return nncv.tune(
        X, y, _model(), SPACE, n_trials=2, cv=3, random_state=0,
        refit="seed_ensemble", ensemble_size=3,
    )  # fmt: skip


def test_seed_ensemble_members_refit_on_all_rows_member_0_is_the_refit(digits, seed_result):
    X, y = digits
    ensemble = seed_result.best_estimator
    assert isinstance(ensemble, SeedEnsemble) and len(ensemble.estimators_) == 3
    refit = nncv.tune(X, y, _model(), SPACE, n_trials=2, cv=3, random_state=0, refit=True)
    assert refit.best_params == seed_result.best_params
    np.testing.assert_array_equal(
        ensemble.estimators_[0].predict_proba(X), refit.best_estimator.predict_proba(X)
    )
    seeds = [member[-1].random_state for member in ensemble.estimators_]
    assert seeds == member_seeds(refit.best_estimator[-1].random_state, 3)
    probas = [member.predict_proba(X) for member in ensemble.estimators_]
    assert not np.array_equal(probas[0], probas[1])  # different seeds, different models
    for member in ensemble.estimators_:  # every member saw all the rows
        np.testing.assert_array_equal(member[0].mean_, X.mean(axis=0))
    np.testing.assert_allclose(ensemble.predict_proba(X), np.mean(probas, axis=0), atol=1e-12)


def test_stacked_seed_members_equal_members_fitted_alone(digits):
    X, y = digits
    before = X.copy()
    ensemble = SeedEnsemble.from_estimator(_model(dropout=0.1), 3, random_state=5).fit(X, y)
    np.testing.assert_array_equal(X, before)  # the shared scaler worked on a copy
    for template, member in zip(ensemble.estimators, ensemble.estimators_, strict=True):
        alone = clone(template).fit(X, y)
        np.testing.assert_allclose(
            member.predict_proba(X), alone.predict_proba(X), rtol=1e-9, atol=1e-12
        )
        np.testing.assert_allclose(member[-1].loss_curve_, alone[-1].loss_curve_, rtol=1e-9)


def test_stacked_seed_members_with_sample_weight_regression():
    X, y = make_regression(150, 5, noise=1.0, random_state=0)
    weights = np.linspace(0.5, 2.0, len(y))
    template = make_pipeline(StandardScaler(), NNRegressor(8, max_epochs=5, dtype="float64"))
    ensemble = SeedEnsemble.from_estimator(template, 2, random_state=1)
    ensemble.fit(X, y, nnregressor__sample_weight=weights)
    for seeded, member in zip(ensemble.estimators, ensemble.estimators_, strict=True):
        alone = clone(seeded).fit(X, y, nnregressor__sample_weight=weights)
        np.testing.assert_allclose(member.predict(X), alone.predict(X), rtol=1e-9)


def test_seed_ensemble_saved_loaded_bit_identically_and_cloned(tmp_path, digits, seed_result):
    X, y = digits
    ensemble = seed_result.best_estimator
    loaded = nncv.load(nncv.save(ensemble, tmp_path / "seeds.nncv"))
    assert type(loaded) is SeedEnsemble
    np.testing.assert_array_equal(loaded.predict_proba(X), ensemble.predict_proba(X))
    twin = clone(ensemble)
    assert type(twin) is SeedEnsemble and not hasattr(twin, "estimators_")
    twin.fit(X, y)  # each member refit with its own seed: the same models again
    np.testing.assert_allclose(twin.predict_proba(X), ensemble.predict_proba(X), atol=1e-12)


def test_nnsearchcv_seed_ensemble_clone_and_nested(digits):
    X, y = digits
    search = NNSearchCV(
        _model(), SPACE, n_trials=1, cv=3, random_state=0, refit="seed_ensemble", ensemble_size=2
    )
    assert clone(search).get_params()["ensemble_size"] == 2
    search.fit(X, y)
    assert isinstance(search.best_estimator_, SeedEnsemble)
    assert len(search.best_estimator_.estimators_) == 2
    np.testing.assert_array_equal(search.predict(X), search.best_estimator_.predict(X))
    assert cross_val_score(clone(search), X, y, cv=2).shape == (2,)


def test_bad_ensemble_settings_are_refused_by_name(digits):
    X, y = digits
    with pytest.raises(SearchError, match="ensemble_size must be an int of at least 1"):
        nncv.tune(X, y, _model(), SPACE, n_trials=1, cv=3, refit="seed_ensemble", ensemble_size=0)
    with pytest.raises(SearchError, match="seed_ensemble"):
        nncv.tune(X, y, _model(), SPACE, n_trials=1, cv=3, refit="seeds")
    with pytest.raises(ConfigurationError, match="n_members must be at least 1"):
        SeedEnsemble.from_estimator(_model(), 0)
    with pytest.raises(ConfigurationError, match="nncv network"):
        SeedEnsemble.from_estimator(StandardScaler(), 2)


def test_cli_refit_seed_ensemble(tmp_path):
    model = tmp_path / "seeds.nncv"
    args = ["tune", "iris", "--trials", "1", "--cv", "3", "--seed", "0", "--param"]
    args += ["max_epochs=3", "--refit", "seed_ensemble", "--ensemble-size", "2"]
    result = CliRunner().invoke(app, [*args, "--out", str(model)])
    assert result.exit_code == 0, result.output
    loaded = nncv.load(model)
    assert isinstance(loaded, SeedEnsemble) and len(loaded.estimators_) == 2


def test_the_kept_stack_follows_members_changed_after_a_prediction(digits):
    X, y = digits
    members = _fold_members(X, y)
    ensemble = FoldEnsemble.from_fitted(members)
    before = ensemble.predict_proba(X)
    members[1][-1].partial_fit(members[1][0].transform(X), y)  # new weights for member 1
    after = ensemble.predict_proba(X)
    assert not np.array_equal(before, after)
    loop = np.mean([m.predict_proba(X) for m in members], axis=0)
    np.testing.assert_allclose(after, loop, rtol=0, atol=1e-12)


def test_members_that_cannot_stack_are_fitted_one_by_one_with_the_same_numbers(digits):
    from nncv.ensemble import _stack_refusal

    X, y = digits
    single = SeedEnsemble.from_estimator(_model(), 1, random_state=3).fit(X, y)
    alone = clone(single.estimators[0]).fit(X, y)
    np.testing.assert_array_equal(single.predict_proba(X), alone.predict_proba(X))
    mixed = [_model(16, random_state=0), _model(8, random_state=1)]
    assert _stack_refusal(mixed, {}) == "the folds' networks have different parameters"
    assert _stack_refusal(mixed[:1] * 2, {"standardscaler__copy": True}) is not None
    ensemble = FoldEnsemble(mixed).fit(X, y)
    for template, member in zip(mixed, ensemble.estimators_, strict=True):
        np.testing.assert_array_equal(
            member.predict_proba(X), clone(template).fit(X, y).predict_proba(X)
        )
