"""Progress bar and Optuna's log lines during a search (nncv/search/_progress.py)."""

from __future__ import annotations

import logging
import os
import pty
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import nncv
from nncv.search import Float, SearchSpace
from nncv.search._progress import optuna_verbosity, wants_progress

ROOT = Path(__file__).resolve().parents[2]


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def optuna_lines():
    """What Optuna's logger emits (its own handler writes them to standard error)."""
    handler = _Lines()
    logger = logging.getLogger("optuna")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def small_tune(**options):
    X, y = nncv.datasets.load("iris")
    space = SearchSpace(learning_rate=Float(1e-3, 1e-1, log=True))
    estimator = nncv.NNClassifier(hidden_layer_sizes=4, max_epochs=3)
    return nncv.tune(X, y, estimator, space, n_trials=3, cv=2, random_state=0, **options)


def test_a_library_call_prints_no_optuna_trial_lines_and_restores_verbosity(optuna_lines):
    optuna.logging.set_verbosity(optuna.logging.INFO)  # Optuna's default
    try:
        small_tune()
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    assert not [line for line in optuna_lines if "Trial 0 finished" in line]
    assert not [line for line in optuna_lines if "A new study created" in line]


def test_verbose_prints_optuna_trial_lines(optuna_lines):
    previous = optuna.logging.get_verbosity()
    small_tune(verbose=True)
    assert optuna.logging.get_verbosity() == previous
    assert [line for line in optuna_lines if "Trial 2 finished" in line]


def test_progress_bar_counts_trials_and_shows_the_best(capfd):
    result = small_tune(progress=True)
    err = capfd.readouterr().err
    assert "3/3" in err and "pruned=0 failed=0" in err
    assert f"best={result.best_score:.4g}" in err
    assert "Trial 0 finished" not in err


def test_auto_progress_follows_the_terminal(tmp_path):
    with open(tmp_path / "file", "w") as stream:
        assert not wants_progress(None, stream)
        assert wants_progress(True, stream)
    leader, follower = pty.openpty()
    try:
        with os.fdopen(os.dup(follower), "w") as terminal:
            assert wants_progress(None, terminal)
            assert not wants_progress(False, terminal)
    finally:
        os.close(leader)
        os.close(follower)


def test_optuna_verbosity_never_lowers_a_quiet_callers_level():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with optuna_verbosity(False):
            assert optuna.logging.get_verbosity() == optuna.logging.ERROR
        with optuna_verbosity(True):
            assert optuna.logging.get_verbosity() == optuna.logging.INFO
        assert optuna.logging.get_verbosity() == optuna.logging.ERROR
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_on_terminal(command, cwd):
    """Run ``command`` with stdout and stderr on a pseudo-terminal; return all it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, stdout=follower, stderr=follower, cwd=cwd)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=300) == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


TUNE = ["tune", "iris", "--trials", "3", "--cv", "2", "-p", "max_epochs=3", "--seed", "0"]


def test_nncv_tune_shows_a_bar_on_a_terminal_and_nothing_when_piped(tmp_path):
    command = [sys.executable, "-m", "nncv.cli", *TUNE]
    shown = run_on_terminal(command, tmp_path)
    assert "3/3" in shown and "best=" in shown and "pruned=" in shown
    assert "Trial 0 finished" not in shown
    piped = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "3/3" not in piped.stderr and "Trial 0 finished" not in piped.stderr
    assert "best CV score" in piped.stdout
    quiet = run_on_terminal([*command, "--quiet"], tmp_path)
    assert "3/3" not in quiet and "best CV score" in quiet
    verbose = run_on_terminal([*command, "--verbose"], tmp_path)
    assert "Trial 0 finished" in verbose and "3/3" in verbose


@pytest.mark.slow
def test_the_main_job_script_shows_a_bar_on_a_terminal(tmp_path):
    script = str(ROOT / "studies" / "digits.py")
    options = ["--trials", "2", "--cv", "2", "--out", str(tmp_path / "d.nncv")]
    shown = run_on_terminal([sys.executable, script, *options], tmp_path)
    assert "2/2" in shown and "best=" in shown and "Trial 0 finished" not in shown
    piped = subprocess.run(
        [sys.executable, script, *options], capture_output=True, text=True, timeout=600
    )
    assert piped.returncode == 0, piped.stderr
    assert "2/2" not in piped.stderr and "best 2-fold CV" in piped.stdout


def test_nested_cv_shows_a_bar_over_the_outer_folds_on_a_terminal(tmp_path):
    script = str(ROOT / "studies" / "breast_cancer.py")
    options = ["--trials", "2", "--cv", "2", "--outer", "2", "--max-epochs", "3"]
    shown = run_on_terminal([sys.executable, script, *options], tmp_path)
    assert "nested CV: 100%" in shown and "2/2" in shown and "refit=" in shown
    quiet = run_on_terminal([sys.executable, script, *options, "--quiet"], tmp_path)
    assert "2/2" not in quiet and "nested CV, refit=refit" in quiet
