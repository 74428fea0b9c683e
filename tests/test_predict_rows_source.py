"""Predicting and scoring from a rows source: rows of a larger array read by index."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from nncv import NNClassifier, NNRegressor, datasets
from nncv.network import model
from nncv.network.training import IndexedRows


@pytest.mark.parametrize("estimator_class", [NNClassifier, NNRegressor])
@pytest.mark.parametrize("chunk_rows", [7, 4096])
def test_predict_and_score_on_indexed_rows_equal_those_on_the_transformed_rows(
    estimator_class, chunk_rows, monkeypatch
):
    monkeypatch.setattr(model, "PREDICT_CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr("nncv.estimators.PREDICT_CHUNK_ROWS", chunk_rows)
    X, y = datasets.load("iris")
    rows = np.random.default_rng(0).permutation(len(X))[:101]
    scaler = StandardScaler().fit(X[rows])
    transformed = scaler.transform(X[rows])
    net = estimator_class(hidden_layer_sizes=8, max_epochs=5, random_state=0)
    net.fit(transformed, y[rows])
    source = IndexedRows(X, rows, scaler.transform, np.dtype(net.dtype))

    np.testing.assert_array_equal(net.predict(source), net.predict(transformed))
    assert net.score(source, y[rows]) == net.score(transformed, y[rows])
    if estimator_class is NNClassifier:
        np.testing.assert_array_equal(net.predict_proba(source), net.predict_proba(transformed))


def test_indexed_rows_with_the_wrong_width_are_refused():
    X, y = datasets.load("iris")
    net = NNClassifier(hidden_layer_sizes=4, max_epochs=2, random_state=0).fit(X, y)
    source = IndexedRows(X[:, :3], np.arange(10), None, np.dtype(net.dtype))
    with pytest.raises(ValueError, match="features"):
        net.predict(source)
