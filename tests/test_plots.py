"""Tests for nncv/plots.py: the lines drawn carry the table's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nncv.exceptions import NncvError
from nncv.plots import PlotError, learning_curves, optimization_history, save_figure


def fold_curves(n_folds=3, n_epochs=4, seed=0):
    rng = np.random.default_rng(seed)
    rows = [
        {"fold": fold, "epoch": epoch, "loss": rng.uniform(), "val_score": rng.uniform()}
        for fold in range(n_folds)
        for epoch in range(1, n_epochs + 1)
    ]
    return pd.DataFrame(rows)


def lines_by_label(axes):
    return {line.get_label(): line for line in axes.get_lines()}


def test_one_line_per_fold_and_their_mean():
    curves = fold_curves()
    figure = learning_curves(curves, ["loss", "val_score"], title="cv")
    assert [axes.get_ylabel() for axes in figure.axes] == ["loss", "val_score"]
    lines = lines_by_label(figure.axes[1])
    assert set(lines) == {"fold 0", "fold 1", "fold 2", "mean"}
    np.testing.assert_allclose(lines["fold 1"].get_ydata(), curves[curves.fold == 1].val_score)
    np.testing.assert_allclose(
        lines["mean"].get_ydata(), curves.groupby("epoch").val_score.mean().to_numpy()
    )


def test_a_long_trials_frame_gives_one_line_per_trial_averaged_over_folds():
    wide = pd.concat([fold_curves(seed=trial).assign(trial=trial) for trial in range(3)])
    long = wide.melt(
        id_vars=["trial", "fold", "epoch"],
        value_vars=["loss", "val_score"],
        var_name="metric",
        value_name="value",
    )
    figure = learning_curves(long)
    lines = lines_by_label(figure.axes[0])
    assert set(lines) == {"trial 0", "trial 1", "trial 2"}
    expected = wide[wide.trial == 2].groupby("epoch").val_score.mean().to_numpy()
    np.testing.assert_allclose(lines["trial 2"].get_ydata(), expected)


def test_many_groups_drop_the_per_line_legend():
    figure = learning_curves(fold_curves(n_folds=12))
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert len(labels) == 13
    assert not any(label.startswith("fold") for label in labels)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (fold_curves().drop(columns="val_score"), "missing \\['val_score'\\]"),
        (fold_curves().iloc[:0], "empty"),
        ([1, 2, 3], "DataFrame"),
    ],
)
def test_learning_curves_refuse_unusable_tables(frame, message):
    with pytest.raises(PlotError, match=message) as caught:
        learning_curves(frame)
    assert isinstance(caught.value, NncvError)


def test_history_draws_values_and_the_best_so_far():
    trials = pd.DataFrame(
        {
            "number": [0, 1, 2, 3, 4],
            "value": [0.7, 0.9, np.nan, 0.8, 0.95],
            "state": ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "COMPLETE"],
        }
    )
    axes = optimization_history(trials).axes[0]
    best = lines_by_label(axes)["best so far"]
    np.testing.assert_array_equal(best.get_xdata(), [0, 1, 3, 4])
    np.testing.assert_allclose(best.get_ydata(), [0.7, 0.9, 0.9, 0.95])
    lowest = lines_by_label(optimization_history(trials, direction="minimize").axes[0])
    np.testing.assert_allclose(lowest["best so far"].get_ydata(), [0.7, 0.7, 0.7, 0.7])


def test_history_refuses_studies_without_completed_trials():
    trials = pd.DataFrame({"number": [0], "value": [np.nan], "state": ["FAIL"]})
    with pytest.raises(PlotError, match="no completed trial"):
        optimization_history(trials)
    with pytest.raises(PlotError, match="direction"):
        optimization_history(trials, direction="up")
    with pytest.raises(PlotError, match="number"):
        optimization_history(pd.DataFrame({"value": [1.0]}))


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_save_figure_writes_the_format_of_the_suffix(tmp_path, suffix, magic):
    path = save_figure(learning_curves(fold_curves()), tmp_path / "sub" / f"curves{suffix}")
    assert path.read_bytes().startswith(magic)
