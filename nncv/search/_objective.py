"""The k-fold objective: every fold of a trial trains in lockstep, the pruner sees them all.

A trial is a :class:`~nncv.cv.fold.FoldGroup` of the cross-validation engine: one
:class:`~nncv.cv.fold.Fold` per split, each a clone of the estimator with the suggested
parameters and the fold's seed (``derive_seed(study_seed, trial, fold)`` for the network's
``random_state``, and for every other ``random_state`` left at ``None``), its
preprocessing fitted on the training rows only, trained straight from ``X``'s rows where
the steps allow, exactly as :func:`nncv.cross_validate` trains it. The held-out fold is
scored after every epoch but never decides anything inside the fold: a network with
``early_stopping=True`` stops on its own ``validation_fraction`` split of the training
rows, exactly as ``fit`` would, so each fold's score is that of a plain fit. Every round
advances each unfinished fold by ``epochs_per_report`` epochs, reports the mean
validation score over the folds (a finished fold counts with its final score) to the
trial at the epoch reached (one report per epoch with ``epochs_per_report=1``) and asks
the pruner; a pruned trial stops all its folds at once. What the trial leaves on the
study (as trial user attributes):

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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna

from nncv.cv.fold import Fold, FoldGroup
from nncv.cv.splits import derive_seed
from nncv.exceptions import DivergedError
from nncv.network.training import EARLY_STOPPING_KEYS, RECORD_KEYS
from nncv.search._estimator import network_prefix
from nncv.search._study import Split, splits_digest
from nncv.search.space import SearchSpace

__all__ = ["HISTORY_KEYS", "FoldObjective", "peak_epoch", "seeding_number"]

#: Per-epoch values kept from the fold records, in this order (``epoch`` is kept apart).
HISTORY_KEYS = tuple(key for key in RECORD_KEYS if key != "epoch")


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


def seeding_number(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """The trial number a trial's seeds derive from: its own, or for a retry of a trial lost
    with its worker (Optuna's ``RetryFailedTrialCallback`` records ``failed_trial``) the
    original's, so a retried trial reproduces the scores the lost one would have had."""
    if isinstance(trial, optuna.trial.FrozenTrial):
        attrs = trial.system_attrs
    else:
        attrs = trial.storage.get_trial_system_attrs(trial._trial_id)
    original = attrs.get("failed_trial")
    return trial.number if original is None else int(original)


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
    scoring : the user's ``scoring`` (see :func:`nncv.cv.scoring.build_scorers`)
    metrics : list of str
        The scorer names kept, ``metric`` being the one returned.
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
        scoring: Any,
        metrics: Sequence[str],
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
        self.scoring = scoring
        self.metrics = list(metrics)
        self.metric = metric
        self.network_fit_params = dict(network_fit_params or {})
        self.preprocessing_fit_params = dict(preprocessing_fit_params or {})
        self.epochs_per_report = int(epochs_per_report)
        self.prefix, _ = network_prefix(estimator)

    def _group(self, trial_number: int, params: dict[str, Any]) -> FoldGroup:
        folds = []
        for index, (train, test) in enumerate(self.splits):
            seed = derive_seed(self.study_seed, trial_number, index)
            fold_params = {**params, f"{self.prefix}random_state": seed}
            folds.append(
                Fold(
                    self.estimator,
                    self.X,
                    self.y,
                    train,
                    test,
                    index=index,
                    seed=seed,
                    params=fold_params,
                    sample_weight=self.network_fit_params.get("sample_weight"),
                    step_fit_params=self.preprocessing_fit_params,
                )
            )
        return FoldGroup(folds)

    # ------------------------------------------------------------------ trial
    def __call__(self, trial: optuna.Trial) -> float:
        params = self.space.suggest(trial, self.hidden_layers)
        trial.set_user_attr("nncv_params", {k: _jsonable(v) for k, v in params.items()})
        trial.set_user_attr("nncv_splits_sha256", splits_digest(self.splits))
        full_params = {self.names[name]: value for name, value in params.items()}
        group = self._group(seeding_number(trial), full_params)
        try:
            group.start()
            while not group.finished:
                if not group.advance(self.epochs_per_report):
                    break  # the folds had stopped: nothing new to report
                epoch = group.epochs
                mean_score = group.val_score()
                trial.report(mean_score, epoch)
                if not group.finished and trial.should_prune():
                    raise optuna.TrialPruned(
                        f"pruned after {epoch} epochs: mean validation score {mean_score:.4g}"
                    )
            return self._finish(trial, group)
        except DivergedError as error:
            trial.set_user_attr("fail_reason", f"diverged: {error}")
            raise
        finally:
            group.close()
            trial.set_user_attr("nncv_history", self._history(group.folds))
            trial.set_user_attr("nncv_fit_times", [fold.fit_time for fold in group.folds])

    def _finish(self, trial: optuna.Trial, group: FoldGroup) -> float:
        fold_scores: dict[str, list[float | None]] = {name: [] for name in self.metrics}
        for fold in group.folds:
            scores = fold.score(self.scoring)
            for name in self.metrics:
                fold_scores[name].append(_number(scores.get(name)))
        history = self._history(group.folds)
        trial.set_user_attr("nncv_fold_scores", fold_scores)
        trial.set_user_attr("nncv_score_times", [fold.score_time for fold in group.folds])
        best_epochs = [_jsonable(getattr(f.final, "best_epoch_", None)) for f in group.folds]
        trial.set_user_attr("nncv_best_epochs", best_epochs)
        trial.set_user_attr("nncv_peak_epoch", peak_epoch(history, best_epochs))
        values = fold_scores[self.metric]
        if any(v is None for v in values):
            return float("nan")  # Optuna records a NaN objective as a failed trial
        return float(np.mean(values))

    @staticmethod
    def _history(folds: Sequence[Fold]) -> dict[str, list]:
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
