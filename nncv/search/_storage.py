"""Turn the user's ``storage`` argument into an Optuna storage, in one place.

* ``None`` — in memory (gone when the process ends);
* a path ending in ``.log`` — Optuna's journal file storage, safe for several worker
  processes on one machine (no "database is locked"), with torn records repaired and
  trial leases (:mod:`nncv.search._journal`);
* any other string with ``://`` — a SQLAlchemy URL (``sqlite:///study.db``,
  ``postgresql://user@host/db``) through :class:`optuna.storages.RDBStorage`;
* an :class:`optuna.storages.BaseStorage` — used as it is.

Every backend is opened (and so reached) here, before any trial runs: an unreachable
database or an unwritable journal directory is a :class:`~nncv.SearchError` naming it.

Workers started together on one fresh storage race to create the database tables and the
study: those races (``table studies already exists``, a duplicate ``alembic_version`` or
``pg_type`` row, a study created meanwhile) are retried a bounded number of times
(:func:`retry_races`). Journal and database storages both detect dead workers: a running
trial renews a heartbeat every :func:`heartbeat_interval` seconds, and a ``RUNNING`` trial
silent for :func:`grace_period` seconds is failed by the next trial any worker starts and
its parameters are enqueued again (``NNCV_HEARTBEAT_INTERVAL`` and ``NNCV_GRACE_PERIOD``,
in whole seconds, change the defaults of 10 and 60).
"""

from __future__ import annotations

import inspect
import json
import os
import random
import re
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import optuna

from nncv.exceptions import SearchError
from nncv.search._journal import LeasedJournalStorage, open_journal

__all__ = [
    "StorageSpec",
    "describe_storage",
    "grace_period",
    "heartbeat_interval",
    "make_storage",
    "retry_races",
    "set_study_attr_once",
    "stop_heartbeat_threads",
    "study_names",
]

StorageSpec = str | os.PathLike | optuna.storages.BaseStorage | None

#: Seconds to wait for a database server before calling it unreachable.
CONNECT_TIMEOUT_S = 10
#: Default seconds between a running trial's heartbeats, and of silence before it is dead.
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60
#: How often a dead trial's parameters are tried again.
MAX_RETRY = 3
#: Tries (with exponential back-off) of an operation that lost a storage-creation race.
RACE_ATTEMPTS = 8

#: Messages of the errors that workers creating one storage or study together can meet.
_RACE_MESSAGES = (
    "already exists",
    "unique constraint failed",
    "duplicate key value",
    "database is locked",
    "deadlock detected",
    "could not serialize",
)

Result = TypeVar("Result")


def _seconds_from_env(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SearchError(f"{name} must be a whole number of seconds >= 1, got {text!r}")
    return value


def heartbeat_interval() -> int:
    """Seconds between a running trial's heartbeats (``NNCV_HEARTBEAT_INTERVAL``, default 10)."""
    return _seconds_from_env("NNCV_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL_S)


def grace_period() -> int:
    """Seconds without heartbeat after which a running trial is dead (``NNCV_GRACE_PERIOD``)."""
    return max(_seconds_from_env("NNCV_GRACE_PERIOD", GRACE_PERIOD_S), heartbeat_interval() + 1)


def _retry_callback() -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """Optuna's callback that enqueues a dead trial's parameters again."""
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if retry is None:  # Optuna < 4.9
        retry = optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return retry(max_retry=MAX_RETRY)


def fail_lost_trial(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, reason: str, *, retry: bool = True
) -> bool | None:
    """Fail a RUNNING ``trial`` whose process is gone, with the user attribute
    ``fail_reason``, and enqueue its parameters again as for a trial failed by its heartbeat
    (Optuna's retry callback: system attributes ``failed_trial`` and ``retry_history``, at
    most ``MAX_RETRY`` times) unless ``retry`` is False.

    Returns None when the trial finished, or another process failed it, meanwhile (nothing
    is done); otherwise whether its parameters were enqueued again.
    """
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
        if not storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL):
            return None
    except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
        return None
    retried = retry and len(trial.system_attrs.get("retry_history", [])) < MAX_RETRY
    if retried:
        _retry_callback()(study, trial)
    return retried


def is_race(error: BaseException) -> bool:
    """Whether ``error`` is one a concurrent creation of the same storage or study raises."""
    if isinstance(error, optuna.exceptions.DuplicatedStudyError):
        return True
    text = str(error).lower()
    return any(message in text for message in _RACE_MESSAGES)


def retry_races(
    action: Callable[[], Result],
    *,
    also: tuple[type[BaseException], ...] = (),
    attempts: int = RACE_ATTEMPTS,
) -> Result:
    """Run ``action``; retry it with jittered exponential back-off while it loses a race.

    A race is an error :func:`is_race` recognises, or one of the types in ``also`` (a
    ``KeyError`` for a study another worker is still writing). The last error is raised.
    """
    for attempt in range(attempts):
        try:
            return action()
        except Exception as error:
            if attempt == attempts - 1 or not (isinstance(error, also) or is_race(error)):
                raise
        time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover


def set_study_attr_once(
    storage: optuna.storages.BaseStorage, study_id: int, key: str, value: Any
) -> Any:
    """Write a study user attribute unless it exists; return the value stored (first wins).

    Atomic on the journal (under the nncv lock file) and on databases (the unique key of
    ``study_user_attributes``); on other storages a plain check-then-write.
    """
    if isinstance(storage, LeasedJournalStorage):
        return storage.set_study_user_attr_once(study_id, key, value)
    rdb = getattr(storage, "_backend", storage)  # Optuna wraps RDBStorage in a cache
    if isinstance(rdb, optuna.storages.RDBStorage):
        import sqlalchemy
        from optuna.storages._rdb import models

        table = models.StudyUserAttributeModel.__table__
        row = {"study_id": study_id, "key": key, "value_json": json.dumps(value)}

        def insert() -> None:
            try:
                with rdb.engine.begin() as connection:
                    connection.execute(sqlalchemy.insert(table).values(**row))
            except sqlalchemy.exc.IntegrityError:
                pass  # another worker wrote it first (the unique key of study and key)

        retry_races(insert)  # SQLite: "database is locked" while others write
        return storage.get_study_user_attrs(study_id)[key]
    attrs = storage.get_study_user_attrs(study_id)
    if key not in attrs:
        storage.set_study_user_attr(study_id, key, value)
        attrs = storage.get_study_user_attrs(study_id)
    return attrs[key]


def describe_storage(storage: StorageSpec) -> str:
    """A printable name for a storage spec, with any password masked."""
    if storage is None:
        return "in-memory storage"
    if isinstance(storage, optuna.storages.BaseStorage):
        return type(storage).__name__
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", os.fspath(storage))


def _journal(path: Path) -> optuna.storages.BaseStorage:
    # An open-based lock works on every file system (NFS included), unlike symlinks.
    return open_journal(path, heartbeat_interval(), grace_period(), _retry_callback())


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    if url.startswith("mysql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {}


def _heartbeat_kwargs() -> dict[str, Any]:
    parameters = inspect.signature(optuna.storages.RDBStorage).parameters
    callback = (
        "heartbeat_stale_trial_callback"
        if "heartbeat_stale_trial_callback" in parameters
        else "failed_trial_callback"
    )
    return {
        "heartbeat_interval": heartbeat_interval(),
        "grace_period": grace_period(),
        callback: _retry_callback(),
    }


def _database(url: str) -> optuna.storages.BaseStorage:
    def connect() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=_engine_kwargs(url), **_heartbeat_kwargs()
            )

    try:
        # RDBStorage connects and creates its tables right away: this is the reachability
        # check. Workers starting together race to create the tables: retried.
        return retry_races(connect)
    except Exception as error:  # SQLAlchemy, driver and Optuna errors alike
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        cause = error.__cause__ or error.__context__
        if isinstance(error, ImportError) and isinstance(cause, ImportError):
            reason = f"{cause}: install the database driver ({reason})"
        raise SearchError(f"cannot reach storage {describe_storage(url)}: {reason}") from error


def make_storage(storage: StorageSpec) -> optuna.storages.BaseStorage:
    """Open the storage named by ``storage``; raise :class:`~nncv.SearchError` if unreachable.

    Parameters
    ----------
    storage : None, str, path-like or optuna.storages.BaseStorage
        See the module docstring.

    Returns
    -------
    optuna.storages.BaseStorage

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "study.log")
    >>> type(make_storage(path)).__name__
    'JournalStorage'
    >>> type(make_storage(None)).__name__
    'InMemoryStorage'
    """
    if storage is None:
        return optuna.storages.InMemoryStorage()
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str | os.PathLike):
        raise SearchError(
            "storage must be None, a path ending in .log, a SQLAlchemy URL or an Optuna "
            f"storage, got {type(storage).__name__}"
        )
    text = os.fspath(storage)
    if text.endswith(".log") and "://" not in text:
        return _journal(Path(text))
    if "://" in text:
        return _database(text)
    raise SearchError(
        f"storage {text!r} is neither a journal file (a path ending in .log) nor a "
        "SQLAlchemy URL such as sqlite:///study.db or postgresql://user@host/db"
    )


def study_names(storage: str | os.PathLike) -> list[str]:
    """Names of the studies in a journal or database, creating nothing where there is none.

    Examples
    --------
    >>> import tempfile, os
    >>> study_names(os.path.join(tempfile.mkdtemp(), "none-yet.log"))
    []
    """
    text = os.fspath(storage)
    if "://" not in text and not os.path.exists(text):
        return []
    sqlite = re.match(r"sqlite:///(.+)$", text)
    if sqlite and sqlite.group(1) != ":memory:" and not os.path.exists(sqlite.group(1)):
        return []
    opened = make_storage(storage)
    return sorted(summary.study_name for summary in opened.get_all_studies())


def stop_heartbeat_threads() -> list[int]:
    """Stop the Optuna heartbeat threads of this process; return their trials' ids.

    Optuna beats a trial's heartbeat from a non-daemon thread that its ``with`` block stops
    when the trial ends. A Ctrl-C that lands between the thread's start and that block, or
    in the block's exit before it sets the thread's stop event, leaves the thread beating
    for ever - and the interpreter waiting for it at exit, after the search itself has
    returned - and its trial RUNNING. Call this when no trial of this process runs any more:
    each such thread is given its stop event and ends at once.
    """
    from optuna.storages._heartbeat import HeartbeatThread

    beat = HeartbeatThread._record_heartbeat
    trial_ids = []
    for thread in threading.enumerate():
        # Thread keeps its target and arguments while the target runs (CPython's Thread.run):
        # here (trial_id, storage, stop_event)
        if getattr(thread, "_target", None) is not beat:
            continue
        arguments = getattr(thread, "_args", ())
        stop_event = next((a for a in arguments if isinstance(a, threading.Event)), None)
        if stop_event is not None:
            stop_event.set()
            trial_ids.extend(a for a in arguments[:1] if isinstance(a, int))
    return trial_ids
