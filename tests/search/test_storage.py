"""The storage factory: in memory, journal file, SQLAlchemy URL; unreachable ones refused."""

from __future__ import annotations

import os
import time

import optuna
import pytest

from nncv.exceptions import SearchError
from nncv.search._storage import describe_storage, make_storage


def test_none_is_in_memory():
    assert isinstance(make_storage(None), optuna.storages.InMemoryStorage)


def test_log_path_is_a_journal_that_another_opener_reads(tmp_path):
    path = tmp_path / "deep" / "dir" / "study.log"
    storage = make_storage(path)
    assert isinstance(storage, optuna.storages.JournalStorage)
    study = optuna.create_study(storage=storage, study_name="s")
    study.enqueue_trial({"x": 1.0})
    study.optimize(lambda t: t.suggest_float("x", 0, 2), n_trials=1)
    again = optuna.load_study(study_name="s", storage=make_storage(str(path)))
    assert [t.value for t in again.trials] == [1.0]


def test_sqlite_url_is_a_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = make_storage(url)
    assert isinstance(storage, optuna.storages.RDBStorage)
    optuna.create_study(storage=storage, study_name="s")
    assert optuna.get_all_study_names(storage=make_storage(url)) == ["s"]


def test_an_optuna_storage_is_used_as_is():
    storage = optuna.storages.InMemoryStorage()
    assert make_storage(storage) is storage


def test_unreachable_database_is_refused_quickly(tmp_path):
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'study.db'}"
    started = time.perf_counter()
    with pytest.raises(SearchError, match="cannot reach storage sqlite:///"):
        make_storage(url)
    assert time.perf_counter() - started < 10


def test_database_without_its_driver_is_refused_by_name():
    with pytest.raises(SearchError, match="cannot reach storage mysql://u:\\*\\*\\*@"):
        make_storage("mysql://u:secret@127.0.0.1:1/db")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_journal_directory_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(SearchError, match="cannot open journal storage"):
        make_storage(locked / "sub" / "study.log")


def test_journal_path_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "study.log").mkdir()
    with pytest.raises(SearchError, match="cannot open journal storage"):
        make_storage(tmp_path / "study.log")


@pytest.mark.parametrize("spec", ["study.db", "results/study.json", 3])
def test_other_specs_are_refused_with_the_accepted_forms(spec):
    with pytest.raises(SearchError, match=r"\.log"):
        make_storage(spec)


def test_passwords_are_masked_in_messages():
    assert describe_storage("postgresql://me:hunter2@db:5432/x") == "postgresql://me:***@db:5432/x"
