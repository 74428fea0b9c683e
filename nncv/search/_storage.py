"""Turn the user's ``storage`` argument into an Optuna storage, in one place.

* ``None`` — in memory (gone when the process ends);
* a path ending in ``.log`` — Optuna's journal file storage, safe for several worker
  processes on one machine (no "database is locked");
* any other string with ``://`` — a SQLAlchemy URL (``sqlite:///study.db``,
  ``postgresql://user@host/db``) through :class:`optuna.storages.RDBStorage`;
* an :class:`optuna.storages.BaseStorage` — used as it is.

Every backend is opened (and so reached) here, before any trial runs: an unreachable
database or an unwritable journal directory is a :class:`~nncv.SearchError` naming it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import optuna

from nncv.exceptions import SearchError

__all__ = ["StorageSpec", "describe_storage", "make_storage"]

StorageSpec = str | os.PathLike | optuna.storages.BaseStorage | None

#: Seconds to wait for a database server before calling it unreachable.
CONNECT_TIMEOUT_S = 10


def describe_storage(storage: StorageSpec) -> str:
    """A printable name for a storage spec, with any password masked."""
    if storage is None:
        return "in-memory storage"
    if isinstance(storage, optuna.storages.BaseStorage):
        return type(storage).__name__
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", os.fspath(storage))


def _journal(path: Path) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as error:
        raise SearchError(
            f"cannot open journal storage {path}: {error.strerror or error}"
        ) from None
    # An open-based lock works on every file system (NFS included), unlike symlinks.
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    return optuna.storages.JournalStorage(backend)


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    if url.startswith("mysql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    return {}


def _database(url: str) -> optuna.storages.BaseStorage:
    try:
        # RDBStorage connects and creates its tables right away: this is the reachability check.
        return optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
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
