"""The one place where names become Optuna objects: pruner, sampler and storage.

Each factory takes a name or an object (used as given): ``make_pruner("median", …)``,
``make_sampler("tpe", …)``, ``make_storage("study.log")``. Storage itself is built by
:mod:`nncv.search._storage`; it is re-exported here so callers have one module to ask.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna

from nncv.exceptions import SearchError
from nncv.search._storage import StorageSpec, make_storage
from nncv.search._study import sampler_seed

__all__ = ["PRUNERS", "SAMPLERS", "StorageSpec", "make_pruner", "make_sampler", "make_storage"]

#: Trials the median pruner lets finish before it prunes, and epochs it always lets run.
MEDIAN_STARTUP_TRIALS = 5
MEDIAN_WARMUP_EPOCHS = 3

#: Pruner name -> ``factory(max_epochs)``.
PRUNERS: dict[str, Any] = {
    "median": lambda max_epochs: optuna.pruners.MedianPruner(
        n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=MEDIAN_WARMUP_EPOCHS
    ),
    "hyperband": lambda max_epochs: optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=max_epochs
    ),
    "successive_halving": lambda max_epochs: optuna.pruners.SuccessiveHalvingPruner(min_resource=1),
    "none": lambda max_epochs: optuna.pruners.NopPruner(),
}


def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


#: Sampler name -> ``factory(seed)``; ``"tpe"`` (multivariate TPE) is the default.
SAMPLERS: dict[str, Any] = {
    "tpe": _tpe,
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "qmc": lambda seed: optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False),
}


def make_pruner(pruner: Any, max_epochs: int) -> optuna.pruners.BasePruner:
    """A name of :data:`PRUNERS` (``None`` means ``"none"``), or an Optuna pruner as is."""
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    name = "none" if pruner is None else pruner
    if not isinstance(name, str) or name not in PRUNERS:
        raise SearchError(
            f"unknown pruner {pruner!r}; use 'median', 'hyperband', 'successive_halving', "
            "'none' or an optuna pruner"
        )
    return PRUNERS[name](max_epochs)


def check_sampler(sampler: Any) -> None:
    """Refuse, before any trial, what :func:`make_sampler` could not use."""
    if sampler is None or isinstance(sampler, optuna.samplers.BaseSampler):
        return
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise SearchError(
            f"unknown sampler {sampler!r}; use one of {sorted(SAMPLERS)} or an optuna sampler"
        )


def make_sampler(
    sampler: Any, seed: int, n_existing: int, worker: int
) -> optuna.samplers.BaseSampler:
    """The sampler of one worker: a name of :data:`SAMPLERS` (``None``: ``"tpe"``) seeded from
    the study (:func:`~nncv.search._study.sampler_seed`), or an Optuna sampler as is (its
    copies in workers other than the first are reseeded, so they propose other points).
    """
    check_sampler(sampler)
    if isinstance(sampler, optuna.samplers.BaseSampler):
        if worker:
            sampler.reseed_rng()
        return sampler
    return SAMPLERS[sampler or "tpe"](sampler_seed(seed, n_existing, worker))
