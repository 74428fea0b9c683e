"""``save`` is atomic: a save that fails or is SIGKILLed leaves the previous artifact intact.

The children are real processes (forked, so they start without re-importing nncv) killed with
a real SIGKILL, or failing a real write under a real file-size limit.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nncv import NNClassifier
from nncv.exceptions import ArtifactError
from nncv.persistence import load, save

from .conftest import SMALL

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork (POSIX)"
)
CONTAINERS = ["model", "model.nncv"]


@pytest.fixture(scope="module")
def big():
    """Two ~1.1M-parameter classifiers (13 MB of arrays each with Adam's moments)."""
    X = np.random.default_rng(0).normal(size=(64, 32))
    y = np.arange(64) % 2
    models = [
        NNClassifier(hidden_layer_sizes=(1024, 1024), max_epochs=1, batch_size=64, random_state=s)
        for s in (1, 2)
    ]
    for model in models:
        model.fit(X, y)
    return SimpleNamespace(X=X, models=models, outputs=[m.predict_proba(X) for m in models])


def temporaries(folder: Path, name: str) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.startswith(f".{name}.")}


def save_forever(models: list, path: str) -> None:
    """The child: save the two models to the same path in turn until killed."""
    index = 0
    while True:
        save(models[index % 2], path)
        index += 1


def which(big, loaded) -> int:
    """Index of the model ``loaded`` predicts exactly like (fails if neither)."""
    output = loaded.predict_proba(big.X)
    matches = [i for i, expected in enumerate(big.outputs) if np.array_equal(output, expected)]
    assert len(matches) == 1, "the artifact is neither of the two models"
    return matches[0]


@pytest.mark.parametrize("name", CONTAINERS)
def test_sigkill_during_save_leaves_the_previous_artifact_intact(tmp_path, big, name):
    target = tmp_path / name
    save(big.models[0], target)
    context = multiprocessing.get_context("fork")
    delays = [0.0, 0.01, 0.03, 0.05]
    for delay in delays:
        before = temporaries(tmp_path, name)
        child = context.Process(target=save_forever, args=(big.models, str(target)), daemon=True)
        child.start()
        deadline = time.monotonic() + 60
        while not temporaries(tmp_path, name) - before:  # a write is under way
            assert child.is_alive() and time.monotonic() < deadline, "the child never saved"
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode == -signal.SIGKILL
        if delay == 0.0:
            # Killed mid-write: its half-written temporary sibling is still there.
            assert temporaries(tmp_path, name) - before
        assert which(big, load(target)) in (0, 1)
    save(big.models[1], target)  # stale temporaries do not get in the way
    assert which(big, load(target)) == 1


def save_under_file_size_limit(model, path: str, limit: int, report: str) -> None:
    """The child: a real write failure (EFBIG) halfway through the artifact."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        save(model, path)
    except ArtifactError as error:
        Path(report).write_text(f"ArtifactError: {error}")
    except BaseException as error:  # noqa: BLE001 - reported to the parent
        Path(report).write_text(f"{type(error).__name__}: {error}")
    else:
        Path(report).write_text("saved")


@pytest.mark.parametrize("name", CONTAINERS)
def test_a_failed_save_leaves_the_previous_artifact_and_no_debris(tmp_path, big, name):
    target = tmp_path / name
    previous = NNClassifier(**SMALL).fit(big.X, np.arange(64) % 2)
    save(previous, target)
    before = sorted(p.name for p in tmp_path.iterdir())
    report = tmp_path.parent / f"{tmp_path.name}-report.txt"
    context = multiprocessing.get_context("fork")
    args = (big.models[0], str(target), 1 << 20, str(report))
    child = context.Process(target=save_under_file_size_limit, args=args)
    child.start()
    child.join()
    assert child.exitcode == 0
    message = report.read_text()
    assert message.startswith("ArtifactError: could not save to"), message
    assert "File too large" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # temporary removed
    assert np.array_equal(load(target).predict_proba(big.X), previous.predict_proba(big.X))


@pytest.mark.parametrize("name", CONTAINERS)
def test_saving_again_replaces_the_artifact_and_leaves_nothing_else(tmp_path, X, name):
    first = NNClassifier(**SMALL).fit(X, np.arange(len(X)) % 2)
    second = NNClassifier(**{**SMALL, "random_state": 1}).fit(X, np.arange(len(X)) % 3)
    target = tmp_path / name
    save(first, target)
    save(second, target)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert np.array_equal(load(target).predict_proba(X), second.predict_proba(X))
    if target.is_dir():
        assert sorted(p.name for p in target.iterdir()) == [
            "SHA256SUMS",
            "arrays.npz",
            "manifest.json",
        ]


def test_an_empty_directory_can_be_the_target(tmp_path, classifier, X):
    (tmp_path / "empty").mkdir()
    save(classifier, tmp_path / "empty")
    assert np.array_equal(load(tmp_path / "empty").predict_proba(X), classifier.predict_proba(X))


def test_saved_files_follow_the_umask_like_any_new_file(tmp_path, classifier):
    umask = os.umask(0o022)
    try:
        save(classifier, tmp_path / "model.nncv")
        save(classifier, tmp_path / "model")
        (tmp_path / "plain").write_text("")
    finally:
        os.umask(umask)
    expected = (tmp_path / "plain").stat().st_mode & 0o777
    assert (tmp_path / "model.nncv").stat().st_mode & 0o777 == expected
    assert (tmp_path / "model" / "manifest.json").stat().st_mode & 0o777 == expected
