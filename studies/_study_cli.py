"""Shared command line of the study scripts in this folder (digits, breast_cancer, spiral, …).

Each script names its data, its estimator and its search space and hands them to
:func:`main`, which parses ``--trials --cv --storage --workers --out`` (and a few more),
runs :func:`nncv.tune`, prints the best parameters and CV score, and saves the best
pipeline with :func:`nncv.save`. On a terminal a progress bar (trials done, pruned and
failed, best so far, elapsed, ETA) runs on standard error; ``--quiet`` hides it and
``--verbose`` adds Optuna's line per trial. ``--outer K`` instead measures the whole procedure by
nested cross-validation: ``cross_val_score`` over :class:`nncv.NNSearchCV`, one fresh
study per outer fold.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

import nncv


@dataclass
class StudyScript:
    """What one study script contributes: data, estimator, space and a held-out check."""

    name: str
    load: Callable[[], tuple[Any, Any]]
    estimator: Callable[[], Any]
    space: Callable[[], nncv.SearchSpace]
    scoring: str | None = None
    description: str = ""
    #: Optional fresh data to score the refit model on (the spiral's new-seed test set).
    held_out: Callable[[], tuple[Any, Any]] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)


def parse(script: StudyScript, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=script.description)
    parser.add_argument(
        "--trials",
        type=int,
        default=script.defaults.get("trials", 40),
        help="Optuna trials to run (added to a continued study's)",
    )
    parser.add_argument("--cv", type=int, default=5, help="folds of the k-fold objective")
    parser.add_argument(
        "--storage", default=None, help="journal file (*.log) or SQLAlchemy URL; default in memory"
    )
    parser.add_argument(
        "--study-name",
        default=None,
        help=f"default '{script.name}' with --storage (rerun = continue)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--out", default=f"{script.name}-best.nncv", help="where nncv.save writes the best pipeline"
    )
    parser.add_argument("--seed", type=int, default=0, help="study seed")
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="override the network's max_epochs (default: the script's)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds, then stop")
    parser.add_argument(
        "--pruner", default="median", help="median, hyperband, successive_halving or none"
    )
    parser.add_argument(
        "--outer", type=int, default=0, help="run nested CV with this many outer folds instead"
    )
    parser.add_argument(
        "--outer-jobs", type=int, default=1, help="outer folds in parallel (processes) with --outer"
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar (none off a terminal)"
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="print Optuna's line for every trial"
    )
    args = parser.parse_args(argv)
    if args.max_epochs is not None and args.max_epochs < 1:
        parser.error("--max-epochs must be at least 1")
    for name in ("trials", "cv", "workers", "outer_jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.outer == 1 or args.outer < 0:
        parser.error("--outer must be 0 (off) or at least 2")
    return args


def _states(study: optuna.Study) -> str:
    states = [t.state.name.lower() for t in study.trials]
    return ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))


def _estimator(script: StudyScript, args: argparse.Namespace) -> Any:
    """The script's estimator, with ``--max-epochs`` applied to its network."""
    from nncv.search._estimator import network_prefix

    estimator = script.estimator()
    if args.max_epochs is not None:
        prefix, _ = network_prefix(estimator)
        estimator.set_params(**{f"{prefix}max_epochs": args.max_epochs})
    return estimator


def _tune(script: StudyScript, args: argparse.Namespace, X: Any, y: Any) -> dict[str, Any]:
    study_name = args.study_name or (script.name if args.storage else None)
    started = time.perf_counter()
    result = nncv.tune(
        X,
        y,
        estimator=_estimator(script, args),
        space=script.space(),
        n_trials=args.trials,
        timeout=args.timeout,
        cv=args.cv,
        scoring=script.scoring,
        pruner=args.pruner,
        storage=args.storage,
        study_name=study_name,
        n_workers=args.workers,
        random_state=args.seed,
        progress=False if args.quiet else None,  # a bar when standard error is a terminal
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - started
    print(f"study {result.study.study_name!r}: {_states(result.study)} in {seconds:.0f} s")
    print(f"best parameters: {result.best_params}")
    if result.refit_epochs:
        print(f"refit on all data for {result.refit_epochs} epochs (where the folds peaked)")
    print(
        f"best {args.cv}-fold CV {result.metric}: {result.best_score:.4f} "
        f"± {result.best_score_std:.4f} (trial {result.best_trial.number})"
    )
    summary: dict[str, Any] = {
        "study": script.name,
        "cv_score": result.best_score,
        "cv_score_std": result.best_score_std,
        "best_params": {
            k: list(v) if isinstance(v, tuple) else v for k, v in result.best_params.items()
        },
        "seconds": seconds,
    }
    if script.held_out is not None and result.best_estimator is not None:
        X_test, y_test = script.held_out()
        held_out = float(result.best_estimator.score(X_test, y_test))
        print(f"held-out score on fresh data ({len(y_test)} samples): {held_out:.4f}")
        summary["held_out_score"] = held_out
    if result.best_estimator is not None and args.out:
        path = nncv.save(result.best_estimator, args.out)
        print(f"best pipeline saved to {path}")
        summary["saved"] = str(path)
    return summary


def _nested(script: StudyScript, args: argparse.Namespace, X: Any, y: Any) -> dict[str, Any]:
    from sklearn.base import is_classifier
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    search = nncv.NNSearchCV(
        _estimator(script, args),
        script.space(),
        n_trials=args.trials,
        cv=args.cv,
        scoring=script.scoring,
        pruner=args.pruner,
        storage=args.storage,
        n_workers=args.workers,
        timeout=args.timeout,
        random_state=args.seed,
    )
    splitter = StratifiedKFold if is_classifier(search) else KFold
    outer = splitter(args.outer, shuffle=True, random_state=args.seed)
    started = time.perf_counter()
    scores = cross_val_score(search, X, y, cv=outer, n_jobs=args.outer_jobs)
    seconds = time.perf_counter() - started
    print(
        f"nested CV ({args.outer} outer folds × {args.trials}-trial studies on {args.cv} inner "
        f"folds): {scores.mean():.4f} ± {scores.std():.4f}  folds {np.round(scores, 4).tolist()}"
        f" in {seconds:.0f} s"
    )
    return {
        "study": script.name,
        "nested_score": float(scores.mean()),
        "nested_std": float(scores.std()),
        "outer_scores": scores.tolist(),
        "seconds": seconds,
    }


def main(script: StudyScript, argv: list[str] | None = None) -> dict[str, Any]:
    """Run the study script's command line; return the printed summary as a dict."""
    args = parse(script, argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, y = script.load()
    try:
        summary = _nested(script, args, X, y) if args.outer else _tune(script, args, X, y)
    except nncv.NncvError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.json:
        print(json.dumps(summary))
    return summary
