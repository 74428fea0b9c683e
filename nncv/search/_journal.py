"""Optuna's journal file, hardened: torn records repaired, dead trials' leases expire.

A journal is one JSON record per line, appended under a lock file (``study.log.lock``).
Two things can go wrong that Optuna 5 leaves to the user:

* **a torn record** — the writer dies (``kill -9``, power loss, a full disk) in the middle
  of a line. Optuna's reader skips an unfinished last line, but the next writer appends
  to it, and from then on the merged line is not JSON and the study cannot be read again.
  :class:`RepairingJournalBackend` cuts an unfinished last line off under the journal's
  own lock before every append (and when the journal is opened), so at most the torn
  record is lost; a merged line left by an older writer is split back into the record
  that follows the torn one.
* **a dead worker's trial** — a trial stays ``RUNNING`` forever when its process is
  killed. :class:`LeasedJournalStorage` gives the journal the heartbeat Optuna's database
  storages have: while a trial runs, its worker renews a lease (the trial system
  attribute ``nncv_heartbeat``, a wall-clock time) every ``heartbeat_interval`` seconds;
  a ``RUNNING`` trial whose lease is older than ``grace_period`` is failed by the next
  trial any worker starts, and the failure callback enqueues its parameters again.

Every nncv process on a journal takes a second lock file (``study.log.nncv.lock``) to
change a trial's state or to write the study's set-up once, so two workers never both
fail (and retry) one dead trial, and the first set-up written is the one everyone uses.
Both lock files record their owner (:class:`OwnedFileLock`): one left by a process of
this machine that was killed while holding it is broken at once, not after 30 s.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import FrozenTrial, TrialState

from nncv.exceptions import SearchError

__all__ = ["LeasedJournalStorage", "RepairingJournalBackend", "open_journal"]

logger = logging.getLogger("nncv.search")

#: The trial system attribute a running trial's worker renews (seconds since the epoch).
HEARTBEAT_ATTR = "nncv_heartbeat"
#: Every Optuna journal record starts with this key (``json.dumps`` keeps insertion order).
_RECORD_START = b'{"op_code":'
_CHUNK = 1 << 16


class OwnedFileLock(JournalFileOpenLock):
    """Optuna's open-based lock file, holding its owner's ``host pid``.

    A lock left by a process of this host that is gone (``kill -9`` while it held the
    lock) is broken at once instead of after Optuna's 30 s grace period; any other stale
    lock (another host, or an owner that is not recorded) still waits out the grace period.
    """

    def __init__(self, filepath: str, grace_period: int | None = 30) -> None:
        super().__init__(filepath, grace_period)
        self._owner = f"{socket.gethostname()} {os.getpid()}"

    def _owner_is_gone(self) -> bool:
        try:
            with open(self._lock_file) as handle:
                host, pid = handle.read().split()
        except (OSError, ValueError):
            return False  # gone meanwhile, being written, or not ours to judge
        if host != socket.gethostname():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except (OSError, ValueError):
            return False
        return False

    def acquire(self) -> bool:
        sleep_s = 0.001
        mtime, since = None, time.monotonic()
        while True:
            try:
                handle = os.open(self._lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                stale = self._owner_is_gone()
                if not stale and self.grace_period is not None:
                    try:
                        current = os.stat(self._lock_file).st_mtime
                    except OSError:
                        continue
                    if current != mtime:
                        mtime, since = current, time.monotonic()
                    stale = time.monotonic() - since > self.grace_period
                if stale:
                    logger.warning("breaking the lock %s of a dead writer", self._lock_file)
                    try:
                        self.release()
                    except RuntimeError:
                        pass
                    sleep_s = 0.001
                    continue
                time.sleep(sleep_s)
                sleep_s = min(sleep_s * 2, 0.1)
                continue
            try:
                os.write(handle, self._owner.encode())
            except BaseException:  # interrupted (Ctrl-C) holding it: leave no lock behind
                os.close(handle)
                self.release()
                raise
            os.close(handle)
            return True


@contextmanager
def _held(lock: OwnedFileLock) -> Iterator[None]:
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _is_record(text: bytes) -> bool:
    try:
        record = json.loads(text)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return False
    return isinstance(record, dict) and "op_code" in record


def _last_newline(handle: Any, size: int) -> int:
    """Offset of the last ``\\n`` in the file, or -1."""
    end = size
    while end > 0:
        start = max(0, end - _CHUNK)
        handle.seek(start)
        found = handle.read(end - start).rfind(b"\n")
        if found >= 0:
            return start + found
        end = start
    return -1


def cut_torn_tail(path: str | os.PathLike) -> int:
    """Cut an unfinished last line off the journal; return the bytes removed.

    Call it holding the journal's lock. A last line that is a whole record lacking only
    its newline gets the newline instead (nothing is lost).
    """
    with open(path, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        keep = _last_newline(handle, size) + 1
        handle.seek(keep)
        tail = handle.read(size - keep)
        if _is_record(tail):
            handle.seek(size)
            handle.write(b"\n")
            removed = 0
        else:
            handle.truncate(keep)
            removed = size - keep
        handle.flush()
        os.fsync(handle.fileno())
    if removed:
        logger.warning(
            "journal %s ended in a torn record (%d bytes, a writer died mid-line); cut off",
            os.fspath(path),
            removed,
        )
    return removed


def _salvage(line: bytes) -> bytes | None:
    """The whole record at the end of a torn record merged with the next one, if any."""
    start = line.rfind(_RECORD_START)
    while start > 0:
        if _is_record(line[start:]):
            return line[start:]
        start = line.rfind(_RECORD_START, 0, start)
    return None


def check_and_repair(path: Path) -> None:
    """Refuse a file that is not a journal; repair torn records. Hold the journal's lock."""
    with open(path, "rb") as handle:
        start = handle.read(len(_RECORD_START))
    if start and start != _RECORD_START:
        raise SearchError(
            f"{path} is not an Optuna journal (it does not start with a journal record); "
            "give another .log path for the study"
        )
    cut_torn_tail(path)
    with open(path, "rb") as handle:
        lines = list(handle)
    kept: list[bytes] = []
    repaired = False
    for number, line in enumerate(lines, start=1):
        if _is_record(line):
            kept.append(line)
            continue
        fixed = _salvage(line)
        if fixed is None:
            raise SearchError(
                f"journal {path} is corrupt at line {number} (not a journal record); "
                "restore it from a copy or give another .log path"
            )
        logger.warning(
            "journal %s: line %d merged a torn record with the next one; torn part dropped",
            path,
            number,
        )
        kept.append(fixed)
        repaired = True
    if not repaired:
        return
    handle_fd, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".repair")
    with os.fdopen(handle_fd, "wb") as out:
        out.writelines(kept)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)


class RepairingJournalBackend(JournalFileBackend):
    """:class:`~optuna.storages.journal.JournalFileBackend` that never appends to a torn line.

    Before each append, under the journal's lock, an unfinished last line (its writer
    died) is cut off; Optuna's reader never returned it, so nothing read is lost.
    """

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with _held(self._lock):
            cut_torn_tail(self._file_path)
            with open(self._file_path, "ab") as handle:
                handle.write(text.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())


class LeasedJournalStorage(JournalStorage, BaseHeartbeat):
    """A journal storage with trial leases (Optuna's heartbeat interface) and set-once attrs.

    Parameters
    ----------
    path : Path
        The journal file.
    heartbeat_interval : int
        Seconds between a running trial's lease renewals.
    grace_period : int
        A ``RUNNING`` trial whose last renewal (or start) is older than this is dead.
    stale_trial_callback : callable, optional
        Called as ``callback(study, failed_trial)`` for each dead trial failed here
        (:class:`optuna.storages.RetryFailedTrialCallback` enqueues its parameters again).
    """

    def __init__(
        self,
        path: Path,
        heartbeat_interval: int,
        grace_period: int,
        stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ) -> None:
        lock = OwnedFileLock(str(path))
        with _held(lock):
            check_and_repair(path)
        backend = RepairingJournalBackend(str(path), lock_obj=lock)
        try:
            super().__init__(backend)
        except (ValueError, KeyError) as error:  # a record Optuna cannot replay
            raise SearchError(f"cannot read journal {path}: {error}") from None
        self.path = path
        self._nncv_lock = OwnedFileLock(str(path) + ".nncv")
        self._heartbeat_interval = int(heartbeat_interval)
        self._grace_period = int(grace_period)
        self._stale_trial_callback = stale_trial_callback

    # -------------------------------------------------------------- heartbeat
    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except (UpdateFinishedTrialError, KeyError):  # another worker failed it meanwhile
            pass

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            last = trial.system_attrs.get(HEARTBEAT_ATTR)
            if last is None and trial.datetime_start is not None:
                last = trial.datetime_start.timestamp()  # never renewed: its start
            if last is not None and now - float(last) > self._grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(
        self,
    ) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._stale_trial_callback

    def get_failed_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._stale_trial_callback

    # ---------------------------------------------------------- atomic updates
    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Any = None) -> bool:
        """Finish a trial only if it is still unfinished, under the nncv lock.

        Two workers that both find one dead trial cannot both fail it (and both retry
        it); a worker whose trial was failed as dead gets ``UpdateFinishedTrialError``.
        """
        if not state.is_finished():
            return super().set_trial_state_values(trial_id, state, values)
        with _held(self._nncv_lock):
            if self.get_trial(trial_id).state.is_finished():
                raise UpdateFinishedTrialError(f"trial {trial_id} is already finished")
            return super().set_trial_state_values(trial_id, state, values)

    def set_study_user_attr_once(self, study_id: int, key: str, value: Any) -> Any:
        """Write a study user attribute unless one is there; return the stored value."""
        with _held(self._nncv_lock):
            attrs = self.get_study_user_attrs(study_id)
            if key not in attrs:
                self.set_study_user_attr(study_id, key, value)
                attrs = self.get_study_user_attrs(study_id)
            return attrs[key]


def _blocking_file(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists and is not a directory, if any."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def open_journal(
    path: Path,
    heartbeat_interval: int,
    grace_period: int,
    stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> LeasedJournalStorage:
    """Open (creating it if need be) the journal at ``path``; :class:`SearchError` if unusable."""
    blocking = _blocking_file(path)
    if blocking is not None:
        raise SearchError(
            f"cannot open journal storage {path}: {blocking} is a file, not a directory"
        )
    if path.exists() and not path.is_file():
        raise SearchError(f"cannot open journal storage {path}: not a regular file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as error:
        raise SearchError(
            f"cannot open journal storage {path}: {error.strerror or error}"
        ) from None
    return LeasedJournalStorage(path, heartbeat_interval, grace_period, stale_trial_callback)
