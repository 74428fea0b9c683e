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


def _fitted_on_array(tmp_path, n_features=4):
    X, y = nncv.datasets.load("iris")
    model = nncv.make_pipeline("standard", hidden_layer_sizes=4, max_epochs=3, random_state=0)
    model.fit(X[:, :n_features], y)
    nncv.save(model, tmp_path / "array.nncv")
    return tmp_path / "array.nncv", model, X[:, :n_features]


def test_predict_keeps_the_first_row_of_a_csv_without_header(tmp_path):
    artifact, model, X = _fitted_on_array(tmp_path)
    headerless = tmp_path / "rows.csv"
    pd.DataFrame(X[:7]).to_csv(headerless, index=False, header=False)
    result = invoke("predict", artifact, headerless)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("note")]
    assert lines[0] == "prediction" and len(lines) == 1 + 7  # no row lost
    assert [int(v) for v in lines[1:]] == model.predict(X[:7]).tolist()
    # said explicitly: the same
    result = invoke("predict", artifact, headerless, "--no-header")
    assert result.exit_code == 0 and len(result.output.splitlines()) == 8


def test_predict_says_columns_are_taken_by_position(tmp_path):
    artifact, model, X = _fitted_on_array(tmp_path)
    named = tmp_path / "named.csv"
    pd.DataFrame(X[:5], columns=["d", "c", "b", "a"]).to_csv(named, index=False)
    completed = subprocess.run(
        [sys.executable, "-m", "nncv.cli", "predict", str(artifact), str(named)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "taken by position" in completed.stderr
    assert completed.stdout.splitlines()[1:] == [str(v) for v in model.predict(X[:5])]
    wrong = tmp_path / "wrong.csv"
    pd.DataFrame(X[:5, :3]).to_csv(wrong, index=False)
    result = invoke("predict", artifact, wrong)
    assert result.exit_code == 1 and "3 columns" in result.output and "4 features" in result.output


def test_predict_refuses_a_headerless_csv_for_a_model_that_takes_names(tmp_path, cancer_csv):
    frame = pd.read_csv(cancer_csv)
    model = nncv.make_pipeline("standard", hidden_layer_sizes=4, max_epochs=2, random_state=0)
    model.fit(frame.drop(columns="label"), frame["label"])
    nncv.save(model, tmp_path / "model.nncv")
    frame.drop(columns="label").to_csv(tmp_path / "rows.csv", index=False, header=False)
    result = invoke("predict", tmp_path / "model.nncv", tmp_path / "rows.csv")
    assert result.exit_code == 1
    assert "no header row" in result.output and "mean_radius" in result.output


def test_predict_names_a_text_column(tmp_path, cancer_csv):
    frame = pd.read_csv(cancer_csv)
    model = nncv.make_pipeline("standard", hidden_layer_sizes=4, max_epochs=2, random_state=0)
    model.fit(frame.drop(columns="label"), frame["label"])
    nncv.save(model, tmp_path / "model.nncv")
    frame["mean_texture"] = frame["mean_texture"].astype(object)
    frame.loc[3, "mean_texture"] = "n/a?"
    frame.to_csv(tmp_path / "text.csv", index=False)
    result = invoke("predict", tmp_path / "model.nncv", tmp_path / "text.csv")
    assert result.exit_code == 1
    assert "'mean_texture'" in result.output and "n/a?" in result.output
    assert "text.csv" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\x00garbage\x00\x81", "not a readable table"),
        (b"a,b,label\n1,2,x\n3,4,5,6,7\n", "not a readable table"),
        (b"label\nx\ny\n", "only the target column"),
        (b"a,b,label\n", "no rows"),
        (b"a,b,label\n1,hello,x\n2,3,y\n", "'b'"),
    ],
    ids=["empty", "binary", "ragged", "only-target", "header-only", "text-feature"],
)
def test_unusable_csv_files_give_one_clear_line_naming_them(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = invoke("cv", path, "--target", "label", "--cv", 2)
    assert result.exit_code == 1, result.output
    assert message in result.output and "bad.csv" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_csv_errors_are_nncv_errors(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(nncv.NncvError, match="empty.csv"):
        nncv.datasets.read_table(path, "label")


# ------------------------------------------------------------------ help text


def help_text(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "100", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    "command", [(), ("cv",), ("tune",), ("worker",), ("predict",), ("report",)]
)
def test_help_text_has_no_bool_metavar_nor_rst_markup(command):
    text = help_text(*command)
    assert "<bool>" not in text and "<list[str]>" not in text
    assert "``" not in text


def test_help_paragraphs_are_not_wrapped_mid_phrase():
    text = help_text("worker")
    # the docstring's second paragraph is reflowed to the width, not cut where the source
    # line ended ("…that created the study: the study" / "checks its data …")
    flat = " ".join(line.strip() for line in text.splitlines())
    assert "the study checks its data fingerprint" in flat
    line = next(line for line in text.splitlines() if "Give the same data" in line)
    assert "the study checks" in line  # filled to the terminal's width, not cut at "study"


def test_tune_seed_shows_its_default():
    text = help_text("tune")
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "--seed" in line)
    seed = " ".join(lines[at : at + 3])  # the option's line and its continuations
    assert "[default: (a random seed)]" in seed


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
    assert (report / "index.html").is_file()
    for figure in ("history.png", "intermediate.png", "best_folds.png"):
        assert (report / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    elsewhere = tmp_path / "elsewhere"
    result = invoke("report", "--storage", storage, "--study-name", "iris-cl", "--out", elsewhere)
    assert result.exit_code == 1
    assert "no study named 'iris-cl'" in result.output
    assert (
        "studies there: 'iris-cli'" in result.output and "did you mean 'iris-cli'" in result.output
    )
    assert not elsewhere.exists()


@pytest.mark.parametrize("storage", ["missing.log", "sqlite:///missing.db"])
def test_report_on_a_missing_storage_leaves_nothing_behind(tmp_path, monkeypatch, storage):
    monkeypatch.chdir(tmp_path)
    result = invoke("report", "--storage", storage, "--study-name", "x", "--out", "report")
    assert result.exit_code == 1
    assert "no study storage at missing" in result.output
    assert list(tmp_path.iterdir()) == []


def test_tune_on_a_storage_names_the_study_after_the_data_so_a_rerun_continues(tmp_path):
    storage = tmp_path / "study.log"
    common = ["--cv", 2, "-p", "max_epochs=2", "-p", "hidden_layer_sizes=(4,)", "--seed", 0]
    for _ in range(2):
        result = invoke("tune", "iris", "--trials", 1, *common, "--storage", storage)
        assert result.exit_code == 0, result.output
        assert "study: iris" in result.output
    import optuna

    assert optuna.get_all_study_names(nncv.search._storage.make_storage(str(storage))) == ["iris"]
    study = optuna.load_study(
        study_name="iris", storage=nncv.search._storage.make_storage(str(storage))
    )
    assert len(study.trials) == 2


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
