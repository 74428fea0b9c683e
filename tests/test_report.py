"""Tests for nncv/report.py: the study report page, its figures and its tables."""

from __future__ import annotations

from html.parser import HTMLParser

import matplotlib.image
import pandas as pd
import pytest

import nncv
from nncv.report import trials_table, write_report
from nncv.search import Float, SearchSpace

PNG = b"\x89PNG\r\n\x1a\n"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        for key in ("href", "src"):
            if key in attrs and tag != "img":
                self.links.append(attrs[key])


@pytest.fixture(scope="module")
def study():
    X, y = nncv.datasets.load("iris")
    space = SearchSpace(learning_rate=Float(1e-4, 1e-1, log=True), dropout=Float(0.0, 0.5))
    result = nncv.tune(
        X,
        y,
        nncv.make_pipeline("standard", hidden_layer_sizes=4, max_epochs=8),
        space,
        n_trials=10,
        cv=2,
        random_state=0,
        refit=False,
    )
    states = {t.state.name for t in result.study.trials}
    assert "PRUNED" in states and "COMPLETE" in states  # the figures must show both
    return result.study


@pytest.fixture(scope="module")
def report(study, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    return folder, write_report(study, folder)


def test_report_page_names_only_existing_png_files_and_nothing_online(report):
    tmp_path, written = report
    index = tmp_path / "index.html"
    assert written[-1] == index and index.is_file()
    parser = _Links()
    parser.feed(index.read_text())
    expected = {"history.png", "intermediate.png", "best_folds.png", "importances.png"}
    assert expected | {"slice.png"} <= set(parser.images)
    for name in parser.images:
        path = tmp_path / name
        assert path.read_bytes()[:8] == PNG, name
        height, width, _ = matplotlib.image.imread(path).shape  # decodes: a valid PNG
        assert height > 200 and width > 200
    assert "script" not in parser.tags
    assert all("://" not in link for link in parser.links + parser.images)
    assert set(parser.links) == {"trials.csv", "curves.csv"}


def test_trials_csv_has_one_row_per_trial_and_no_histories(study, report):
    tmp_path, _ = report
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert list(trials["number"]) == [t.number for t in study.trials]
    assert not [c for c in trials.columns if "history" in c or c.startswith("user_attrs")]
    best = max((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    row = trials.set_index("number").loc[best.number]
    assert row["mean_score"] == pytest.approx(best.value)
    assert row["params_learning_rate"] == pytest.approx(best.params["learning_rate"])
    pruned = trials[trials["state"] == "PRUNED"]
    assert pruned["last_value"].notna().all()
    assert (pruned["epochs"] < 8).all()
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert set(curves["trial"]) == set(trials["number"])
    # per-epoch numbers live in curves.csv only: trials.csv stays small
    assert (tmp_path / "trials.csv").stat().st_size < (tmp_path / "curves.csv").stat().st_size / 5


def test_trials_table_matches_the_studys_states(study):
    table = trials_table(study)
    assert list(table["state"]) == [t.state.name for t in study.trials]


def test_a_study_without_trials_is_refused_and_nothing_is_written(tmp_path):
    import optuna

    from nncv.exceptions import SearchError

    empty = optuna.create_study(study_name="empty")
    with pytest.raises(SearchError, match="'empty' has no trials yet"):
        write_report(empty, tmp_path / "out")
    assert not (tmp_path / "out").exists()
