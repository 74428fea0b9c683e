"""The `nncv` command line: thin commands over the library.

=========  ===============================================================
command    does
=========  ===============================================================
cv         k-fold cross-validation of a scaled network; prints fold scores
tune       an Optuna study (`nncv.tune`); saves the best model
worker     joins an existing study on a shared storage and runs trials
predict    loads a saved model and predicts a CSV/Parquet table
report     a study's trials table and figures (or a curves table's figure)
=========  ===============================================================

Data is a bundled data set name (`digits`, `breast_cancer`, `iris`, `wine`, `diabetes`,
`spiral`) or a CSV/Parquet path with `--target COLUMN`. Network parameters are given as
`--param name=value` (values are Python literals, quoted for the shell when they hold
parentheses: `-p "hidden_layer_sizes=(64,64)" -p learning_rate=0.01 -p activation=tanh`).

Help text is written in Markdown (typer's `rich_markup_mode="markdown"`): paragraphs are
reflowed to the terminal's width, and flags show no `<bool>` type.

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
from typer.core import TyperCommand, TyperGroup

from nncv.exceptions import NncvError

__all__ = ["app", "main"]


class _PlainFlags:
    """Mixin for click commands and groups: on/off flags show no value type (typer prints
    ``<bool>``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class _FlagCommand(_PlainFlags, TyperCommand):
    """A command whose flags show no ``<bool>``."""


class _FlagGroup(_PlainFlags, TyperGroup):
    """The command group (``nncv --help``), whose flags show no ``<bool>`` either."""


class _App(typer.Typer):
    """`typer.Typer` whose commands are `_FlagCommand`s."""

    def command(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs.setdefault("cls", _FlagCommand)
        return super().command(*args, **kwargs)


app = _App(
    name="nncv",
    cls=_FlagGroup,
    help="Cross-validate and tune the nncv neural network; save, load and predict.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
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
    typer.Option("--param", "-p", metavar="NAME=VALUE", help="Network parameter (repeatable)."),
]
CvOpt = Annotated[int, typer.Option("--cv", min=2, help="Number of folds.")]
ScoringOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--scoring", "-s", metavar="SCORER", help="scikit-learn scorer name (repeatable)."
    ),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (folds, networks).")]
TuneSeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed", help="Study seed (folds, networks, sampler).", show_default="a random seed"
    ),
]
StorageOpt = Annotated[
    str | None,
    typer.Option(help="Study storage: a path ending in .log (journal file) or a SQLAlchemy URL."),
]
StudyOpt = Annotated[
    str | None,
    typer.Option(
        "--study-name",
        help="Study name in the storage (tune: default the data's name with --storage).",
    ),
]
DaskOpt = Annotated[
    str | None,
    typer.Option(
        "--dask",
        metavar="ADDRESS",
        help="Run on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786).",
    ),
]


def load_data(data: str, target: str | None) -> tuple[Any, Any]:
    """A bundled data set by name, or ``(features, target)`` from a CSV/Parquet file."""
    from nncv import datasets

    path = Path(data)
    if path.suffix or path.exists():
        if not path.exists():
            raise CommandError(f"no such file: {data}")
        if target is None:
            raise CommandError(f"{data} is a file: name its target column with --target")
        X, y = datasets.read_table(path, target)
        _refuse_text(X, data)
        return X, y
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


def read_frame(path: Path, *, header: bool = True) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame (`nncv.datasets.read_frame`)."""
    from nncv import datasets

    return datasets.read_frame(path, header=header)


def _refuse_text(features: pd.DataFrame, source: Any) -> None:
    """Name the feature columns of ``source`` that hold text: the network takes numbers."""
    from nncv import datasets
    from nncv.exceptions import TableError

    text = datasets.text_columns(features)
    if text:
        shown = ", ".join(
            f"{name!r}" + ("" if value is None else f" (e.g. {str(value)[:40]!r})")
            for name, value in text.items()
        )
        raise TableError(
            f"{source}: column{'s' if len(text) > 1 else ''} {shown} hold"
            f"{'' if len(text) > 1 else 's'} text, not numbers; drop "
            f"{'them' if len(text) > 1 else 'it'} (--drop) or encode it as numbers"
        )


def _first_row_is_data(path: Path) -> bool:
    """Whether a CSV's first row holds only numbers: data, not a header of column names."""
    suffixes = "".join(path.suffixes).lower()
    if ".csv" not in suffixes and ".tsv" not in suffixes:
        return False  # Parquet names its columns
    first = pd.read_csv(
        path, header=None, nrows=1, dtype=str, sep="\t" if ".tsv" in suffixes else ","
    )
    if first.empty:
        return False
    try:
        values = [float(str(value)) for value in first.iloc[0]]
    except ValueError:
        return False
    # 0, 1, …, n-1 is the header pandas writes for unnamed columns, not a data row.
    return values != list(range(len(values)))


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
    stack_folds: Annotated[
        bool,
        typer.Option(
            "--stack-folds/--no-stack-folds",
            help="Train the folds of one configuration as one stacked network (same numbers).",
        ),
    ] = True,
    dask: DaskOpt = None,
) -> None:
    """Cross-validate a scaled network; print each fold's scores and their mean."""
    from nncv.cv import cross_validate

    X, y = load_data(data, target)
    estimator = build_estimator(y, task, scaler, parse_params(param))
    typer.echo(describe_choice(estimator, scoring))
    result = cross_validate(
        estimator,
        X,
        y,
        cv=cv,
        scoring=_scoring(scoring),
        n_jobs=n_jobs,
        random_state=seed,
        stack_folds=stack_folds,
        backend=dask,
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
_SETTING_NAMES = {
    "trials": "n_trials",
    "workers": "n_workers",
    "seed": "random_state",
    "dask": "backend",
}


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
    quiet: bool = False,
    verbose: bool = False,
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
    if options.get("storage") is not None and options.get("study_name") is None:
        options["study_name"] = Path(data).stem  # a rerun on the same storage continues it
    settings = {_SETTING_NAMES.get(name, name): value for name, value in options.items()}
    if scoring:
        settings["scoring"] = _scoring(scoring)
    return nncv.tune(
        X,
        y,
        estimator=estimator,
        space=None if space is None else str(space),
        refit=refit,
        progress=False if quiet else None,  # a bar when standard error is a terminal
        verbose=verbose,
        **settings,
    )


SpaceOpt = Annotated[
    Path | None, typer.Option(help="Search space TOML file (default: nncv's default space).")
]
TrialsOpt = Annotated[int, typer.Option("--trials", "-n", min=1, help="Number of trials.")]
TimeoutOpt = Annotated[float | None, typer.Option(help="Stop starting trials after seconds.")]
PrunerOpt = Annotated[str, typer.Option(help="Optuna pruner: median, hyperband, … or none.")]
SamplerOpt = Annotated[str, typer.Option(help="Optuna sampler: tpe, random or qmc.")]
StackOpt = Annotated[
    bool,
    typer.Option(
        "--stack-folds/--no-stack-folds",
        help="Train the folds of one configuration as one stacked network (same numbers).",
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar (none is drawn off a terminal).")
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Print Optuna's line for every trial.")
]


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
    seed: TuneSeedOpt = None,
    stack_folds: StackOpt = True,
    refit: Annotated[
        str,
        typer.Option(
            help="What --out saves: 'refit' (the best configuration refit on all rows), "
            "'ensemble' (the best trial's fold models, averaged) or 'seed_ensemble' "
            "(--ensemble-size members refit on all rows from different seeds, averaged)."
        ),
    ] = "refit",
    ensemble_size: Annotated[
        int, typer.Option(min=1, help="Members of --refit seed_ensemble.")
    ] = 5,
    out: Annotated[
        Path | None, typer.Option(help="Save the refitted best model here (nncv.save).")
    ] = None,
    trials_out: Annotated[
        Path | None, typer.Option(help="Write the trial × fold × epoch table (CSV/Parquet).")
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    dask: DaskOpt = None,
) -> None:
    """Tune the network by k-fold CV with an Optuna study; save the best model.

    On a terminal a progress bar shows the trials done, pruned and failed, the best score
    so far, the elapsed time and an ETA (`--quiet` hides it; `--verbose` adds Optuna's
    line per trial).
    """
    options = {
        name: value
        for name, value in locals().items()
        if name not in ("out", "trials_out", "refit")
    }
    import nncv

    kinds = {"refit": True, "ensemble": "ensemble", "seed_ensemble": "seed_ensemble"}
    if refit not in kinds:
        raise CommandError(f"--refit must be 'refit', 'ensemble' or 'seed_ensemble', got {refit!r}")
    result = _tune(**options, refit=False if out is None else kinds[refit])
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


def _require_study(storage: str, study_name: str) -> None:
    """Refuse a study that is not in the storage, naming those that are."""
    from nncv.search._storage import describe_storage, study_names

    names = study_names(storage)
    if study_name in names:
        return
    close = difflib.get_close_matches(study_name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(repr(name) for name in names) if names else "none"
    raise CommandError(
        f"no study {study_name!r} in {describe_storage(storage)}{hint}; studies there: "
        f"{listed}. Create it with `nncv tune` (or pass --create to the worker)"
    )


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
    stack_folds: StackOpt = True,
    create: Annotated[
        bool,
        typer.Option(
            "--create", help="Create the study if it does not exist (workers started together)."
        ),
    ] = False,
) -> None:
    """Join an existing study and run trials on it (start one per machine or core).

    Give the same data and options as the ``tune`` that created the study: the study
    checks its data fingerprint, space and folds, and refuses a mismatch. A study that
    does not exist is refused (with the names of those that do) unless ``--create``.
    """
    if not create:
        _require_study(storage, study_name)
    options = {name: value for name, value in locals().items() if name != "create"}
    result = _tune(**options, workers=1, refit=False)
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
        list[str] | None,
        typer.Option(metavar="COLUMN", help="Column to ignore (e.g. the target; repeatable)."),
    ] = None,
    no_header: Annotated[
        bool,
        typer.Option(
            "--no-header",
            help="The CSV's first row is data, not column names (found out when every "
            "value in it is a number).",
        ),
    ] = False,
) -> None:
    """Predict every row of a table with a saved model; write the predictions.

    A model fitted on named columns (a CSV/Parquet file, a DataFrame) picks them by name:
    other columns, such as the target, are ignored. A model fitted on a plain array takes
    the table's columns by position. A CSV whose first row holds only numbers is read as
    data, not as a header (or say so with `--no-header`).
    """
    import nncv

    estimator = nncv.load(model)
    frame = read_frame(table)
    headerless = no_header or _first_row_is_data(table)
    if headerless:
        frame = read_frame(table, header=False)
    missing = [name for name in drop or [] if name not in frame.columns]
    if missing:
        raise CommandError(f"--drop names columns not in {table}: {missing}")
    frame = frame.drop(columns=list(drop or []))
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        if headerless:
            raise CommandError(
                f"{table} has no header row, but the model takes its features by name: "
                f"{[str(name) for name in names]}"
            )
        absent = [str(name) for name in names if name not in frame.columns]
        if absent:
            raise CommandError(f"{table} lacks the model's feature columns {absent}")
        features: Any = frame[list(names)]
    else:
        expected = getattr(estimator, "n_features_in_", None)
        if expected is not None and frame.shape[1] != expected:
            raise CommandError(
                f"{table} has {frame.shape[1]} columns; the model was fitted without column "
                f"names on {expected} features, and takes them by position"
            )
        if not headerless:
            typer.echo(
                f"note: the model was fitted without column names: the {frame.shape[1]} "
                f"columns of {table} are taken by position (its header row is not data)",
                err=True,
            )
        features = frame
    _refuse_text(features, table)
    if names is None:
        features = features.to_numpy()
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


def _open_existing_study(storage: str, study_name: str) -> Any:
    """Load a study from a storage that must already exist; create nothing on the way."""
    import optuna

    from nncv.search._storage import describe_storage, make_storage

    path = None
    if "://" not in storage:
        path = Path(storage)
    elif storage.startswith("sqlite:///"):
        path = Path(storage.removeprefix("sqlite:///"))
    if path is not None and not path.is_file():
        raise CommandError(f"no study storage at {path}: no such file")
    opened = make_storage(storage)
    names = sorted(optuna.get_all_study_names(storage=opened))
    if study_name not in names:
        known = ", ".join(repr(name) for name in names) or "none"
        hint = difflib.get_close_matches(study_name, names, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        raise CommandError(
            f"no study named {study_name!r} in {describe_storage(storage)} "
            f"(studies there: {known}){suggestion}"
        )
    return optuna.load_study(study_name=study_name, storage=opened)


@app.command("report")
@_fails_cleanly
def report_command(
    out: Annotated[Path, typer.Option(help="Folder for the page, tables and figures.")],
    storage: StorageOpt = None,
    study_name: StudyOpt = None,
    curves: Annotated[
        Path | None, typer.Option(help="A curves table from `nncv cv --curves` to draw.")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            metavar="METRIC",
            help="Per-epoch metric to draw (repeatable; default: loss, val_loss, "
            "val_score for a study, val_score for a curves table).",
        ),
    ] = None,
) -> None:
    """Write a study's report (an offline web page, tables, figures) or draw a curves table.

    From a study: `index.html` (open it in a browser, no network needed), `trials.csv` (one
    row per trial), `curves.csv` (trial × fold × epoch × metric) and the figures beside
    the page: `history.png` (optimisation history with pruned trials), `intermediate.png`
    (every trial's reported value by epoch, the best few highlighted), `best_folds.png`
    (the best trial's per-fold learning curves), `importances.png` and `slice.png`. From
    a curves table: `curves.png`.
    """
    from nncv import plots

    if (storage is None) == (curves is None):
        raise CommandError("give either --storage (with --study-name) or --curves")
    written: list[Path] = []
    if curves is not None:
        frame = read_frame(curves)
        figure = plots.learning_curves(frame, list(metric or ["val_score"]), title=curves.stem)
        written.append(plots.save_figure(figure, out / "curves.png"))
    else:
        from nncv.report import write_report

        if study_name is None:
            raise CommandError("--storage needs --study-name")
        assert storage is not None
        study = _open_existing_study(storage, study_name)
        written = write_report(study, out, metrics=metric)
    for path in written:
        typer.echo(f"wrote {path}")


def main() -> None:
    """Entry point for ``python -m nncv.cli``."""
    app()


if __name__ == "__main__":
    main()
