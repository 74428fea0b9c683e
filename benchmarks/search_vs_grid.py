"""A 27-trial pruned ``nncv.tune`` study vs ``GridSearchCV`` over 27 points: time and score.

In the same run, on the same 5 stratified folds of scikit-learn's digits, with BLAS pinned
to one thread and the same standard-scaled ``NNClassifier`` (``--epochs`` epochs, batch 32):

1. ``GridSearchCV`` over learning_rate × l2 × hidden size (3 × 3 × 3 = 27 points), once;
2. ``nncv.tune`` over the same ranges (log-uniform between the grid's ends) with the median
   pruner, for the same 27 trials, once per study seed ``0 .. --seeds - 1``: which points
   TPE draws, and so how many wide (slow) networks a study trains and how many trials the
   pruner stops, depends on the seed, so one seed is one draw of the figure. Per seed:
   ``study27_over_grid`` = the 27-trial study's time / the grid's (issue 18: must ≤ 0.45,
   aim ≤ 0.30) and its best mean CV accuracy (within 0.002 of the grid's); then, if it has
   not matched the grid, the study goes on to ``--max-trials``, and
   ``seconds_to_grid_best`` is the time from its start to the end of the first trial that
   brings its best within 0.002 of ``grid_best`` (``to_grid_best_over_grid`` = that / the
   grid's time). The headline figures are the medians over the seeds;
3. optuna-integration's ``OptunaSearchCV`` on the same ranges and the same 27-trial budget
   (no pruning: a Pipeline has no ``partial_fit``), seed 0, when that package is installed.

Prints one JSON line. ``null`` where a figure does not exist (a study never matched the grid;
OptunaSearchCV not installed).

Usage::

    python benchmarks/search_vs_grid.py                # about 2 minutes on one core
    python benchmarks/search_vs_grid.py --seeds 1 --epochs 10    # quick try
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from datetime import datetime

import numpy as np
import optuna
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from threadpoolctl import threadpool_limits

import nncv
from nncv.search import Float, Int, SearchSpace

LEARNING_RATES = (1e-3, 3e-3, 1e-2)
L2S = (1e-5, 1e-4, 1e-3)
HIDDEN_SIZES = (32, 128, 512)
TOLERANCE = 0.002


def estimator(epochs: int):
    return nncv.make_pipeline("standard", max_epochs=epochs, batch_size=32, random_state=0)


def run_grid(X, y, splits, epochs: int) -> tuple[float, float]:
    grid = {
        "net__learning_rate": list(LEARNING_RATES),
        "net__l2": list(L2S),
        "net__hidden_layer_sizes": [(h,) for h in HIDDEN_SIZES],
    }
    search = GridSearchCV(estimator(epochs), grid, cv=splits, scoring="accuracy", refit=False)
    started = time.perf_counter()
    search.fit(X, y)
    return float(search.best_score_), time.perf_counter() - started


def run_tune(X, y, splits, epochs: int, grid_best: float, max_trials: int, seed: int) -> dict:
    space = SearchSpace(
        learning_rate=Float(LEARNING_RATES[0], LEARNING_RATES[-1], log=True),
        l2=Float(L2S[0], L2S[-1], log=True),
        hidden_size=Int(HIDDEN_SIZES[0], HIDDEN_SIZES[-1], log=True),
    )
    folder = tempfile.mkdtemp(prefix="nncv-bench-")
    storage = os.path.join(folder, "study.log")
    common = dict(
        estimator=estimator(epochs),
        space=space,
        cv=splits,
        scoring="accuracy",
        pruner="median",
        storage=storage,
        study_name="bench",
        random_state=seed,
        refit=False,
    )
    started_at = datetime.now()
    started = time.perf_counter()
    result = nncv.tune(X, y, n_trials=len(LEARNING_RATES) * len(L2S) * len(HIDDEN_SIZES), **common)
    seconds_27 = time.perf_counter() - started
    best_27 = result.best_score
    while result.best_score < grid_best - TOLERANCE and len(result.study.trials) < max_trials:
        result = nncv.tune(X, y, n_trials=9, **common)  # continue the same study
    reached_at, reached_trial, best = None, None, -np.inf
    for trial in sorted(result.study.trials, key=lambda t: t.datetime_complete or datetime.max):
        if trial.state == optuna.trial.TrialState.COMPLETE and trial.value > best:
            best = trial.value
            if best >= grid_best - TOLERANCE and reached_at is None:
                reached_at = (trial.datetime_complete - started_at).total_seconds()
                reached_trial = trial.number
    states = [t.state.name for t in result.study.trials]
    return {
        "tune_seconds_to_grid_best": reached_at,
        "tune_trials_to_grid_best": None if reached_trial is None else reached_trial + 1,
        "tune_best_27_trials": best_27,
        "tune_seconds_27_trials": seconds_27,
        "tune_trials_run": len(states),
        "tune_pruned": states.count("PRUNED"),
        "tune_best": float(best),
    }


def run_optuna_search_cv(X, y, splits, epochs: int, n_trials: int, seed: int) -> dict:
    try:
        from optuna_integration import OptunaSearchCV
    except ImportError:
        return {"optuna_search_cv_best": None, "optuna_search_cv_seconds": None}
    distributions = {
        "net__learning_rate": optuna.distributions.FloatDistribution(
            LEARNING_RATES[0], LEARNING_RATES[-1], log=True
        ),
        "net__l2": optuna.distributions.FloatDistribution(L2S[0], L2S[-1], log=True),
        "net__hidden_layer_sizes": optuna.distributions.IntDistribution(
            HIDDEN_SIZES[0], HIDDEN_SIZES[-1], log=True
        ),
    }
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    with warnings.catch_warnings():
        # OptunaSearchCV is experimental and warns on every trial about optuna.terminator.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        search = OptunaSearchCV(
            estimator(epochs),
            distributions,
            cv=splits,
            n_trials=n_trials,
            scoring="accuracy",
            study=study,
            refit=False,
        )
        started = time.perf_counter()
        search.fit(X, y)
        seconds = time.perf_counter() - started
    return {
        "optuna_search_cv_best": float(search.best_score_),
        "optuna_search_cv_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs per fit (default 30)")
    parser.add_argument("--max-trials", type=int, default=81, help="tune's trial cap")
    parser.add_argument("--seeds", type=int, default=5, help="study seeds 0 .. N-1 (default 5)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, y = nncv.datasets.load("digits")
    splits = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    n_grid = len(LEARNING_RATES) * len(L2S) * len(HIDDEN_SIZES)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid_best, grid_seconds = run_grid(X, y, splits, args.epochs)
        studies = [
            run_tune(X, y, splits, args.epochs, grid_best, args.max_trials, seed)
            for seed in range(args.seeds)
        ]
        other = run_optuna_search_cv(X, y, splits, args.epochs, n_grid, 0)
    study27 = [study["tune_seconds_27_trials"] / grid_seconds for study in studies]
    reached = [study["tune_seconds_to_grid_best"] for study in studies]
    to_best = [None if r is None else r / grid_seconds for r in reached]
    best_27 = [study["tune_best_27_trials"] for study in studies]
    line = {
        "study27_over_grid": round(float(np.median(study27)), 3),
        "to_grid_best_over_grid": (
            None if None in to_best else round(float(np.median(to_best)), 3)
        ),
        "grid_best": grid_best,
        "grid_seconds": round(grid_seconds, 2),
        "best_27_within_tolerance": sum(b >= grid_best - TOLERANCE for b in best_27),
        "per_seed": {
            "study27_over_grid": [round(r, 3) for r in study27],
            "to_grid_best_over_grid": [None if r is None else round(r, 3) for r in to_best],
            **{
                key: [study[key] for study in studies]
                for key in (
                    "tune_best_27_trials",
                    "tune_seconds_27_trials",
                    "tune_trials_to_grid_best",
                    "tune_pruned",
                    "tune_trials_run",
                    "tune_best",
                )
            },
        },
        **other,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "folds": 5,
        "grid_points": n_grid,
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
