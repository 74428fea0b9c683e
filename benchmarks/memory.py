"""Peak memory of a 5-fold cross-validation on large float32 data: nncv vs scikit-learn.

Runs, in the same invocation, a 5-fold ``nncv.cross_validate`` of a standard-scaled
``NNClassifier`` (2 epochs) and scikit-learn's ``cross_validate`` of the same pipeline
with ``MLPClassifier`` (``max_iter=2``), both with ``n_jobs=2``, on an
``n_samples × n_features`` float32 matrix (1 000 000 × 100 = 400 MB by default).

Each library runs in a fresh child process (so neither inherits the other's worker
pool or heap); this process samples the summed PSS (proportional set size: pages shared
by several processes — joblib's memory maps — count once in total) of that child and all
its descendants every 50 ms with psutil. It prints one line of details per run, then one
JSON line ``{"nncv_over_x": a, "sklearn_over_x": b, "tune_over_x": c}``: the peak summed
PSS over the size of X. ``tune_over_x`` is a one-trial 5-fold ``nncv.tune`` study of the
same pipeline on the same data (the trial's parameters fixed to the pipeline's, no refit,
no pruner; one process: the study's folds advance in lockstep in it).

PSS does not see the copy of X that joblib writes to its temporary folder (``/dev/shm``
on Linux) and maps in the workers only as they read it; ``shm_peak_mb`` in the details
lines shows how much that folder grew, for both libraries alike.

Usage::

    python benchmarks/memory.py                      # 1 000 000 × 100, a few minutes
    python benchmarks/memory.py --n-samples 100000   # quick try
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import psutil


def make_data(n_samples: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """A float32 matrix and a binary target that depends on it (deterministic)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    X *= rng.uniform(0.5, 20.0, n_features).astype(np.float32)  # so scaling matters
    y = (X[:, : min(10, n_features)].sum(axis=1) > 0).astype(np.int64)
    return X, y


def run_one(library: str, n_samples: int, n_features: int, n_jobs: int) -> dict:
    """Run one cross-validation in this process; return what the parent reports."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_data(n_samples, n_features)
    start = time.perf_counter()
    warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning after 2 epochs
    if library in ("nncv", "tune"):
        import nncv
        from nncv.cv import cross_validate

        model = Pipeline(
            [
                ("scale", StandardScaler()),
                ("net", nncv.NNClassifier(hidden_layer_sizes=(100,), batch_size=200, max_epochs=2)),
            ]
        )
        if library == "nncv":
            result = cross_validate(model, X, y, cv=5, n_jobs=n_jobs, random_state=0)
            scores = result.scores["score"]
        else:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            rate = model.get_params()["net__learning_rate"]
            space = nncv.SearchSpace(learning_rate=nncv.Categorical([rate]))
            study = nncv.tune(
                X, y, model, space, n_trials=1, cv=5, pruner="none", random_state=0, refit=False
            )
            scores = study.fold_scores["score"]
    else:
        from sklearn.model_selection import StratifiedKFold, cross_validate
        from sklearn.neural_network import MLPClassifier

        model = Pipeline(
            [
                ("scale", StandardScaler()),
                ("net", MLPClassifier(hidden_layer_sizes=(100,), batch_size=200, max_iter=2)),
            ]
        )
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        scores = cross_validate(model, X, y, cv=folds, n_jobs=n_jobs)["test_score"]
    return {
        "x_bytes": int(X.nbytes),
        "x_dtype": str(X.dtype),
        "seconds": round(time.perf_counter() - start, 2),
        "mean_accuracy": round(float(np.mean(scores)), 4),
    }


class PeakSampler(threading.Thread):
    """Sample the summed PSS of a process tree (and /dev/shm use) every ``interval`` s."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_pss = 0
        self.samples = 0
        self.shm_base = _shm_used()
        self.shm_peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            total = 0
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for process in processes:
                try:
                    total += process.memory_full_info().pss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    pass
            self.peak_pss = max(self.peak_pss, total)
            self.shm_peak = max(self.shm_peak, _shm_used() - self.shm_base)
            self.samples += 1
            self.done.wait(self.interval)


def _shm_used() -> int:
    try:
        return shutil.disk_usage("/dev/shm").used
    except OSError:
        return 0


def measure(library: str, args: argparse.Namespace) -> dict:
    """Run ``library``'s cross-validation in a child process and sample its memory."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        library,
        "--n-samples",
        str(args.n_samples),
        "--n-features",
        str(args.n_features),
        "--n-jobs",
        str(args.n_jobs),
    ]
    environment = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment)
    sampler = PeakSampler(child.pid, args.interval)
    sampler.start()
    output, _ = child.communicate()
    sampler.done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"the {library} run failed with exit code {child.returncode}")
    details = json.loads(output.strip().splitlines()[-1])
    details.update(
        library=library,
        peak_pss_mb=round(sampler.peak_pss / 2**20, 1),
        x_mb=round(details["x_bytes"] / 2**20, 1),
        peak_over_x=round(sampler.peak_pss / details["x_bytes"], 3),
        shm_peak_mb=round(sampler.shm_peak / 2**20, 1),
        samples=sampler.samples,
    )
    return details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    parser.add_argument("--n-features", type=int, default=100)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between samples")
    parser.add_argument("--child", choices=["nncv", "sklearn", "tune"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.n_samples, args.n_features, args.n_jobs)))
        return
    runs = {library: measure(library, args) for library in ("nncv", "sklearn", "tune")}
    for details in runs.values():
        print(json.dumps(details), flush=True)
    print(
        json.dumps(
            {
                "nncv_over_x": runs["nncv"]["peak_over_x"],
                "sklearn_over_x": runs["sklearn"]["peak_over_x"],
                "tune_over_x": runs["tune"]["peak_over_x"],
            }
        )
    )


if __name__ == "__main__":
    main()
