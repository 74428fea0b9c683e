"""Optuna study on scikit-learn's bundled diabetes data (442 patients, 10 features; regression).

A standard-scaled NNRegressor (targets standardised internally, early stopping on each fold's
validation loss, at most 200 epochs) is tuned over nncv's default space by 5-fold CV on R²
with lockstep median pruning; the best pipeline is saved with ``nncv.save``.

Usage::

    python studies/diabetes.py --trials 40 --cv 5 --storage diabetes-study.log
    python studies/diabetes.py --trials 40 --cv 5 --outer 5   # nested CV
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study_cli import StudyScript, main  # noqa: E402

import nncv  # noqa: E402

SCRIPT = StudyScript(
    name="diabetes",
    description=__doc__.splitlines()[0],
    load=lambda: nncv.datasets.load("diabetes"),
    estimator=lambda: nncv.make_pipeline(
        "standard",
        regressor=True,
        max_epochs=200,
        early_stopping=True,
        patience=10,
        batch_size=32,
    ),
    space=nncv.SearchSpace.default,
    scoring="r2",
)

if __name__ == "__main__":
    main(SCRIPT)
