"""The search engine shared by :func:`nncv.tune` and :class:`nncv.NNSearchCV`.

Everything that can be wrong with a request — the space, the scorers, the fit params, the
storage, a study that belongs to other data — is checked in :func:`prepare`, before any
trial. :func:`run` then optimises in this process (``n_workers=1``) or in that many loky
worker processes sharing one storage, each with BLAS limited to one thread.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from sklearn import config_context
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_consistent_length

from nncv._blas import one_blas_thread
from nncv._dask import BackendSpec, dask_client, wants_dask
from nncv._validation import check_training_data
from nncv.cv.crossval import check_data, check_stack_folds
from nncv.cv.scoring import build_scorers
from nncv.cv.splits import derive_seed, make_splits
from nncv.exceptions import BackendError, CVSetupError, DivergedError, SearchError
from nncv.pipeline import default_estimator
from nncv.search._arguments import check_sample_weight_values, check_search_arguments
from nncv.search._components import (
    StorageSpec,
    make_pruner,
    make_sampler,
    make_storage,
)
from nncv.search._estimator import (
    hidden_depth,
    network_prefix,
    resolve_space_names,
    route_fit_params,
)
from nncv.search._objective import FoldObjective, seeding_number
from nncv.search._result import TuneResult, best_complete_trial
from nncv.search._settings import SearchSettings
from nncv.search._space_check import check_space_bounds
from nncv.search._storage import fail_lost_trial, retry_races, stop_heartbeat_threads
from nncv.search._study import (
    FRESH_STUDY_NAME,
    StudySetup,
    fingerprint_data,
    open_study,
    split_seed,
)
from nncv.search.space import SearchSpace

__all__ = ["Search", "choose_metric", "prepare"]

logger = logging.getLogger("nncv.search")


def choose_metric(scorers: dict[str, Any], refit: Any) -> str:
    """The metric the study maximises and refits on (GridSearchCV's ``refit`` conventions).

    With several scorers ``refit`` names it (``refit=False``: the first one).

    Examples
    --------
    >>> choose_metric({"accuracy": None, "f1_macro": None}, "f1_macro")
    'f1_macro'
    """
    if isinstance(refit, str):
        if refit not in scorers:
            raise SearchError(f"refit={refit!r} is not one of the scorers {list(scorers)}")
        return refit
    if len(scorers) > 1 and refit is True:
        raise SearchError(
            f"with several scorers {list(scorers)}, refit must name the one to maximise and "
            "refit on, e.g. refit='accuracy'"
        )
    return next(iter(scorers))


def _as_space(space: Any) -> SearchSpace:
    if space is None:
        return SearchSpace.default()
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, str | os.PathLike):
        return SearchSpace.from_toml(space)
    if isinstance(space, dict):
        return SearchSpace(space)
    raise SearchError(
        f"space must be a SearchSpace, a dict of ranges or a TOML path, got {type(space).__name__}"
    )


def worker_name() -> str:
    """``host:pid`` of this process, recorded on each trial it runs (``nncv_worker``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _signed(objective: FoldObjective, started: list[int]) -> Any:
    """The objective, recording first which worker runs the trial (a trial system attr)."""
    name = worker_name()

    def run(trial: optuna.Trial) -> Any:
        started[0] += 1
        trial.storage.set_trial_system_attr(trial._trial_id, "nncv_worker", name)
        return objective(trial)

    return run


def _declared_dead(error: Exception) -> bool:
    """Whether ``error`` says this worker's trial was failed meanwhile as a dead worker's."""
    if isinstance(error, optuna.exceptions.UpdateFinishedTrialError):
        return True
    return isinstance(error, ValueError) and str(error).startswith("Cannot tell a FAIL trial")


def end_trials_left_running(study: optuna.Study) -> None:
    """When this process's trials are over: stop any heartbeat thread still beating and fail
    (without enqueueing them again) the trials it left RUNNING.

    A Ctrl-C that lands in Optuna's own bookkeeping around a trial - after it started the
    trial's heartbeat thread, before it recorded the trial's end - leaves that trial
    RUNNING and its (non-daemon) heartbeat thread beating, which keeps the process from
    exiting (see :func:`~nncv.search._storage.stop_heartbeat_threads`). Such a trial ends
    FAIL, as Optuna ends a trial interrupted inside its objective. Only for a process that
    runs one trial at a time.
    """
    beating = set(stop_heartbeat_threads())
    me = worker_name()
    try:
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    except Exception:  # the storage is gone (e.g. a database down): nothing more to do here
        return
    for trial in running:
        if trial._trial_id in beating or trial.system_attrs.get("nncv_worker") == me:
            fail_lost_trial(
                study, trial, "interrupted before Optuna recorded the trial's end", retry=False
            )


def _optimize(
    study: optuna.Study, objective: FoldObjective, n_trials: int | None, timeout: float | None
) -> None:
    """``study.optimize`` for ``n_trials`` trials of this process, or until ``timeout``.

    A trial whose heartbeat came so late that another worker failed it as dead (and
    enqueued its parameters again) is dropped, and this worker goes on with its share.
    """
    started = [0]
    deadline = None if timeout is None else time.monotonic() + timeout
    with one_blas_thread(user_api=None), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Optuna fails the trials of dead workers (heartbeat) before each trial starts.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        while True:
            left = None if n_trials is None else n_trials - started[0]
            seconds = None if deadline is None else deadline - time.monotonic()
            if (left is not None and left <= 0) or (seconds is not None and seconds <= 0):
                return
            try:
                study.optimize(
                    _signed(objective, started),
                    n_trials=left,
                    timeout=seconds,
                    catch=(DivergedError,),
                )
                return
            except Exception as error:
                if not _declared_dead(error):
                    raise
                logger.warning(
                    "a trial of this worker was failed as dead by another worker (its "
                    "heartbeat came late; its parameters are tried again): %s",
                    error,
                )


def _worker(
    storage_spec: Any,
    study_name: str,
    objective: FoldObjective,
    sampler: Any,
    pruner: optuna.pruners.BasePruner,
    seed: int,
    n_existing: int,
    worker: int,
    n_trials: int | None,
    timeout: float | None,
    verbosity: int,
) -> int:
    """One worker process: open the shared storage and run its share of the trials."""
    optuna.logging.set_verbosity(verbosity)  # as quiet or loud as the parent
    storage = make_storage(storage_spec)
    study = retry_races(
        lambda: optuna.load_study(
            study_name=study_name,
            storage=storage,
            sampler=make_sampler(sampler, seed, n_existing, worker),
            pruner=pruner,
        ),
        also=(KeyError,),
    )
    try:
        _optimize(study, objective, n_trials, timeout)
    finally:
        end_trials_left_running(study)  # this process runs one trial at a time
    return worker


def _shares(n_trials: int | None, n_workers: int) -> list[int | None]:
    if n_trials is None:
        return [None] * n_workers
    shares = [n_trials // n_workers + (w < n_trials % n_workers) for w in range(n_workers)]
    return [s for s in shares if s > 0]


@dataclass
class Search:
    """A checked request, ready to run."""

    estimator: Any
    space: SearchSpace
    X: Any
    y: Any
    study: optuna.Study
    setup: StudySetup
    objective: FoldObjective
    metric: str
    storage_spec: StorageSpec
    storage: optuna.storages.BaseStorage
    sampler: Any
    pruner: optuna.pruners.BasePruner
    n_workers: int
    temp_dir: str | None
    backend: BackendSpec = None
    on_dask: bool = False
    ensemble_size: int = 5

    def run(self, n_trials: int | None, timeout: float | None) -> bool:
        """Optimise; return True when interrupted by Ctrl-C (finished trials are kept)."""
        n_existing = len(self.study.get_trials(deepcopy=False))
        in_process = not self.on_dask and self.n_workers == 1
        try:
            if self.on_dask:
                self._run_on_dask(n_trials, timeout)
            elif in_process:
                self.study.sampler = make_sampler(self.sampler, self.setup.seed, n_existing, 0)
                _optimize(self.study, self.objective, n_trials, timeout)
            else:
                self._run_workers(n_trials, timeout, n_existing)
        except KeyboardInterrupt:
            return True
        finally:
            if in_process:
                end_trials_left_running(self.study)
            self._collect()
        return False

    def _run_on_dask(self, n_trials: int | None, timeout: float | None) -> None:
        from nncv.search._dask import run_trials

        with dask_client(self.backend) as client:
            run_trials(
                client,
                self.objective,
                storage_spec=self.storage_spec,
                study=self.study,
                sampler=self.sampler,
                pruner=self.pruner,
                seed=self.setup.seed,
                n_trials=n_trials,
                timeout=timeout,
                max_in_flight=self.n_workers if self.n_workers > 1 else None,
            )

    def _run_workers(self, n_trials: int | None, timeout: float | None, n_existing: int) -> None:
        """Run the trials in ``n_workers`` loky processes on the shared storage.

        A worker process that dies (SIGKILL, out of memory) breaks the whole pool: the
        trials the dead processes left RUNNING are failed (their parameters enqueued again,
        as for a dead ``nncv worker``), and the trials still to run go to a fresh pool, at
        most :data:`MAX_POOL_RESTARTS` times.
        """
        from joblib import Parallel, delayed
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        deadline = None if timeout is None else time.monotonic() + timeout
        for restart in range(MAX_POOL_RESTARTS + 1):
            left = None if n_trials is None else n_trials - _finished_since(self.study, n_existing)
            seconds = None if deadline is None else deadline - time.monotonic()
            if (left is not None and left <= 0) or (seconds is not None and seconds <= 0):
                return
            shares = _shares(left, self.n_workers)
            try:
                Parallel(n_jobs=len(shares), backend="loky")(
                    delayed(_worker)(
                        self.storage_spec,
                        self.study.study_name,
                        self.objective,
                        self.sampler,
                        self.pruner,
                        self.setup.seed,
                        n_existing + restart * self.n_workers,
                        worker,
                        share,
                        seconds,
                        optuna.logging.get_verbosity(),
                    )
                    for worker, share in enumerate(shares)
                )
                return
            except TerminatedWorkerError as error:
                failed = _fail_trials_of_dead_processes(self.study)
                logger.warning(
                    "a worker process died (%s); trials %s failed, the rest go to fresh workers",
                    str(error).splitlines()[0],
                    failed,
                )
        raise BackendError(
            f"worker processes died {MAX_POOL_RESTARTS + 1} times in one run; "
            "the study keeps every trial that finished"
        )

    def _collect(self) -> None:
        """Move a temporary journal (in-memory study run by workers) back into memory."""
        if self.temp_dir is None:
            return
        memory = optuna.storages.InMemoryStorage()
        optuna.copy_study(
            from_study_name=self.study.study_name,
            from_storage=self.storage,
            to_storage=memory,
        )
        self.study = optuna.load_study(
            study_name=self.study.study_name,
            storage=memory,
            sampler=self.study.sampler,
            pruner=self.pruner,
        )
        self.storage = memory
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.temp_dir = None

    def result(self, refit: bool | str, interrupted: bool = False) -> TuneResult:
        """Summarise the study; refit the best configuration on all the data if asked.

        ``refit="ensemble"`` keeps the best trial's fold models instead, as a
        :class:`~nncv.FoldEnsemble` (:meth:`fold_ensemble`); ``refit="seed_ensemble"``
        refits ``ensemble_size`` members on all the data, as a :class:`~nncv.SeedEnsemble`
        (:meth:`seed_ensemble`).
        """
        best = best_complete_trial(self.study)
        trial = optuna.trial.FixedTrial(best.params)
        space_params = self.space.suggest(trial, self.objective.hidden_layers)
        # The names set_params takes on the estimator tuned (``net__learning_rate`` in a
        # Pipeline), as GridSearchCV's best_params_; the space's own are the trial's.
        best_params = {self.objective.names[k]: v for k, v in space_params.items()}
        fold_scores = {
            k: [np.nan if v is None else v for v in values]
            for k, values in best.user_attrs.get("nncv_fold_scores", {}).items()
        }
        scores = np.asarray(fold_scores.get(self.metric, [best.value]), dtype=float)
        result = TuneResult(
            study=self.study,
            space=self.space,
            metric=self.metric,
            metrics=list(self.setup.metrics),
            best_params=best_params,
            parameter_names=dict(self.objective.names),
            best_score=float(best.value),
            best_score_std=float(np.std(scores)),
            best_trial=best,
            fold_scores=fold_scores,
            interrupted=interrupted,
        )
        if isinstance(refit, str) and refit not in REFIT_ENSEMBLES:
            raise SearchError(f"unknown refit kind {refit!r}")
        if refit == "ensemble" and not interrupted:
            result.best_estimator = self.fold_ensemble(best, best_params)
        elif refit == "seed_ensemble" and not interrupted:
            result.best_estimator, result.refit_epochs = self.seed_ensemble(best, best_params)
        elif refit and not interrupted:
            result.best_estimator, result.refit_epochs = self.refit(best, best_params)
        return result

    def fold_ensemble(self, best: optuna.trial.FrozenTrial, best_params: dict[str, Any]) -> Any:
        """The best trial's fold models as one :class:`~nncv.FoldEnsemble`.

        They are re-created by training the trial's folds again with the seeds it had
        (``derive_seed(study_seed, trial, fold)``) on the study's stored splits: the same
        models the trial trained, from any worker or after a resume.
        """
        from nncv.ensemble import FoldEnsemble

        group = self.objective._group(seeding_number(best), dict(best_params))
        with one_blas_thread(user_api=None), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            group.drain()
        return FoldEnsemble.from_fitted([fold.estimator for fold in group.folds])

    def seed_ensemble(
        self, best: optuna.trial.FrozenTrial, best_params: dict[str, Any]
    ) -> tuple[Any, Any]:
        """The best configuration refit on all the data ``ensemble_size`` times, as one
        :class:`~nncv.SeedEnsemble` trained as one stack (when the estimator allows it).

        Member 0 has the seed :meth:`refit` uses, so it is the model ``refit=True`` gives;
        the others' seeds are derived from it (:func:`nncv.ensemble.member_seeds`). Every
        member trains for the folds' peak epoch count, as the refit does.
        """
        from nncv.ensemble import SeedEnsemble

        estimator, refit_epochs, fit_params = self._refit_setup(best, best_params)
        prefix, network = network_prefix(estimator)
        ensemble = SeedEnsemble.from_estimator(
            estimator, self.ensemble_size, random_state=network.random_state
        )
        _fit_as_in_the_trials(ensemble, self.X, self.y, fit_params)
        return ensemble, refit_epochs

    def refit(self, best: optuna.trial.FrozenTrial, best_params: dict[str, Any]) -> tuple[Any, Any]:
        """Fit a clone on all the data with the best parameters (and the folds' peak epoch).

        ``best_params`` are ``set_params`` names of the estimator (``net__learning_rate``).
        """
        estimator, refit_epochs, fit_params = self._refit_setup(best, best_params)
        _fit_as_in_the_trials(estimator, self.X, self.y, fit_params)
        return estimator, refit_epochs

    def _refit_setup(
        self, best: optuna.trial.FrozenTrial, best_params: dict[str, Any]
    ) -> tuple[Any, Any, dict[str, Any]]:
        """The unfitted refit estimator (best params, its seed, the folds' peak epoch), that
        epoch count (or None) and the fit parameters for all the data."""
        estimator = clone(self.estimator)
        prefix, network = network_prefix(estimator)
        params = dict(best_params)
        seed = derive_seed(self.setup.seed, seeding_number(best), len(self.setup.splits))
        params[f"{prefix}random_state"] = seed
        refit_epochs = None
        if network.get_params().get("early_stopping"):
            refit_epochs = best.user_attrs.get("nncv_peak_epoch")
            if refit_epochs:
                params[f"{prefix}early_stopping"] = False
                params[f"{prefix}max_epochs"] = int(refit_epochs)
        estimator.set_params(**params)
        fit_params = {
            (f"{prefix}{key}" if prefix else key): value
            for key, value in self.objective.network_fit_params.items()
        }
        fit_params.update(self.objective.preprocessing_fit_params)
        return estimator, refit_epochs, fit_params


def prepare(
    X: Any,
    y: Any,
    settings: SearchSettings,
    *,
    estimator: Any = None,
    groups: Any = None,
    refit_metric: Any = False,
    fit_params: dict[str, Any] | None = None,
) -> Search:
    """Check the whole request and open (or continue) the study; no trial runs here."""
    space, cv, scoring, task = settings.space, settings.cv, settings.scoring, settings.task
    pruner, sampler, storage = settings.pruner, settings.sampler, settings.storage
    study_name, n_workers = settings.study_name, settings.n_workers
    random_state, backend = settings.random_state, settings.backend
    check_ensemble_size(settings.ensemble_size)
    check_stack_folds(settings.stack_folds, SearchError)
    check_search_arguments(
        n_workers=n_workers,
        random_state=random_state,
        study_name=study_name,
        cv=cv,
        sampler=sampler,
    )
    if y is None:
        raise SearchError("y is required: a search scores predictions against it")
    fit_params = dict(fit_params or {})
    if estimator is None:
        try:
            estimator = default_estimator(y, task, X=X)
        except ValueError as error:
            raise SearchError(str(error)) from error
    check_training_data(X, estimator, SearchError)  # ragged, text, overflowing values
    X, y, groups = check_data(X, y, groups)
    try:
        per_sample = [v for v in fit_params.values() if hasattr(v, "shape") or isinstance(v, list)]
        check_consistent_length(X, y, *per_sample)
    except ValueError as error:
        raise CVSetupError(f"inconsistent inputs: {error}") from error
    space = _as_space(space)
    names = resolve_space_names(estimator, space)
    check_space_bounds(estimator, space, names, hidden_depth(estimator))
    scorers = build_scorers(estimator, scoring)
    metric = choose_metric(scorers, refit_metric)
    metrics = [metric] + [name for name in scorers if name != metric]
    network_params, preprocessing_params = route_fit_params(estimator, fit_params)
    sample_weight = network_params.get("sample_weight")
    check_sample_weight_values(sample_weight)
    _, network = network_prefix(estimator)
    max_epochs = int(network.get_params().get("max_epochs", 100))
    pruner_obj = make_pruner(pruner, max_epochs)

    on_dask = wants_dask(backend)  # trials as Dask tasks, sharing the storage as workers do
    shared = n_workers > 1 or on_dask
    temp_dir = None
    storage_spec = storage
    if shared and storage is None:
        temp_dir = tempfile.mkdtemp(prefix="nncv-study-")
        storage_spec = os.path.join(temp_dir, "study.log")
    elif shared and isinstance(storage, optuna.storages.BaseStorage):
        raise SearchError(
            "with n_workers > 1 or a Dask backend give storage as a .log path or a database "
            "URL, so that each worker process can open it"
        )
    storage_obj = make_storage(storage_spec)
    if storage is None and study_name is None:
        # A fresh storage holds only this study, so a fixed name still makes a fresh study,
        # and the pruners that hash the name (Hyperband's brackets) prune the same trials
        # on every run with this random_state, as Optuna advises.
        study_name = FRESH_STUDY_NAME
    if shared and isinstance(storage_obj, optuna.storages.InMemoryStorage):
        raise SearchError("n_workers > 1 needs a storage the worker processes can share")

    n_samples = len(y)
    requested = int(cv) if isinstance(cv, int | np.integer) else _n_splits(cv, X, y, groups)
    try:
        study, setup = open_study(
            storage=storage_obj,
            study_name=study_name,
            sampler=None,
            pruner=pruner_obj,
            space=space,
            data_sha256=fingerprint_data(X, y, sample_weight),
            metrics=metrics,
            random_state=None if random_state is None else int(random_state),
            make_splits_for_seed=lambda seed: make_splits(
                cv,
                X,
                y,
                estimator=estimator,
                groups=groups,
                shuffle_seed=split_seed(seed),
                compact=False,
            ),
            n_samples=n_samples,
            requested_folds=requested,
        )
    except Exception:
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    objective = FoldObjective(
        estimator=estimator,
        space=space,
        names=names,
        hidden_layers=hidden_depth(estimator),
        X=X,
        y=y,
        splits=setup.splits,
        study_seed=setup.seed,
        scoring=scoring,
        metrics=metrics,
        metric=metric,
        network_fit_params=network_params,
        preprocessing_fit_params=preprocessing_params,
        stack_folds=bool(settings.stack_folds),
    )
    return Search(
        estimator=estimator,
        space=space,
        X=X,
        y=y,
        study=study,
        setup=setup,
        objective=objective,
        metric=metric,
        storage_spec=storage_spec,
        storage=storage_obj,
        sampler=sampler,
        pruner=pruner_obj,
        n_workers=int(n_workers),
        temp_dir=temp_dir,
        backend=backend,
        on_dask=on_dask,
        ensemble_size=settings.ensemble_size,
    )


#: The ``refit`` values that keep an ensemble as the final model.
REFIT_ENSEMBLES = ("ensemble", "seed_ensemble")


def check_ensemble_size(ensemble_size: Any) -> None:
    """``ensemble_size`` (members of ``refit="seed_ensemble"``) is an int of at least 1."""
    if (
        isinstance(ensemble_size, bool)
        or not isinstance(ensemble_size, int | np.integer)
        or ensemble_size < 1
    ):
        raise SearchError(f"ensemble_size must be an int of at least 1, got {ensemble_size!r}")


def _n_splits(cv: Any, X: Any, y: Any, groups: Any) -> int | None:
    if hasattr(cv, "get_n_splits"):
        try:
            return int(cv.get_n_splits(X, y, groups))
        except (TypeError, ValueError):
            return None
    return None


def _fit_as_in_the_trials(model: Any, X: Any, y: Any, fit_params: dict[str, Any]) -> None:
    """``model.fit(X, y, **fit_params)`` on one BLAS thread, as in the trials, so a final
    model gives the same numbers on any machine load or worker count (float32 sums change
    with the thread count); without metadata routing (the names are ``<step>__<param>``
    already) and without convergence warnings."""
    with (
        one_blas_thread(user_api=None),
        warnings.catch_warnings(),
        config_context(enable_metadata_routing=False),
    ):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y, **fit_params)


#: Times :meth:`Search._run_workers` starts a fresh pool after a worker process died.
MAX_POOL_RESTARTS = 3
#: Seconds to wait for a broken pool's processes to be gone before failing their trials.
DEAD_PROCESS_WAIT_S = 10.0


def _finished_since(study: optuna.Study, n_existing: int) -> int:
    """Trials numbered from ``n_existing`` on that finished (complete, pruned or failed)."""
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(t.number >= n_existing for t in study.get_trials(deepcopy=False, states=finished))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a process of another user
        return True
    return True


def _fail_trials_of_dead_processes(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials signed by a process of this host that no longer exists.

    Their parameters are enqueued again by the storage's retry callback, as for a trial
    of a dead ``nncv worker`` found by its heartbeat. A broken loky pool takes a moment to
    end its other processes: wait up to :data:`DEAD_PROCESS_WAIT_S` for them.
    """
    host = socket.gethostname()
    mine = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        signed = str(trial.system_attrs.get("nncv_worker", ""))
        name, _, pid = signed.rpartition(":")
        if name == host and pid.isdigit() and int(pid) != os.getpid():
            mine[trial.number] = (trial, int(pid))
    deadline = time.monotonic() + DEAD_PROCESS_WAIT_S
    while any(_process_alive(pid) for _, pid in mine.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    failed = []
    for number, (trial, pid) in sorted(mine.items()):
        if _process_alive(pid):
            continue  # still running its trial: it will finish it
        if fail_lost_trial(study, trial, f"its worker process (pid {pid}) died") is not None:
            failed.append(number)
    return failed
