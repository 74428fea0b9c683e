"""Trials as Dask tasks: a search on a Dask cluster, with no ``nncv worker`` processes.

:func:`run_trials` submits one task per trial to a ``dask.distributed`` client. Each task
opens the study's shared storage (a journal file every worker can read, or a database
URL), runs one trial of the study with BLAS held to one thread, and returns. The
objective — and with it X and y — is scattered to every worker once, not sent with every
task. As many trials run at once as the cluster has worker threads (or ``max_in_flight``).

A worker lost mid-trial (killed, out of memory, its machine gone) leaves that trial
RUNNING in the storage. Dask runs the task again on another worker; before its own trial
the task fails its earlier attempt's trial (``fail_reason`` "worker lost …") and enqueues
the same parameters again with the storage's retry callback, as for a trial whose
heartbeat went stale (the retry has system attribute ``failed_trial``, the lost trial's
number), so the run ends with every
requested trial finished and the lost one accounted for as FAIL. The tasks tag their
trials (user attributes ``nncv_dask_run``, ``nncv_dask_task``, ``nncv_dask_worker``), so
a task that never runs again (Dask gave up on it) has its trial failed by the caller
when the run ends.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from nncv._dask import one_blas_thread
from nncv.exceptions import BackendError, SearchError
from nncv.search._components import make_sampler
from nncv.search._run import _optimize
from nncv.search._storage import _retry_callback, make_storage

__all__ = ["DaskTrials", "fail_lost_trials", "run_trials"]

logger = logging.getLogger("nncv.search")

RUN_ATTR = "nncv_dask_run"
TASK_ATTR = "nncv_dask_task"
WORKER_ATTR = "nncv_dask_worker"
#: Times the objective may be scattered again after every worker holding it died.
MAX_PLACEMENTS = 3
#: Optuna's name (``RetryFailedTrialCallback``) for the trial a retry repeats.
RETRY_ATTR = "failed_trial"  # a system attribute


@dataclass(frozen=True)
class DaskTrials:
    """What every trial task needs; sent once per task, the objective scattered apart."""

    storage_spec: Any
    study_name: str
    sampler: Any
    pruner: optuna.pruners.BasePruner
    seed: int
    n_existing: int
    run_id: str
    deadline: float | None
    verbosity: int


def fail_lost_trials(
    study: optuna.Study, run_id: str, task: int | None, reason: str, *, retry: bool = True
) -> list[int]:
    """Fail the RUNNING trials a run's task (any task for None) left; enqueue their params.

    The parameters are enqueued by the storage's retry callback (Optuna's, with system
    attributes ``failed_trial`` and ``retry_history``, the trial's user attributes
    copied, at most ``MAX_RETRY`` times), as for a trial failed by its heartbeat; with
    ``retry=False`` they are not enqueued again.

    Returns the numbers of the trials failed here (a trial that finished meanwhile, or
    that someone else failed first, is left alone).
    """
    storage = study._storage
    lost = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get(RUN_ATTR) != run_id or (task is not None and attrs.get(TASK_ATTR) != task):
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
            if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # it finished, or another process failed it, meanwhile
        lost.append(trial.number)
        if retry:  # as for a dead worker's trial found by its heartbeat (nncv.search._storage)
            _retry_callback()(study, trial)
        logger.warning("trial %d failed: %s%s", trial.number, reason, retry * "; params enqueued")
    return lost


def _worker_address() -> str:
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # not in a worker (a test calling the task directly)
        return f"pid {os.getpid()}"


def run_trial_task(objective: Any, trials: DaskTrials, task: int) -> dict[str, Any]:
    """One Dask task: one trial of the study, BLAS held to one thread while it runs.

    Returns ``{"trial": number or None, "lost": [numbers of trials failed here]}``; no
    trial runs once ``trials.deadline`` has passed.
    """
    optuna.logging.set_verbosity(trials.verbosity)
    study = optuna.load_study(
        study_name=trials.study_name,
        storage=make_storage(trials.storage_spec),
        sampler=make_sampler(trials.sampler, trials.seed, trials.n_existing, task),
        pruner=trials.pruner,
    )
    worker = _worker_address()
    # Running again after a worker was lost: the earlier attempt's trial stays RUNNING.
    lost = fail_lost_trials(study, trials.run_id, task, f"worker lost (Dask task {task} re-run)")
    if _past(trials.deadline):
        return {"trial": None, "lost": lost}
    tags = {RUN_ATTR: trials.run_id, TASK_ATTR: task, WORKER_ATTR: worker}
    numbers: list[int] = []

    def tagged(trial: optuna.Trial) -> float:
        for key, value in tags.items():
            trial.set_user_attr(key, value)
        numbers.append(trial.number)
        return objective(trial)

    try:  # what a local worker runs: heartbeats, a trial failed as dead under it dropped
        one_blas_thread(_optimize, study, tagged, 1, None)
    except Exception as error:
        if not _failed_under_us(error):
            raise
        # Another process failed this trial as a dead worker's meanwhile (and enqueued
        # its parameters again): not this task's trial any more.
        logger.warning("trial %s was failed under its Dask task: %s", numbers, error)
        return {"trial": None, "lost": lost}
    return {"trial": numbers[0] if numbers else None, "lost": lost}


def _failed_under_us(error: Exception) -> bool:
    """Whether Optuna refused to finish a trial because someone else failed it first."""
    if isinstance(error, optuna.exceptions.UpdateFinishedTrialError):
        return True
    return isinstance(error, ValueError) and str(error).startswith("Cannot tell a FAIL trial")


def _shared_storage_spec(client: Any, storage_spec: Any) -> str:
    """The spec each task opens: a database URL, or the journal's absolute path.

    A journal file must be on a disk every worker sees (checked here, before any trial),
    and named absolutely: a worker's working directory is not the caller's.
    """
    text = os.fspath(storage_spec)
    if "://" in text:
        return text
    path = os.path.abspath(text)
    seen = client.run(os.path.exists, path)
    blind = sorted(worker for worker, exists in seen.items() if not exists)
    if blind:
        raise SearchError(
            f"the Dask workers {blind} cannot see the journal file {path}: give storage a "
            "path on a disk every worker shares, or a database URL (postgresql://…)"
        )
    return path


def run_trials(
    client: Any,
    objective: Any,
    *,
    storage_spec: Any,
    study: optuna.Study,
    sampler: Any,
    pruner: optuna.pruners.BasePruner,
    seed: int,
    n_trials: int | None,
    timeout: float | None,
    max_in_flight: int | None = None,
) -> None:
    """Run ``n_trials`` trials (or until ``timeout``) of ``study`` as tasks on ``client``.

    Parameters
    ----------
    client : distributed.Client
    objective : callable
        The trial objective; scattered to every worker once.
    storage_spec : path ending in ".log" or database URL
        What each task opens: the storage of ``study``.
    study : optuna.Study
    sampler, pruner, seed :
        As the local workers get them; each task's sampler is seeded by its task number.
    n_trials : int or None
        Trials to finish in this call (a lost trial and its retry count as one).
    timeout : float or None
        Submit no trial after this many seconds; tasks that start later return at once.
    max_in_flight : int, optional
        Trials running at once; default the cluster's worker threads.

    Raises
    ------
    SearchError
        When the storage is not one every worker can open.
    """
    from distributed import as_completed

    if n_trials is None and timeout is None:
        raise SearchError("a search on a Dask cluster needs n_trials or a timeout")
    if storage_spec is None or isinstance(storage_spec, optuna.storages.BaseStorage):
        raise SearchError(
            "trials on a Dask cluster need storage as a .log path or a database URL, so that "
            "every worker can open it"
        )
    storage_spec = _shared_storage_spec(client, storage_spec)
    slots = max_in_flight or sum(client.nthreads().values())
    if slots < 1:
        raise BackendError("the Dask cluster has no workers")
    trials = DaskTrials(
        storage_spec=storage_spec,
        study_name=study.study_name,
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        n_existing=len(study.get_trials(deepcopy=False)),
        run_id=uuid.uuid4().hex,
        deadline=None if timeout is None else time.time() + timeout,
        verbosity=optuna.logging.get_verbosity(),
    )
    [objective_future] = client.scatter([objective], broadcast=True, hash=False)
    placements = 0
    remaining = n_trials  # trials still to finish; None: until the deadline
    next_task = 0
    running = as_completed(loop=client.loop)

    def fill() -> None:
        nonlocal next_task
        while running.count() < slots and not _past(trials.deadline):
            if remaining is not None and running.count() >= remaining:
                return
            running.add(
                client.submit(
                    run_trial_task,
                    objective_future,
                    trials,
                    next_task,
                    key=f"nncv-trial-{trials.run_id}-{next_task}",
                    pure=False,
                )
            )
            next_task += 1

    try:
        while True:
            fill()
            for future in running:
                try:
                    outcome = future.result()
                except Exception as error:
                    task = int(str(future.key).rsplit("-", 1)[1])
                    if _is_lost_worker(error):
                        # Dask gave up on this task (its workers kept dying): fail its trial
                        # for good rather than retry parameters that may be what kills the
                        # workers; it uses up its trial, so such trials cannot go on forever.
                        reason = f"worker lost: {error}"
                        fail_lost_trials(study, trials.run_id, task, reason, retry=False)
                        outcome = {"trial": "failed with its workers", "lost": []}
                    elif _is_cancelled(error) and objective_future.status != "finished":
                        # Every worker holding the objective died: send it again, and run
                        # the task's trial again in a new task.
                        placements += 1
                        if placements > MAX_PLACEMENTS:
                            raise BackendError(
                                f"the Dask workers kept dying: the objective was lost "
                                f"{placements} times ({error})"
                            ) from error
                        client.wait_for_workers(1)
                        [objective_future] = client.scatter([objective], broadcast=True, hash=False)
                        reason = "worker lost (with every copy of the objective)"
                        fail_lost_trials(study, trials.run_id, task, reason)
                        outcome = {"trial": None, "lost": []}
                    elif _is_cancelled(error):
                        fail_lost_trials(study, trials.run_id, task, "worker lost")
                        outcome = {"trial": None, "lost": []}
                    else:
                        raise
                if remaining is not None:
                    remaining -= outcome["trial"] is not None
                fill()
            # A lost trial's retry queued behind other waiting trials runs in this call too.
            retries = _waiting_retries(study, trials.run_id)
            if not retries or _past(trials.deadline):
                break
            remaining = retries
    except BaseException:
        client.cancel(list(running.futures))
        raise
    # Every task has ended: a trial of this run still RUNNING has no task left to finish it.
    fail_lost_trials(study, trials.run_id, None, "its Dask task ended without finishing it")


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.time() >= deadline


def _waiting_retries(study: optuna.Study, run_id: str) -> int:
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return sum(trial.user_attrs.get(RUN_ATTR) == run_id for trial in waiting)


def _is_cancelled(error: BaseException) -> bool:
    """A task cancelled by Dask, e.g. because data it needed died with every holder."""
    from distributed.client import FutureCancelledError

    return isinstance(error, FutureCancelledError)


def _is_lost_worker(error: BaseException) -> bool:
    """Dask gave up on a task whose workers kept dying (``KilledWorker``)."""
    from distributed.scheduler import KilledWorker

    return isinstance(error, KilledWorker)
