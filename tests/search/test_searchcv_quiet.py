"""NNSearchCV prints Optuna's per-trial lines only when asked (``verbose``), also in the
worker processes of a parallel nested CV, as the library calls do."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
from sklearn.model_selection import cross_val_score
import nncv
X, y = nncv.datasets.load("iris")
search = nncv.NNSearchCV(nncv.NNClassifier(8, random_state=0),
                         {"learning_rate": (1e-3, 1e-1), "max_epochs": [2]},
                         n_trials=2, cv=3, random_state=0, verbose=int(sys.argv[1]))
if sys.argv[2] == "nested":
    cross_val_score(search, X, y, cv=2, n_jobs=2)
else:
    search.fit(X, y)
"""


def _stderr(verbose: int, how: str) -> str:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(verbose), how],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return run.stderr


@pytest.mark.parametrize("how", ["fit", "nested"])
def test_no_trial_lines_unless_verbose(how):
    assert "Trial 0 finished" not in _stderr(0, how)


def test_verbose_prints_the_trial_lines():
    assert "Trial 0 finished" in _stderr(1, "fit")
