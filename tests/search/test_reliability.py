"""Storage faults and racing or killed workers: torn journals, set-up races, dead trials.

Real journal files and SQLite databases, real worker processes killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import optuna
import pytest
from sqlalchemy.exc import OperationalError

from nncv.cv.splits import make_splits
from nncv.exceptions import SearchError
from nncv.search import tune
from nncv.search._storage import make_storage, retry_races
from nncv.search._study import SETUP_ATTR, fingerprint_data, open_study
from nncv.search.space import SearchSpace

from .conftest import small_classifier, small_space

State = optuna.trial.TrialState
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _plain_journal(path) -> optuna.storages.JournalStorage:
    """The journal as stock Optuna reads it (no nncv repair on the way)."""
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def _tune(X, y, storage, n_trials, **options):
    return tune(
        X,
        y,
        small_classifier(max_epochs=2),
        small_space(),
        n_trials=n_trials,
        cv=2,
        pruner="none",
        storage=storage,
        study_name="s",
        refit=False,
        **options,
    )


# ------------------------------------------------------------------ torn journal
def test_a_torn_last_record_is_cut_and_the_study_stays_readable(iris, tmp_path):
    X, y = iris
    path = tmp_path / "study.log"
    _tune(X, y, str(path), 2, random_state=0)
    lines = path.read_bytes().splitlines(keepends=True)
    with open(path, "ab") as journal:  # a writer died 30 bytes into its record
        journal.write(lines[-1][:30])

    again = _tune(X, y, str(path), 1)  # appends after the torn line
    assert sum(t.state == State.COMPLETE for t in again.study.trials) == 3
    assert path.read_bytes().endswith(b"\n")
    # Stock Optuna reads the journal afterwards, every line a record.
    study = optuna.load_study(study_name="s", storage=_plain_journal(path))
    assert [t.state for t in study.trials] == [State.COMPLETE] * 3
    assert all(json.loads(line)["op_code"] is not None for line in path.read_bytes().splitlines())


def test_a_record_appended_to_a_torn_one_by_an_older_writer_is_salvaged(iris, tmp_path):
    X, y = iris
    path = tmp_path / "study.log"
    _tune(X, y, str(path), 2, random_state=0)
    lines = path.read_bytes().splitlines(keepends=True)
    # What a writer without the repair left: a torn record, then the next one on its line.
    torn = lines[:-1] + [lines[-2][:25] + lines[-1]]
    path.write_bytes(b"".join(torn))

    again = _tune(X, y, str(path), 1)
    assert sum(t.state == State.COMPLETE for t in again.study.trials) == 3
    assert len(optuna.load_study(study_name="s", storage=_plain_journal(path)).trials) == 3


def test_a_log_file_that_is_not_a_journal_is_refused_by_name_and_left_alone(tmp_path):
    notes = tmp_path / "notes.log"
    for text in (b"12:00 started\n12:01 done\n", b"a single unfinished line"):
        notes.write_bytes(text)
        with pytest.raises(SearchError, match=r"notes\.log is not an Optuna journal"):
            make_storage(str(notes))
        assert notes.read_bytes() == text  # nothing cut off a file that is not a journal


def test_a_corrupt_line_inside_a_journal_is_named(iris, tmp_path):
    X, y = iris
    path = tmp_path / "study.log"
    _tune(X, y, str(path), 1, random_state=0)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + [b"garbage\n"] + lines[2:]))
    with pytest.raises(SearchError, match=r"study\.log is corrupt at line 3"):
        make_storage(str(path))


def test_a_journal_path_under_a_regular_file_is_refused_by_name(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    with pytest.raises(SearchError, match=r"results is a file, not a directory"):
        make_storage(str(blocker / "deeper" / "study.log"))


# ----------------------------------------------------------- set-up written once
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_workers_setting_up_one_fresh_study_all_use_the_first_set_up(iris, tmp_path, kind):
    """Worker B writes its set-up while worker A is between its check and its write."""
    X, y = iris
    spec = str(tmp_path / "s.log") if kind == "journal" else f"sqlite:///{tmp_path / 's.db'}"
    space = SearchSpace.default()
    setups = {}

    def open_as(worker, seed, before_write=None):
        def splits_for(seed_used):
            if before_write is not None:
                before_write()
            return make_splits(
                3, X, y, estimator=small_classifier(), shuffle_seed=seed_used, compact=False
            )

        _, setups[worker] = open_study(
            storage=make_storage(spec),
            study_name="race",
            sampler=None,
            pruner=None,
            space=space,
            data_sha256=fingerprint_data(X, y),
            metrics=["score"],
            random_state=None,
            make_splits_for_seed=splits_for,
            n_samples=len(y),
            requested_folds=3,
        )

    open_as("A", 1, before_write=lambda: open_as("B", 2))
    stored = optuna.load_study(study_name="race", storage=make_storage(spec)).user_attrs
    assert setups["A"].splits_sha256 == setups["B"].splits_sha256 == stored["nncv_splits_sha256"]
    assert setups["A"].seed == setups["B"].seed == stored[SETUP_ATTR]["seed"]
    assert stored["nncv_seed"] == stored[SETUP_ATTR]["seed"]


def test_a_study_set_up_by_an_older_nncv_is_still_read(iris, tmp_path):
    X, y = iris
    new = _tune(X, y, str(tmp_path / "new.log"), 1, random_state=3)
    attrs = new.study.user_attrs
    old_path = str(tmp_path / "old.log")
    old = optuna.create_study(study_name="s", storage=make_storage(old_path), direction="maximize")
    for key, value in attrs.items():  # per-key attributes only, as nncv wrote them before
        if key != SETUP_ATTR:
            old.set_user_attr(key, value)
    again = _tune(X, y, old_path, 1)
    assert SETUP_ATTR not in again.study.user_attrs
    assert again.study.trials[0].user_attrs["nncv_splits_sha256"] == attrs["nncv_splits_sha256"]

    half = optuna.create_study(study_name="h", storage=make_storage(old_path), direction="maximize")
    half.set_user_attr("nncv_seed", 3)
    with pytest.raises(SearchError, match="half set up.*nncv_splits"):
        tune(X, y, small_classifier(), small_space(), storage=old_path, study_name="h")


def test_storage_creation_races_are_retried_and_other_errors_are_not():
    calls = []

    def racing():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError(
                "CREATE TABLE studies", {}, Exception("table studies already exists")
            )
        return "created"

    assert retry_races(racing) == "created" and len(calls) == 3
    calls.clear()

    def broken():
        calls.append(1)
        raise OperationalError("connect", {}, Exception("connection refused"))

    with pytest.raises(OperationalError):
        retry_races(broken)
    assert len(calls) == 1
    with pytest.raises(KeyError):
        retry_races(lambda: {}["study"], attempts=3)
    assert retry_races(iter([1]).__next__, also=(KeyError,)) == 1


# ---------------------------------------------------------------- killed workers
LONG_TRIAL = textwrap.dedent(
    """
    import sys
    import optuna
    from nncv.datasets import load
    from nncv.search import tune
    from tests.search.conftest import small_classifier, small_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, y = load("iris")
    tune(X, y, small_classifier(max_epochs=100000), small_space(), n_trials=1, cv=2,
         pruner="none", storage=sys.argv[1], study_name="s", random_state=0, refit=False)
    """
)


def _running_with_heartbeat(spec):
    try:
        study = optuna.load_study(study_name="s", storage=make_storage(spec))
    except KeyError:
        return None
    for trial in study.trials:
        if trial.state == State.RUNNING and trial.params and trial.intermediate_values:
            return trial
    return None


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_trial_of_a_killed_worker_is_failed_and_its_parameters_retried(
    iris, tmp_path, monkeypatch, kind
):
    monkeypatch.setenv("NNCV_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("NNCV_GRACE_PERIOD", "2")
    spec = str(tmp_path / "s.log") if kind == "journal" else f"sqlite:///{tmp_path / 's.db'}"
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen(
        [sys.executable, "-c", LONG_TRIAL, spec],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    dead = None
    while dead is None and time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        dead = _running_with_heartbeat(spec)
        time.sleep(0.2)
    assert dead is not None, "the child never started its trial"
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    time.sleep(3)  # the lease runs out

    X, y = iris
    result = _tune(X, y, spec, 2)
    trials = {t.number: t for t in result.study.trials}
    assert trials[dead.number].state == State.FAIL
    assert not [t for t in trials.values() if t.state in (State.RUNNING, State.WAITING)]
    retried = [t for t in trials.values() if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retried) == 1 and retried[0].state == State.COMPLETE
    assert retried[0].params == trials[dead.number].params == dead.params
    assert sum(t.state == State.COMPLETE for t in trials.values()) == 2


# ------------------------------------------------------------- nncv worker
def test_worker_refuses_a_study_that_does_not_exist_and_lists_those_that_do(tmp_path):
    from typer.testing import CliRunner

    from nncv.cli import app

    def worker(*args):
        common = ["--cv", "2", "-p", "max_epochs=2", "--trials", "1", "--pruner", "none"]
        return CliRunner().invoke(app, ["worker", "iris", *common, *map(str, args)])

    storage = tmp_path / "study.log"
    missing = worker("--storage", storage, "--study-name", "iris")
    assert missing.exit_code == 1
    assert "no study 'iris'" in missing.output and "studies there: none" in missing.output
    assert not storage.exists()  # nothing created

    created = worker("--storage", storage, "--study-name", "iris", "--create")
    assert created.exit_code == 0, created.output
    typo = worker("--storage", storage, "--study-name", "irsi")
    assert typo.exit_code == 1
    assert "did you mean 'iris'" in typo.output and "studies there: 'iris'" in typo.output
    assert optuna.get_all_study_names(make_storage(str(storage))) == ["iris"]

    database = f"sqlite:///{tmp_path / 'study.db'}"
    assert worker("--storage", database, "--study-name", "iris").exit_code == 1
    assert not (tmp_path / "study.db").exists()


def test_a_lock_left_by_a_killed_writer_of_this_host_is_broken_at_once(iris, tmp_path):
    X, y = iris
    path = tmp_path / "study.log"
    _tune(X, y, str(path), 1, random_state=0)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "study.log.lock").write_text(f"{socket.gethostname()} {gone.pid}")
    started = time.monotonic()
    _tune(X, y, str(path), 1)  # Optuna's own lock would wait 30 s for this one
    assert time.monotonic() - started < 15
    assert not (tmp_path / "study.log.lock").exists()


def test_a_worker_whose_trial_was_failed_as_dead_goes_on_with_its_share(iris, tmp_path):
    """A heartbeat so late that another worker failed the trial must not stop this one."""
    import threading

    X, y = iris
    spec = str(tmp_path / "s.log")
    failed = []

    def fail_the_first_running_trial():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not failed:
            try:
                study = optuna.load_study(study_name="s", storage=make_storage(spec))
            except (KeyError, SearchError):
                continue
            for trial in study.trials:
                if trial.state == State.RUNNING and trial.intermediate_values:
                    study._storage.set_trial_state_values(trial._trial_id, State.FAIL)
                    failed.append(trial.number)
                    return
            time.sleep(0.05)

    other_worker = threading.Thread(target=fail_the_first_running_trial)
    other_worker.start()
    result = tune(
        X,
        y,
        small_classifier(max_epochs=300),
        small_space(),
        n_trials=2,
        cv=2,
        pruner="none",
        storage=spec,
        study_name="s",
        random_state=0,
        refit=False,
    )
    other_worker.join()
    states = [t.state for t in result.study.trials]
    assert failed and states[failed[0]] == State.FAIL
    assert len(states) == 2 and states.count(State.COMPLETE) == 1
