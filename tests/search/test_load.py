"""Fault-injection load test: 4 workers x 25 trials start one fresh study together, one is
SIGKILLed mid-trial, a replacement runs the rest of its share.

On the journal, SQLite and PostgreSQL (a real server, as ``test_postgres`` starts it):
every worker starts (no storage-creation race kills one), no finished trial is lost, the
study reaches 100 complete trials, the dead trial is failed and its parameters retried,
nothing is left running, and every trial trained on the study's folds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import optuna
import pytest

from nncv.search._storage import make_storage

from . import test_postgres
from .conftest import small_space
from .test_postgres import postgres_url  # noqa: F401  (the server fixture)

State = optuna.trial.TrialState
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKERS, SHARE, GRACE_S = 4, 25, 10

pytestmark = pytest.mark.slow


def _worker(spec: str, space: str, trials: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "NNCV_HEARTBEAT_INTERVAL": "1",
        "NNCV_GRACE_PERIOD": str(GRACE_S),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable, "-m", "nncv.cli", "worker", "iris", "--storage", spec,
        "--study-name", "load", "--create", "--trials", str(trials), "--cv", "3",
        "-p", "max_epochs=2", "-p", "batch_size=16", "--space", space, "--pruner", "none",
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _study(spec: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name="load", storage=make_storage(spec))
    except KeyError:
        return None


def _kill_mid_trial(spec: str, victim: subprocess.Popen, limit_s: float = 300) -> dict:
    """SIGSTOP the victim while it runs a trial (after 2 complete ones), then SIGKILL it."""
    name = f"{socket.gethostname()}:{victim.pid}"
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert victim.poll() is None, victim.communicate()
        study = _study(spec)
        trials = study.get_trials(deepcopy=False) if study else []
        mine = [t for t in trials if t.system_attrs.get("nncv_worker") == name]
        running = [t for t in mine if t.state == State.RUNNING]
        if sum(t.state == State.COMPLETE for t in mine) >= 2 and running:
            victim.send_signal(signal.SIGSTOP)
            try:
                trials = study.get_trials(deepcopy=False)
            except optuna.exceptions.StorageInternalError:
                # stopped holding SQLite's write lock ("database is locked"): let it go on
                victim.send_signal(signal.SIGCONT)
                continue
            if any(t.number == running[0].number and t.state == State.RUNNING for t in trials):
                victim.send_signal(signal.SIGKILL)
                victim.wait(30)
                return {t.number: t.value for t in trials if t.state == State.COMPLETE}
            victim.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    pytest.fail("the victim never ran a trial after two complete ones")


def _run_load(spec: str, tmp_path) -> None:
    space = tmp_path / "space.toml"
    small_space().to_toml(space)
    workers = [_worker(spec, str(space), SHARE) for _ in range(WORKERS)]
    victim, survivors = workers[0], workers[1:]
    try:
        finished_at_kill = _kill_mid_trial(spec, victim)
        name = f"{socket.gethostname()}:{victim.pid}"
        done_by_victim = sum(
            t.state == State.COMPLETE and t.system_attrs.get("nncv_worker") == name
            for t in _study(spec).get_trials(deepcopy=False)
        )
        time.sleep(GRACE_S + 1)  # the dead trial's lease runs out
        replacement = _worker(spec, str(space), SHARE - done_by_victim)
        for worker in [*survivors, replacement]:
            out, err = worker.communicate(timeout=600)
            assert worker.returncode == 0, err[-3000:]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()

    study = _study(spec)
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    complete = {t.number: t.value for t in trials if t.state == State.COMPLETE}
    assert {n: complete.get(n) for n in finished_at_kill} == finished_at_kill  # none lost
    assert len(complete) == WORKERS * SHARE
    assert states.count(State.RUNNING) == states.count(State.WAITING) == 0
    (dead,) = [t for t in trials if t.state == State.FAIL]
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    # A trial killed while drawing its parameters is retried with those it had drawn.
    assert retry.state == State.COMPLETE and dead.params.items() <= retry.params.items()
    folds = study.user_attrs["nncv_setup"]["splits_sha256"]
    assert study.user_attrs["nncv_splits_sha256"] == folds
    # The dead trial may have been killed before it recorded its folds; all others did.
    assert {t.user_attrs["nncv_splits_sha256"] for t in trials if t.state != State.FAIL} == {folds}
    assert dead.user_attrs.get("nncv_splits_sha256", folds) == folds


def test_journal_survives_racing_and_killed_workers(tmp_path):
    _run_load(str(tmp_path / "study.log"), tmp_path)


def test_sqlite_survives_racing_and_killed_workers(tmp_path):
    _run_load(f"sqlite:///{tmp_path / 'study.db'}", tmp_path)


@pytest.mark.parametrize("_", [pytest.param(0, marks=test_postgres.pytestmark)])
def test_postgres_survives_racing_and_killed_workers(postgres_url, tmp_path, _):  # noqa: F811
    port = re.search(r":(\d+)/", postgres_url).group(1)
    database = f"load_{os.getpid()}"
    test_postgres._as_postgres(
        str(test_postgres.BIN / "createdb"), "-h", "127.0.0.1", "-p", port, database
    )
    _run_load(postgres_url.rsplit("/", 1)[0] + "/" + database, tmp_path)


STARTER = """
import json, sys, time
from nncv.datasets import load
from nncv.search._run import prepare
from nncv.search._settings import SearchSettings
from tests.search.conftest import small_classifier, small_space

X, y = load("iris")
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all start at the same instant
settings = SearchSettings(space=small_space(), cv=3, storage=sys.argv[1], study_name="race")
search = prepare(X, y, settings, estimator=small_classifier())
print(json.dumps({"seed": search.setup.seed, "folds": search.setup.splits_sha256}))
"""
STARTERS = 8


def _start_together(spec: str) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    at = time.time() + 20  # after every process has imported nncv, on a loaded machine
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, spec, str(at)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(STARTERS)
    ]
    return [(p, *p.communicate(timeout=300)) for p in starters]


def _check_all_agree(spec: str) -> None:
    results = _start_together(spec)
    failed = [err.strip().splitlines()[-1] for p, _, err in results if p.returncode != 0]
    assert not failed, failed
    setups = {out.strip().splitlines()[-1] for _, out, _ in results}
    assert len(setups) == 1  # one seed, one set of folds for every worker
    stored = _study_named(spec, "race").user_attrs["nncv_setup"]
    assert json.loads(setups.pop()) == {"seed": stored["seed"], "folds": stored["splits_sha256"]}


def _study_named(spec: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=make_storage(spec))


def test_workers_creating_one_journal_study_at_once_all_agree(tmp_path):
    _check_all_agree(str(tmp_path / "study.log"))


def test_workers_creating_one_sqlite_study_at_once_all_agree(tmp_path):
    _check_all_agree(f"sqlite:///{tmp_path / 'study.db'}")


@pytest.mark.parametrize("_", [pytest.param(0, marks=test_postgres.pytestmark)])
def test_workers_creating_one_postgres_study_at_once_all_agree(postgres_url, _):  # noqa: F811
    port = re.search(r":(\d+)/", postgres_url).group(1)
    database = f"race_{os.getpid()}"
    test_postgres._as_postgres(
        str(test_postgres.BIN / "createdb"), "-h", "127.0.0.1", "-p", port, database
    )
    _check_all_agree(postgres_url.rsplit("/", 1)[0] + "/" + database)
