"""Metadata routing (``enable_metadata_routing=True``): NNSearchCV and cross_validate route
fit parameters by the steps' requests, as scikit-learn's meta-estimators do."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import sklearn
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import cross_validate as sk_cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from nncv import NNClassifier
from nncv.cv import cross_validate
from nncv.search import Float, NNSearchCV, SearchSpace


@pytest.fixture
def routing():
    """Metadata routing on for the test; the previous configuration restored after it."""
    before = sklearn.get_config()["enable_metadata_routing"]
    sklearn.set_config(enable_metadata_routing=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    sklearn.set_config(enable_metadata_routing=before)


@pytest.fixture(scope="module")
def data():
    X, y = load_iris(return_X_y=True)
    weights = np.where(y == 0, 3.0, 0.5)
    return X, y, weights


def pipeline(request: bool | None = True) -> Pipeline:
    net = NNClassifier(hidden_layer_sizes=6, max_epochs=3, batch_size=16, random_state=0)
    scaler = StandardScaler()
    if request is not None:
        net.set_fit_request(sample_weight=request)
        scaler.set_fit_request(sample_weight=False)
    return Pipeline([("scale", scaler), ("net", net)])


def search(estimator) -> NNSearchCV:
    space = SearchSpace(learning_rate=Float(1e-3, 1e-1, log=True))
    return NNSearchCV(estimator, space, n_trials=2, cv=3, random_state=0, pruner="none")


def test_searchcv_routes_sample_weight_to_the_network_and_refits(routing, data):
    X, y, weights = data
    weighted = search(pipeline()).fit(X, y, sample_weight=weights)  # failed at the refit
    plain = search(pipeline()).fit(X, y)
    assert weighted.best_estimator_[-1].n_iter_ == 3
    assert weighted.cv_results_["mean_test_score"].tolist() != (
        plain.cv_results_["mean_test_score"].tolist()
    )
    # the refit got the weights too: same as a weighted fit with routing off
    with sklearn.config_context(enable_metadata_routing=False):
        again = clone(pipeline(None)).set_params(**weighted.best_params_)
        again.set_params(net__random_state=weighted.best_estimator_[-1].random_state)
        again.fit(X, y, net__sample_weight=weights)
    np.testing.assert_array_equal(again.predict_proba(X), weighted.best_estimator_.predict_proba(X))


def test_searchcv_sends_no_weights_to_a_network_that_declined(routing, data):
    X, y, weights = data
    declined = search(pipeline(False)).fit(X, y, sample_weight=weights)
    plain = search(pipeline(False)).fit(X, y)
    np.testing.assert_array_equal(
        declined.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )


def test_unrequested_weights_are_an_error(routing, data):
    X, y, weights = data
    with pytest.raises(ValueError, match="sample_weight"):
        search(pipeline(None)).fit(X, y, sample_weight=weights)
    with pytest.raises((TypeError, ValueError), match="sample_weight"):  # as scikit-learn's
        cross_validate(pipeline(None), X, y, cv=3, sample_weight=weights)


def test_searchcv_is_a_consumer_inside_another_meta_estimator(routing, data):
    X, y, weights = data
    inner = search(pipeline()).set_fit_request(sample_weight=True)
    inner.set_score_request(sample_weight=True)
    assert isinstance(inner, NNSearchCV)
    result = sk_cross_validate(inner, X, y, cv=2, params={"sample_weight": weights})
    assert len(result["test_score"]) == 2
    routing_of = inner.get_metadata_routing()
    assert routing_of.consumes("fit", ["sample_weight"]) == {"sample_weight"}


def test_cross_validate_honours_set_fit_request(routing, data):
    X, y, weights = data
    requested = cross_validate(pipeline(True), X, y, cv=3, sample_weight=weights)
    by_params = cross_validate(pipeline(True), X, y, cv=3, params={"sample_weight": weights})
    with sklearn.config_context(enable_metadata_routing=False):
        plain = cross_validate(pipeline(None), X, y, cv=3)
        weighted = cross_validate(pipeline(None), X, y, cv=3, sample_weight=weights)
    np.testing.assert_array_equal(requested.curves.loss, weighted.curves.loss)
    np.testing.assert_array_equal(by_params.curves.loss, weighted.curves.loss)
    assert not np.array_equal(requested.curves.loss, plain.curves.loss)


def test_a_network_that_declined_gets_no_weights_the_scaler_that_asked_does(routing, data):
    X, y, weights = data
    pipe = pipeline(False)
    pipe.steps[0][1].set_fit_request(sample_weight=True)
    scaled = cross_validate(pipe, X, y, cv=3, sample_weight=weights)
    with sklearn.config_context(enable_metadata_routing=False):
        expected = cross_validate(
            pipeline(None), X, y, cv=3, params={"scale__sample_weight": weights}
        )
    np.testing.assert_array_equal(scaled.curves.loss, expected.curves.loss)
    with sklearn.config_context(enable_metadata_routing=False):
        both = cross_validate(
            pipeline(None),
            X,
            y,
            cv=3,
            params={"scale__sample_weight": weights, "net__sample_weight": weights},
        )
    assert not np.array_equal(scaled.curves.loss, both.curves.loss)
