"""One study, twice: in one process (``n_workers=1``) and on a 2-worker Dask LocalCluster.

Both runs do exactly the same work: the same ``--trials`` parameter sets are enqueued on
each study (so trial ``t`` has the same parameters, fold seeds and therefore scores on
both), ``--folds`` stratified folds of scikit-learn's digits, a standard-scaled
``NNClassifier`` (``--hidden`` units, ``--epochs`` epochs, batch 32), no pruning, BLAS
held to one thread in every process. The cluster has two worker *processes* of one thread
each (``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``); its start-up
is timed apart and is not in the ratio.

Prints one JSON line: ``one_process_s``, ``dask_s``, ``ratio`` = dask_s / one_process_s
(0.5 is perfect scaling on two workers), ``cluster_start_s``, ``same_scores`` (every
trial's value and fold scores equal on both studies), the machine's CPU count and load
average when the run began. Timings on a shared machine are noisy: compare ratios from
one run, never absolute seconds.

Usage::

    python benchmarks/dask_scaling.py                 # about a minute on two free cores
    python benchmarks/dask_scaling.py --trials 4 --epochs 5   # quick try
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from datetime import datetime

import numpy as np
import optuna

import nncv
from nncv.search import Float, Int, SearchSpace, tune
from nncv.search._storage import make_storage

SPACE = SearchSpace(learning_rate=Float(1e-3, 1e-1, log=True), hidden_size=Int(8, 64))


def enqueued_study(path: str, params: list[dict]) -> str:
    study = optuna.create_study(storage=make_storage(path), study_name="b", direction="maximize")
    for values in params:
        study.enqueue_trial(values)
    return study.study_name


def run(args: argparse.Namespace, backend, path: str, params: list[dict]):
    model = nncv.make_pipeline(
        "standard", hidden_layer_sizes=args.hidden, max_epochs=args.epochs, batch_size=32
    )
    X, y = nncv.datasets.load("digits")
    started = time.perf_counter()
    result = tune(
        X,
        y,
        model,
        SPACE,
        n_trials=len(params),
        cv=args.folds,
        pruner="none",
        storage=path,
        study_name=enqueued_study(path, params),
        random_state=0,
        refit=False,
        backend=backend,
    )
    return time.perf_counter() - started, result.study


def fingerprint(study: optuna.Study) -> list:
    return [
        (t.number, t.params, t.value, t.user_attrs.get("nncv_fold_scores"))
        for t in sorted(study.trials, key=lambda t: t.number)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=32)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from distributed import Client, LocalCluster

    rng = np.random.default_rng(0)
    params = [
        {"learning_rate": float(10 ** rng.uniform(-3, -1)), "hidden_size": int(rng.integers(8, 65))}
        for _ in range(args.trials)
    ]
    load = os.getloadavg()[0]
    directory = tempfile.mkdtemp(prefix="nncv-dask-bench-")
    one_s, one_study = run(args, "loky", os.path.join(directory, "one.log"), params)
    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: __import__("nncv.search") and None)  # imports: start-up, not work
        start_s = time.perf_counter() - started
        dask_s, dask_study = run(args, client, os.path.join(directory, "dask.log"), params)
    print(
        json.dumps(
            {
                "benchmark": "dask_scaling",
                "when": datetime.now().isoformat(timespec="seconds"),
                "trials": args.trials,
                "folds": args.folds,
                "epochs": args.epochs,
                "one_process_s": round(one_s, 2),
                "dask_s": round(dask_s, 2),
                "ratio": round(dask_s / one_s, 3),
                "cluster_start_s": round(start_s, 2),
                "same_scores": fingerprint(one_study) == fingerprint(dask_study),
                "cpu_count": os.cpu_count(),
                "load_average_at_start": round(load, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
