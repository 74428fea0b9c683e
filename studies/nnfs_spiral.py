"""Reproduce the NNFS book's chapter 14 (L1/L2 regularisation) results with nncv's network.

Every run: spiral data (``nncv.datasets.spiral``, the book's formula), Dense(2, units) → ReLU →
Dense(units, 3) → softmax + categorical cross-entropy, weights 0.01·N(0, 1), Adam with learning
rate 0.02 and decay 5e-7 per step, full batch, 10 001 epochs, float64; validated, as in the book,
on a fresh spiral of 100 samples per class. The rows are the book's four runs:

=====================  ===============  =====  =====  ====================
row                    train per class  units  L2     book val acc / loss
=====================  ===============  =====  =====  ====================
without L2             100              64     —      0.803 / 0.858
with L2                100              64     5e-4   0.830 / 0.435
1000 samples/class     1000             64     5e-4   0.873 / 0.332
256 units              1000             256    5e-4   0.887 / 0.331
=====================  ===============  =====  =====  ====================

L2 is on the first layer's weights and biases only (the book's ``Layer_Dense(2, 64,
weight_regularizer_l2=5e-4, bias_regularizer_l2=5e-4)``). The book reports one run with its own
random state; this script reports mean ± std over ``--seeds`` seeds (seed ``s``: training spiral
``s``, validation spiral ``s + 1000``, network and initial weights ``s``).

Usage::

    python studies/nnfs_spiral.py                 # 3 seeds, about a minute per seed on 1 core
    python studies/nnfs_spiral.py --seeds 5 --n-jobs 2
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from nncv.datasets import spiral
from nncv.network import Network, Trainer, metrics, optimizers, schedules

VALIDATION_PER_CLASS = 100
N_CLASSES = 3


@dataclass(frozen=True)
class Row:
    """One of the book's runs and the figures it printed."""

    name: str
    train_per_class: int
    units: int
    l2: float
    book_accuracy: float
    book_loss: float


ROWS = (
    Row("without L2", 100, 64, 0.0, 0.803, 0.858),
    Row("with L2", 100, 64, 5e-4, 0.830, 0.435),
    Row("1000 samples/class", 1000, 64, 5e-4, 0.873, 0.332),
    Row("256 units", 1000, 256, 5e-4, 0.887, 0.331),
)


def run(row: Row, seed: int, n_epochs: int) -> tuple[float, float]:
    """Train one configuration with one seed; return (validation accuracy, validation loss)."""
    with threadpool_limits(limits=1, user_api="blas"):
        X, y = spiral(row.train_per_class, N_CLASSES, random_state=seed)
        X_val, y_val = spiral(VALIDATION_PER_CLASS, N_CLASSES, random_state=seed + 1000)
        network = Network(
            2,
            [row.units],
            N_CLASSES,
            activation="relu",
            loss="softmax_cross_entropy",
            init="nnfs",
            weight_l2=(row.l2, 0.0),
            bias_l2=(row.l2, 0.0),
            dtype=np.float64,
        )
        network.initialize(np.random.default_rng(seed))
        trainer = Trainer(
            network,
            optimizers.Adam(),
            schedules.InverseTimeDecay(0.02, 5e-7),
            rng=np.random.default_rng(seed),
            batch_size=None,
            score=metrics.accuracy,
        )
        for _ in trainer.iter_epochs(X, np.eye(N_CLASSES)[y], n_epochs=n_epochs):
            pass
        loss, accuracy = trainer.evaluate(X_val, np.eye(N_CLASSES)[y_val])
    return accuracy, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 (default 3)")
    parser.add_argument("--epochs", type=int, default=10_001, help="epochs (book: 10 001)")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel runs (joblib)")
    args = parser.parse_args()
    if args.seeds < 1 or args.epochs < 1:
        parser.error("--seeds and --epochs must be at least 1")

    seeds = range(args.seeds)
    start = time.perf_counter()
    results = Parallel(n_jobs=args.n_jobs)(
        delayed(run)(row, seed, args.epochs) for row in ROWS for seed in seeds
    )
    elapsed = time.perf_counter() - start

    print(
        f"NNFS chapter 14 on nncv: {args.epochs} epochs, seeds 0..{args.seeds - 1}, "
        f"validation {VALIDATION_PER_CLASS}/class ({elapsed:.0f} s)"
    )
    header = (
        f"{'run':<20} {'book acc':>8} {'nncv acc (mean ± std)':>22} "
        f"{'book loss':>9} {'nncv loss (mean ± std)':>23}  per-seed acc"
    )
    print(header)
    print("-" * len(header))
    for index, row in enumerate(ROWS):
        runs = results[index * args.seeds : (index + 1) * args.seeds]
        accuracies = np.array([accuracy for accuracy, _ in runs])
        losses = np.array([loss for _, loss in runs])
        print(
            f"{row.name:<20} {row.book_accuracy:>8.3f} "
            f"{accuracies.mean():>14.3f} ± {accuracies.std():.3f} "
            f"{row.book_loss:>9.3f} {losses.mean():>15.3f} ± {losses.std():.3f}  "
            + " ".join(f"{a:.3f}" for a in accuracies)
        )


if __name__ == "__main__":
    main()
