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


# ------------------------------------------------------- study report figures


def test_optimization_history_draws_pruned_trials_at_their_last_value():
    from nncv.plots import optimization_history as history

    trials = pd.DataFrame(
        {
            "number": [0, 1, 2, 3],
            "value": [0.8, 0.5, 0.9, None],
            "state": ["COMPLETE", "PRUNED", "COMPLETE", "FAIL"],
            "last_value": [0.8, 0.5, 0.9, None],
        }
    )
    axes = history(trials).axes[0]
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert "pruned (1), at its last reported value" in labels and "failed (1), not drawn" in labels
    pruned = next(c for c in axes.collections if c.get_label().startswith("pruned"))
    np.testing.assert_array_equal(pruned.get_offsets(), [[1, 0.5]])
    best = lines_by_label(axes)["best so far"]
    np.testing.assert_array_equal(best.get_ydata(), [0.8, 0.9])


def many_trials(n_trials=40, n_epochs=10, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for trial in range(n_trials):
        ceiling = 0.95 if trial < 30 else 0.05  # ten diverged trials far below
        for step in range(1, n_epochs + 1):
            value = ceiling * (1 - np.exp(-step / 3)) + rng.normal(0, 0.005)
            rows.append({"trial": trial, "step": step, "value": value})
    return pd.DataFrame(rows)


def test_intermediate_values_highlights_the_best_with_a_legend_and_a_readable_range():
    from nncv.plots import intermediate_values

    values = many_trials()
    axes = intermediate_values(values, highlight={3: 0.95, 7: 0.94}).axes[0]
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels == ["trial 3 (0.95)", "trial 7 (0.94)", "other trials (38)"]
    coloured = lines_by_label(axes)["trial 3 (0.95)"]
    np.testing.assert_allclose(coloured.get_ydata(), values[values.trial == 3]["value"])
    low, high = axes.get_ylim()
    # the bulk and the highlighted trials are in range; the ten diverged ones (≈0.05 at the
    # end) do not squash it down to zero
    assert low > 0.1 and high >= values["value"].max()
    highlighted = values[values.trial.isin([3, 7])]["value"]
    assert low <= highlighted.min()


def test_slice_grid_draws_one_panel_per_parameter_with_the_trial_values():
    from nncv.plots import slice_grid

    trials = pd.DataFrame(
        {
            "number": [0, 1, 2, 3],
            "value": [0.7, 0.9, 0.8, np.nan],
            "state": ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL"],
            "params_learning_rate": [1e-4, 1e-2, 1e-1, 1e-3],
            "params_units": [8, 16, 32, 64],
            "params_schedule": ["exponential", "linear", "linear", None],
        }
    )
    figure = slice_grid(trials, columns=2)
    visible = [axes for axes in figure.axes if axes.get_visible() and axes.get_xlabel()]
    assert [axes.get_xlabel() for axes in visible] == ["learning_rate", "units", "schedule"]
    assert visible[0].get_xscale() == "log" and visible[1].get_xscale() == "linear"
    points = visible[1].collections[0].get_offsets()
    np.testing.assert_array_equal(points, [[8, 0.7], [16, 0.9], [32, 0.8]])
    with pytest.raises(PlotError, match="no completed trial"):
        slice_grid(trials.iloc[3:])
