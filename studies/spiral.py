"""Optuna study on the NNFS spiral (1000 samples per class × 3 classes), scored on a fresh spiral.

The study tunes a standard-scaled NNClassifier (early stopping, at most 300 epochs, batch 64)
over nncv's default space plus the number of hidden layers (1–3), by 5-fold CV on the seed-0
spiral; the refit pipeline is then scored on a spiral drawn with a fresh seed (1000 per class,
seed 1) — the NNFS book's held-out check (0.873 with 64 units, 0.887 with 256) — and saved
with ``nncv.save``.

Usage::

    python studies/spiral.py --trials 40 --cv 5 --storage spiral-study.log
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study_cli import StudyScript, main  # noqa: E402

import nncv  # noqa: E402

PER_CLASS, CLASSES, TRAIN_SEED, TEST_SEED = 1000, 3, 0, 1

SCRIPT = StudyScript(
    name="spiral",
    description=__doc__.splitlines()[0],
    scoring="accuracy",
    load=lambda: nncv.datasets.spiral(PER_CLASS, CLASSES, random_state=TRAIN_SEED),
    estimator=lambda: nncv.make_pipeline(
        "standard", max_epochs=300, early_stopping=True, patience=15, batch_size=64
    ),
    space=lambda: nncv.SearchSpace.default(n_layers=True),
    held_out=lambda: nncv.datasets.spiral(PER_CLASS, CLASSES, random_state=TEST_SEED),
)

if __name__ == "__main__":
    main(SCRIPT)
