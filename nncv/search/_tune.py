"""``nncv.tune``: an Optuna study over a search space, scored by lockstep k-fold CV."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import optuna

from nncv.exceptions import SearchError
from nncv.search._arguments import check_run_limits
from nncv.search._components import StorageSpec
from nncv.search._progress import quiet_unless_verbose, run_with_progress
from nncv.search._result import TuneResult
from nncv.search._run import REFIT_ENSEMBLES, prepare
from nncv.search._settings import SearchSettings
from nncv.search.space import SearchSpace

__all__ = ["tune"]

logger = logging.getLogger("nncv.search")


@quiet_unless_verbose
def tune(
    X: Any,
    y: Any,
    estimator: Any = None,
    space: SearchSpace | dict | str | None = None,
    n_trials: int | None = 20,
    timeout: float | None = None,
    cv: Any = 5,
    scoring: Any = None,
    pruner: str | optuna.pruners.BasePruner | None = "median",
    sampler: str | optuna.samplers.BaseSampler | None = None,
    storage: StorageSpec = None,
    study_name: str | None = None,
    n_workers: int = 1,
    random_state: int | None = None,
    refit: bool | str = True,
    *,
    groups: Any = None,
    sample_weight: Any = None,
    fit_params: dict[str, Any] | None = None,
    task: str | None = None,
    stack_folds: bool = True,
    progress: bool | None = False,
    verbose: bool = False,
    backend: Any = None,
    ensemble_size: int = 5,
) -> TuneResult:
    """Tune a network by k-fold cross-validation with an Optuna study.

    Each trial clones ``estimator`` once per fold, fits the preprocessing steps on the
    training fold only, and trains every fold's network in lockstep: after each epoch the
    mean validation score over the folds is reported to the trial and the pruner decides,
    so a trial is pruned on the evidence of all folds. The folds are fixed when the study
    is created and stored on it; fold ``k`` of trial ``t`` is seeded with
    ``SeedSequence([study_seed, t, k])``, so a trial's score does not depend on
    ``n_workers``. A diverging trial (NaN loss) is recorded as failed, with its reason,
    and the study goes on.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    estimator : Pipeline or nncv estimator, optional
        What the space tunes: a bare NNClassifier/NNRegressor or a Pipeline (nested ones
        too) ending in one. Default: standard scaler (max-abs for sparse X) + NNClassifier,
        or NNRegressor when :func:`nncv.pipeline.infer_task` finds ``y`` a regression
        target (or ``task`` says so). Its other parameters (``max_epochs``,
        ``early_stopping``, …) are kept.
    space : SearchSpace, dict of ranges or path to a TOML file, optional
        Default :meth:`SearchSpace.default`.
    n_trials : int or None, default=20
        Trials to run in this call (added to those a continued study has); None runs
        until ``timeout``.
    timeout : float, optional
        Stop starting new trials after this many seconds.
    cv : int, cross-validation splitter or iterable of (train, test), default=5
        An int gives shuffled K folds (stratified for class labels) seeded by the study.
    scoring : str, callable, list or dict, optional
        Scikit-learn scorer(s); the first one is maximised. Default: the estimator's
        ``score`` (accuracy or R²). Pruning always uses the network's own per-epoch
        validation score (accuracy or R²).
    pruner : {"median", "hyperband", "successive_halving", "none"} or optuna pruner
    sampler : {"tpe", "random", "qmc"} or optuna sampler, optional
        Default: a seeded multivariate TPE sampler (``"tpe"``); a named sampler is seeded
        from the study, an object is used as given.
    storage : None, path ending in ".log", SQLAlchemy URL or optuna storage
        None keeps the study in memory; a ``.log`` path is a journal file several
        processes can share; ``sqlite:///x.db`` or ``postgresql://…`` a database. The
        same storage and ``study_name`` again continue the study.
    study_name : str, optional
        Default: a new unique name (a fresh study) in a given storage; ``"nncv"`` for the
        fresh study of ``storage=None``, so that Hyperband's brackets, which Optuna draws
        from the study name, are the same on every run with the same ``random_state``.
    n_workers : int, default=1
        Worker processes sharing the storage (an in-memory study uses a temporary
        journal file meanwhile); BLAS is limited to one thread in each.
    random_state : int, optional
        The study seed (folds, fold seeds, sampler). A continued study keeps its own.
    refit : bool, "ensemble" or "seed_ensemble", default=True
        Refit the best configuration on all the data (``result.best_estimator``).
        ``"ensemble"`` keeps the best trial's fold models instead: ``best_estimator`` is a
        :class:`~nncv.FoldEnsemble` of them (mean of their probabilities / predictions),
        re-created by training that trial's folds again with its seeds.
        ``"seed_ensemble"`` refits the best configuration ``ensemble_size`` times on all the
        data, each from its own seed (member 0 is the ``refit=True`` model), trained as one
        stack: ``best_estimator`` is a :class:`~nncv.SeedEnsemble`.
    groups : array-like of shape (n_samples,), optional
        Group labels for a group splitter in ``cv``.
    sample_weight : array-like of shape (n_samples,), optional
        Split per fold as in :func:`nncv.cross_validate`: the training rows' weights go to
        the network's fit, the held-out rows' to its validation loss and the scorers.
    fit_params : dict, optional
        More fit parameters: ``<step>__<param>`` for a pipeline step's ``fit`` (values
        with one entry per row are split per fold).
    task : {"classification", "regression"}, optional
        What the default estimator is; by default inferred from ``y``.
    stack_folds : bool, default=True
        Train the folds of a trial as one stacked network where they share one network
        configuration (see :func:`nncv.cross_validate`); ``False`` trains them one after
        another. The numbers are the same.
    backend : None, "loky", "dask", scheduler address or distributed.Client, default=None
        Where the trials run. None: in this process, or ``n_workers`` loky processes —
        unless an enclosing ``joblib.parallel_config(backend="dask")`` names a Dask
        cluster. On a Dask cluster (``"dask"``: the running client; ``"tcp://host:8786"``:
        that scheduler) every trial is a Dask task on the shared ``storage`` (a journal
        file every worker sees, or a database URL; an in-memory study uses a temporary
        journal file, which only a cluster on this machine sees), as many at once as the
        cluster has threads (or ``n_workers`` when above 1); X and y reach each worker
        once. A trial lost with its worker is failed and its parameters run again. See
        ``docs/scaling.md``.
    progress : bool or None, default=False
        Draw a progress bar on standard error: trials done, pruned and failed, best so
        far, elapsed time and ETA (worker processes' trials included). None: only when
        standard error is a terminal (what ``nncv tune`` and the study scripts do).
    verbose : bool, default=False
        Let Optuna log its line per trial (INFO). By default a call logs only Optuna's
        warnings; the caller's Optuna verbosity is restored afterwards either way.
    ensemble_size : int, default=5
        Members of ``refit="seed_ensemble"``.

    Returns
    -------
    TuneResult
        ``best_params``, ``best_score`` (mean over folds), ``best_score_std``,
        ``best_estimator``, ``study`` and ``trials_frame``.

    Raises
    ------
    nncv.SearchError
        Before anything is opened, for an invalid argument (``n_trials``, ``timeout``,
        ``cv``, ``n_workers``, …, named in the message), a space naming a parameter the
        estimator lacks or reaching outside its valid range (``dropout`` up to 1.5);
        then for an unreachable storage, or a continued study run on other data, space
        or scoring; after the study, when no trial completed.
    nncv.BackendError
        An unknown ``backend``, or a Dask one that is not installed or not reachable.

    Examples
    --------
    >>> from nncv import NNClassifier
    >>> from nncv.search import Float, SearchSpace, tune
    >>> from nncv.datasets import load
    >>> X, y = load("iris")
    >>> space = SearchSpace(learning_rate=Float(1e-3, 1e-1, log=True))
    >>> result = tune(X, y, NNClassifier(hidden_layer_sizes=8, max_epochs=5), space,
    ...               n_trials=2, cv=3, random_state=0)
    >>> 0 <= result.best_score <= 1
    True
    """
    check_run_limits(n_trials, timeout)
    if not isinstance(refit, bool | np.bool_) and refit not in REFIT_ENSEMBLES:
        raise SearchError(
            f"refit must be True, False, 'ensemble' or 'seed_ensemble', got {refit!r}"
        )
    settings = SearchSettings.from_mapping(locals())
    search = prepare(
        X,
        y,
        settings,
        estimator=estimator,
        refit_metric=False,  # several scorers: the first one is maximised
        groups=groups,
        fit_params={
            **(fit_params or {}),
            **({} if sample_weight is None else {"sample_weight": sample_weight}),
        },
    )
    interrupted = run_with_progress(search, n_trials, timeout, progress)
    if interrupted:
        finished = sum(t.state.is_finished() for t in search.study.get_trials(deepcopy=False))
        logger.warning(
            "interrupted: %d finished trials of study %r are kept; no refit",
            finished,
            search.study.study_name,
        )
    return search.result(refit=refit, interrupted=interrupted)
