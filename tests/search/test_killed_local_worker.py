"""A local worker process of ``tune(n_workers=2)`` killed with SIGKILL mid-trial: the run
goes on in fresh processes, and every trial is accounted for (issue 14's limit, lifted)."""

from __future__ import annotations

import os
import signal
import threading
import time

import optuna
import pytest
from joblib.externals.loky import get_reusable_executor

import nncv
from nncv.search._storage import make_storage

pytestmark = pytest.mark.slow


def _kill_a_worker_once_a_trial_runs(storage: str, killed: list[int]) -> None:
    """SIGKILL one process of joblib's loky pool as soon as the study has a RUNNING trial."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not killed:
        time.sleep(0.1)
        executor = get_reusable_executor.__globals__.get("_executor")
        processes = dict(getattr(executor, "_processes", None) or {})
        if not processes or not os.path.exists(storage):
            continue
        try:
            study = optuna.load_study(study_name="killed", storage=make_storage(storage))
        except KeyError:
            continue
        if any(t.state == optuna.trial.TrialState.RUNNING for t in study.trials):
            pid = min(processes)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)


def test_a_killed_local_worker_fails_its_trial_and_the_run_finishes(tmp_path):
    X, y = nncv.datasets.load("digits")
    storage = str(tmp_path / "study.log")
    killed: list[int] = []
    watcher = threading.Thread(
        target=_kill_a_worker_once_a_trial_runs, args=(storage, killed), daemon=True
    )
    watcher.start()
    result = nncv.tune(
        X,
        y,
        space={"max_epochs": [15], "hidden_size": [64]},
        n_trials=6,
        cv=3,
        n_workers=2,
        storage=storage,
        study_name="killed",
        random_state=0,
        refit=False,
    )
    watcher.join(timeout=5)
    assert killed, "no worker process was seen running a trial"
    states = [t.state.name for t in result.study.trials]
    assert len(states) == 6 and "RUNNING" not in states and "WAITING" not in states
    failed = [t for t in result.study.trials if t.state.name == "FAIL"]
    assert failed and all("worker process (pid" in t.user_attrs["fail_reason"] for t in failed)
    assert states.count("COMPLETE") == 6 - len(failed)
    # the killed trials' parameters were tried again (the storage's retry callback)
    assert any("failed_trial" in t.system_attrs for t in result.study.trials)
