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

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nncv.exceptions import NncvError

__all__ = ["PlotError", "learning_curves", "optimization_history", "save_figure"]


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
    """Draw each finished trial's value and the best value so far, by trial number.

    Parameters
    ----------
    trials : pandas.DataFrame
        Columns ``number`` and ``value`` (Optuna's ``study.trials_dataframe()``), or
        ``trial`` and ``value``; with a ``state`` column only ``COMPLETE`` trials count.
    direction : {"maximize", "minimize"}, default="maximize"
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> trials = pd.DataFrame({"number": [0, 1, 2], "value": [0.8, 0.9, 0.85]})
    >>> optimization_history(trials).axes[0].get_xlabel()
    'trial'
    """
    if direction not in ("maximize", "minimize"):
        raise PlotError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    _check_frame(trials, "optimization_history")
    if "number" not in trials.columns and "trial" in trials.columns:
        trials = trials.rename(columns={"trial": "number"})
    _require(trials, ["number", "value"], "optimization_history")
    if "state" in trials.columns:
        trials = trials[trials["state"].astype(str).str.upper().str.endswith("COMPLETE")]
    trials = trials.dropna(subset=["value"]).sort_values("number")
    if trials.empty:
        raise PlotError("optimization_history: no completed trial with a value to draw")
    values = trials["value"].to_numpy(dtype=float)
    best = (
        np.maximum.accumulate(values) if direction == "maximize" else np.minimum.accumulate(values)
    )
    figure = Figure(figsize=(6.0, 4.0), layout="constrained")
    axes = figure.subplots()
    axes.scatter(trials["number"], values, s=14, alpha=0.7, label="trial value")
    axes.step(trials["number"], best, where="post", color="C3", linewidth=2, label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel("objective value")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
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
    figure.savefig(path, dpi=dpi)
    return path
