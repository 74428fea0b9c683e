"""The search engine shared by :func:`nncv.tune` and :class:`nncv.NNSearchCV`.

Everything that can be wrong with a request — the space, the scorers, the fit params, the
storage, a study that belongs to other data — is checked in :func:`prepare`, before any
trial. :func:`run` then optimises in this process (``n_workers=1``) or in that many loky
worker processes sharing one storage, each with BLAS limited to one thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_consistent_length
from threadpoolctl import threadpool_limits

from nncv._dask import BackendSpec, dask_client, wants_dask
from nncv._validation import check_training_data
from nncv.exceptions import DivergedError, SearchError
from nncv.search._arguments import check_sample_weight_values, check_search_arguments
from nncv.search._estimator import (
    default_estimator,
    hidden_depth,
    network_prefix,
    resolve_space_names,
    route_fit_params,
)
from nncv.search._objective import FoldObjective
from nncv.search._result import TuneResult, best_complete_trial
from nncv.search._scoring import make_scorers
from nncv.search._space_check import check_space_bounds
from nncv.search._storage import StorageSpec, make_storage
from nncv.search._study import StudySetup, fingerprint_data, fold_seed, make_splits, open_study
from nncv.search._study import sampler_seed as derive_sampler_seed
from nncv.search.space import SearchSpace

__all__ = ["Search", "make_pruner", "prepare"]

#: Trials the median pruner lets finish before it prunes, and epochs it always lets run.
MEDIAN_STARTUP_TRIALS = 5
MEDIAN_WARMUP_EPOCHS = 3


def make_pruner(pruner: Any, max_epochs: int) -> optuna.pruners.BasePruner:
    """``"median"``, ``"hyperband"``, ``"successive_halving"``, ``"none"``/None, or a pruner."""
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner is None or pruner == "none":
        return optuna.pruners.NopPruner()
    if pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=MEDIAN_WARMUP_EPOCHS
        )
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs)
    if pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    raise SearchError(
        f"unknown pruner {pruner!r}; use 'median', 'hyperband', 'successive_halving', "
        "'none' or an optuna pruner"
    )


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


def _make_sampler(
    sampler: optuna.samplers.BaseSampler | None, seed: int, n_existing: int, worker: int
) -> optuna.samplers.BaseSampler:
    if sampler is not None:
        if worker:
            sampler.reseed_rng()  # copies in several workers must not propose the same points
        return sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=derive_sampler_seed(seed, n_existing, worker), multivariate=True, group=True
        )


def _optimize(
    study: optuna.Study, objective: FoldObjective, n_trials: int | None, timeout: float | None
) -> None:
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(DivergedError,))


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
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        sampler=_make_sampler(sampler, seed, n_existing, worker),
        pruner=pruner,
    )
    _optimize(study, objective, n_trials, timeout)
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

    def run(self, n_trials: int | None, timeout: float | None) -> bool:
        """Optimise; return True when interrupted by Ctrl-C (finished trials are kept)."""
        n_existing = len(self.study.get_trials(deepcopy=False))
        try:
            if self.on_dask:
                self._run_on_dask(n_trials, timeout)
            elif self.n_workers == 1:
                self.study.sampler = _make_sampler(self.sampler, self.setup.seed, n_existing, 0)
                _optimize(self.study, self.objective, n_trials, timeout)
            else:
                self._run_workers(n_trials, timeout, n_existing)
        except KeyboardInterrupt:
            return True
        finally:
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
        from joblib import Parallel, delayed

        shares = _shares(n_trials, self.n_workers)
        Parallel(n_jobs=len(shares), backend="loky")(
            delayed(_worker)(
                self.storage_spec,
                self.study.study_name,
                self.objective,
                self.sampler,
                self.pruner,
                self.setup.seed,
                n_existing,
                worker,
                share,
                timeout,
                optuna.logging.get_verbosity(),
            )
            for worker, share in enumerate(shares)
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

    def result(self, refit: bool, interrupted: bool = False) -> TuneResult:
        """Summarise the study; refit the best configuration on all the data if asked."""
        best = best_complete_trial(self.study)
        trial = optuna.trial.FixedTrial(best.params)
        best_params = self.space.suggest(trial, self.objective.hidden_layers)
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
            best_score=float(best.value),
            best_score_std=float(np.std(scores)),
            best_trial=best,
            fold_scores=fold_scores,
            interrupted=interrupted,
        )
        if refit and not interrupted:
            result.best_estimator, result.refit_epochs = self.refit(best, best_params)
        return result

    def refit(self, best: optuna.trial.FrozenTrial, best_params: dict[str, Any]) -> tuple[Any, Any]:
        """Fit a clone on all the data with the best parameters (and the folds' peak epoch)."""
        estimator = clone(self.estimator)
        prefix, network = network_prefix(estimator)
        names = self.objective.names
        params = {names[name]: value for name, value in best_params.items()}
        seed = fold_seed(self.setup.seed, best.number, len(self.setup.splits))
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
        # One BLAS thread, as in the trials: the refit gives the same numbers on any machine
        # load or worker count (float32 sums change with the thread count).
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(self.X, self.y, **fit_params)
        return estimator, refit_epochs


def prepare(
    X: Any,
    y: Any,
    *,
    estimator: Any = None,
    space: Any = None,
    cv: Any = 5,
    groups: Any = None,
    scoring: Any = None,
    refit_metric: Any = False,
    pruner: Any = "median",
    sampler: optuna.samplers.BaseSampler | None = None,
    storage: StorageSpec = None,
    study_name: str | None = None,
    n_workers: int = 1,
    random_state: int | None = None,
    fit_params: dict[str, Any] | None = None,
    classifier: bool | None = None,
    backend: BackendSpec = None,
) -> Search:
    """Check the whole request and open (or continue) the study; no trial runs here."""
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
    try:
        per_sample = [v for v in fit_params.values() if hasattr(v, "shape") or isinstance(v, list)]
        check_consistent_length(X, y, *per_sample)
    except ValueError as error:
        raise SearchError(f"inconsistent inputs: {error}") from error
    estimator = default_estimator(y, classifier) if estimator is None else estimator
    check_training_data(X, estimator, SearchError)
    space = _as_space(space)
    names = resolve_space_names(estimator, space)
    check_space_bounds(estimator, space, names, hidden_depth(estimator))
    scorers, metric = make_scorers(estimator, scoring, refit_metric)
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
    if shared and isinstance(storage_obj, optuna.storages.InMemoryStorage):
        raise SearchError("n_workers > 1 needs a storage the worker processes can share")

    n_samples = len(y)
    is_clf = is_classifier(estimator)
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
            make_splits_for_seed=lambda seed: make_splits(cv, X, y, groups, is_clf, seed),
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
        scorers={name: scorers[name] for name in metrics},
        metric=metric,
        network_fit_params=network_params,
        preprocessing_fit_params=preprocessing_params,
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
    )


def _n_splits(cv: Any, X: Any, y: Any, groups: Any) -> int | None:
    if hasattr(cv, "get_n_splits"):
        try:
            return int(cv.get_n_splits(X, y, groups))
        except (TypeError, ValueError):
            return None
    return None
