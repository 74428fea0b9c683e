"""nncv estimators are ``skops.io`` compatible (issue 15, item 9): saved and loaded with the
untrusted types listed and then trusted explicitly, predicting and training on identically."""

from __future__ import annotations

import numpy as np
import pytest

from nncv import NNClassifier, NNRegressor, make_pipeline

from .conftest import SMALL

sio = pytest.importorskip("skops.io")


def round_trip(model):
    data = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    assert all(name.startswith(("nncv.", "numpy.")) for name in untrusted), untrusted
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.loads(data)  # nothing is trusted implicitly
    return sio.loads(data, trusted=untrusted)


@pytest.mark.parametrize(
    "make",
    [
        lambda X: NNClassifier(**SMALL).fit(X, np.arange(len(X)) % 3),
        lambda X: NNRegressor(**SMALL).fit(X, X[:, 0] - X[:, 1]),
        lambda X: make_pipeline("robust", **SMALL).fit(X, np.arange(len(X)) % 2),
    ],
    ids=["classifier", "regressor", "pipeline"],
)
def test_skops_round_trip_predicts_and_keeps_training_identically(tmp_path, X, make):
    model = make(X)
    loaded = round_trip(model)
    if hasattr(model, "predict_proba"):
        assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded.predict(X), model.predict(X))
    net, loaded_net = (model, loaded) if not hasattr(model, "steps") else (model[-1], loaded[-1])
    assert loaded_net.history_.equals(net.history_)
    if not hasattr(model, "steps"):
        target = model.predict(X)
        model.partial_fit(X, target)
        loaded.partial_fit(X, target)
        assert np.array_equal(loaded.predict(X), model.predict(X))


def test_skops_file_round_trip(tmp_path, X):
    model = NNClassifier(**SMALL).fit(X, np.arange(len(X)) % 2)
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_history_is_a_fresh_dataframe_built_from_plain_arrays(X):
    model = NNClassifier(**SMALL).fit(X, np.arange(len(X)) % 2)
    frame = model.history_
    frame.loc[0, "loss"] = -1.0  # editing a copy does not edit the model
    assert model.history_["loss"].iloc[0] != -1.0
    assert list(frame.columns)[:2] == ["epoch", "loss"]
    assert all(isinstance(v, np.ndarray) for v in model._history.values())
    assert not hasattr(NNClassifier(), "history_")


@pytest.mark.parametrize("kind", ["fold", "seed"])
def test_skops_round_trip_of_an_ensemble_that_has_predicted(X, kind):
    """An ensemble keeps a stacked network between predictions; it is not saved."""
    from nncv import FoldEnsemble, SeedEnsemble

    y = np.arange(len(X)) % 3
    if kind == "fold":
        members = [
            make_pipeline("standard", **{**SMALL, "random_state": s}).fit(X, y) for s in (0, 1)
        ]
        model = FoldEnsemble.from_fitted(members)
    else:
        model = SeedEnsemble.from_estimator(make_pipeline("standard", **SMALL), 2, 0).fit(X, y)
    expected = model.predict_proba(X)  # builds the cached stack
    loaded = round_trip(model)
    assert not getattr(loaded, "_stack_cache", None)
    assert np.array_equal(loaded.predict_proba(X), expected)
