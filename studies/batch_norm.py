"""Batch normalisation on digits: 3-fold accuracy, and plain SGD at large learning rates.

Part 1 — a standard-scaled ``NNClassifier`` with every default (one hidden layer of 100
ReLU units, Adam at 0.001, batch 32, 200 epochs, L2 1e-3) with and without
``batch_norm=True``, scored by ``nncv.cross_validate`` (3 folds, stratified, shuffled,
``random_state=0``).

Part 2 — plain SGD (``optimizer="sgd", momentum=0``) on two hidden layers of 100 ReLU units,
batch 32, ``max_epochs`` epochs, for each learning rate with and without batch
normalisation: the 3-fold accuracy, or "diverged" when the loss became NaN/inf in a fold
(``DivergedError``).

Usage::

    python studies/batch_norm.py                       # both parts
    python studies/batch_norm.py --part sgd --rates 0.1 1 3 10 --epochs 20
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import nncv
from nncv.exceptions import DivergedError


def cv_accuracy(**params) -> tuple[float, float, list[float]]:
    """Mean and std of the 3-fold accuracy of a standard-scaled NNClassifier."""
    X, y = nncv.datasets.load("digits")
    pipeline = nncv.make_pipeline("standard", random_state=0, **params)
    result = nncv.cross_validate(pipeline, X, y, cv=3, random_state=0)
    scores = [float(s) for s in result.scores["score"]]
    return float(np.mean(scores)), float(np.std(scores)), scores


def part_defaults() -> None:
    print("## digits, 3-fold accuracy, defaults")
    for batch_norm in (False, True):
        start = time.perf_counter()
        mean, std, scores = cv_accuracy(batch_norm=batch_norm)
        elapsed = time.perf_counter() - start
        shown = " ".join(f"{s:.3f}" for s in scores)
        print(f"batch_norm={batch_norm!s:5}  {mean:.3f} ± {std:.3f}  ({shown})  {elapsed:.0f} s")


def part_sgd(rates: list[float], epochs: int) -> None:
    print(f"## digits, plain SGD (momentum 0), hidden (100, 100), {epochs} epochs, 3-fold")
    for rate in rates:
        cells = []
        for batch_norm in (False, True):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mean, std, _ = cv_accuracy(
                        hidden_layer_sizes=(100, 100),
                        optimizer="sgd",
                        momentum=0.0,
                        learning_rate=rate,
                        max_epochs=epochs,
                        batch_norm=batch_norm,
                    )
                cells.append(f"{mean:.3f} ± {std:.3f}")
            except DivergedError:
                cells.append("diverged")
        print(f"learning_rate={rate:<6g}  without BN: {cells[0]:>15}   with BN: {cells[1]:>15}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["defaults", "sgd", "both"], default="both")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0, 10.0])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    if args.part in ("defaults", "both"):
        part_defaults()
    if args.part in ("sgd", "both"):
        part_sgd(args.rates, args.epochs)


if __name__ == "__main__":
    main()
