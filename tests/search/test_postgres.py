"""A study on a real PostgreSQL server: two worker processes, a resume, an unreachable URL.

Starts a throw-away server (initdb + pg_ctl as the ``postgres`` user) when the server
binaries, root rights (for ``runuser``) and the ``psycopg2`` driver are all here; skips
otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from nncv.exceptions import SearchError
from nncv.search import tune

from .conftest import small_classifier, small_space

BIN = Path(os.environ.get("NNCV_PG_BIN", "/usr/lib/postgresql/15/bin"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (BIN / "initdb").exists(), reason="PostgreSQL server not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the server as postgres"),
    pytest.mark.skipif(
        importlib.util.find_spec("psycopg2") is None, reason="psycopg2 driver not installed"
    ),
    pytest.mark.skipif(shutil.which("runuser") is None, reason="runuser not available"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(*command: str) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", *command],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def postgres_url():
    folder = Path(tempfile.mkdtemp(prefix="nncv-pg-"))
    data = folder / "data"
    shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    _as_postgres(str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    log = str(folder / "server.log")  # -l: the server must not hold our stdout pipe open
    _as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_a_postgres_study_and_resume(iris, postgres_url):
    X, y = iris
    common = dict(
        estimator=small_classifier(max_epochs=3),
        space=small_space(),
        cv=2,
        storage=postgres_url,
        study_name="pg",
        random_state=0,
    )
    first = tune(X, y, n_trials=4, n_workers=2, **common)
    assert len(first.study.trials) == 4
    values = {t.number: t.value for t in first.study.trials}
    again = tune(X, y, n_trials=1, **common)
    assert len(again.study.trials) == 5
    assert {t.number: t.value for t in again.study.trials if t.number < 4} == values


def test_unreachable_postgres_is_refused_quickly(iris):
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{_free_port()}/postgres"
    started = time.perf_counter()
    with pytest.raises(SearchError, match="cannot reach storage postgresql.*refused"):
        tune(*iris, small_classifier(), small_space(), storage=url)
    assert time.perf_counter() - started < 15
