"""A saved model works in a fresh Python process and can continue training there."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nncv import NNClassifier, make_pipeline
from nncv.persistence import load, save

from .conftest import SMALL

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import numpy as np

    from nncv.persistence import load, save

    artifact, folder = sys.argv[1], Path(sys.argv[2])
    X, y = np.load(folder / "X.npy"), np.load(folder / "y.npy")
    model = load(artifact)
    np.save(folder / "loaded.npy", model.predict_proba(X))
    net = model[-1]
    Xt = model[:-1].transform(X)
    for _ in range(2):
        net.partial_fit(Xt, y)
    np.save(folder / "continued.npy", model.predict_proba(X))
    np.save(folder / "n_iter.npy", np.array(net.n_iter_))
    save(model, folder / "continued.nncv")
    """
)


def run_child(artifact: Path, folder: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(artifact), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def continue_in_process(artifact: Path, X, y):
    model = load(artifact)
    Xt = model[:-1].transform(X)
    for _ in range(2):
        model[-1].partial_fit(Xt, y)
    return model


@pytest.mark.parametrize("name", ["model", "model.nncv"])
def test_a_fresh_process_predicts_the_same_and_continues_training(tmp_path, X, name):
    y = np.array(["low", "mid", "high"])[np.arange(len(X)) % 3]
    pipe = make_pipeline("robust", **SMALL).fit(X, y)
    artifact = save(pipe, tmp_path / name)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)  # a '<U4' array: no pickle involved
    run_child(artifact, tmp_path)

    assert np.array_equal(np.load(tmp_path / "loaded.npy"), pipe.predict_proba(X))
    continued = np.load(tmp_path / "continued.npy")
    assert not np.array_equal(continued, pipe.predict_proba(X))  # it did train
    assert int(np.load(tmp_path / "n_iter.npy")) == pipe[-1].n_iter_ + 2
    # Continuing from the artifact is deterministic across processes ...
    here = continue_in_process(artifact, X, y)
    assert np.array_equal(here.predict_proba(X), continued)
    # ... and the child's re-saved artifact carries on from where it stopped.
    again = load(tmp_path / "continued.nncv")
    assert np.array_equal(again.predict_proba(X), continued)
    assert len(again[-1].history_) == len(pipe[-1].history_) + 2


def test_continuing_a_loaded_model_matches_continuing_the_original(tmp_path, X):
    y = np.arange(len(X)) % 3
    model = NNClassifier(**SMALL).fit(X, y)
    loaded = load(save(model, tmp_path / "model"))
    model.partial_fit(X, y)
    loaded.partial_fit(X, y)
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
