"""Stacked training of k folds against the same k folds trained one after another.

Each fold is set up exactly as ``cross_validate`` sets it up: an ``NNClassifier`` prepares
its network and trainer from the fold's training rows of ``X`` read by index
(:class:`~nncv.network.training.IndexedRows`, the fold's fitted ``StandardScaler`` as the
row-wise transform). Then the same freshly prepared folds are trained either one after
another (``Trainer.iter_epochs``, as today) or all at once
(:class:`~nncv.network.stacked_training.StackedTrainer`); only training is timed. The two
are interleaved in pairs (sequential, then stacked, on identical set-ups) so a pair sees
the same machine load; the figures are the medians of the per-pair ratios of wall-clock
time and of this process's CPU time (steadier on a loaded machine). BLAS is pinned to one
thread (threadpoolctl). The script also checks that both ways give the same parameters.

Cases: digits (scaled), 64 ReLU units, batch 32, 20 epochs, 5 stratified folds; and the
large case, 20 000 × 100 → 256 → 5 classes, batch 256, 5 folds (3 epochs, 5 pairs).

The last line is JSON::

    {"digits_stacked_over_sequential": r, "digits_stacked_over_sequential_cpu": r,
     "digits_identical": true, "large_stacked_over_sequential": r, ...}

Usage::

    python benchmarks/stacked_core.py            # full run
    python benchmarks/stacked_core.py --quick    # smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from nncv import NNClassifier
from nncv.network.stacked_training import FoldData, StackedTrainer
from nncv.network.training import IndexedRows


def prepare_folds(X, y, n_folds: int, params: dict) -> list[tuple]:
    """``(trainer, inputs, targets)`` per fold, prepared as ``cross_validate`` prepares them."""
    prepared = []
    splits = StratifiedKFold(n_folds, shuffle=True, random_state=0).split(X, y)
    for fold, (train, _) in enumerate(splits):
        scaler = StandardScaler().fit(X[train])
        estimator = NNClassifier(**params, random_state=fold)
        inputs = IndexedRows(X, train, scaler.transform, np.dtype(estimator.dtype))
        inputs, targets, _, _ = estimator._prepare_fit(inputs, y[train], None, None, keep=False)
        prepared.append((estimator._trainer, inputs, targets))
    return prepared


def train_sequential(folds, n_epochs: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds to train the folds one after another."""
    start, start_cpu = time.perf_counter(), time.process_time()
    for trainer, inputs, targets in folds:
        for _ in trainer.iter_epochs(inputs, targets, n_epochs=n_epochs):
            pass
    return time.perf_counter() - start, time.process_time() - start_cpu


def train_stacked(folds, n_epochs: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds to train the folds as one stack."""
    start, start_cpu = time.perf_counter(), time.process_time()
    stack = StackedTrainer(
        [trainer for trainer, _, _ in folds],
        [FoldData(inputs, targets) for _, inputs, targets in folds],
    )
    for _ in stack.advance(n_epochs):
        pass
    stack.close()
    return time.perf_counter() - start, time.process_time() - start_cpu


def measure(name, X, y, params, n_epochs, repeats) -> dict:
    wall, cpu, times = [], [], []
    identical = True
    for _ in range(repeats):
        sequential = prepare_folds(X, y, 5, params)
        stacked = prepare_folds(X, y, 5, params)
        wall_sequential, cpu_sequential = train_sequential(sequential, n_epochs)
        wall_stacked, cpu_stacked = train_stacked(stacked, n_epochs)
        identical &= all(
            np.array_equal(a.network.parameters, b.network.parameters)
            for (a, _, _), (b, _, _) in zip(sequential, stacked, strict=True)
        )
        times.append((wall_sequential, wall_stacked))
        wall.append(wall_stacked / wall_sequential)
        cpu.append(cpu_stacked / cpu_sequential)
    print(
        f"{name}: sequential {statistics.median(t[0] for t in times):.3f} s, stacked "
        f"{statistics.median(t[1] for t in times):.3f} s (wall-clock medians); "
        f"stacked/sequential wall {statistics.median(wall):.3f} "
        f"[{', '.join(f'{r:.3f}' for r in wall)}], CPU {statistics.median(cpu):.3f} "
        f"[{', '.join(f'{r:.3f}' for r in cpu)}]; identical parameters: {identical}"
    )
    return {
        f"{name}_stacked_over_sequential": round(statistics.median(wall), 4),
        f"{name}_stacked_over_sequential_cpu": round(statistics.median(cpu), 4),
        f"{name}_identical": bool(identical),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs and repeats")
    args = parser.parse_args()
    X_digits, y_digits = load_digits(return_X_y=True)
    X_large, y_large = make_classification(
        n_samples=20_000, n_features=100, n_informative=40, n_redundant=20, n_classes=5,
        random_state=0,
    )  # fmt: skip
    common = {"optimizer": "adam", "learning_rate": 1e-3}
    results: dict = {}
    with threadpool_limits(1):
        results.update(
            measure(
                "digits",
                X_digits,
                y_digits,
                {**common, "hidden_layer_sizes": (64,), "batch_size": 32},
                2 if args.quick else 20,
                1 if args.quick else 5,
            )
        )
        results.update(
            measure(
                "large",
                X_large,
                y_large,
                {**common, "hidden_layer_sizes": (256,), "batch_size": 256},
                1 if args.quick else 3,
                1 if args.quick else 5,
            )
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
