"""A study's report: one-row-per-trial table, curves table, figures and an offline page.

:func:`write_report` writes, into one folder:

==================  ===================================================================
``index.html``      the page: summary, best trials, every figure below (no CDN, no
                    script; the PNGs sit beside it, so the folder works offline)
``trials.csv``      one row per trial: number, state, value, mean and std of each
                    scorer over the folds, parameters, epochs run, duration
``curves.csv``      trial × fold × epoch × metric (:func:`nncv.search.trials_frame`)
``history.png``     optimisation history, pruned trials at their last reported value
``importances.png`` parameter importances (Optuna's fANOVA evaluator)
``intermediate.png`` every trial's reported value by epoch, the best few in colour
``best_folds.png``  the best trial's per-fold learning curves
``slice.png``       objective value against each sampled parameter
==================  ===================================================================

A figure Optuna cannot draw (importances need two completed trials with varying
parameters) is left out and the page says why.

Examples
--------
>>> import tempfile, pathlib, nncv
>>> from nncv.search import Float, SearchSpace
>>> X, y = nncv.datasets.load("iris")
>>> result = nncv.tune(X, y, nncv.NNClassifier(hidden_layer_sizes=4, max_epochs=3),
...                    SearchSpace(learning_rate=Float(1e-3, 1e-1, log=True)),
...                    n_trials=3, cv=2, random_state=0, refit=False)
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> written = write_report(result.study, folder)
>>> (folder / "index.html").is_file(), len(pandas.read_csv(folder / "trials.csv"))
(True, 3)
"""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import optuna
import pandas

from nncv import plots
from nncv.exceptions import SearchError

__all__ = ["trials_table", "write_report"]

#: Trials drawn in colour on the intermediate-values figure and listed on the page.
N_BEST = 5


def trials_table(study: optuna.Study) -> pandas.DataFrame:
    """One row per trial: number, state, value, fold-score summaries, parameters, epochs.

    Columns: ``number``, ``state``, ``value``, ``last_value`` (the last value reported to
    the pruner — what a pruned trial had reached), ``mean_<scorer>`` and ``std_<scorer>``
    for each scorer over the folds, ``params_<name>`` for each sampled parameter,
    ``epochs`` (the most epochs any fold ran), ``duration_s``, ``datetime_start`` and
    ``fail_reason``. No per-epoch histories: ``curves.csv`` holds those.

    Parameters
    ----------
    study : optuna.Study

    Returns
    -------
    pandas.DataFrame
    """
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value if trial.values else np.nan,
        }
        steps = trial.intermediate_values
        row["last_value"] = steps[max(steps)] if steps else np.nan
        for name, scores in trial.user_attrs.get("nncv_fold_scores", {}).items():
            finite = np.array([np.nan if v is None else v for v in scores], dtype=float)
            row[f"mean_{name}"] = float(np.mean(finite)) if finite.size else np.nan
            row[f"std_{name}"] = float(np.std(finite)) if finite.size else np.nan
        for name, value in trial.params.items():
            row[f"params_{name}"] = value
        history = trial.user_attrs.get("nncv_history") or {}
        epochs = history.get("epoch") or []
        row["epochs"] = max(epochs) if epochs else (max(steps) if steps else 0)
        if trial.datetime_start is not None and trial.datetime_complete is not None:
            row["duration_s"] = (trial.datetime_complete - trial.datetime_start).total_seconds()
        else:
            row["duration_s"] = np.nan
        row["datetime_start"] = trial.datetime_start
        row["fail_reason"] = trial.user_attrs.get("fail_reason") or trial.system_attrs.get(
            "fail_reason"
        )
        rows.append(row)
    return pandas.DataFrame(rows)


def _intermediate(study: optuna.Study) -> pandas.DataFrame:
    rows = [
        {"trial": trial.number, "step": step, "value": value}
        for trial in study.get_trials(deepcopy=False)
        for step, value in sorted(trial.intermediate_values.items())
    ]
    return pandas.DataFrame(rows, columns=["trial", "step", "value"])


@dataclass
class _Page:
    """The figures and notes gathered for ``index.html``."""

    figures: list[tuple[str, str, str]] = field(default_factory=list)  # file, title, caption
    notes: list[str] = field(default_factory=list)

    def add(self, folder: Path, name: str, title: str, caption: str, draw: Any) -> Path | None:
        """Draw and save one figure; note why it is missing when it cannot be drawn."""
        try:
            # Optuna's plots switch matplotlib's style globally: keep it to their figure.
            with warnings.catch_warnings(), matplotlib.rc_context():
                warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning and friends
                figure = draw()
            figure = getattr(figure, "figure", figure)  # Optuna returns Axes
            if isinstance(figure, np.ndarray):  # …or an array of Axes
                figure = figure.flat[0].figure
            path = plots.save_figure(figure, folder / name)
        except (ValueError, TypeError, RuntimeError, ZeroDivisionError, KeyError) as error:
            self.notes.append(f"{title}: not drawn ({error})")
            return None
        self.figures.append((name, title, caption))
        return path


def write_report(
    study: optuna.Study, folder: str | Path, *, metrics: list[str] | None = None
) -> list[Path]:
    """Write a study's tables, figures and ``index.html`` into ``folder``.

    Parameters
    ----------
    study : optuna.Study
        A study run by :func:`nncv.tune`, :class:`nncv.NNSearchCV` or ``nncv tune``.
    folder : str or Path
        Created if needed.
    metrics : list of str, optional
        Per-epoch metrics for the best trial's fold curves. Default: ``loss``,
        ``val_loss`` and ``val_score``.

    Returns
    -------
    list of Path
        Every file written, ``index.html`` last.

    Raises
    ------
    SearchError
        When the study has no trials yet (nothing is written).
    """
    import optuna.visualization.matplotlib as optuna_plots

    if not study.get_trials(deepcopy=False):
        raise SearchError(f"study {study.study_name!r} has no trials yet: nothing to report")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    metrics = list(metrics or ["loss", "val_loss", "val_score"])
    direction = study.direction.name.lower()
    title = study.study_name
    table = trials_table(study)
    curves = _trial_curves(study)
    table.to_csv(folder / "trials.csv", index=False)
    curves.to_csv(folder / "curves.csv", index=False)
    written = [folder / "trials.csv", folder / "curves.csv"]
    page = _Page()
    complete = table[table["state"] == "COMPLETE"].dropna(subset=["value"])
    best = complete.sort_values("value", ascending=direction == "minimize", kind="stable")
    best_numbers = [int(n) for n in best["number"].head(N_BEST)]
    shown = [
        page.add(
            folder,
            "history.png",
            "Optimisation history",
            "Each trial's objective value; pruned trials at the last value they reported.",
            lambda: plots.optimization_history(table, direction=direction, title=title),
        ),
        page.add(
            folder,
            "intermediate.png",
            "Intermediate values",
            f"Mean validation score over the folds after each epoch (what the pruner sees); "
            f"the best {len(best_numbers)} trials in colour.",
            lambda: plots.intermediate_values(
                _intermediate(study),
                highlight=dict(zip(best_numbers, best["value"].head(N_BEST), strict=True)),
                direction=direction,
                title=title,
            ),
        ),
    ]
    if best_numbers:
        number = best_numbers[0]
        one = curves[curves["trial"] == number].drop(columns=["trial", "state"])
        present = [m for m in metrics if m in set(one.get("metric", []))]
        shown.append(
            page.add(
                folder,
                "best_folds.png",
                f"Learning curves of the best trial ({number})",
                "One line per fold and their mean, per epoch.",
                lambda: plots.learning_curves(one, present, title=f"{title}: trial {number}"),
            )
        )
    shown.append(
        page.add(
            folder,
            "importances.png",
            "Parameter importances",
            "Optuna's fANOVA importance of each parameter for the objective value.",
            lambda: optuna_plots.plot_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
            ),
        )
    )
    shown.append(
        page.add(
            folder,
            "slice.png",
            "Slice plot",
            "Objective value of each completed trial against each sampled parameter "
            "(colour: trial number; ringed: the best trial).",
            lambda: plots.slice_grid(table, direction=direction, title=title),
        )
    )
    written += [path for path in shown if path is not None]
    index = folder / "index.html"
    index.write_text(_html(study, table, best_numbers, page), encoding="utf-8")
    written.append(index)
    return written


def _trial_curves(study: optuna.Study) -> pandas.DataFrame:
    from nncv.search._result import trials_frame

    return trials_frame(study)


def _html(study: optuna.Study, table: pandas.DataFrame, best: list[int], page: _Page) -> str:
    counts = table["state"].value_counts().to_dict() if len(table) else {}
    summary = ", ".join(f"{count} {state.lower()}" for state, count in counts.items())
    top = table.set_index("number").loc[best] if best else table.iloc[0:0]
    # the first scorer's mean is the value: keep its std, the other scorers, the parameters
    hidden = {"datetime_start", "fail_reason", "state", "last_value"}
    hidden |= {c for c in top.columns if c.startswith("mean_") and top[c].equals(top["value"])}
    columns = [c for c in top.columns if c not in hidden]
    shown = top[columns].rename(columns=lambda c: c.removeprefix("params_"))
    top_html = shown.to_html(float_format=lambda v: f"{v:.4g}", border=0, na_rep="")
    figures = "\n".join(
        f"<section><h2>{html.escape(title)}</h2><p>{html.escape(caption)}</p>"
        f'<img src="{html.escape(name)}" alt="{html.escape(title)}"></section>'
        for name, title, caption in page.figures
    )
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in page.notes)
    name = html.escape(study.study_name)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>nncv study {name}</title>
<style>
body {{ font-family: sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
.wide {{ overflow-x: auto; }}
td, th {{ padding: 0.2em 0.6em; border-bottom: 1px solid #ddd; text-align: right; }}
</style>
</head>
<body>
<h1>Study {name}</h1>
<p>{len(table)} trials ({html.escape(summary)}); direction:
{html.escape(study.direction.name.lower())}. Tables beside this page:
<a href="trials.csv">trials.csv</a> (one row per trial),
<a href="curves.csv">curves.csv</a> (trial &times; fold &times; epoch &times; metric).</p>
<h2>Best trials</h2>
<div class="wide">{top_html}</div>
{figures}
{f"<h2>Not drawn</h2><ul>{notes}</ul>" if notes else ""}
</body>
</html>
"""
