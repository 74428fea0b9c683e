"""Optuna study on the NNFS spiral (1000 samples per class × 3 classes), scored on a fresh spiral.

The study tunes a standard-scaled NNClassifier (200 epochs, batch 64, no early stopping) by
5-fold CV on the seed-0 spiral; the refit pipeline is then scored on a spiral drawn with a
fresh seed (1000 per class, seed 1) — the NNFS book's held-out check (0.873 with 64 units,
0.887 with 256) — and saved with ``nncv.save``.

The space is nncv's default narrowed for a two-feature, dense, noisy problem:

* no L1 and no dropout (two informative inputs, nothing to sparsify; NNFS finds dropout
  costs accuracy on the spiral);
* learning-rate decay always on (1e-5…1e-2 per step), L2 always on (1e-6…1e-3), learning
  rate 1e-3…3e-2, 32–256 units in 2–3 hidden layers;
* no early stopping: on the spiral the validation loss bottoms out long before the
  accuracy does (the network grows over-confident on the noisy points while its boundary
  still improves), so stopping on the loss leaves the refit under-trained.

Usage::

    python studies/spiral.py --trials 40 --cv 5 --storage spiral-study.log
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _study_cli import StudyScript, main  # noqa: E402

import nncv  # noqa: E402
from nncv.search import Float, Int  # noqa: E402

PER_CLASS, CLASSES, TRAIN_SEED, TEST_SEED = 1000, 3, 0, 1


def space() -> nncv.SearchSpace:
    """nncv's default space, narrowed for the spiral (see the module docstring)."""
    return (
        nncv.SearchSpace.default(n_layers=True)
        .drop("l1", "dropout")
        .set(
            learning_rate=Float(1e-3, 3e-2, log=True),
            decay=Float(1e-5, 1e-2, log=True),
            l2=Float(1e-6, 1e-3, log=True),
            hidden_size=Int(32, 256, log=True),
            n_layers=Int(2, 3),
        )
    )


SCRIPT = StudyScript(
    name="spiral",
    description=__doc__.splitlines()[0],
    scoring="accuracy",
    load=lambda: nncv.datasets.spiral(PER_CLASS, CLASSES, random_state=TRAIN_SEED),
    estimator=lambda: nncv.make_pipeline("standard", max_epochs=200, batch_size=64),
    space=space,
    held_out=lambda: nncv.datasets.spiral(PER_CLASS, CLASSES, random_state=TEST_SEED),
)

if __name__ == "__main__":
    main(SCRIPT)
