"""Batch-normalised models round-trip bit for bit; artifacts of format version 1 (written
before batch normalisation existed) still load and predict as they did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nncv import NNClassifier, NNRegressor, inspect, load, make_pipeline, save
from nncv.exceptions import NncvError

from .conftest import SMALL, features

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("regressor", [False, True])
def test_batch_norm_round_trip_is_bit_identical(tmp_path, dtype, regressor):
    X = features(60)
    y = X[:, 0] * 2.0 if regressor else np.arange(60) % 3
    params = {**SMALL, "hidden_layer_sizes": (6, 5), "batch_norm": (True, True), "dtype": dtype}
    pipe = make_pipeline("standard", regressor=regressor, batch_norm_momentum=0.8, **params)
    pipe.fit(X, y)
    again = load(save(pipe, tmp_path / "bn.nncv"))
    net, loaded = pipe[-1].network_, again[-1].network_
    assert loaded.batch_norm == [True, True] and loaded.batch_norm_momentum == 0.8
    for name in ("parameters", "running_statistics"):
        original, copy = getattr(net, name), getattr(loaded, name)
        assert copy.dtype == original.dtype == np.dtype(dtype)
        assert copy.tobytes() == original.tobytes()
    assert again.predict(X).tobytes() == pipe.predict(X).tobytes()
    # and training goes on identically (the running statistics keep moving from there)
    pipe[-1].partial_fit(pipe[:-1].transform(X), y)
    again[-1].partial_fit(again[:-1].transform(X), y)
    assert loaded.running_statistics.tobytes() == net.running_statistics.tobytes()
    assert loaded.parameters.tobytes() == net.parameters.tobytes()


def test_missing_running_statistics_are_refused(tmp_path):
    X, y = features(40), np.arange(40) % 2
    model = NNClassifier(**SMALL, batch_norm=True).fit(X, y)
    meta, arrays = model._get_fitted_state()
    del arrays["network.running_statistics"]
    with pytest.raises(NncvError, match="running_statistics"):
        NNClassifier._from_fitted_state(meta, arrays)
    arrays = model._get_fitted_state()[1]
    arrays["network.running_statistics"] = arrays["network.running_statistics"][:-1]
    with pytest.raises(NncvError, match="running-statistics vector has shape"):
        NNClassifier._from_fitted_state(meta, arrays)


def test_a_model_without_batch_norm_saves_no_statistics(tmp_path):
    X, y = features(40), np.arange(40.0)
    manifest = inspect(save(NNRegressor(**SMALL).fit(X, y), tmp_path / "plain"))
    assert not any("running_statistics" in key for key in manifest["arrays"])


def test_version_1_artifact_still_loads():
    """``data/version1_pipeline.nncv`` was written by nncv before batch normalisation (commit
    25cbb79: standard scaler + NNClassifier(hidden_layer_sizes=(5,)), 3 classes); the
    probabilities it gave are stored beside it."""
    path = DATA / "version1_pipeline.nncv"
    assert inspect(path)["format_version"] == 1
    pipe = load(path)
    X = np.random.default_rng(0).normal(size=(60, 4)) * np.array([1, 10, 0.1, 100])
    expected = np.load(DATA / "version1_pipeline_proba.npy")
    assert pipe.predict_proba(X).tobytes() == expected.tobytes()
    network = pipe[-1].network_
    assert network.batch_norm == [False] and network.running_statistics.size == 0
    assert pipe[-1].batch_norm is False
