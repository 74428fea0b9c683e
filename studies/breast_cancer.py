"""Optuna study on scikit-learn's bundled breast cancer data (569 tumours, 30 features, binary).

A standard-scaled NNClassifier (early stopping on each fold's validation loss, at most 100
epochs) is tuned over nncv's default space by 5-fold CV with lockstep median pruning; the
best pipeline, refit on all the data, is saved with ``nncv.save``.

Usage::

    python studies/breast_cancer.py --trials 40 --cv 5 --storage bc-study.log --out bc.nncv
    python studies/breast_cancer.py --trials 40 --cv 5 --outer 5   # nested CV
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study_cli import StudyScript, main  # noqa: E402

import nncv  # noqa: E402

SCRIPT = StudyScript(
    name="breast_cancer",
    description=__doc__.splitlines()[0],
    scoring="accuracy",
    load=lambda: nncv.datasets.load("breast_cancer"),
    estimator=lambda: nncv.make_pipeline(
        "standard", max_epochs=100, early_stopping=True, patience=10, batch_size=32
    ),
    space=nncv.SearchSpace.default,
)

if __name__ == "__main__":
    main(SCRIPT)
