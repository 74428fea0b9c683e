"""The ``nncv`` command line: thin commands over the library.

=========  ===============================================================
command    does
=========  ===============================================================
cv         k-fold cross-validation of a scaled network; prints fold scores
tune       an Optuna study (``nncv.tune``); saves the best model
worker     joins an existing study on a shared storage and runs trials
predict    loads a saved model and predicts a CSV/Parquet table
report     a study's trials table and figures (or a curves table's figure)
=========  ===============================================================

Data is a bundled data set name (``digits``, ``breast_cancer``, ``iris``, ``wine``,
``diabetes``, ``spiral``) or a CSV/Parquet path with ``--target COLUMN``. Network
parameters are given as ``--param name=value`` (values are Python literals:
``-p hidden_layer_sizes=(64,64) -p learning_rate=0.01 -p activation=tanh``).

Examples
--------
.. code-block:: console

    $ nncv cv digits --cv 5 -p max_epochs=30 --scoring accuracy --scoring f1_macro
    $ nncv tune digits --trials 40 --storage study.log --study-name digits --out digits.nncv
    $ nncv worker digits --storage study.log --study-name digits --trials 20
    $ nncv predict digits.nncv new_rows.csv --out predictions.csv
    $ nncv report --storage study.log --study-name digits --out report/
"""

from __future__ import annotations

import ast
import difflib
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import pandas as pd
import typer

from nncv.exceptions import NncvError

__all__ = ["app", "main"]

app = typer.Typer(
    name="nncv",
    help="Cross-validate and tune the nncv neural network; save, load and predict.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Command = TypeVar("Command", bound=Callable[..., Any])


class CommandError(NncvError, ValueError):
    """A command-line argument that cannot be used (unknown data set, bad --param …)."""


def _fails_cleanly(command: Command) -> Command:
    """Print nncv's own errors as one line on stderr and exit with status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (NncvError, ValueError, FileNotFoundError, KeyError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            typer.echo(f"Error: {message}", err=True)
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


# ----------------------------------------------------------------- shared options

DataArg = Annotated[
    str, typer.Argument(help="Bundled data set name, or a .csv/.parquet file (with --target).")
]
TargetOpt = Annotated[
    str | None, typer.Option("--target", "-t", help="Target column of a CSV/Parquet file.")
]
TaskOpt = Annotated[
    str,
    typer.Option(
        help="classification, regression, or auto (regression for a float target with many "
        "distinct values: more than 20 and more than 5% of the rows)."
    ),
]
ScalerOpt = Annotated[
    str, typer.Option(help="Input scaler: standard, minmax, robust, maxabs or none.")
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="Network parameter name=value (repeatable)."),
]
CvOpt = Annotated[int, typer.Option("--cv", min=2, help="Number of folds.")]
ScoringOpt = Annotated[
    list[str] | None,
    typer.Option("--scoring", "-s", help="scikit-learn scorer name (repeatable)."),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (folds, networks).")]
StorageOpt = Annotated[
    str | None,
    typer.Option(help="Study storage: a path ending in .log (journal file) or a SQLAlchemy URL."),
]
StudyOpt = Annotated[str | None, typer.Option("--study-name", help="Study name in the storage.")]


def load_data(data: str, target: str | None) -> tuple[Any, Any]:
    """A bundled data set by name, or ``(features, target)`` from a CSV/Parquet file."""
    from nncv import datasets

    path = Path(data)
    if path.suffix or path.exists():
        if not path.exists():
            raise CommandError(f"no such file: {data}")
        if target is None:
            raise CommandError(f"{data} is a file: name its target column with --target")
        return datasets.read_table(path, target)
    if target is not None:
        raise CommandError(f"--target is for CSV/Parquet files; {data!r} is a bundled data set")
    if data not in datasets.BUNDLED:
        hint = difflib.get_close_matches(data, list(datasets.BUNDLED), n=1)
        known = ", ".join(sorted(datasets.BUNDLED))
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        raise CommandError(
            f"{data!r} is neither a file nor a bundled data set ({known}){suggestion}"
        )
    return datasets.load(data)


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b=relu", "c=(8, 8)"]`` → ``{"a": 1, "b": "relu", "c": (8, 8)}``.

    Values are read as Python literals (numbers, tuples, lists, True/False/None, quoted
    strings); anything else stays a string. ``true``/``false``/``none`` work too.

    Examples
    --------
    >>> parse_params(["learning_rate=1e-3", "activation=tanh", "hidden_layer_sizes=(8,8)"])
    {'learning_rate': 0.001, 'activation': 'tanh', 'hidden_layer_sizes': (8, 8)}
    """
    params: dict[str, Any] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise CommandError(f"--param expects name=value, got {item!r}")
        lowered = text.lower()
        if lowered in ("true", "false", "none"):
            params[name] = {"true": True, "false": False, "none": None}[lowered]
            continue
        try:
            params[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            params[name] = text
    return params


#: ``--task`` values, with the nncv.pipeline task each names (None: inferred from y).
TASK_NAMES = {
    "auto": None,
    "classification": "classification",
    "classifier": "classification",
    "regression": "regression",
    "regressor": "regression",
}


def build_estimator(y: Any, task: str, scaler: str, params: dict[str, Any]) -> Any:
    """:func:`nncv.pipeline.default_estimator` for ``--task``, parameter names checked first.

    ``auto`` lets :func:`nncv.pipeline.infer_task` decide from the target (a regressor for
    a float target with many distinct values, diabetes' disease scores included).
    """
    from nncv import NNClassifier, NNRegressor
    from nncv.pipeline import default_estimator, infer_task

    if task not in TASK_NAMES:
        raise CommandError(
            f"--task must be auto, classification or regression (or classifier, regressor), "
            f"got {task!r}"
        )
    regressor = infer_task(y, TASK_NAMES[task]) == "regression"
    known = sorted((NNRegressor if regressor else NNClassifier)().get_params())
    for name in params:
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            suggestion = f"did you mean {hint[0]!r}? " if hint else ""
            raise CommandError(
                f"unknown network parameter {name!r}; {suggestion}known: {', '.join(known)}"
            )
    task_name = "regression" if regressor else "classification"
    return default_estimator(y, task_name, None if scaler == "none" else scaler, **params)


def describe_choice(estimator: Any, scoring: list[str] | None) -> str:
    """``"NNRegressor, score = r2"``: the estimator built and the metric it is scored by."""
    from sklearn.base import is_regressor

    from nncv.cv.fold import final_step

    final = final_step(estimator)
    if scoring:
        metric = ", ".join(scoring)
    else:
        metric = "r2" if is_regressor(final) else "accuracy"
    return f"{type(final).__name__}, score = {metric}"


def _scoring(names: list[str] | None) -> Any:
    if not names:
        return None
    return names[0] if len(names) == 1 else list(names)


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as Parquet (``.parquet``/``.pq``) or CSV (anything else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def read_frame(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame."""
    if not path.exists():
        raise CommandError(f"no such file: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


# ------------------------------------------------------------------------ cv


@app.command("cv")
@_fails_cleanly
def cv_command(
    data: DataArg,
    target: TargetOpt = None,
    task: TaskOpt = "auto",
    scaler: ScalerOpt = "standard",
    param: ParamOpt = None,
    cv: CvOpt = 5,
    scoring: ScoringOpt = None,
    n_jobs: Annotated[int, typer.Option("--n-jobs", "-j", help="Folds run in parallel.")] = 1,
    seed: SeedOpt = 0,
    curves: Annotated[
        Path | None, typer.Option(help="Write the per-epoch curves (CSV or Parquet).")
    ] = None,
    scores: Annotated[
        Path | None, typer.Option(help="Write the fold scores table (CSV or Parquet).")
    ] = None,
) -> None:
    """Cross-validate a scaled network; print each fold's scores and their mean."""
    from nncv.cv import cross_validate

    X, y = load_data(data, target)
    estimator = build_estimator(y, task, scaler, parse_params(param))
    typer.echo(describe_choice(estimator, scoring))
    result = cross_validate(
        estimator, X, y, cv=cv, scoring=_scoring(scoring), n_jobs=n_jobs, random_state=seed
    )
    table = result.to_frame()
    summary = table.drop(columns="fold").agg(["mean", "std"])
    summary.insert(0, "fold", summary.index)
    typer.echo(pd.concat([table, summary]).to_string(index=False, float_format="{:.4f}".format))
    if curves is not None:
        typer.echo(f"curves written to {write_table(result.curves, curves)}")
    if scores is not None:
        typer.echo(f"scores written to {write_table(table, scores)}")


# ---------------------------------------------------------------- tune, worker


#: CLI option names that differ from the search settings' fields (nncv.search.SearchSettings).
_SETTING_NAMES = {"trials": "n_trials", "workers": "n_workers", "seed": "random_state"}


def _tune(
    *,
    data: str,
    target: str | None,
    task: str,
    scaler: str,
    param: list[str] | None,
    space: Path | None,
    scoring: list[str] | None,
    refit: bool,
    **options: Any,
) -> Any:
    """``nncv.tune`` on the data, with the CLI's options as search settings.

    ``options`` are the command's other options, named as the CLI names them (``trials``,
    ``workers``, ``seed``) or as the settings do; each reaches ``tune`` under its
    setting's name, so a new setting is one field and one option.
    """
    import nncv

    X, y = load_data(data, target)
    if space is not None and not space.exists():
        raise CommandError(f"no such search space file: {space}")
    estimator = build_estimator(y, task, scaler, parse_params(param))
    typer.echo(describe_choice(estimator, scoring))
    settings = {_SETTING_NAMES.get(name, name): value for name, value in options.items()}
    if scoring:
        settings["scoring"] = _scoring(scoring)
    return nncv.tune(
        X,
        y,
        estimator=estimator,
        space=None if space is None else str(space),
        refit=refit,
        **settings,
    )


SpaceOpt = Annotated[
    Path | None, typer.Option(help="Search space TOML file (default: nncv's default space).")
]
TrialsOpt = Annotated[int, typer.Option("--trials", "-n", min=1, help="Number of trials.")]
TimeoutOpt = Annotated[float | None, typer.Option(help="Stop starting trials after seconds.")]
PrunerOpt = Annotated[str, typer.Option(help="Optuna pruner: median, hyperband, … or none.")]
SamplerOpt = Annotated[str, typer.Option(help="Optuna sampler: tpe, random or qmc.")]


@app.command("tune")
@_fails_cleanly
def tune_command(
    data: DataArg,
    target: TargetOpt = None,
    task: TaskOpt = "auto",
    scaler: ScalerOpt = "standard",
    param: ParamOpt = None,
    space: SpaceOpt = None,
    trials: TrialsOpt = 20,
    timeout: TimeoutOpt = None,
    cv: CvOpt = 5,
    scoring: ScoringOpt = None,
    pruner: PrunerOpt = "median",
    sampler: SamplerOpt = "tpe",
    storage: StorageOpt = None,
    study_name: StudyOpt = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on the storage.")] = 1,
    seed: SeedOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Save the refitted best model here (nncv.save).")
    ] = None,
    trials_out: Annotated[
        Path | None, typer.Option(help="Write the trial × fold × epoch table (CSV/Parquet).")
    ] = None,
) -> None:
    """Tune the network by k-fold CV with an Optuna study; save the best model."""
    options = {name: value for name, value in locals().items() if name not in ("out", "trials_out")}
    import nncv

    result = _tune(**options, refit=out is not None)
    typer.echo(f"study: {result.study.study_name}")
    typer.echo(f"best CV score: {result.best_score:.4f} ± {result.best_score_std:.4f}")
    # The space's names, as --param takes them (best_params has the Pipeline's prefixes).
    best = json.dumps(result.best_space_params, default=str, sort_keys=True)
    typer.echo("best parameters: " + best)
    if trials_out is not None:
        typer.echo(f"trials written to {write_table(result.trials_frame, trials_out)}")
    if out is not None:
        nncv.save(result.best_estimator, out)
        typer.echo(f"best model saved to {out}")


@app.command("worker")
@_fails_cleanly
def worker_command(
    data: DataArg,
    storage: Annotated[str, typer.Option(help="The study's storage (journal .log or URL).")],
    study_name: Annotated[str, typer.Option("--study-name", help="The study to join.")],
    target: TargetOpt = None,
    task: TaskOpt = "auto",
    scaler: ScalerOpt = "standard",
    param: ParamOpt = None,
    space: SpaceOpt = None,
    trials: TrialsOpt = 20,
    timeout: TimeoutOpt = None,
    cv: CvOpt = 5,
    scoring: ScoringOpt = None,
    pruner: PrunerOpt = "median",
    sampler: SamplerOpt = "tpe",
    seed: SeedOpt = None,
) -> None:
    """Join an existing study and run trials on it (start one per machine or core).

    Give the same data and options as the ``tune`` that created the study: the study
    checks its data fingerprint, space and folds, and refuses a mismatch.
    """
    result = _tune(**locals(), workers=1, refit=False)
    finished = sum(t.state.name == "COMPLETE" for t in result.study.trials)
    typer.echo(
        f"study {study_name!r}: {finished} complete trials, best CV score {result.best_score:.4f}"
    )


# ------------------------------------------------------------------- predict


@app.command("predict")
@_fails_cleanly
def predict_command(
    model: Annotated[Path, typer.Argument(help="A model saved by nncv.save / nncv tune --out.")],
    table: Annotated[Path, typer.Argument(help="Rows to predict: a .csv or .parquet file.")],
    out: Annotated[
        Path | None, typer.Option(help="Output CSV/Parquet (default: print CSV to stdout).")
    ] = None,
    proba: Annotated[
        bool, typer.Option("--proba", help="Add one probability column per class.")
    ] = False,
    drop: Annotated[
        list[str] | None, typer.Option(help="Columns to ignore (e.g. the target; repeatable).")
    ] = None,
) -> None:
    """Predict every row of a table with a saved model; write the predictions."""
    import nncv

    estimator = nncv.load(model)
    frame = read_frame(table)
    missing = [name for name in drop or [] if name not in frame.columns]
    if missing:
        raise CommandError(f"--drop names columns not in {table}: {missing}")
    frame = frame.drop(columns=list(drop or []))
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        absent = [str(name) for name in names if name not in frame.columns]
        if absent:
            raise CommandError(f"{table} lacks the model's feature columns {absent}")
        features: Any = frame[list(names)]
    else:
        features = frame.to_numpy()
    predictions = np.asarray(estimator.predict(features))
    output = pd.DataFrame(index=frame.index)
    if predictions.ndim == 1:
        output["prediction"] = predictions
    else:
        for column in range(predictions.shape[1]):
            output[f"prediction_{column}"] = predictions[:, column]
    if proba:
        if not hasattr(estimator, "predict_proba"):
            raise CommandError("--proba needs a classifier; this model has no predict_proba")
        probabilities = np.asarray(estimator.predict_proba(features))
        for column, label in enumerate(estimator.classes_):
            output[f"proba_{label}"] = probabilities[:, column]
    if out is None:
        output.to_csv(sys.stdout, index=False)
    else:
        typer.echo(f"{len(output)} predictions written to {write_table(output, out)}")


# -------------------------------------------------------------------- report


@app.command("report")
@_fails_cleanly
def report_command(
    out: Annotated[Path, typer.Option(help="Folder for the tables and figures.")],
    storage: StorageOpt = None,
    study_name: StudyOpt = None,
    curves: Annotated[
        Path | None, typer.Option(help="A curves table from `nncv cv --curves` to draw.")
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="Curve metric to draw (repeatable; val_score).")
    ] = None,
) -> None:
    """Write a study's tables and figures, or draw a curves table, into a folder.

    From a study: ``trials.csv`` (one row per trial), ``curves.csv`` (trial × fold ×
    epoch × metric), ``history.png`` (optimisation history) and ``curves.png``. From a
    curves table: ``curves.png``.
    """
    from nncv import plots

    metrics = list(metric or ["val_score"])
    if (storage is None) == (curves is None):
        raise CommandError("give either --storage (with --study-name) or --curves")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if curves is not None:
        frame = read_frame(curves)
        figure = plots.learning_curves(frame, metrics, title=curves.stem)
        written.append(plots.save_figure(figure, out / "curves.png"))
    else:
        import optuna

        from nncv.search._result import trials_frame
        from nncv.search._storage import make_storage

        if study_name is None:
            raise CommandError("--storage needs --study-name")
        try:
            study = optuna.load_study(study_name=study_name, storage=make_storage(storage))
        except KeyError:
            raise CommandError(f"no study named {study_name!r} in {storage}") from None
        trials = study.trials_dataframe()
        written.append(write_table(trials, out / "trials.csv"))
        direction = study.direction.name.lower()
        if trials.get("value") is not None and trials["value"].notna().any():
            figure = plots.optimization_history(trials, direction=direction, title=study_name)
            written.append(plots.save_figure(figure, out / "history.png"))
        frame = trials_frame(study)
        written.append(write_table(frame, out / "curves.csv"))
        if len(frame):
            figure = plots.learning_curves(frame, metrics, title=study_name)
            written.append(plots.save_figure(figure, out / "curves.png"))
    for path in written:
        typer.echo(f"wrote {path}")


def main() -> None:
    """Entry point for ``python -m nncv.cli``."""
    app()


if __name__ == "__main__":
    main()
