"""nncv on a real Dask cluster: a LocalCluster of two worker processes, one thread each.

Folds (``cross_validate``) and trials (``tune``, ``NNSearchCV``, ``nncv tune --dask``)
must give the numbers of one process, send X to the workers once (not with every task),
hold BLAS to one thread inside each task, and survive a worker process killed with
SIGKILL mid-run with every fold and trial accounted for.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time

import joblib
import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ShuffleSplit, cross_val_score
from threadpoolctl import threadpool_info
from typer.testing import CliRunner

import nncv
from nncv import BackendError, NNClassifier, SearchError
from nncv._dask import MAX_RESUBMITS
from nncv.search import Float, Int, NNSearchCV, SearchSpace, tune
from nncv.search._dask import RETRY_ATTR, WORKER_ATTR, DaskTrials, run_trial_task, run_trials
from nncv.search._storage import _retry_callback, make_storage

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

from distributed.diagnostics.plugin import SchedulerPlugin  # noqa: E402

State = optuna.trial.TrialState
SPACE = SearchSpace(learning_rate=Float(1e-3, 1e-1, log=True), hidden_size=Int(4, 12))
#: Fixed parameters, enqueued on both studies compared, so that trial t has the same
#: parameters whichever worker or order runs it.
PARAMS = [
    {"learning_rate": 0.02, "hidden_size": 6},
    {"learning_rate": 0.005, "hidden_size": 10},
    {"learning_rate": 0.05, "hidden_size": 4},
    {"learning_rate": 0.01, "hidden_size": 8},
]


#: Dask starts worker processes with one BLAS thread (``OPENBLAS_NUM_THREADS=1``, …);
#: these start with two, so that only nncv's limit inside each task can bring it to one.
#: A task whose worker dies twice is given up (``KilledWorker``) rather than after four.
CLUSTER_CONFIG = {
    "distributed.nanny.pre-spawn-environ": {
        name: 2 for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    },
    "distributed.scheduler.allowed-failures": 1,
}


def start_cluster():
    with dask.config.set(CLUSTER_CONFIG):
        return distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: other clusters may hold 8787
            silence_logs=logging.ERROR,
        )


@pytest.fixture(scope="module")
def cluster():
    with start_cluster() as cluster:
        yield cluster


def warm_up() -> None:
    importlib.import_module("nncv.search")


@pytest.fixture
def own_client():
    """A client of a fresh cluster, for a test whose tasks SIGKILL their own workers.

    Such a task can be sent to a worker that has just registered and kill it before its
    nanny has finished starting it, and Dask's nanny then gives up restarting it ("Failed
    to restart worker"): the module's cluster would stay one worker short.
    """
    with start_cluster() as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            client.run(warm_up)
            yield client


@pytest.fixture(scope="module")
def client(cluster):
    # Not the default client: nncv must never need one (the CLI's is not one either).
    with distributed.Client(cluster, set_as_default=False) as client:
        client.run(warm_up)  # the workers import nncv here, once, not in the first test
        yield client


def replace_stopped_workers(cluster) -> None:
    """Start a new worker (and nanny) for each of ``cluster``'s workers gone for good.

    A nanny restarts its worker after a SIGKILL, but gives up when the new process dies
    or hangs while starting ("Failed to restart worker"), seen here about once in ten
    runs of the kill tests on a loaded machine; later tests would then wait in vain.
    """
    registered = {worker.name for worker in cluster.scheduler.workers.values()}
    for name in [name for name in cluster.workers if name not in registered]:
        cluster.sync(cluster.workers.pop(name).close, timeout=10)
    with dask.config.set(CLUSTER_CONFIG):  # the new nanny reads its environment now
        cluster.sync(cluster._correct_state)


@pytest.fixture(autouse=True)
def _two_workers(cluster, client):
    try:  # a test that killed one lets the nanny restart it
        client.wait_for_workers(2, timeout=90)
    except TimeoutError:
        replace_stopped_workers(cluster)
        client.wait_for_workers(2, timeout=90)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(verbosity)


@pytest.fixture(scope="module")
def digits():
    X, y = nncv.datasets.load("digits")
    return np.ascontiguousarray(X, dtype=np.float64), y


def small_pipeline(**params):
    return nncv.make_pipeline(
        "standard", **{"hidden_layer_sizes": 8, "max_epochs": 4, "batch_size": 32, **params}
    )


def enqueued_study(storage, name: str, params=PARAMS) -> str:
    study = optuna.create_study(
        storage=make_storage(storage), study_name=name, direction="maximize"
    )
    for values in params:
        study.enqueue_trial(values)
    return name


def by_number(study: optuna.Study) -> dict[int, optuna.trial.FrozenTrial]:
    return {trial.number: trial for trial in study.get_trials()}


def assert_same_trial(a: optuna.trial.FrozenTrial, b: optuna.trial.FrozenTrial) -> None:
    assert a.state == b.state
    assert a.params == b.params
    assert a.value == b.value
    for key in ("nncv_fold_scores", "nncv_history", "nncv_best_epochs", "nncv_splits_sha256"):
        assert a.user_attrs.get(key) == b.user_attrs.get(key), key


def blas_threads() -> int:
    return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


class TaskSpecSizes(SchedulerPlugin):
    """Records the pickled size of every task the scheduler receives (in-process scheduler)."""

    def __init__(self, scheduler) -> None:
        self.scheduler = scheduler
        self.sizes: dict[str, int] = {}

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        task = self.scheduler.tasks.get(key)
        if task is not None and task.run_spec is not None and str(key) not in self.sizes:
            self.sizes[str(key)] = len(cloudpickle.dumps(task.run_spec))


@pytest.fixture
def task_sizes(cluster):
    plugin = TaskSpecSizes(cluster.scheduler)
    cluster.scheduler.add_plugin(plugin, name="nncv-task-sizes")
    yield plugin.sizes
    cluster.scheduler.remove_plugin(name="nncv-task-sizes")


# ----------------------------------------------------------------- folds


def test_cross_validate_on_dask_gives_the_numbers_of_one_process(client, digits):
    X, y = digits[0][:600], digits[1][:600]
    model = small_pipeline()
    local = nncv.cross_validate(model, X, y, cv=4, random_state=0, n_jobs=1)
    by_argument = nncv.cross_validate(model, X, y, cv=4, random_state=0, backend=client)
    with joblib.parallel_config(backend="dask", client=client):
        by_config = nncv.cross_validate(model, X, y, cv=4, random_state=0, n_jobs=-1)
    for result in (by_argument, by_config):
        np.testing.assert_array_equal(result.scores["score"], local.scores["score"])
        pd.testing.assert_frame_equal(result.curves, local.curves)
        assert result.fold_seeds == local.fold_seeds


def test_folds_get_x_once_not_with_every_task(client, digits, task_sizes):
    X, y = digits  # 1797 x 64 float64: 920 kB
    nncv.cross_validate(
        small_pipeline(max_epochs=1), X, y, cv=6, random_state=0, backend=client, n_jobs=-1
    )
    fold_tasks = {key: size for key, size in task_sizes.items() if "fit_fold" in key}
    assert fold_tasks, f"no fold task reached the scheduler: {sorted(task_sizes)}"
    assert max(fold_tasks.values()) < X.nbytes / 20, fold_tasks


class BlasRecordingClassifier(LogisticRegression):
    """A real classifier that remembers how many BLAS threads its fit ran with."""

    def fit(self, X, y, sample_weight=None):
        self.blas_threads_ = blas_threads()
        return super().fit(X, y, sample_weight=sample_weight)


class BlasRecordingObjective:
    """A trial objective that records the BLAS threads it ran with."""

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("blas_threads", blas_threads())
        return float(trial.suggest_float("x", 0.0, 1.0))


def test_blas_is_one_thread_inside_each_task_and_restored_after(client, digits, tmp_path):
    X, y = digits[0][:300], digits[1][:300]
    client.run(np.dot, np.ones(2), np.ones(2))  # NumPy's BLAS loaded in every worker
    assert set(client.run(blas_threads).values()) == {2}
    result = nncv.cross_validate(
        BlasRecordingClassifier(max_iter=50), X, y, cv=3, backend=client, return_estimator=True
    )
    assert [estimator.blas_threads_ for estimator in result.estimators] == [1, 1, 1]

    storage = str(tmp_path / "blas.log")
    study = optuna.create_study(storage=make_storage(storage), direction="maximize")
    run_trials(
        client,
        BlasRecordingObjective(),
        storage_spec=storage,
        study=study,
        sampler=None,
        pruner=optuna.pruners.NopPruner(),
        seed=0,
        n_trials=2,
        timeout=None,
    )
    trials = study.get_trials()
    assert [t.user_attrs["blas_threads"] for t in trials] == [1, 1]
    assert all(t.user_attrs[WORKER_ATTR].startswith("tcp://") for t in trials)
    assert set(client.run(blas_threads).values()) == {2}  # restored after the tasks


class FailedUnderItsTask:
    """Trial 0 is failed as a dead worker's while it runs, as another process would."""

    def __call__(self, trial: optuna.Trial) -> float:
        x = float(trial.suggest_float("x", 0.0, 1.0))
        if trial.number == 0:
            trial.storage.set_trial_state_values(trial._trial_id, State.FAIL)
            frozen = trial.storage.get_trial(trial._trial_id)
            _retry_callback()(trial.study, frozen)  # what the heartbeat path does
            trial.report(x, 1)  # the next epoch's report, as nncv's objective makes
        return x


def test_a_trial_failed_under_its_task_is_retried_in_the_run(client, tmp_path):
    storage = str(tmp_path / "under.log")
    study = optuna.create_study(storage=make_storage(storage), direction="maximize")
    run_trials(
        client,
        FailedUnderItsTask(),
        storage_spec=storage,
        study=study,
        sampler=None,
        pruner=optuna.pruners.NopPruner(),
        seed=0,
        n_trials=2,
        timeout=None,
    )
    trials = study.get_trials()
    states = [trial.state for trial in trials]
    # As in a local worker (nncv.search._run._optimize), the trial failed under its task
    # counts as that task's trial; its retry runs in the same call.
    assert states.count(State.FAIL) == 1 and set(states) == {State.FAIL, State.COMPLETE}
    [retry] = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert retry.state == State.COMPLETE and retry.params == trials[0].params


def test_a_trial_task_run_again_after_its_trial_finished_runs_no_other(tmp_path):
    # Dask runs a finished task again when its result dies with its worker before the
    # caller fetched it; the task must then hand back its trial, not run another one.
    storage = str(tmp_path / "again.log")
    study = optuna.create_study(storage=make_storage(storage), direction="maximize")
    trials = DaskTrials(
        storage_spec=storage,
        study_name=study.study_name,
        sampler=None,
        pruner=optuna.pruners.NopPruner(),
        seed=0,
        n_existing=0,
        run_id="run",
        deadline=None,
        verbosity=optuna.logging.WARNING,
    )
    first = run_trial_task(BlasRecordingObjective(), trials, task=0)
    again = run_trial_task(BlasRecordingObjective(), trials, task=0)
    other = run_trial_task(BlasRecordingObjective(), trials, task=1)
    assert first == again == {"trial": 0, "lost": []}
    assert other == {"trial": 1, "lost": []}
    assert [t.state for t in study.get_trials()] == [State.COMPLETE] * 2


def test_a_journal_the_workers_cannot_see_is_refused_before_any_trial(client, tmp_path):
    seen = str(tmp_path / "seen.log")
    study = optuna.create_study(storage=make_storage(seen), direction="maximize")
    unseen = str(tmp_path / "not-on-the-workers-disk" / "study.log")
    with pytest.raises(SearchError, match="cannot see the journal file"):
        run_trials(
            client,
            BlasRecordingObjective(),
            storage_spec=unseen,
            study=study,
            sampler=None,
            pruner=optuna.pruners.NopPruner(),
            seed=0,
            n_trials=1,
            timeout=None,
        )
    assert study.get_trials() == []


def test_a_relative_journal_path_names_the_same_file_on_the_workers(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the workers' working directory is another one
    X, y = nncv.datasets.load("iris")
    result = tune(X, y, small_pipeline(max_epochs=2), SPACE, n_trials=2, cv=2,
                  storage="relative.log", backend=client, refit=False)  # fmt: skip
    assert [t.state for t in result.study.trials] == [State.COMPLETE] * 2
    assert set(client.run(os.getcwd).values()) != {str(tmp_path)}


def test_tune_on_dask_until_a_timeout(client, tmp_path):
    X, y = nncv.datasets.load("iris")
    result = tune(
        X, y, small_pipeline(max_epochs=2), SPACE, n_trials=None, timeout=2.0, cv=2,
        storage=str(tmp_path / "timeout.log"), backend=client, refit=False,
    )  # fmt: skip
    states = [t.state for t in result.study.trials]
    assert State.COMPLETE in states
    assert State.RUNNING not in states and State.WAITING not in states


def test_unknown_backend_is_a_clear_error(digits):
    X, y = digits[0][:100], digits[1][:100]
    with pytest.raises(BackendError, match="unknown backend 'ray'"):
        nncv.cross_validate(LogisticRegression(), X, y, backend="ray")
    with pytest.raises(BackendError, match="unknown backend"):
        tune(X, y, NNClassifier(max_epochs=1), SPACE, n_trials=1, backend=3)
    with pytest.raises(BackendError, match="unknown backend"):
        NNSearchCV(NNClassifier(max_epochs=1), SPACE, n_trials=1, backend="spark").fit(X, y)


def test_backend_dask_without_a_running_client_is_a_clear_error(client, digits):
    X, y = digits[0][:100], digits[1][:100]  # the module's client is not the default one
    with pytest.raises(BackendError, match="needs a running dask.distributed Client"):
        nncv.cross_validate(LogisticRegression(), X, y, backend="dask")


# ----------------------------------------------------------------- trials


def test_tune_in_memory_on_a_local_cluster(client):
    X, y = nncv.datasets.load("iris")
    result = tune(X, y, small_pipeline(max_epochs=2), SPACE, n_trials=3, cv=2, backend=client)
    assert [t.state for t in result.study.trials] == [State.COMPLETE] * 3
    assert all(WORKER_ATTR in t.user_attrs for t in result.study.trials)
    assert isinstance(result.study._storage, optuna.storages.InMemoryStorage)  # copied back


def test_tune_on_dask_gives_the_study_of_one_process(client, digits, tmp_path, task_sizes):
    X, y = digits[0][:450], digits[1][:450]
    options = {"n_trials": len(PARAMS), "cv": 3, "random_state": 0, "pruner": "none"}
    local_store, dask_store = str(tmp_path / "local.log"), str(tmp_path / "dask.log")
    local = tune(
        X,
        y,
        small_pipeline(),
        SPACE,
        storage=local_store,
        study_name=enqueued_study(local_store, "s"),
        **options,
    )
    on_dask = tune(
        X,
        y,
        small_pipeline(),
        SPACE,
        storage=dask_store,
        study_name=enqueued_study(dask_store, "s"),
        backend=client,
        **options,
    )
    local_trials, dask_trials = by_number(local.study), by_number(on_dask.study)
    assert sorted(dask_trials) == sorted(local_trials) == list(range(len(PARAMS)))
    for number, trial in local_trials.items():
        assert_same_trial(dask_trials[number], trial)
        assert "nncv_dask_worker" in dask_trials[number].user_attrs  # it ran as a Dask task
    assert on_dask.best_score == local.best_score
    best, local_best = on_dask.best_estimator, local.best_estimator
    np.testing.assert_array_equal(best.predict(X), local_best.predict(X))
    trial_tasks = [size for key, size in task_sizes.items() if key.startswith("nncv-trial-")]
    assert len(trial_tasks) == len(PARAMS)
    assert max(trial_tasks) < X.nbytes / 20  # the objective (and X) was scattered once


def test_nnsearchcv_on_dask_gives_the_results_of_one_process(client, digits, tmp_path):
    X, y = digits[0][:450], digits[1][:450]

    def search(storage):
        return NNSearchCV(
            small_pipeline(),
            SPACE,
            n_trials=3,
            cv=3,
            pruner="none",
            storage=storage,
            study_name=enqueued_study(storage, "s", PARAMS[:3]),
            random_state=0,
        )

    local = search(str(tmp_path / "local.log")).fit(X, y)
    with client.as_current():  # what distributed.get_client() returns: backend="dask"
        on_dask = search(str(tmp_path / "dask.log")).set_params(backend="dask").fit(X, y)
    assert all("nncv_dask_worker" in t.user_attrs for t in on_dask.study_.trials)
    for key in ("trial_number", "mean_test_score", "split0_test_score", "split2_test_score"):
        np.testing.assert_array_equal(on_dask.cv_results_[key], local.cv_results_[key])
    assert on_dask.best_params_ == local.best_params_
    np.testing.assert_array_equal(on_dask.predict(X), local.predict(X))


def test_nested_cross_validation_of_nnsearchcv_on_dask(client, digits):
    X, y = digits[0][:300], digits[1][:300]
    search = NNSearchCV(small_pipeline(max_epochs=3), SPACE, n_trials=2, cv=2, random_state=0)
    local = cross_val_score(search, X, y, cv=2, n_jobs=1)
    with joblib.parallel_config(backend="dask", client=client):
        on_dask = cross_val_score(search, X, y, cv=2, n_jobs=-1)
    np.testing.assert_array_equal(on_dask, local)


def test_cli_tune_and_cv_with_dask(cluster, tmp_path):
    from nncv.cli import app

    runner = CliRunner()
    storage = str(tmp_path / "cli.log")
    args = ["tune", "iris", "--trials", "3", "--cv", "3", "--seed", "0", "-p", "max_epochs=3"]
    args += ["--storage", storage, "--study-name", "cli", "--dask", cluster.scheduler_address]
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    study = optuna.load_study(study_name="cli", storage=make_storage(storage))
    assert [t.state for t in study.trials] == [State.COMPLETE] * 3
    assert all(t.user_attrs[WORKER_ATTR].startswith("tcp://") for t in study.trials)

    cv_args = ["cv", "iris", "--cv", "3", "-p", "max_epochs=3", "--seed", "0"]
    on_dask = runner.invoke(app, [*cv_args, "--dask", cluster.scheduler_address])
    local = runner.invoke(app, cv_args)
    assert on_dask.exit_code == 0, on_dask.output
    scores = [[line.split()[:2] for line in out.output.splitlines()] for out in (on_dask, local)]
    assert scores[0] == scores[1]  # fold and score columns (the times differ)


# ----------------------------------------------------------------- a worker killed


def kill_a_worker_when(client, ready, timeout: float = 60.0) -> dict:
    """In a thread: SIGKILL the worker process ``ready()`` names (an address) once it does."""
    pids = client.run(os.getpid)
    killed: dict = {}

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and "pid" not in killed:
            address = ready()
            if address in pids:
                os.kill(pids[address], signal.SIGKILL)
                killed["address"], killed["pid"] = address, pids[address]
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    killed["thread"] = thread
    return killed


@pytest.mark.slow
def test_cross_validate_survives_a_worker_killed_mid_fold(client, digits):
    X, y = digits
    # long enough (stacked folds train fast: 60 epochs took 0.6 s in one process) for a
    # stack to be seen running for 0.5 s on a machine that is not loaded
    model = small_pipeline(hidden_layer_sizes=32, max_epochs=300)
    local = nncv.cross_validate(model, X, y, cv=4, random_state=0, n_jobs=1)

    busy_since: dict = {}

    def busy_worker():
        for address, keys in client.processing().items():
            if any("fit_fold" in str(key) for key in keys):
                busy_since.setdefault(address, time.monotonic())
                if time.monotonic() - busy_since[address] > 0.5:  # mid-fold, not at its start
                    return address
        return None

    killed = kill_a_worker_when(client, busy_worker)
    result = nncv.cross_validate(model, X, y, cv=4, random_state=0, backend=client, n_jobs=-1)
    killed["thread"].join()
    assert "pid" in killed, "no worker was killed: the test did not test anything"
    assert killed["pid"] not in client.run(os.getpid).values()
    np.testing.assert_array_equal(result.scores["score"], local.scores["score"])
    pd.testing.assert_frame_equal(result.curves, local.curves)  # every fold, every epoch


class KillsItsWorker(LogisticRegression):
    """A real classifier whose first ``kills`` fits SIGKILL the worker process running them.

    One marker file per kill, created atomically in ``marker_dir`` (a disk the workers
    share), so that exactly ``kills`` fits die, whichever worker runs them.
    """

    def __init__(self, marker_dir: str = "", kills: int = 2, max_iter: int = 100) -> None:
        super().__init__(max_iter=max_iter)
        self.marker_dir = marker_dir
        self.kills = kills

    def fit(self, X, y, sample_weight=None):
        for attempt in range(self.kills):
            try:
                os.close(os.open(os.path.join(self.marker_dir, f"kill-{attempt}"),
                                 os.O_CREAT | os.O_EXCL))  # fmt: skip
            except FileExistsError:
                continue
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.mark.slow
def test_a_task_dask_gave_up_on_is_resubmitted_and_the_run_finishes(own_client, digits, tmp_path):
    # One split, so one task: it dies on two workers in turn, which Dask (allowed-failures
    # 1 here) answers with KilledWorker; the scattered X may die with both. nncv submits
    # the task again under a new key, X scattered again, and gets the fold's numbers.
    X, y = digits[0][:400], digits[1][:400]
    cv = ShuffleSplit(n_splits=1, test_size=0.25, random_state=0)
    local = nncv.cross_validate(LogisticRegression(max_iter=100), X, y, cv=cv, n_jobs=1)
    model = KillsItsWorker(str(tmp_path), kills=2)
    result = nncv.cross_validate(model, X, y, cv=cv, backend=own_client)
    assert sorted(marker.name for marker in tmp_path.iterdir()) == ["kill-0", "kill-1"]
    np.testing.assert_array_equal(result.scores["score"], local.scores["score"])


@pytest.mark.slow
def test_a_task_that_keeps_killing_its_workers_is_a_clear_error(own_client, digits, tmp_path):
    X, y = digits[0][:200], digits[1][:200]
    cv = ShuffleSplit(n_splits=1, test_size=0.25, random_state=0)
    model = KillsItsWorker(str(tmp_path), kills=100)
    with pytest.raises(BackendError, match=f"lost the task .* {MAX_RESUBMITS + 1} times"):
        nncv.cross_validate(model, X, y, cv=cv, backend=own_client)
    # Each loss is one death (cancelled: X died with it) or two (KilledWorker after
    # allowed-failures 1); the task ran no more than its resubmissions allow.
    assert MAX_RESUBMITS + 1 <= len(list(tmp_path.iterdir())) <= 2 * (MAX_RESUBMITS + 1)


@pytest.mark.slow
def test_cross_validate_survives_every_worker_killed_at_once(client, digits):
    X, y = digits
    # long enough (stacked folds train fast: 60 epochs took 0.6 s in one process) for a
    # stack to be seen running for 0.5 s on a machine that is not loaded
    model = small_pipeline(hidden_layer_sizes=32, max_epochs=300)
    local = nncv.cross_validate(model, X, y, cv=4, random_state=0, n_jobs=1)
    pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_all_mid_fold() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sum(len(keys) for keys in client.processing().values()) >= 2:
                time.sleep(0.5)  # both folds well under way: X is on both workers
                for pid in pids.values():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=kill_all_mid_fold, daemon=True)
    thread.start()
    # n_jobs=-1: one stack of folds per worker, so both workers hold X and a task
    result = nncv.cross_validate(model, X, y, cv=4, random_state=0, backend=client, n_jobs=-1)
    thread.join()
    assert len(killed) == 2, "the workers were not killed: the test did not test anything"
    np.testing.assert_array_equal(result.scores["score"], local.scores["score"])
    pd.testing.assert_frame_equal(result.curves, local.curves)


@pytest.mark.slow
def test_tune_survives_a_worker_killed_mid_trial(client, digits, tmp_path):
    X, y = digits[0][:900], digits[1][:900]
    # long enough (stacked folds train fast) for a trial to be seen running for 0.5 s
    model = small_pipeline(hidden_layer_sizes=16, max_epochs=200)
    options = {"n_trials": len(PARAMS), "cv": 3, "random_state": 0, "pruner": "none"}
    local_store, dask_store = str(tmp_path / "local.log"), str(tmp_path / "dask.log")
    local = tune(X, y, model, SPACE, storage=local_store, refit=False, **options,
                 study_name=enqueued_study(local_store, "s"))  # fmt: skip
    name = enqueued_study(dask_store, "s")
    watched = make_storage(dask_store)
    running_since: dict = {}

    def worker_mid_trial():
        study = optuna.load_study(study_name=name, storage=watched)
        for trial in study.get_trials(deepcopy=False, states=(State.RUNNING,)):
            if WORKER_ATTR in trial.user_attrs and trial.number > 0:
                running_since.setdefault(trial.number, time.monotonic())
                if time.monotonic() - running_since[trial.number] > 0.5:  # mid-trial
                    return trial.user_attrs[WORKER_ATTR]
        return None

    killed = kill_a_worker_when(client, worker_mid_trial)
    on_dask = tune(X, y, model, SPACE, storage=dask_store, study_name=name, backend=client,
                   refit=False, **options)  # fmt: skip
    killed["thread"].join()
    assert "pid" in killed, "no worker was killed: the test did not test anything"

    trials = by_number(on_dask.study)
    states = [trial.state for trial in trials.values()]
    assert State.RUNNING not in states and State.WAITING not in states
    failed = [trial for trial in trials.values() if trial.state == State.FAIL]
    assert len(failed) == 1, [(t.number, t.state, t.user_attrs) for t in trials.values()]
    assert failed[0].user_attrs["fail_reason"].startswith("worker lost")
    # The lost trial's parameters ran again, and every enqueued trial finished.
    [retry] = [t for t in trials.values() if t.system_attrs.get(RETRY_ATTR) == failed[0].number]
    assert retry.state == State.COMPLETE and retry.params == failed[0].params
    assert states.count(State.COMPLETE) == len(PARAMS)
    for number, trial in by_number(local.study).items():
        if number != failed[0].number:
            assert_same_trial(trials[number], trial)


class KillsItsWorkerOnZero:
    """Kills the worker process that runs it when x is 0 (a configuration that always OOMs)."""

    def __call__(self, trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if x == 0.0:
            time.sleep(0.5)  # let the trial be seen RUNNING, as a real one would
            os.kill(os.getpid(), signal.SIGKILL)
        return x


@pytest.mark.slow
def test_a_trial_that_keeps_killing_its_workers_is_failed_and_the_run_ends(own_client, tmp_path):
    storage = str(tmp_path / "poison.log")
    study = optuna.create_study(storage=make_storage(storage), direction="maximize")
    study.enqueue_trial({"x": 0.0})
    run_trials(
        own_client,
        KillsItsWorkerOnZero(),
        storage_spec=storage,
        study=study,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
        seed=0,
        n_trials=2,
        timeout=None,
    )
    trials = study.get_trials()
    assert {t.state for t in trials} <= {State.COMPLETE, State.FAIL}
    assert [t.state for t in trials].count(State.COMPLETE) == 1  # the other trial
    poisoned = [t for t in trials if t.params.get("x") == 0.0]
    assert len(poisoned) >= 2  # the first attempt and at least its retry
    assert all(t.state == State.FAIL for t in poisoned)
    assert all(t.user_attrs["fail_reason"].startswith("worker lost") for t in poisoned)
