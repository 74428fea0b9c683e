"""Shared command line of the study scripts in this folder (digits, breast_cancer, spiral, …).

Each script names its data, its estimator and its search space and hands them to
:func:`main`, which parses ``--trials --cv --storage --workers --out`` (and a few more),
runs :func:`nncv.tune`, prints the best parameters and CV score, and saves the best
pipeline with :func:`nncv.save`. On a terminal a progress bar (trials done, pruned and
failed, best so far, elapsed, ETA) runs on standard error; ``--quiet`` hides it and
``--verbose`` adds Optuna's line per trial. ``--outer K`` instead measures the whole procedure by
nested cross-validation, one fresh study per outer fold (a bar counts the outer folds).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from tqdm import tqdm

import nncv

#: ``--refit`` choices and the ``refit`` value of :func:`nncv.tune` each stands for.
REFIT_KINDS = {"refit": True, "ensemble": "ensemble", "seed_ensemble": "seed_ensemble"}


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
    parser.add_argument(
        "--set",
        dest="network_params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter of the network (JSON value: batch_norm=true, patience=20); "
        "repeatable",
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
    parser.add_argument(
        "--refit",
        choices=[*REFIT_KINDS, "all"],
        default="refit",
        help="the final model of each study: the best configuration refit on all rows "
        "(refit), the best trial's fold models averaged (ensemble), or --ensemble-size "
        "members refit on all rows from different seeds, averaged (seed_ensemble); with "
        "--outer, 'all' scores every kind from the same study of each outer fold",
    )
    parser.add_argument(
        "--ensemble-size", type=int, default=5, help="members of --refit seed_ensemble"
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar (none off a terminal)"
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="print Optuna's line for every trial"
    )
    args = parser.parse_args(argv)
    try:
        args.network_params = dict(_name_value(item) for item in args.network_params)
    except ValueError as error:
        parser.error(str(error))
    if args.max_epochs is not None and args.max_epochs < 1:
        parser.error("--max-epochs must be at least 1")
    for name in ("trials", "cv", "workers", "outer_jobs", "ensemble_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.outer == 1 or args.outer < 0:
        parser.error("--outer must be 0 (off) or at least 2")
    if args.refit == "all" and not args.outer:
        parser.error("--refit all needs --outer")
    return args


def _name_value(item: str) -> tuple[str, Any]:
    """``"name=value"`` → ``(name, value)``, the value read as JSON (else kept a string)."""
    name, sep, text = item.partition("=")
    if not sep or not name:
        raise ValueError(f"--set takes NAME=VALUE, got {item!r}")
    try:
        return name, json.loads(text)
    except json.JSONDecodeError:
        return name, text


def _states(study: optuna.Study) -> str:
    states = [t.state.name.lower() for t in study.trials]
    return ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))


def _estimator(script: StudyScript, args: argparse.Namespace) -> Any:
    """The script's estimator, with ``--max-epochs`` and ``--set`` applied to its network."""
    from nncv.search._estimator import network_prefix

    estimator = script.estimator()
    prefix, _ = network_prefix(estimator)
    params = dict(args.network_params)
    if args.max_epochs is not None:
        params["max_epochs"] = args.max_epochs
    estimator.set_params(**{f"{prefix}{name}": value for name, value in params.items()})
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
        refit=REFIT_KINDS[args.refit],
        ensemble_size=args.ensemble_size,
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


def _outer_fold(
    script: StudyScript,
    args: argparse.Namespace,
    X: Any,
    y: Any,
    train: np.ndarray,
    test: np.ndarray,
    kinds: list[str],
) -> dict[str, float]:
    """One outer fold: one study on ``train``, then each kind of final model scored on
    ``test`` (what ``NNSearchCV(refit=...).fit(...).score(...)`` does, the study run once)."""
    import uuid

    from sklearn.metrics import check_scoring
    from sklearn.utils import _safe_indexing

    from nncv.search._progress import optuna_verbosity
    from nncv.search._run import prepare
    from nncv.search._settings import SearchSettings

    settings = SearchSettings(
        space=script.space(),
        n_trials=args.trials,
        timeout=args.timeout,
        cv=args.cv,
        scoring=script.scoring,
        pruner=args.pruner,
        storage=args.storage,
        study_name=f"nncv-nested-{uuid.uuid4().hex[:12]}" if args.storage else None,
        n_workers=args.workers,
        random_state=args.seed,
        ensemble_size=args.ensemble_size,
    )
    X_train, y_train = _safe_indexing(X, train), _safe_indexing(y, train)
    X_test, y_test = _safe_indexing(X, test), _safe_indexing(y, test)
    scores = {}
    # Optuna's per-trial lines only with --verbose, also in the --outer-jobs processes
    with optuna_verbosity(args.verbose):
        search = prepare(X_train, y_train, settings, estimator=_estimator(script, args))
        if search.run(args.trials, args.timeout):
            raise KeyboardInterrupt
        for kind in kinds:
            model = search.result(refit=REFIT_KINDS[kind]).best_estimator
            scores[kind] = float(check_scoring(model, script.scoring)(model, X_test, y_test))
    return scores


def _nested(script: StudyScript, args: argparse.Namespace, X: Any, y: Any) -> dict[str, Any]:
    """Nested CV: one fresh study per outer fold, each kind of final model scored on the
    outer fold's held-out rows (``--refit all``: every kind from the same study)."""
    from joblib import Parallel, delayed
    from sklearn.base import is_classifier
    from sklearn.model_selection import KFold, StratifiedKFold

    kinds = list(REFIT_KINDS) if args.refit == "all" else [args.refit]
    splitter = StratifiedKFold if is_classifier(_estimator(script, args)) else KFold
    outer = splitter(args.outer, shuffle=True, random_state=args.seed)
    started = time.perf_counter()
    jobs = Parallel(n_jobs=args.outer_jobs, return_as="generator")(
        delayed(_outer_fold)(script, args, X, y, train, test, kinds)
        for train, test in outer.split(X, y)
    )
    folds = []
    # On a terminal (not with --quiet): outer folds done, elapsed, ETA, the last fold's scores.
    bar = tqdm(
        total=args.outer,
        desc="nested CV",
        unit="outer fold",
        file=sys.stderr,
        disable=True if args.quiet else None,  # None: shown only on a terminal
        # a terminal that reports no size (0 × 0) would get a hidden, empty bar
        ncols=shutil.get_terminal_size((100, 24)).columns,
        nrows=shutil.get_terminal_size((100, 24)).lines,
    )
    with bar:
        for fold in jobs:
            folds.append(fold)
            bar.set_postfix({kind: f"{score:.4f}" for kind, score in fold.items()}, refresh=False)
            bar.update()
    seconds = time.perf_counter() - started
    summary: dict[str, Any] = {"study": script.name, "refit_kinds": kinds, "seconds": seconds}
    for kind in kinds:
        scores = np.array([fold[kind] for fold in folds])
        size = f", {args.ensemble_size} members" if kind == "seed_ensemble" else ""
        print(
            f"nested CV, refit={kind}{size} ({args.outer} outer folds × {args.trials}-trial "
            f"studies on {args.cv} inner folds): {scores.mean():.4f} ± {scores.std():.4f}  "
            f"folds {np.round(scores, 4).tolist()}"
        )
        summary[kind] = {
            "nested_score": float(scores.mean()),
            "nested_std": float(scores.std()),
            "outer_scores": scores.tolist(),
        }
    print(f"in {seconds:.0f} s")
    if len(kinds) == 1:  # the single-kind layout of earlier versions
        summary.update(summary.pop(kinds[0]), refit=kinds[0])
    return summary


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
