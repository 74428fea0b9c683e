"""Speed of a 5-fold cross-validation: stacked folds vs folds one after another vs sklearn.

In one invocation, BLAS held to one thread (threadpoolctl), ``--repeats`` paired runs
(each repeat runs every contender once, in a shuffled order; a ratio is the median over
the repeats of that repeat's ratio, so that load drifting between repeats hits both sides
of a ratio alike), on scikit-learn's digits,
standard-scaled, one hidden layer of 64 units, batch 32, ``--epochs`` epochs, the same 5
stratified folds, ``n_jobs=1``:

* ``cv5_over_sklearn_cv5`` — ``nncv.cross_validate`` (folds stacked, the default) over
  scikit-learn's ``cross_validate`` of the same ``MLPClassifier`` pipeline;
* ``cv5_over_sequential`` — the same ``nncv.cross_validate`` over ``stack_folds=False``;
* ``trial5_over_cv5`` — a one-trial 5-fold ``nncv.tune`` study of the same configuration
  (no pruner, no refit) over ``nncv.cross_validate``;
* ``large_stacked_over_sequential`` — stacked over one-after-another on a large case:
  ``--large-rows`` × 100 float32 → 256 → 5 classes, batch 256, ``--large-epochs`` epochs.

Prints one JSON line: the ratios of wall-clock time, the same ratios of the process's CPU
time (``cpu``: steadier on a shared machine, as every contender runs in this one process on
one thread), each contender's median seconds, and the load average.

Usage::

    python benchmarks/cv_speed.py                 # a few minutes
    python benchmarks/cv_speed.py --repeats 1 --epochs 5 --large-rows 4000   # quick try
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import optuna
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.model_selection import cross_validate as sk_cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import nncv

#: Reported ratio -> (numerator contender, denominator contender).
RATIOS = {
    "cv5_over_sklearn_cv5": ("nncv_cv5", "sklearn_cv5"),
    "cv5_over_sequential": ("nncv_cv5", "nncv_cv5_sequential"),
    "trial5_over_cv5": ("nncv_trial5", "nncv_cv5"),
    "large_stacked_over_sequential": ("large_stacked", "large_sequential"),
}


def _timed(run) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _median_ratio(times: dict[str, list[float]], numerator: str, denominator: str) -> float:
    ratios = np.divide(times[numerator], times[denominator])
    return round(float(np.median(ratios)), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--large-rows", type=int, default=20_000)
    parser.add_argument("--large-epochs", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    X, y = load_digits(return_X_y=True)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    net = nncv.NNClassifier(64, batch_size=32, max_epochs=args.epochs, random_state=0)
    model = make_pipeline(StandardScaler(), net)
    mlp = make_pipeline(
        StandardScaler(),
        MLPClassifier(64, batch_size=32, max_iter=args.epochs, random_state=0, tol=0.0),
    )
    rate = net.learning_rate
    space = nncv.SearchSpace(learning_rate=nncv.Categorical([rate]))

    rng = np.random.default_rng(0)
    X_large = rng.standard_normal((args.large_rows, 100), dtype=np.float32)
    y_large = np.argmax(X_large[:, :5] + 0.5 * rng.standard_normal((args.large_rows, 5)), axis=1)
    large = make_pipeline(
        StandardScaler(),
        nncv.NNClassifier(256, batch_size=256, max_epochs=args.large_epochs, random_state=0),
    )

    contenders = {
        "nncv_cv5": lambda: nncv.cross_validate(model, X, y, cv=folds, random_state=0),
        "nncv_cv5_sequential": lambda: nncv.cross_validate(
            model, X, y, cv=folds, random_state=0, stack_folds=False
        ),
        "sklearn_cv5": lambda: sk_cross_validate(mlp, X, y, cv=folds),
        "nncv_trial5": lambda: nncv.tune(
            X, y, model, space, n_trials=1, cv=folds, pruner="none", random_state=0, refit=False
        ),
        "large_stacked": lambda: nncv.cross_validate(large, X_large, y_large, cv=5, random_state=0),
        "large_sequential": lambda: nncv.cross_validate(
            large, X_large, y_large, cv=5, random_state=0, stack_folds=False
        ),
    }
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    with threadpool_limits(limits=1):
        for run in contenders.values():  # warm-up: imports, first-call caches
            run()
        order = np.random.default_rng(0)
        for _ in range(args.repeats):
            for name in order.permutation(list(contenders)):  # no contender always after another
                wall_seconds, cpu_seconds = _timed(contenders[name])
                wall[name].append(wall_seconds)
                cpu[name].append(cpu_seconds)
    print(
        json.dumps(
            {
                **{key: _median_ratio(wall, *pair) for key, pair in RATIOS.items()},
                "cpu": {key: _median_ratio(cpu, *pair) for key, pair in RATIOS.items()},
                "median_seconds": {
                    name: round(float(np.median(values)), 3) for name, values in wall.items()
                },
                "repeats": args.repeats,
                "epochs": args.epochs,
                "large_rows": args.large_rows,
                "load_average": [round(v, 2) for v in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
