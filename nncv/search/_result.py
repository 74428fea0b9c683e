"""What a search returns: the best trial's parameters and scores, the study, tidy tables."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd

from nncv.exceptions import SearchError
from nncv.network.training import EARLY_STOPPING_KEYS
from nncv.search._objective import HISTORY_KEYS
from nncv.search.space import SearchSpace

__all__ = ["TuneResult", "cv_results", "trials_dataframe", "trials_frame"]

_STATES = optuna.trial.TrialState


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """Every per-epoch value of every fold of every trial, one row each (tidy).

    Columns: ``trial``, ``state``, ``fold``, ``epoch``, ``metric`` (loss, data_loss,
    val_loss, val_score, learning_rate; early_stopping_val_loss and
    early_stopping_val_score for networks that stop early) and ``value``. Pruned and
    failed trials keep the epochs they ran.
    """
    parts = []
    for trial in study.get_trials(deepcopy=False):
        history = trial.user_attrs.get("nncv_history")
        if not history or not history.get("fold"):
            continue
        wide = pd.DataFrame(history)
        wide.insert(0, "state", trial.state.name)
        wide.insert(0, "trial", trial.number)
        parts.append(wide)
    columns = ["trial", "state", "fold", "epoch", "metric", "value"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    wide = pd.concat(parts, ignore_index=True)
    long = wide.melt(
        id_vars=["trial", "state", "fold", "epoch"],
        value_vars=[k for k in (*HISTORY_KEYS, *EARLY_STOPPING_KEYS) if k in wide.columns],
        var_name="metric",
        value_name="value",
    )
    long["value"] = long["value"].astype(float)
    return long.sort_values(["trial", "fold", "epoch", "metric"], kind="stable").reset_index(
        drop=True
    )[columns]


def _applied(params: dict[str, Any], names: dict[str, str] | None) -> dict[str, Any]:
    """A trial's estimator-level parameters under the names ``set_params`` takes."""
    names = names or {}
    return {names.get(name, name): value for name, value in params.items()}


def _epochs(trial: optuna.trial.FrozenTrial) -> int:
    """The most epochs any fold of ``trial`` trained (0 when none ran)."""
    epochs = (trial.user_attrs.get("nncv_history") or {}).get("epoch") or []
    return int(max(epochs)) if epochs else 0


def trials_dataframe(
    study: optuna.Study, metrics: list[str], names: dict[str, str] | None = None
) -> pd.DataFrame:
    """One row per trial, as Optuna's ``Study.trials_dataframe`` but with the fold scores.

    Columns: ``number``, ``state``, ``value``, ``params_<name>`` (the names ``set_params``
    takes on the estimator tuned), ``mean_<metric>`` and ``std_<metric>`` over the folds
    for every metric (NaN for a trial that did not complete), ``duration`` (seconds),
    ``epochs`` (the most any fold trained).
    """
    rows = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        row: dict[str, Any] = {"number": trial.number, "state": trial.state.name}
        row["value"] = np.nan if trial.value is None else float(trial.value)
        for name, value in _applied(trial.user_attrs.get("nncv_params", {}), names).items():
            row[f"params_{name}"] = tuple(value) if isinstance(value, list) else value
        fold_scores = trial.user_attrs.get("nncv_fold_scores", {})
        for metric in metrics:
            scores = np.array(
                [np.nan if v is None else v for v in fold_scores.get(metric) or [np.nan]],
                dtype=float,
            )
            row[f"mean_{metric}"] = float(np.mean(scores))
            row[f"std_{metric}"] = float(np.std(scores))
        duration = trial.duration
        row["duration"] = np.nan if duration is None else duration.total_seconds()
        row["epochs"] = _epochs(trial)
        rows.append(row)
    columns = ["number", "state", "value"]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    params = sorted(c for c in frame.columns if c.startswith("params_"))
    rest = [c for c in frame.columns if c not in columns and c not in params]
    return frame[[*columns, *params, *rest]]


def _rank(values: np.ndarray) -> np.ndarray:
    """GridSearchCV's ranking: 1 is best, ties share the lowest rank, NaN ranks last."""
    from scipy.stats import rankdata

    finite = np.where(np.isnan(values), -np.inf, values)
    return rankdata(-finite, method="min").astype(np.int32)


def cv_results(
    study: optuna.Study,
    metrics: list[str],
    n_splits: int,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``cv_results_`` in GridSearchCV's layout, one entry per trial.

    Pruned and failed trials have NaN scores (as GridSearchCV's failed fits) and
    ``trial_state`` says why; ``trial_number`` links each entry to the study. ``names``
    maps the space's estimator-level names to ``set_params`` names (``params`` and the
    ``param_<name>`` columns use those, as GridSearchCV does).
    """
    trials = sorted(
        (t for t in study.get_trials(deepcopy=False) if t.state.is_finished()),
        key=lambda t: t.number,
    )
    n = len(trials)
    results: dict[str, Any] = {}
    params = [_applied(t.user_attrs.get("nncv_params", {}), names) for t in trials]
    for key in ("fit_times", "score_times"):
        times = np.full((n, n_splits), np.nan)
        for row, trial in enumerate(trials):
            values = trial.user_attrs.get(f"nncv_{key}")
            if values:
                times[row, : len(values)] = values
        name = key[:-1]
        with warnings.catch_warnings():  # a trial that failed before any fold has no times
            warnings.simplefilter("ignore", RuntimeWarning)
            results[f"mean_{name}"] = np.nanmean(times, axis=1) if n else np.array([])
            results[f"std_{name}"] = np.nanstd(times, axis=1) if n else np.array([])
    names = sorted({name for p in params for name in p})
    for name in names:
        column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
        for row, p in enumerate(params):
            if name in p:
                value = p[name]
                column[row] = tuple(value) if isinstance(value, list) else value
        results[f"param_{name}"] = column
    results["params"] = [
        {k: tuple(v) if isinstance(v, list) else v for k, v in p.items()} for p in params
    ]
    for metric in metrics:
        scores = np.full((n, n_splits), np.nan)
        for row, trial in enumerate(trials):
            if trial.state == _STATES.COMPLETE:
                fold_scores = trial.user_attrs.get("nncv_fold_scores", {}).get(metric)
                if fold_scores:
                    scores[row] = [np.nan if v is None else v for v in fold_scores]
        for fold in range(n_splits):
            results[f"split{fold}_test_{metric}"] = scores[:, fold]
        with np.errstate(all="ignore"):
            results[f"mean_test_{metric}"] = scores.mean(axis=1)
            results[f"std_test_{metric}"] = scores.std(axis=1)
        results[f"rank_test_{metric}"] = _rank(results[f"mean_test_{metric}"])
    results["trial_number"] = np.array([t.number for t in trials], dtype=np.int64)
    results["trial_state"] = np.array([t.state.name for t in trials], dtype=object)
    return results


@dataclass
class TuneResult:
    """The outcome of :func:`nncv.tune`.

    Attributes
    ----------
    best_params : dict
        Parameters of the best trial under the names ``set_params`` takes on the
        estimator tuned (``net__learning_rate`` for a Pipeline, ``hidden_layer_sizes``
        assembled), as GridSearchCV's ``best_params_``:
        ``clone(estimator).set_params(**result.best_params)`` applies them. The
        space's own names are the trial's: ``best_trial.params`` (Optuna's) and
        ``best_trial.user_attrs["nncv_params"]`` (estimator-level).
    best_score, best_value : float
        Its mean score over the folds (of ``metric``); ``best_value`` as Optuna names it.
    best_score_std : float
        Standard deviation of that score over the folds.
    best_estimator : estimator or None
        A clone refit on all the data with ``best_params`` (and, when early stopping was
        on, ``max_epochs`` set to the epoch where the folds' mean validation score peaked);
        None with ``refit=False`` or after an interrupt.
    best_trial : optuna.trial.FrozenTrial
    study : optuna.Study
    metric : str
        The scorer the study maximised; ``metrics`` lists all of them.
    fold_scores : dict
        ``{metric: [score per fold]}`` of the best trial.
    refit_epochs : int or None
        ``max_epochs`` used for the refit when early stopping was on.
    interrupted : bool
        True when the search stopped on Ctrl-C (finished trials are kept).
    parameter_names : dict
        The space's estimator-level names mapped to ``set_params`` names.
    """

    study: optuna.Study
    space: SearchSpace
    metric: str
    metrics: list[str]
    best_params: dict[str, Any]
    best_score: float
    best_score_std: float
    best_trial: optuna.trial.FrozenTrial
    fold_scores: dict[str, list[float]]
    best_estimator: Any = None
    refit_epochs: int | None = None
    interrupted: bool = False
    parameter_names: dict[str, str] = field(default_factory=dict)
    _trials_frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def trials_frame(self) -> pd.DataFrame:
        """Trial × fold × epoch × metric, tidy (see :func:`trials_frame`)."""
        if self._trials_frame is None:
            self._trials_frame = trials_frame(self.study)
        return self._trials_frame

    @property
    def best_space_params(self) -> dict[str, Any]:
        """:attr:`best_params` under the space's own names (``learning_rate``, not
        ``net__learning_rate``): what the CLI's ``--param`` takes."""
        space_names = {full: name for name, full in self.parameter_names.items()}
        return {space_names.get(k, k): v for k, v in self.best_params.items()}

    @property
    def best_value(self) -> float:
        """The best trial's objective value (the mean fold score), as Optuna's ``best_value``."""
        return self.best_score

    def trials_dataframe(self) -> pd.DataFrame:
        """One row per trial: parameters, mean and std of the fold scores, state, duration,
        epochs (see :func:`trials_dataframe`); :attr:`trials_frame` has every epoch."""
        return trials_dataframe(self.study, self.metrics, self.parameter_names)

    def __repr__(self) -> str:
        return (
            f"TuneResult(best_score={self.best_score:.4f} ± {self.best_score_std:.4f} "
            f"({self.metric}), best_params={self.best_params}, "
            f"trials={len(self.study.trials)}, study={self.study.study_name!r})"
        )


def best_complete_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The best COMPLETE trial, or a :class:`~nncv.SearchError` explaining why there is none."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == _STATES.COMPLETE and t.value is not None]
    if not complete:
        counts = {s.name.lower(): sum(t.state == s for t in trials) for s in _STATES}
        reasons = sorted(
            {
                str(t.user_attrs.get("fail_reason") or t.system_attrs.get("fail_reason"))
                for t in trials
                if t.state == _STATES.FAIL
            }
        )
        shown = "; ".join(reasons[:3])
        raise SearchError(
            f"no trial of study {study.study_name!r} completed "
            f"({', '.join(f'{v} {k}' for k, v in counts.items() if v)})"
            + (f"; failures: {shown}" if shown else "")
        )
    return max(complete, key=lambda t: (t.value, -t.number))
