"""Figures from nncv's tidy tables: learning curves per fold, optimisation history.

The functions take the DataFrames nncv produces — :attr:`nncv.cv.CVResult.curves`, a
study's trials frame, Optuna's ``study.trials_dataframe()`` — and return a matplotlib
:class:`~matplotlib.figure.Figure` built without ``pyplot`` (no GUI backend, no global
state), ready for :func:`save_figure`.

Examples
--------
>>> import pandas as pd
>>> curves = pd.DataFrame({"fold": [0, 0, 1, 1], "epoch": [1, 2, 1, 2],
...                        "val_score": [0.5, 0.7, 0.6, 0.8]})
>>> figure = learning_curves(curves)
>>> [axes.get_ylabel() for axes in figure.axes]
['val_score']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nncv.exceptions import NncvError

__all__ = [
    "PlotError",
    "intermediate_values",
    "learning_curves",
    "optimization_history",
    "save_figure",
    "slice_grid",
]


class PlotError(NncvError, ValueError):
    """The table given to a plotting function lacks the columns it needs."""


def _check_frame(frame: Any, what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise PlotError(f"{what} needs a pandas DataFrame, got {type(frame).__name__}")


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    _check_frame(frame, what)
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise PlotError(
            f"{what} needs the columns {list(columns)}; missing {missing} "
            f"(the table has {list(frame.columns)})"
        )
    if frame.empty:
        raise PlotError(f"{what} got an empty table: nothing to draw")


def _wide(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn a long table (``metric``, ``value`` columns) into one column per metric."""
    if {"metric", "value"} <= set(frame.columns):
        keys = [name for name in ("trial", "fold", "epoch") if name in frame.columns]
        return frame.pivot_table(index=keys, columns="metric", values="value").reset_index()
    return frame


def learning_curves(
    curves: pd.DataFrame,
    metrics: str | Sequence[str] = "val_score",
    *,
    title: str | None = None,
) -> Figure:
    """Draw one line per fold (thin) and their mean (thick) for each metric, by epoch.

    Parameters
    ----------
    curves : pandas.DataFrame
        Columns ``epoch``, the ``metrics``, and ``fold`` and/or ``trial`` to tell lines
        apart — e.g. :attr:`CVResult.curves`, or a trials frame (trial × fold × epoch,
        wide or long with ``metric``/``value`` columns). With a ``trial`` column each line
        is one trial's mean over its folds.
    metrics : str or sequence of str, default="val_score"
        One panel per metric (``"loss"``, ``"val_loss"``, ``"val_score"`` …).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> curves = pd.DataFrame({"fold": [0, 0], "epoch": [1, 2], "loss": [1.0, 0.5],
    ...                        "val_loss": [1.1, 0.7]})
    >>> len(learning_curves(curves, ["loss", "val_loss"]).axes)
    2
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    _check_frame(curves, "learning_curves")
    curves = _wide(curves)
    _require(curves, ["epoch", *metrics], "learning_curves")
    if "trial" in curves.columns:
        group, label = "trial", "trial {}"
        curves = curves.groupby(["trial", "epoch"], as_index=False)[metrics].mean()
    elif "fold" in curves.columns:
        group, label = "fold", "fold {}"
    else:
        group, label = None, "{}"
    figure = Figure(figsize=(5.5 * len(metrics), 4.0), layout="constrained")
    for axes, metric in zip(
        figure.subplots(1, len(metrics), squeeze=False)[0], metrics, strict=True
    ):
        if group is None:
            axes.plot(curves["epoch"], curves[metric], marker=".", label=metric)
        else:
            many = curves[group].nunique() > 10
            for key, lines in curves.groupby(group, sort=True):
                axes.plot(
                    lines["epoch"],
                    lines[metric],
                    linewidth=1.0,
                    alpha=0.35 if many else 0.7,
                    label=None if many else label.format(key),
                )
            if group == "fold":
                mean = curves.groupby("epoch")[metric].mean()
                axes.plot(mean.index, mean.to_numpy(), color="black", linewidth=2.2, label="mean")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    return figure


def optimization_history(
    trials: pd.DataFrame,
    *,
    direction: str = "maximize",
    title: str | None = None,
) -> Figure:
    """Draw each trial's value and the best value so far, by trial number.

    Completed trials are dots, with the best-so-far line over them. Pruned trials, when
    the table gives their last reported (intermediate) value in a ``last_value`` column,
    are grey crosses at that value; the legend counts pruned and failed trials.

    Parameters
    ----------
    trials : pandas.DataFrame
        Columns ``number`` and ``value`` (Optuna's ``study.trials_dataframe()``), or
        ``trial`` and ``value``; optional ``state`` (only ``COMPLETE`` trials count for
        the best so far) and ``last_value`` (a pruned trial's last reported value).
    direction : {"maximize", "minimize"}, default="maximize"
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> trials = pd.DataFrame({"number": [0, 1, 2], "value": [0.8, 0.9, None],
    ...                        "state": ["COMPLETE", "COMPLETE", "PRUNED"],
    ...                        "last_value": [0.8, 0.9, 0.4]})
    >>> figure = optimization_history(trials)
    >>> sorted(text.get_text() for text in figure.axes[0].get_legend().get_texts())
    ['best so far', 'complete (2)', 'pruned (1), at its last reported value']
    """
    if direction not in ("maximize", "minimize"):
        raise PlotError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    _check_frame(trials, "optimization_history")
    if "number" not in trials.columns and "trial" in trials.columns:
        trials = trials.rename(columns={"trial": "number"})
    _require(trials, ["number", "value"], "optimization_history")
    states = (
        trials["state"].astype(str).str.upper().str.replace("TRIALSTATE.", "", regex=False)
        if "state" in trials.columns
        else pd.Series("COMPLETE", index=trials.index)
    )
    complete = trials[states.eq("COMPLETE")].dropna(subset=["value"]).sort_values("number")
    pruned = trials[states.eq("PRUNED")]
    if "last_value" in pruned.columns:
        pruned = pruned.dropna(subset=["last_value"])
    else:
        pruned = pruned.iloc[0:0]
    n_failed = int(states.eq("FAIL").sum())
    if complete.empty and pruned.empty:
        raise PlotError("optimization_history: no completed trial with a value to draw")
    figure = Figure(figsize=(7.0, 4.2), layout="constrained")
    axes = figure.subplots()
    if len(pruned):
        axes.scatter(
            pruned["number"],
            pruned["last_value"].to_numpy(dtype=float),
            marker="x",
            s=18,
            color="0.55",
            label=f"pruned ({len(pruned)}), at its last reported value",
        )
    if len(complete):
        values = complete["value"].to_numpy(dtype=float)
        accumulate = np.maximum if direction == "maximize" else np.minimum
        best = accumulate.accumulate(values)
        axes.scatter(
            complete["number"], values, s=16, color="C0", label=f"complete ({len(complete)})"
        )
        axes.step(
            complete["number"], best, where="post", color="C3", linewidth=2, label="best so far"
        )
    if n_failed:
        axes.plot([], [], " ", label=f"failed ({n_failed}), not drawn")
    axes.set_xlabel("trial")
    axes.set_ylabel("objective value")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    if title:
        figure.suptitle(title)
    return figure


def intermediate_values(
    values: pd.DataFrame,
    *,
    highlight: Sequence[int] | Mapping[int, float] = (),
    direction: str = "maximize",
    title: str | None = None,
) -> Figure:
    """Draw every trial's reported value by epoch; highlight a few trials, with a legend.

    Every trial is a thin grey line (pruned ones end early); the ``highlight`` trials
    (e.g. the best few) are drawn in colour and named in the legend. The y-range covers
    the highlighted trials whole and the better three quarters of the trials' last values
    (without highlights: from the 5th percentile of all values for a maximised value, up
    to the 95th for a minimised one), so diverged trials do not squash the curves that
    matter.

    Parameters
    ----------
    values : pandas.DataFrame
        Columns ``trial``, ``step`` (epoch) and ``value`` — e.g. each trial's
        ``intermediate_values``, the mean validation score over its folds per epoch.
    highlight : sequence of int, or mapping of int to float
        Trial numbers to draw in colour, in legend order; a mapping also gives each one's
        final value for its legend entry.
    direction : {"maximize", "minimize"}, default="maximize"
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> values = pd.DataFrame({"trial": [0, 0, 1, 1], "step": [1, 2, 1, 2],
    ...                        "value": [0.5, 0.7, 0.4, 0.45]})
    >>> figure = intermediate_values(values, highlight=[0])
    >>> [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    ['trial 0', 'other trials (1)']
    """
    if direction not in ("maximize", "minimize"):
        raise PlotError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    _require(values, ["trial", "step", "value"], "intermediate_values")
    values = values.dropna(subset=["value"]).sort_values(["trial", "step"])
    figure = Figure(figsize=(7.0, 4.2), layout="constrained")
    axes = figure.subplots()
    finals = dict(highlight) if isinstance(highlight, Mapping) else {}
    highlight = [int(number) for number in highlight]
    others = [key for key in values["trial"].unique() if int(key) not in highlight]
    for key in others:
        lines = values[values["trial"] == key]
        axes.plot(
            lines["step"],
            lines["value"],
            color="0.6",
            linewidth=0.8,
            alpha=0.6,
            label=f"other trials ({len(others)})" if key == others[0] else None,
        )
    for rank, key in enumerate(highlight):
        lines = values[values["trial"] == key]
        if lines.empty:
            continue
        axes.plot(
            lines["step"],
            lines["value"],
            color=f"C{rank % 10}",
            linewidth=2.0,
            label=f"trial {key}" + (f" ({finals[key]:.4g})" if key in finals else ""),
            zorder=3,
        )
    if len(values):
        chosen = values[values["trial"].isin(highlight)]["value"].to_numpy(dtype=float)
        everything = values["value"].to_numpy(dtype=float)
        finals = values.groupby("trial")["value"].last().to_numpy(dtype=float)
        # the highlighted curves whole, and the better three quarters of the trials' ends
        if direction == "maximize":
            bulk = np.percentile(finals, 25) if len(chosen) else np.percentile(everything, 5)
            low, high = min(bulk, *chosen), everything.max()
        else:
            bulk = np.percentile(finals, 75) if len(chosen) else np.percentile(everything, 95)
            low, high = everything.min(), max(bulk, *chosen)
        margin = 0.05 * (high - low) if high > low else 0.05 * (abs(high) or 1.0)
        axes.set_ylim(low - margin, high + margin)
    handles, labels = axes.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("other"))
    axes.legend(
        [handles[i] for i in order], [labels[i] for i in order], fontsize="small", loc="best"
    )
    axes.set_xlabel("epoch")
    axes.set_ylabel("reported value (mean over folds)")
    axes.grid(True, alpha=0.3)
    if title:
        figure.suptitle(title)
    return figure


def slice_grid(
    trials: pd.DataFrame,
    *,
    direction: str = "maximize",
    columns: int = 3,
    title: str | None = None,
) -> Figure:
    """Draw each completed trial's value against each sampled parameter, in a grid.

    One small panel per ``params_<name>`` column (a log axis for a positive parameter
    spanning more than a factor of 20), points coloured by trial number, the best trial
    ringed in red.

    Parameters
    ----------
    trials : pandas.DataFrame
        Columns ``number``, ``value``, ``params_<name>`` …, optional ``state`` (only
        ``COMPLETE`` trials are drawn) — :func:`nncv.report.trials_table` or Optuna's
        ``study.trials_dataframe()``.
    direction : {"maximize", "minimize"}, default="maximize"
    columns : int, default=3
        Panels per row.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> trials = pd.DataFrame({"number": [0, 1, 2], "value": [0.8, 0.9, 0.85],
    ...                        "params_lr": [1e-3, 1e-2, 1e-1], "params_units": [8, 16, 32]})
    >>> [axes.get_xlabel() for axes in slice_grid(trials).axes if axes.get_visible()][:2]
    ['lr', 'units']
    """
    if direction not in ("maximize", "minimize"):
        raise PlotError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    _require(trials, ["number", "value"], "slice_grid")
    if "state" in trials.columns:
        trials = trials[trials["state"].astype(str).str.upper().str.endswith("COMPLETE")]
    trials = trials.dropna(subset=["value"])
    names = [c for c in trials.columns if c.startswith("params_") and trials[c].notna().any()]
    if trials.empty or not names:
        raise PlotError("slice_grid: no completed trial with sampled parameters to draw")
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(3.4 * columns, 2.8 * rows), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False, sharey=True)
    best = trials.loc[
        trials["value"].idxmax() if direction == "maximize" else trials["value"].idxmin()
    ]
    for axes, name in zip(grid.flat, names, strict=False):
        drawn = trials.dropna(subset=[name])
        x = drawn[name]
        categorical = not pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)
        if categorical:
            x = x.astype(str)
        points = axes.scatter(
            x, drawn["value"], c=drawn["number"], cmap="viridis", s=16, alpha=0.85
        )
        if pd.notna(best[name]):
            axes.scatter(
                [str(best[name]) if categorical else best[name]],
                [best["value"]],
                s=70,
                facecolors="none",
                edgecolors="red",
                linewidths=1.5,
            )
        if not categorical and (x > 0).all() and x.max() / x.min() > 20:
            axes.set_xscale("log")
        axes.set_xlabel(name.removeprefix("params_"))
        axes.grid(True, alpha=0.3)
    for axes in grid[:, 0]:
        axes.set_ylabel("objective value")
    for axes in list(grid.flat)[len(names) :]:
        axes.set_visible(False)
    figure.colorbar(points, ax=grid, label="trial", shrink=0.8)
    if title:
        figure.suptitle(title)
    return figure


def save_figure(figure: Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Write ``figure`` to ``path`` (format from the suffix: .png, .svg, .pdf).

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> trials = pd.DataFrame({"number": [0, 1], "value": [0.5, 0.6]})
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> save_figure(optimization_history(trials), folder / "history.png").stat().st_size > 0
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    if figure.canvas.manager is not None:
        import matplotlib.pyplot as plt  # a pyplot figure (Optuna's plots): free it

        plt.close(figure)
    return path
