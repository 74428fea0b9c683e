"""The study scripts run end to end: best parameters printed, pipeline saved, study continued."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

import nncv

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "studies" / script), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "best parameters:" in done.stdout
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_breast_cancer_script_saves_the_best_pipeline_and_continues(tmp_path):
    storage, out = tmp_path / "bc.log", tmp_path / "bc.nncv"
    args = ["--trials", "2", "--cv", "2", "--storage", str(storage), "--out", str(out)]
    first = _run("breast_cancer.py", *args)
    assert 0.5 < first["cv_score"] <= 1
    model = nncv.load(out)
    X, y = nncv.datasets.load("breast_cancer")
    assert np.mean(model.predict(X) == y) > 0.8
    _run("breast_cancer.py", *args)
    storage_obj = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(storage))
    )
    study = optuna.load_study(study_name="breast_cancer", storage=storage_obj)
    assert len(study.trials) == 4


@pytest.mark.slow
def test_script_refuses_a_changed_study_with_a_clear_message(tmp_path):
    storage = tmp_path / "d.log"
    base = ["--trials", "1", "--storage", str(storage), "--out", str(tmp_path / "d.nncv")]
    _run("diabetes.py", *base, "--cv", "2")
    done = subprocess.run(
        [sys.executable, str(ROOT / "studies" / "diabetes.py"), *base, "--cv", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "error: study 'diabetes' has 2 folds fixed on it, but cv asks for 3" in done.stderr
    assert "Traceback" not in done.stderr


def test_nested_cv_scores_every_refit_kind_from_one_study_per_outer_fold():
    """``--outer 2 --refit all`` gives, from one study per outer fold, the scores
    ``cross_val_score`` over ``NNSearchCV(refit=...)`` gives with one study per kind."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    sys.path.insert(0, str(ROOT / "studies"))
    try:
        from _study_cli import main
        from breast_cancer import SCRIPT
    finally:
        sys.path.remove(str(ROOT / "studies"))
    argv = ["--trials", "2", "--cv", "2", "--outer", "2", "--max-epochs", "4", "--quiet"]
    summary = main(SCRIPT, [*argv, "--refit", "all", "--ensemble-size", "2"])
    assert summary["refit_kinds"] == ["refit", "ensemble", "seed_ensemble"]
    X, y = SCRIPT.load()
    outer = StratifiedKFold(2, shuffle=True, random_state=0)
    for kind, refit in (("refit", True), ("ensemble", "ensemble")):
        estimator = SCRIPT.estimator().set_params(net__max_epochs=4)
        search = nncv.NNSearchCV(
            estimator, SCRIPT.space(), n_trials=2, cv=2, scoring="accuracy", refit=refit,
            random_state=0,
        )  # fmt: skip
        expected = cross_val_score(search, X, y, cv=outer)
        np.testing.assert_array_equal(summary[kind]["outer_scores"], expected)
    assert len(summary["seed_ensemble"]["outer_scores"]) == 2


def test_set_option_reaches_the_network_and_refuses_a_bare_name(capsys):
    sys.path.insert(0, str(ROOT / "studies"))
    try:
        from _study_cli import _estimator, parse
        from digits import SCRIPT
    finally:
        sys.path.remove(str(ROOT / "studies"))
    assert _estimator(SCRIPT, parse(SCRIPT, []))[-1].batch_norm is True  # the script's default
    args = parse(SCRIPT, ["--set", "batch_norm=false", "--set", "patience=20", "--set", "x=a"])
    assert args.network_params == {"batch_norm": False, "patience": 20, "x": "a"}
    del args.network_params["x"]
    network = _estimator(SCRIPT, args)[-1]
    assert network.batch_norm is False and network.patience == 20
    with pytest.raises(SystemExit):
        parse(SCRIPT, ["--set", "batch_norm"])
    assert "--set takes NAME=VALUE" in capsys.readouterr().err


def test_nested_cv_with_one_refit_kind_keeps_the_flat_summary():
    """``--outer`` with the default ``--refit refit``: the summary of earlier versions."""
    argv = ["--trials", "2", "--cv", "2", "--outer", "2", "--max-epochs", "3", "--json"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "studies" / "breast_cancer.py"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["refit"] == "refit" and len(summary["outer_scores"]) == 2
    assert summary["nested_score"] == pytest.approx(np.mean(summary["outer_scores"]))
