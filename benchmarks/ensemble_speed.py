"""Speed of an ensemble's one stacked pass (and stacked fit) against its members one by one.

In one invocation, BLAS held to one thread (threadpoolctl), medians over ``--repeats``
paired runs, on scikit-learn's digits (1797 rows), a :class:`nncv.SeedEnsemble` of
``--members`` standard-scaled networks of ``--hidden`` units (float32):

* ``predict_over_loop`` — ``ensemble.predict_proba(X)`` (one stacked forward pass) over the
  mean of the members' own ``predict_proba(X)``;
* ``fit_over_loop`` — ``ensemble.fit(X, y)`` (the members trained as one stack) over fitting
  a clone of each member in turn, ``--epochs`` epochs.

Prints one JSON line (the ratios, the medians in seconds, the load average).

Usage::

    python benchmarks/ensemble_speed.py
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import nncv
from nncv.ensemble import SeedEnsemble


def _seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = nncv.datasets.load("digits")
    template = nncv.make_pipeline("standard", hidden_layer_sizes=args.hidden)
    template.set_params(net__max_epochs=args.epochs)
    ensemble = SeedEnsemble.from_estimator(template, args.members, random_state=0).fit(X, y)
    members = ensemble.estimators_

    def loop_predict():
        return np.mean([member.predict_proba(X) for member in members], axis=0)

    timings: dict[str, list[float]] = {k: [] for k in ("predict", "loop", "fit", "loop_fit")}
    with threadpool_limits(limits=1):
        ensemble.predict_proba(X), loop_predict()  # warm up
        for _ in range(args.repeats):
            timings["predict"].append(_seconds(lambda: ensemble.predict_proba(X)))
            timings["loop"].append(_seconds(loop_predict))
        for _ in range(max(1, args.repeats // 2)):
            timings["fit"].append(_seconds(lambda: clone(ensemble).fit(X, y)))
            timings["loop_fit"].append(
                _seconds(lambda: [clone(t).fit(X, y) for t in ensemble.estimators])
            )
    medians = {k: float(np.median(v)) for k, v in timings.items()}
    print(
        json.dumps(
            {
                "predict_over_loop": medians["predict"] / medians["loop"],
                "fit_over_loop": medians["fit"] / medians["loop_fit"],
                "median_seconds": medians,
                "members": args.members,
                "hidden": args.hidden,
                "epochs": args.epochs,
                "load_average": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
