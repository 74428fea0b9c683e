"""The k-fold objective: every fold of a trial trains in lockstep, the pruner sees them all.

For each trial the estimator is cloned once per fold, the suggested parameters and the
fold's seed are set, the preprocessing steps are fitted on the training fold only, and
each fold's network is driven by its ``iter_fit`` generator. The held-out fold is scored
after every epoch but never decides anything inside the fold: a network with
``early_stopping=True`` stops on its own ``validation_fraction`` split of the training
rows, exactly as ``fit`` would, so each fold's score is that of a plain fit (as in
``cross_val_score``), not the best of its held-out curve. Every round advances each
unfinished fold by ``epochs_per_report`` epochs, reports the mean validation score over
the folds (a finished fold counts with its final score) to the trial and asks the
pruner; a pruned trial stops all its folds at once. What the trial leaves on the study
(as trial user attributes):

* ``nncv_params`` — the estimator-level parameters it tried;
* ``nncv_history`` — fold × epoch records (loss, val_loss, val_score on the held-out fold,
  …, and the early-stopping split's values when there is one), columnar;
* ``nncv_fold_scores`` — ``{metric: [score per fold]}`` from the scikit-learn scorers;
* ``nncv_fit_times``, ``nncv_score_times`` — seconds per fold;
* ``nncv_best_epochs`` and ``nncv_peak_epoch`` — each fold's best epoch, and the epoch
  where the mean validation score over the folds peaked;
* ``nncv_splits_sha256`` — digest of the fold indices the trial actually used;
* ``fail_reason`` — why a diverging trial failed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import _num_samples

from nncv._held_out import HeldOut, network_evaluator, with_held_out_scores
from nncv.exceptions import DivergedError
from nncv.search._estimator import network_prefix, slice_rows
from nncv.search._scoring import Scorer, score
from nncv.search._study import Split, fold_seed, splits_digest
from nncv.search.space import SearchSpace

__all__ = ["EARLY_STOPPING_KEYS", "HISTORY_KEYS", "FoldObjective", "peak_epoch"]

#: Per-epoch values kept from ``iter_fit`` records, in this order.
HISTORY_KEYS = ("loss", "data_loss", "val_loss", "val_score", "learning_rate")
#: Kept as well when the network stops early: its own validation split's values.
EARLY_STOPPING_KEYS = ("early_stopping_val_loss", "early_stopping_val_score")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _number(value: Any) -> float | None:
    """A float for JSON: NaN/inf (not JSON) become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def peak_epoch(history: Mapping[str, list], best_epochs: Sequence[int | None] = ()) -> int | None:
    """Epoch (1-based) where the mean validation score over the folds is highest.

    A fold that stopped early keeps, for the later epochs, the score of the weights it
    stopped with: those of its best epoch (``best_epochs[fold]``) when early stopping
    restored them, else its last epoch's. Returns None without any validation score.

    Examples
    --------
    >>> history = {"fold": [0, 0, 0, 1, 1], "epoch": [1, 2, 3, 1, 2],
    ...            "val_score": [.5, .7, .8, .9, .6]}
    >>> peak_epoch(history, best_epochs=[3, 1])   # fold 1 holds 0.9 from epoch 2 on
    3
    """
    folds = np.asarray(history.get("fold", []))
    if folds.size == 0:
        return None
    epochs = np.asarray(history["epoch"])
    scores = np.array([np.nan if v is None else v for v in history["val_score"]], dtype=float)
    fold_ids = np.unique(folds)
    n_epochs = int(epochs.max())
    curves = np.full((len(fold_ids), n_epochs), np.nan)
    for row, fold in enumerate(fold_ids):
        mine = folds == fold
        curves[row, epochs[mine] - 1] = scores[mine]
        last = int(epochs[mine].max())
        best = best_epochs[fold] if fold < len(best_epochs) else None
        held = curves[row, (best if best else last) - 1]
        curves[row, last:] = held
    means = curves.mean(axis=0)
    if np.isnan(means).all():
        return None
    return int(np.nanargmax(means)) + 1


@dataclass
class _Fold:
    """One fold of one trial while it trains."""

    index: int
    estimator: Any
    network: Any
    generator: Any
    X_val: Any
    y_val: Any
    w_val: Any
    fit_time: float = 0.0
    finished: bool = False
    last_score: float = float("nan")
    records: list[dict[str, Any]] = field(default_factory=list)


class FoldObjective:
    """Optuna objective: mean k-fold score of the estimator with the trial's parameters.

    Parameters
    ----------
    estimator : Pipeline or nncv estimator
        Cloned for every fold of every trial; the network is its final step.
    space : SearchSpace
    names : dict
        Estimator-level space name → ``set_params`` name (see ``resolve_space_names``).
    hidden_layers : int
        Depth used when ``n_layers`` is not searched.
    X, y : array-like
    splits : list of (train, test) index arrays, fixed for the study.
    study_seed : int
    scorers : dict of name → scorer; ``metric`` is the one returned.
    network_fit_params, preprocessing_fit_params : dict
        Per-sample values among them are sliced per fold.
    epochs_per_report : int, default=1
        Epochs each fold advances between two reports to the pruner.
    """

    def __init__(
        self,
        *,
        estimator: Any,
        space: SearchSpace,
        names: Mapping[str, str],
        hidden_layers: int,
        X: Any,
        y: Any,
        splits: list[Split],
        study_seed: int,
        scorers: Mapping[str, Scorer],
        metric: str,
        network_fit_params: Mapping[str, Any] | None = None,
        preprocessing_fit_params: Mapping[str, Any] | None = None,
        epochs_per_report: int = 1,
    ) -> None:
        self.estimator = estimator
        self.space = space
        self.names = dict(names)
        self.hidden_layers = hidden_layers
        self.X = X
        self.y = y
        self.splits = splits
        self.study_seed = study_seed
        self.scorers = dict(scorers)
        self.metric = metric
        self.network_fit_params = dict(network_fit_params or {})
        self.preprocessing_fit_params = dict(preprocessing_fit_params or {})
        self.epochs_per_report = int(epochs_per_report)
        self.n_samples = len(y)
        self.prefix, _ = network_prefix(estimator)

    # ------------------------------------------------------------------ folds
    def _start_fold(self, trial_number: int, index: int, split: Split, params: dict) -> _Fold:
        train, test = split
        estimator = clone(self.estimator)
        seed = fold_seed(self.study_seed, trial_number, index)
        estimator.set_params(**params, **{f"{self.prefix}random_state": seed})
        rows = lambda v, idx: slice_rows(v, idx, self.n_samples)  # noqa: E731
        X_train, y_train = rows(self.X, train), rows(self.y, train)
        X_val, y_val = rows(self.X, test), rows(self.y, test)
        sample_weight = self.network_fit_params.get("sample_weight")
        w_train, w_val = rows(sample_weight, train), rows(sample_weight, test)
        started = time.perf_counter()
        if isinstance(estimator, Pipeline):
            network = estimator.steps[-1][1]
            preprocessing = estimator[:-1]  # shares the step objects: fitting it fits them
            pre_params = {k: rows(v, train) for k, v in self.preprocessing_fit_params.items()}
            Xt_train = preprocessing.fit_transform(X_train, y_train, **pre_params)
            Xt_val = preprocessing.transform(X_val)
        else:
            network, Xt_train, Xt_val = estimator, X_train, X_val
        # The network fits as a plain fit would (with early stopping, on its own
        # validation_fraction split of the training rows); the held-out fold is only
        # scored after each epoch, as in nncv.cross_validate, never chosen on.
        held_out = HeldOut(Xt_val, np.arange(_num_samples(Xt_val)), y_val, w_val)
        generator = with_held_out_scores(
            network.iter_fit(Xt_train, y_train, sample_weight=w_train),
            network_evaluator(network, held_out),
        )
        fold = _Fold(index, estimator, network, generator, X_val, y_val, w_val)
        fold.fit_time = time.perf_counter() - started
        return fold

    def _advance(self, fold: _Fold) -> None:
        started = time.perf_counter()
        try:
            for _ in range(self.epochs_per_report):
                record = next(fold.generator)
                fold.records.append(record)
                fold.last_score = float(record.get("val_score", float("nan")))
        except StopIteration:
            fold.finished = True
            fold.last_score = self._final_validation_score(fold)
        finally:
            fold.fit_time += time.perf_counter() - started

    @staticmethod
    def _final_validation_score(fold: _Fold) -> float:
        """Validation score of the weights the fold ends with (the best epoch's if restored)."""
        best = getattr(fold.network, "best_epoch_", None)
        for record in fold.records:
            if best is not None and record.get("epoch") == best:
                return float(record.get("val_score", float("nan")))
        return fold.last_score

    # ------------------------------------------------------------------ trial
    def __call__(self, trial: optuna.Trial) -> float:
        params = self.space.suggest(trial, self.hidden_layers)
        trial.set_user_attr("nncv_params", {k: _jsonable(v) for k, v in params.items()})
        trial.set_user_attr("nncv_splits_sha256", splits_digest(self.splits))
        full_params = {self.names[name]: value for name, value in params.items()}
        folds: list[_Fold] = []
        try:
            for index, split in enumerate(self.splits):
                folds.append(self._start_fold(trial.number, index, split, full_params))
            step = 0
            while not all(fold.finished for fold in folds):
                for fold in folds:
                    if not fold.finished:
                        self._advance(fold)
                step += self.epochs_per_report
                mean_score = float(np.mean([fold.last_score for fold in folds]))
                trial.report(mean_score, step)
                if not all(fold.finished for fold in folds) and trial.should_prune():
                    raise optuna.TrialPruned(
                        f"pruned after {step} epochs: mean validation score {mean_score:.4g}"
                    )
            return self._finish(trial, folds)
        except DivergedError as error:
            trial.set_user_attr("fail_reason", f"diverged: {error}")
            raise
        finally:
            for fold in folds:
                if not fold.finished:
                    fold.generator.close()
            trial.set_user_attr("nncv_history", self._history(folds))
            trial.set_user_attr("nncv_fit_times", [fold.fit_time for fold in folds])

    def _finish(self, trial: optuna.Trial, folds: list[_Fold]) -> float:
        fold_scores: dict[str, list[float | None]] = {name: [] for name in self.scorers}
        score_times = []
        for fold in folds:
            started = time.perf_counter()
            for name, scorer in self.scorers.items():
                value = score(scorer, fold.estimator, fold.X_val, fold.y_val, fold.w_val)
                fold_scores[name].append(_number(value))
            score_times.append(time.perf_counter() - started)
        history = self._history(folds)
        trial.set_user_attr("nncv_fold_scores", fold_scores)
        trial.set_user_attr("nncv_score_times", score_times)
        best_epochs = [_jsonable(getattr(f.network, "best_epoch_", None)) for f in folds]
        trial.set_user_attr("nncv_best_epochs", best_epochs)
        trial.set_user_attr("nncv_peak_epoch", peak_epoch(history, best_epochs))
        values = fold_scores[self.metric]
        if any(v is None for v in values):
            return float("nan")  # Optuna records a NaN objective as a failed trial
        return float(np.mean(values))

    @staticmethod
    def _history(folds: list[_Fold]) -> dict[str, list]:
        keys = list(HISTORY_KEYS)
        if any(EARLY_STOPPING_KEYS[0] in record for fold in folds for record in fold.records):
            keys += EARLY_STOPPING_KEYS
        history: dict[str, list] = {"fold": [], "epoch": [], **{k: [] for k in keys}}
        for fold in folds:
            for record in fold.records:
                history["fold"].append(fold.index)
                history["epoch"].append(int(record["epoch"]))
                for key in keys:
                    history[key].append(_number(record.get(key)))
        return history
