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
requested trial finished and the lost one accounted for as FAIL. A task cancelled because
the objective died with every worker holding it is submitted again under a new key (the
objective scattered again), which does the same, up to ``MAX_RESUBMITS`` times. The tasks
tag their trials (user attributes ``nncv_dask_run``, ``nncv_dask_task``,
``nncv_dask_worker``), so a task that never runs again (Dask gave up on it:
``KilledWorker``) has its trial failed for good by the caller, and a trial lost once more
than its retries allow is failed for good by the task that finds it: a configuration
that kills every worker it runs on ends as FAIL and counts as one of the trials.
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

from nncv._dask import (
    MAX_RESUBMITS,
    ScatteredData,
    is_worker_loss,
    one_blas_thread,
    resubmit_key,
)
from nncv.exceptions import BackendError, SearchError
from nncv.search._components import make_sampler
from nncv.search._run import _optimize
from nncv.search._storage import fail_lost_trial, make_storage

__all__ = ["DaskTrials", "fail_lost_trials", "run_trials"]

logger = logging.getLogger("nncv.search")

RUN_ATTR = "nncv_dask_run"
TASK_ATTR = "nncv_dask_task"
WORKER_ATTR = "nncv_dask_worker"
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
) -> dict[int, bool]:
    """Fail the RUNNING trials a run's task (any task for None) left; enqueue their params.

    The parameters are enqueued by the storage's retry callback (Optuna's, with system
    attributes ``failed_trial`` and ``retry_history``, the trial's user attributes
    copied, at most ``MAX_RETRY`` times), as for a trial failed by its heartbeat; with
    ``retry=False`` they are not enqueued again.

    Returns ``{number: whether its parameters were enqueued again}`` for the trials
    failed here (a trial that finished meanwhile, or that someone else failed first, is
    left alone); a trial already retried ``MAX_RETRY`` times is not enqueued again.
    """
    lost: dict[int, bool] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get(RUN_ATTR) != run_id or (task is not None and attrs.get(TASK_ATTR) != task):
            continue
        retried = fail_lost_trial(study, trial, reason, retry=retry)
        if retried is None:
            continue  # it finished, or another process failed it, meanwhile
        lost[trial.number] = retried
        logger.warning("trial %d failed: %s%s", trial.number, reason, retried * "; params enqueued")
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
    trial runs once ``trials.deadline`` has passed. Run again after its worker died, the
    task first fails the trial it left RUNNING (enqueueing its parameters again); when
    that trial's retries are used up, it is this task's trial — failed for good — and no
    other trial runs, so that a configuration that kills every worker ends as FAIL. Run
    again after its trial finished (Dask recomputes a result that died with its worker
    before the caller fetched it), it returns that trial and runs none.
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
    failed = fail_lost_trials(study, trials.run_id, task, f"worker lost (Dask task {task} re-run)")
    lost = list(failed)
    used_up = [number for number, retried in failed.items() if not retried]
    if used_up:
        return {"trial": used_up[0], "lost": lost}
    done = _finished_trial(study, trials.run_id, task)
    if done is not None:  # its result died with a worker before the caller had it: Dask
        return {"trial": done, "lost": lost}  # runs the task again; its trial is done
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


def _finished_trial(study: optuna.Study, run_id: str, task: int) -> int | None:
    """The trial a run's task finished already (not one failed as lost), else None."""
    for trial in study.get_trials(deepcopy=False, states=_FINISHED):
        attrs = trial.user_attrs
        if attrs.get(RUN_ATTR) != run_id or attrs.get(TASK_ATTR) != task:
            continue
        if not str(attrs.get("fail_reason", "")).startswith("worker lost"):
            return trial.number
    return None


_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


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
    shared = ScatteredData(client, {"objective": objective})
    remaining = n_trials  # trials still to finish; None: until the deadline
    next_task = 0
    resubmits: dict[int, int] = {}  # task -> times submitted again after a loss
    tasks: dict[str, int] = {}  # Dask key -> task
    running = as_completed(loop=client.loop)

    def submit(task: int) -> None:
        key = resubmit_key(f"nncv-trial-{trials.run_id}-{task}", resubmits.get(task, 0))
        tasks[key] = task
        objective_future = shared.futures["objective"]
        running.add(
            client.submit(run_trial_task, objective_future, trials, task, key=key, pure=False)
        )

    def fill() -> None:
        nonlocal next_task
        while running.count() < slots and not _past(trials.deadline):
            if remaining is not None and running.count() >= remaining:
                return
            submit(next_task)
            next_task += 1

    try:
        while True:
            fill()
            for future in running:
                task = tasks.pop(str(future.key))
                try:
                    outcome = future.result()
                except Exception as error:
                    if not is_worker_loss(error):
                        raise
                    outcome = _after_a_loss(study, trials.run_id, task, error, resubmits)
                    if outcome is None:  # run the task again, under a new key
                        shared.restore()  # the objective, if it died with every holder
                        submit(task)
                        continue
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


def _after_a_loss(
    study: optuna.Study, run_id: str, task: int, error: BaseException, resubmits: dict[int, int]
) -> dict[str, Any] | None:
    """What a trial task lost with its workers comes to: None to submit it again.

    ``KilledWorker`` (Dask gave up after its workers kept dying): its trial is failed for
    good rather than retry parameters that may be what kills the workers; it uses up its
    trial, so such trials cannot go on forever. Cancelled (the objective died with every
    worker holding it): submitted again, up to ``MAX_RESUBMITS`` times; the new task fails
    the trial left RUNNING and enqueues its parameters again, as Dask's own re-run does.
    """
    from distributed.scheduler import KilledWorker

    if not isinstance(error, KilledWorker):
        resubmits[task] = resubmits.get(task, 0) + 1
        if resubmits[task] <= MAX_RESUBMITS:
            return None
    reason = f"worker lost: {error}"
    fail_lost_trials(study, run_id, task, reason, retry=False)
    return {"trial": "failed with its workers", "lost": []}


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.time() >= deadline


def _waiting_retries(study: optuna.Study, run_id: str) -> int:
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return sum(trial.user_attrs.get(RUN_ATTR) == run_id for trial in waiting)
