"""Tests for the ``nncv`` command line (nncv/cli.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from typer.testing import CliRunner

import nncv
from nncv.cli import app, parse_params

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def cancer_csv(tmp_path_factory):
    data = load_breast_cancer(as_frame=True)
    frame = data.data.iloc[:, :6].copy()
    frame.columns = [name.replace(" ", "_") for name in frame.columns]
    frame["label"] = np.where(data.target == 1, "benign", "malignant")
    path = tmp_path_factory.mktemp("data") / "cancer.csv"
    frame.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------- cv


def test_cv_prints_fold_scores_and_writes_curves(tmp_path):
    curves = tmp_path / "curves.csv"
    scores = tmp_path / "scores.parquet"
    result = invoke(
        "cv",
        "iris",
        "--cv",
        3,
        "-p",
        "max_epochs=4",
        "-p",
        "hidden_layer_sizes=(8,)",
        "-s",
        "accuracy",
        "-s",
        "f1_macro",
        "--seed",
        1,
        "--curves",
        curves,
        "--scores",
        scores,
    )
    assert result.exit_code == 0, result.output
    choice, *lines = result.output.splitlines()
    assert choice == "NNClassifier, score = accuracy, f1_macro"
    assert lines[0].split() == ["fold", "accuracy", "f1_macro", "fit_time", "score_time"]
    assert [line.split()[0] for line in lines[1:6]] == ["0", "1", "2", "mean", "std"]
    written = pd.read_csv(curves)
    assert len(written) == 3 * 4 and set(written.fold) == {0, 1, 2}
    table = pd.read_parquet(scores)
    expected = nncv.cross_validate(
        nncv.make_pipeline("standard", max_epochs=4, hidden_layer_sizes=(8,)),
        *nncv.datasets.load("iris"),
        cv=3,
        scoring=["accuracy", "f1_macro"],
        random_state=1,
    )
    np.testing.assert_array_equal(table.accuracy, expected.scores["accuracy"])
    mean_line = next(line for line in lines if line.startswith("mean"))
    assert float(mean_line.split()[1]) == pytest.approx(expected.mean("accuracy"), abs=5e-5)


def test_cv_reads_a_csv_with_its_target_column(cancer_csv):
    result = invoke(
        "cv", cancer_csv, "--target", "label", "--cv", 2, "-p", "max_epochs=3", "--seed", 0
    )
    assert result.exit_code == 0, result.output
    mean_line = next(line for line in result.output.splitlines() if line.startswith("mean"))
    assert 0.6 < float(mean_line.split()[1]) <= 1.0


def test_cv_picks_a_regressor_for_a_continuous_target():
    result = invoke("cv", "diabetes", "--cv", 2, "-p", "max_epochs=2", "-s", "r2")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "NNRegressor, score = r2"
    assert "score" in result.output.splitlines()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cv", "irsi"], "did you mean 'iris'"),
        (["cv", "iris", "-p", "learnin_rate=0.1"], "did you mean 'learning_rate'"),
        (["cv", "iris", "-p", "learning_rate"], "name=value"),
        (["cv", "missing.csv", "--target", "y"], "no such file"),
        (["cv", "iris", "--target", "y"], "--target is for CSV"),
        (["cv", "iris", "-s", "acuracy"], "acuracy"),
        (["cv", "iris", "--task", "ranker"], "--task"),
    ],
)
def test_bad_arguments_exit_1_with_one_clear_line(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_csv_without_target_is_refused(cancer_csv):
    result = invoke("cv", cancer_csv)
    assert result.exit_code == 1
    assert "--target" in result.output


def test_parse_params_reads_python_literals():
    assert parse_params(["a=1", "b=2.5e-3", "c=(4, 4)", "d=relu", "e=true", "f=None"]) == {
        "a": 1,
        "b": 2.5e-3,
        "c": (4, 4),
        "d": "relu",
        "e": True,
        "f": None,
    }


# -------------------------------------------------------------------- predict


def test_predict_writes_the_models_predictions(tmp_path, cancer_csv):
    frame = pd.read_csv(cancer_csv)
    features, target = frame.drop(columns="label"), frame["label"]
    model = nncv.make_pipeline("standard", hidden_layer_sizes=8, max_epochs=5, random_state=0)
    model.fit(features, target)
    artifact = tmp_path / "model.nncv"
    nncv.save(model, artifact)
    out = tmp_path / "predictions.csv"
    result = invoke("predict", artifact, cancer_csv, "--out", out, "--proba")
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    np.testing.assert_array_equal(written.prediction, model.predict(features))
    np.testing.assert_allclose(
        written[["proba_benign", "proba_malignant"]], model.predict_proba(features), rtol=1e-6
    )
    # without --out: CSV on stdout; the target column is ignored by feature name
    result = invoke("predict", artifact, cancer_csv)
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == "prediction"
    assert len(result.output.splitlines()) == len(frame) + 1


def test_predict_names_missing_feature_columns(tmp_path, cancer_csv):
    frame = pd.read_csv(cancer_csv)
    model = nncv.make_pipeline("standard", hidden_layer_sizes=4, max_epochs=2, random_state=0)
    model.fit(frame.drop(columns="label"), frame["label"])
    nncv.save(model, tmp_path / "model.nncv")
    partial = tmp_path / "partial.csv"
    frame.drop(columns=["mean_radius"]).to_csv(partial, index=False)
    result = invoke("predict", tmp_path / "model.nncv", partial)
    assert result.exit_code == 1
    assert "mean_radius" in result.output


def test_predict_refuses_a_tampered_model(tmp_path, cancer_csv):
    bogus = tmp_path / "bogus.nncv"
    bogus.write_bytes(b"not a zip file")
    result = invoke("predict", bogus, cancer_csv)
    assert result.exit_code == 1
    assert "Error:" in result.output and "Traceback" not in result.output


# ------------------------------------------------- tune, worker and report


def test_tune_worker_and_report_share_one_journal_study(tmp_path):
    storage = tmp_path / "study.log"
    space = tmp_path / "space.toml"
    nncv.SearchSpace.default().drop(
        *[name for name in nncv.SearchSpace.default() if name not in ("learning_rate",)]
    ).to_toml(space)
    common = [
        "--cv",
        3,
        "-p",
        "max_epochs=3",
        "-p",
        "hidden_layer_sizes=(8,)",
        "--space",
        space,
        "--storage",
        storage,
        "--study-name",
        "iris-cli",
        "--seed",
        0,
    ]
    model = tmp_path / "best.nncv"
    trials = tmp_path / "trials.csv"
    result = invoke("tune", "iris", "--trials", 3, *common, "--out", model, "--trials-out", trials)
    assert result.exit_code == 0, result.output
    assert "best CV score" in result.output and "learning_rate" in result.output
    loaded = nncv.load(model)
    X, y = nncv.datasets.load("iris")
    assert loaded.predict(X).shape == y.shape
    assert set(pd.read_csv(trials).trial) == {0, 1, 2}

    result = invoke("worker", "iris", "--trials", 2, *common)
    assert result.exit_code == 0, result.output
    assert "5 complete trials" in result.output

    report = tmp_path / "report"
    result = invoke("report", "--storage", storage, "--study-name", "iris-cli", "--out", report)
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(report / "trials.csv")) == 5
    assert set(pd.read_csv(report / "curves.csv").trial) == set(range(5))
    for figure in ("history.png", "curves.png"):
        assert (report / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    result = invoke("report", "--storage", storage, "--study-name", "nope", "--out", report)
    assert result.exit_code == 1 and "nope" in result.output


def test_report_draws_a_curves_table(tmp_path):
    curves = pd.DataFrame(
        {"fold": [0, 0, 1, 1], "epoch": [1, 2, 1, 2], "val_score": [0.5, 0.6, 0.55, 0.7]}
    )
    curves.to_csv(tmp_path / "curves.csv", index=False)
    result = invoke("report", "--curves", tmp_path / "curves.csv", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "curves.png").stat().st_size > 1000
    result = invoke(
        "report",
        "--curves",
        tmp_path / "curves.csv",
        "--out",
        tmp_path / "out",
        "--metric",
        "val_loss",
    )
    assert result.exit_code == 1 and "val_loss" in result.output
    result = invoke("report", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "either --storage" in result.output


# ------------------------------------------------------------ real processes


def test_python_dash_m_runs_the_cli_in_a_fresh_process():
    completed = subprocess.run(
        [sys.executable, "-m", "nncv.cli", "cv", "wine", "--cv", "2", "-p", "max_epochs=2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[1].split()[:2] == ["fold", "score"]


@pytest.mark.skipif(shutil.which("nncv") is None, reason="console script not installed")
def test_console_script_reports_errors_with_exit_status_1():
    completed = subprocess.run(
        ["nncv", "cv", "no_such_data"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 1
    assert "no_such_data" in completed.stderr and "Traceback" not in completed.stderr
