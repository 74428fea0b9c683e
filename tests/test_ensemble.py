"""Fold ensembles: refit="ensemble" keeps the best trial's fold models as the final model."""

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
from nncv import FoldEnsemble, NNClassifier, NNRegressor
from nncv.cli import app
from nncv.exceptions import ArtifactError, ConfigurationError, SearchError
from nncv.search import Float, NNSearchCV, SearchSpace

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SPACE = SearchSpace(learning_rate=Float(1e-3, 3e-2, log=True))


def _model(**params):
    return make_pipeline(StandardScaler(), NNClassifier(16, max_epochs=4, **params))


@pytest.fixture(scope="module")
def ensemble_result(digits):
    X, y = digits
    return nncv.tune(X, y, _model(), SPACE, n_trials=2, cv=3, random_state=0, refit="ensemble")


def test_tune_keeps_the_best_trials_fold_models(digits, ensemble_result):
    X, y = digits
    ensemble = ensemble_result.best_estimator
    assert isinstance(ensemble, FoldEnsemble)
    assert len(ensemble.estimators_) == 3
    # the re-created fold models score on their held-out rows what the trial recorded
    from nncv.search._study import decode_splits

    splits = decode_splits(ensemble_result.study.user_attrs["nncv_splits"])
    recorded = ensemble_result.fold_scores["score"]
    for member, (_, test), score in zip(ensemble.estimators_, splits, recorded, strict=True):
        assert member.score(X[test], y[test]) == pytest.approx(score, abs=1e-12)
    members = [member.predict_proba(X).astype(np.float64) for member in ensemble.estimators_]
    np.testing.assert_allclose(ensemble.predict_proba(X), np.mean(members, axis=0), rtol=1e-12)
    assert (ensemble.predict(X) == ensemble.classes_[ensemble.predict_proba(X).argmax(1)]).all()
    assert ensemble.score(X, y) > 0.5
    # the members are different models (each fold's own rows and seed)
    assert not np.array_equal(members[0], members[1])


def test_an_ensemble_is_saved_and_loaded_bit_identically(tmp_path, digits, ensemble_result):
    X, _ = digits
    ensemble = ensemble_result.best_estimator
    loaded = nncv.load(nncv.save(ensemble, tmp_path / "ensemble.nncv"))
    assert isinstance(loaded, FoldEnsemble)
    np.testing.assert_array_equal(loaded.predict_proba(X), ensemble.predict_proba(X))
    for ours, theirs in zip(loaded.estimators_, ensemble.estimators_, strict=True):
        np.testing.assert_array_equal(ours[0].scale_, theirs[0].scale_)  # each its own scaler
    assert (tmp_path / "ensemble.nncv").read_bytes().find(b"pickle") == -1
    with pytest.raises(ArtifactError, match="not fitted"):
        nncv.save(FoldEnsemble([_model()]), tmp_path / "unfitted.nncv")


def test_clone_and_fit_and_inconsistent_members(digits):
    X, y = digits
    ensemble = FoldEnsemble([_model(random_state=s) for s in (0, 1)])
    unfitted = clone(ensemble)
    assert not hasattr(unfitted, "estimators_")
    unfitted.fit(X, y)
    assert len(unfitted.estimators_) == 2
    np.testing.assert_array_equal(
        unfitted.estimators_[1].predict_proba(X), _model(random_state=1).fit(X, y).predict_proba(X)
    )
    assert cross_val_score(FoldEnsemble([_model(random_state=0)]), X, y, cv=2).shape == (2,)
    with pytest.raises(ConfigurationError, match="n_features_in_"):
        FoldEnsemble.from_fitted([_model().fit(X, y), _model().fit(X[:, :10], y)])
    # members that know fewer classes are welcome (a fold lacking a rare class)
    fewer = FoldEnsemble.from_fitted([_model().fit(X, y), _model().fit(X[y < 5], y[y < 5])])
    np.testing.assert_array_equal(fewer.classes_, np.unique(y))


def test_regression_ensemble_is_the_mean_prediction(tmp_path):
    X, y = make_regression(150, 5, noise=1.0, random_state=0)
    model = make_pipeline(StandardScaler(), NNRegressor(8, max_epochs=5))
    result = nncv.tune(X, y, model, SPACE, n_trials=1, cv=3, random_state=0, refit="ensemble")
    ensemble = result.best_estimator
    expected = np.mean([member.predict(X) for member in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(ensemble.predict(X), expected, rtol=1e-12)
    loaded = nncv.load(nncv.save(ensemble, tmp_path / "reg.nncv"))
    np.testing.assert_array_equal(loaded.predict(X), ensemble.predict(X))


def test_nnsearchcv_ensemble_and_bad_refit(digits):
    X, y = digits
    search = NNSearchCV(_model(), SPACE, n_trials=1, cv=3, random_state=0, refit="ensemble")
    search.fit(X, y)
    assert isinstance(search.best_estimator_, FoldEnsemble)
    np.testing.assert_array_equal(search.predict(X), search.best_estimator_.predict(X))
    with pytest.raises(SearchError, match="ensemble"):
        nncv.tune(X, y, _model(), SPACE, n_trials=1, cv=3, refit="folds")


def test_cli_refit_ensemble(tmp_path):
    model = tmp_path / "ensemble.nncv"
    args = ["tune", "iris", "--trials", "1", "--cv", "3", "--seed", "0", "--param"]
    args += ["max_epochs=3", "--refit", "ensemble", "--out", str(model)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    loaded = nncv.load(model)
    assert isinstance(loaded, FoldEnsemble) and len(loaded.estimators_) == 3
    bad = CliRunner().invoke(app, [*args[:-4], "--refit", "folds", "--out", str(model)])
    assert bad.exit_code != 0 and "--refit" in bad.output


def test_fold_models_that_lack_a_rare_class_are_averaged_over_every_class(digits):
    """A class rarer than the folds is missing from some fold models: the ensemble knows
    every member's classes, and a member gives probability 0 to a class it lacks."""
    X, y = digits
    small = dict(hidden_layer_sizes=8, max_epochs=3, random_state=0)
    full = NNClassifier(**small).fit(X, y)
    partial = NNClassifier(**small).fit(X[y != 9], y[y != 9])
    ensemble = FoldEnsemble.from_fitted([full, partial])
    np.testing.assert_array_equal(ensemble.classes_, np.arange(10))
    expected = full.predict_proba(X).astype(np.float64)
    expected[:, :9] += partial.predict_proba(X)
    np.testing.assert_allclose(ensemble.predict_proba(X), expected / 2, rtol=1e-12)
    np.testing.assert_allclose(ensemble.predict_proba(X).sum(axis=1), 1.0, rtol=1e-6)


def test_refit_ensemble_on_data_with_a_class_rarer_than_the_folds():
    X, y = nncv.datasets.load("iris")
    y = y.copy()
    y[0] = 7  # one row: two of three fold models never see it
    with pytest.warns(UserWarning, match="held-out rows have a class"):
        result = nncv.tune(
            X, y, space={"max_epochs": [3]}, n_trials=1, cv=3, random_state=0, refit="ensemble"
        )
    ensemble = result.best_estimator
    np.testing.assert_array_equal(ensemble.classes_, [0, 1, 2, 7])
    assert ensemble.predict_proba(X).shape == (150, 4)


@pytest.mark.parametrize("kind", ["fold", "seed"])
def test_multilabel_ensemble_predicts_a_label_matrix(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5))
    Y = (X[:, :3] + 0.5 * rng.normal(size=(90, 3)) > 0).astype(int)
    net = NNClassifier(8, max_epochs=5, random_state=0)
    if kind == "fold":
        ensemble = FoldEnsemble([clone(net).set_params(random_state=s) for s in range(3)])
    else:
        ensemble = nncv.SeedEnsemble.from_estimator(net, 3, random_state=0)
    ensemble.fit(X, Y)
    predicted = ensemble.predict(X)
    assert predicted.shape == Y.shape and set(np.unique(predicted)) <= {0, 1}
    proba = np.mean([member.predict_proba(X) for member in ensemble.estimators_], axis=0)
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(int))
    assert ensemble.score(X, Y) == pytest.approx(np.mean((predicted == Y).all(axis=1)))
    single = FoldEnsemble([net]).fit(X, Y)  # one member: its own predictions
    np.testing.assert_array_equal(single.predict(X), single.estimators_[0].predict(X))
