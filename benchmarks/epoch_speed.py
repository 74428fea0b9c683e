"""Time per epoch of nncv's scratch network against scikit-learn's ``MLPClassifier``.

Both train the same data with the same architecture (one ReLU hidden layer, softmax output),
the same optimiser (Adam, constant learning rate 1e-3, no regularisation), the same batch size
and the same dtype, shuffling every epoch. Both are timed in this run, interleaved, with BLAS
pinned to one thread (threadpoolctl); the times shown are the median of several repeats of a
whole fit (set-up included) divided by the number of epochs, and the ratio is the median of
the per-repeat ratios (each nncv fit is paired with the MLPClassifier fit right after it, so
a pair sees the same machine load).

``MLPClassifier`` keeps float32 input in float32 (scikit-learn ≥ 1.x validates with
``dtype=(float64, float32)``); the script checks that its fitted coefficients have the
requested dtype, so both sides really compute in the same precision.

Besides the times it prints the achieved training GFLOP/s (``2·m·n·k`` per matrix product of
the forward and backward passes) next to numpy's own GEMM GFLOP/s on exactly the shapes of one
epoch, i.e. how far each loop is from "nothing but the matrix products".

The last line is JSON: ``{"digits_f32": r, "digits_f64": r, "large_f32": r, "large_f64": r}``
with ``r = nncv time / MLPClassifier time`` (lower is better).

Usage::

    python benchmarks/epoch_speed.py            # full run (a few minutes on 2 cores)
    python benchmarks/epoch_speed.py --quick    # smoke test, a few seconds
    python benchmarks/epoch_speed.py --cpu-time # CPU time of this process: steadier under load
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_info, threadpool_limits

from nncv.network import Network, Trainer, optimizers, schedules

LEARNING_RATE = 1e-3
ADAM_EPSILON = 1e-8  # MLPClassifier's default; nncv's Adam takes it as a parameter


@dataclass(frozen=True)
class Case:
    """One benchmark configuration."""

    name: str
    X: np.ndarray
    y: np.ndarray
    hidden: int
    batch_size: int
    n_epochs: int


def make_cases(quick: bool) -> list[Case]:
    """(a) digits, 64 units, batch 32; (b) 20 000 × 100, 5 classes, 256 units, batch 256."""
    X_digits, y_digits = load_digits(return_X_y=True)
    X_digits = X_digits / 16.0
    X_large, y_large = make_classification(
        n_samples=20_000,
        n_features=100,
        n_informative=40,
        n_redundant=20,
        n_classes=5,
        random_state=0,
    )
    return [
        Case("digits", X_digits, y_digits, 64, 32, 4 if quick else 30),
        Case("large", X_large, y_large, 256, 256, 2 if quick else 8),
    ]


# ----------------------------------------------------------------------------- the two fits
def fit_nncv(X: np.ndarray, y: np.ndarray, case: Case, dtype) -> tuple[float, np.dtype]:
    """Everything ``NNClassifier.fit`` would do from ``(X, y)``: encode, build, train."""
    classes, codes = np.unique(y, return_inverse=True)
    targets = np.zeros((len(y), len(classes)), dtype=dtype)
    targets[np.arange(len(y)), codes] = 1
    network = Network(X.shape[1], [case.hidden], len(classes), activation="relu", dtype=dtype)
    rng = np.random.default_rng(0)
    network.initialize(rng)
    trainer = Trainer(
        network,
        optimizers.Adam(epsilon=ADAM_EPSILON),
        schedules.InverseTimeDecay(LEARNING_RATE),
        rng=rng,
        batch_size=case.batch_size,
    )
    records = list(trainer.iter_epochs(X, targets, n_epochs=case.n_epochs))
    return records[-1]["data_loss"], network.parameters.dtype


def fit_sklearn(X: np.ndarray, y: np.ndarray, case: Case, dtype) -> tuple[float, np.dtype]:
    """``MLPClassifier`` doing the same work: no early stop, no tolerance stop."""
    model = MLPClassifier(
        hidden_layer_sizes=(case.hidden,),
        activation="relu",
        solver="adam",
        alpha=0.0,
        batch_size=case.batch_size,
        learning_rate_init=LEARNING_RATE,
        epsilon=ADAM_EPSILON,
        max_iter=case.n_epochs,
        tol=0.0,
        n_iter_no_change=10**9,
        early_stopping=False,
        shuffle=True,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model.loss_, model.coefs_[0].dtype


CLOCK = time.perf_counter


def time_call(function: Callable[[], object]) -> tuple[float, object]:
    start = CLOCK()
    result = function()
    return CLOCK() - start, result


# ------------------------------------------------------------------------------ FLOP counts
def gemm_shapes(n_rows: int, widths: list[int], batch_size: int) -> list[tuple[int, int, int]]:
    """``(m, k, n)`` of every matrix product in one epoch of forward + backward passes.

    Per Dense layer ``(n_in, n_out)`` and batch ``b``: forward ``X @ W`` (b, n_in, n_out),
    weight gradient ``X.T @ G`` (n_in, b, n_out), and for every layer but the first the input
    gradient ``G @ W.T`` (b, n_out, n_in). Both libraries compute exactly these.
    """
    shapes = []
    for start in range(0, n_rows, batch_size):
        b = min(batch_size, n_rows - start)
        for index, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            shapes.append((b, n_in, n_out))
            shapes.append((n_in, b, n_out))
            if index > 0:
                shapes.append((b, n_out, n_in))
    return shapes


def flops(shapes: list[tuple[int, int, int]]) -> float:
    return float(sum(2 * m * k * n for m, k, n in shapes))


def numpy_gemm_seconds(shapes: list[tuple[int, int, int]], dtype, repeats: int) -> float:
    """numpy's time for the epoch's products alone, each shape timed on preallocated arrays
    in the same memory layouts nncv uses (``X.T @ G`` reads a transposed view)."""
    rng = np.random.default_rng(0)
    total = 0.0
    distinct: dict[tuple[int, int, int], int] = {}
    for shape in shapes:
        distinct[shape] = distinct.get(shape, 0) + 1
    for (m, k, n), count in distinct.items():
        left = rng.standard_normal((m, k)).astype(dtype)
        right = rng.standard_normal((k, n)).astype(dtype)
        out = np.empty((m, n), dtype)
        np.dot(left, right, out=out)
        best = []
        inner = max(1, int(2e8 / (2 * m * k * n)))
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(inner):
                np.dot(left, right, out=out)
            best.append((time.perf_counter() - start) / inner)
        total += statistics.median(best) * count
    return total


# ------------------------------------------------------------------------------------ main
def run_case(case: Case, dtype, repeats: int) -> dict[str, float]:
    X = np.ascontiguousarray(case.X, dtype=dtype)
    y = case.y
    warm = Case(case.name, case.X, case.y, case.hidden, case.batch_size, 1)
    fit_nncv(X, y, warm, dtype)
    fit_sklearn(X, y, warm, dtype)
    nncv_times, sklearn_times = [], []
    for _ in range(repeats):
        seconds, (nncv_loss, nncv_dtype) = time_call(lambda: fit_nncv(X, y, case, dtype))
        nncv_times.append(seconds)
        seconds, (sk_loss, sk_dtype) = time_call(lambda: fit_sklearn(X, y, case, dtype))
        sklearn_times.append(seconds)
    if nncv_dtype != np.dtype(dtype) or sk_dtype != np.dtype(dtype):
        raise RuntimeError(
            f"dtype mismatch: asked {np.dtype(dtype)}, nncv used {nncv_dtype}, "
            f"MLPClassifier used {sk_dtype}"
        )
    nncv_epoch = statistics.median(nncv_times) / case.n_epochs
    sklearn_epoch = statistics.median(sklearn_times) / case.n_epochs
    # Each nncv fit is timed right before an MLPClassifier fit: the ratio of each such pair
    # sees the same machine load, so their median is steadier than a ratio of medians.
    ratio = statistics.median(n / s for n, s in zip(nncv_times, sklearn_times, strict=True))
    widths = [X.shape[1], case.hidden, len(np.unique(y))]
    shapes = gemm_shapes(X.shape[0], widths, case.batch_size)
    epoch_flops = flops(shapes)
    gemm_epoch = numpy_gemm_seconds(shapes, dtype, repeats=5)
    return {
        "nncv_ms": 1e3 * nncv_epoch,
        "sklearn_ms": 1e3 * sklearn_epoch,
        "ratio": ratio,
        "nncv_gflops": epoch_flops / nncv_epoch / 1e9,
        "sklearn_gflops": epoch_flops / sklearn_epoch / 1e9,
        "gemm_gflops": epoch_flops / gemm_epoch / 1e9,
        "gemm_ms": 1e3 * gemm_epoch,
        "nncv_loss": nncv_loss,
        "sklearn_loss": sk_loss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per library and case")
    parser.add_argument("--quick", action="store_true", help="few epochs and repeats (smoke test)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with this process's CPU time instead of wall time (steadier on a busy machine;"
        " both libraries run single-threaded here)",
    )
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    repeats = 1 if args.quick else args.repeats

    blas = ", ".join(
        f"{info['internal_api']} {info.get('version')}"
        for info in threadpool_info()
        if info["user_api"] == "blas"
    )
    print(
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, BLAS {blas}, "
        f"Python {platform.python_version()}, 1 BLAS thread, median of {repeats} fits "
        "(ratio: median of the paired per-fit ratios), "
        f"{'CPU' if args.cpu_time else 'wall'} time"
    )
    header = (
        f"{'case':<7} {'dtype':<7} {'epochs':>6} {'nncv ms':>9} {'sklearn ms':>10} {'ratio':>6} "
        f"{'nncv GF/s':>9} {'skl GF/s':>8} {'GEMM GF/s':>9} {'GEMM ms':>8} "
        f"{'nncv loss':>9} {'skl loss':>8}"
    )
    print(header)
    print("-" * len(header))
    ratios: dict[str, float] = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for case in make_cases(args.quick):
            for dtype, suffix in ((np.float32, "f32"), (np.float64, "f64")):
                result = run_case(case, dtype, repeats)
                ratios[f"{case.name}_{suffix}"] = round(result["ratio"], 3)
                print(
                    f"{case.name:<7} {np.dtype(dtype).name:<7} {case.n_epochs:>6} "
                    f"{result['nncv_ms']:>9.2f} {result['sklearn_ms']:>10.2f} "
                    f"{result['ratio']:>6.3f} {result['nncv_gflops']:>9.2f} "
                    f"{result['sklearn_gflops']:>8.2f} {result['gemm_gflops']:>9.2f} "
                    f"{result['gemm_ms']:>8.2f} {result['nncv_loss']:>9.4f} "
                    f"{result['sklearn_loss']:>8.4f}",
                    flush=True,
                )
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
