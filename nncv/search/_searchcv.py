"""``NNSearchCV``: the k-fold Optuna search as a scikit-learn meta-estimator."""

from __future__ import annotations

import time
import uuid
from copy import deepcopy
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin
from sklearn.utils import get_tags
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, process_routing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from nncv.cv._routing import routed_fit_params, routing_enabled
from nncv.cv.scoring import build_scorers, score_fold
from nncv.exceptions import SearchError
from nncv.search._arguments import check_run_limits
from nncv.search._progress import optuna_verbosity
from nncv.search._result import TuneResult, cv_results, trials_frame
from nncv.search._run import REFIT_ENSEMBLES, prepare
from nncv.search._settings import SearchSettings
from nncv.search.space import SearchSpace

__all__ = ["NNSearchCV"]


def _estimator_has(method: str):
    """The refit best estimator has ``method`` (or, before fit, the estimator to tune)."""

    def check(self: NNSearchCV) -> bool:
        if hasattr(self, "best_estimator_"):
            return hasattr(self.best_estimator_, method)
        return hasattr(self._base_estimator(), method)

    return check


class NNSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Search a network's hyperparameters by lockstep k-fold CV, as GridSearchCV does.

    A fit creates a fresh Optuna study (unless ``study_name`` names one to continue), so
    ``cross_val_score(NNSearchCV(...), X, y, cv=outer)`` is a correct nested
    cross-validation: no outer test fold ever reaches a study. Fit parameters
    (``sample_weight``, ``step__param``) are split per fold like X and y.

    Parameters
    ----------
    estimator : Pipeline or nncv estimator, optional
        Default: standard scaler (max-abs for sparse X) + :class:`~nncv.NNClassifier` or
        :class:`~nncv.NNRegressor`, as :func:`nncv.pipeline.infer_task` decides for ``y``
        (or ``task`` says).
    space : SearchSpace, dict of ranges or TOML path, optional
        Default :meth:`SearchSpace.default`.
    n_trials : int, default=20
    cv : int, splitter or iterable, default=5
    scoring : str, callable, list or dict, optional
        As GridSearchCV; with several scorers ``refit`` names the one maximised.
    refit : bool or str, default=True
        Refit the best configuration on the whole data (``best_estimator_``); a scorer
        name also names the metric maximised. ``"ensemble"`` keeps the best trial's fold
        models instead, as a :class:`~nncv.FoldEnsemble` (the first scorer maximised);
        ``"seed_ensemble"`` refits the best configuration ``ensemble_size`` times on the whole
        data, each from its own seed, as a :class:`~nncv.SeedEnsemble`.
    pruner : {"median", "hyperband", "successive_halving", "none"} or optuna pruner
    storage : None, ".log" path, SQLAlchemy URL or optuna storage
    study_name : str, optional
        Continue this study; default is a fresh uniquely named study per fit.
    n_workers : int, default=1
        Worker processes sharing the storage.
    timeout : float, optional
    random_state : int, optional
    sampler : {"tpe", "random", "qmc"} or optuna sampler, optional
        Default: a seeded multivariate TPE sampler.
    task : {"classification", "regression"}, optional
        What the default estimator is; by default inferred from ``y``.
    stack_folds : bool, default=True
        Train the folds of a trial as one stacked network (see :func:`nncv.tune`).
    backend : None, "loky", "dask", scheduler address or distributed.Client, default=None
        Where the trials run, as in :func:`~nncv.search.tune`: on a Dask cluster each trial
        is a Dask task on the shared storage (also under an enclosing
        ``joblib.parallel_config(backend="dask")``). See ``docs/scaling.md``.
    ensemble_size : int, default=5
        Members of ``refit="seed_ensemble"``.
    verbose : int, default=0
        0: Optuna's per-trial INFO lines are not printed (in this process and in the
        worker processes of, e.g., ``cross_val_score(search, ..., n_jobs=2)``); 1 or more
        prints them.

    Attributes
    ----------
    best_estimator_, best_params_, best_score_, best_index_ :
        As GridSearchCV (``best_score_`` is the mean over folds of the refit metric).
    cv_results_ : dict of ndarray
        GridSearchCV's layout, one entry per finished trial, plus ``trial_number`` and
        ``trial_state`` (pruned and failed trials have NaN scores).
    study_ : optuna.Study
    result_ : TuneResult
    scorer_, multimetric_, n_splits_, refit_time_, n_features_in_, classes_

    Examples
    --------
    >>> from sklearn.model_selection import cross_val_score
    >>> from nncv import NNClassifier
    >>> from nncv.search import Float, NNSearchCV, SearchSpace
    >>> from nncv.datasets import load
    >>> X, y = load("iris")
    >>> search = NNSearchCV(NNClassifier(hidden_layer_sizes=8, max_epochs=5),
    ...                     SearchSpace(learning_rate=Float(1e-3, 1e-1, log=True)),
    ...                     n_trials=2, cv=3, random_state=0)
    >>> scores = cross_val_score(search, X, y, cv=3)   # nested CV: 3 fresh studies
    >>> len(scores)
    3
    """

    def __init__(
        self,
        estimator: Any = None,
        space: SearchSpace | dict | str | None = None,
        n_trials: int | None = 20,
        cv: Any = 5,
        scoring: Any = None,
        refit: bool | str = True,
        pruner: Any = "median",
        storage: Any = None,
        study_name: str | None = None,
        n_workers: int = 1,
        timeout: float | None = None,
        random_state: int | None = None,
        sampler: Any = None,
        task: str | None = None,
        stack_folds: bool = True,
        backend: Any = None,
        ensemble_size: int = 5,
        verbose: int = 0,
    ) -> None:
        self.estimator = estimator
        self.space = space
        self.n_trials = n_trials
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.pruner = pruner
        self.storage = storage
        self.study_name = study_name
        self.n_workers = n_workers
        self.timeout = timeout
        self.random_state = random_state
        self.sampler = sampler
        self.task = task
        self.stack_folds = stack_folds
        self.backend = backend
        self.ensemble_size = ensemble_size
        self.verbose = verbose

    def _base_estimator(self) -> Any:
        if self.estimator is not None:
            return self.estimator
        from nncv.pipeline import default_estimator

        return default_estimator(None, task=self.task or "classification")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self._base_estimator())
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = deepcopy(inner.classifier_tags)
        tags.regressor_tags = deepcopy(inner.regressor_tags)
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.target_tags.required = True
        return tags

    def get_metadata_routing(self) -> MetadataRouter:
        """How fit parameters reach the estimator tuned, as GridSearchCV routes them.

        Used with ``sklearn.set_config(enable_metadata_routing=True)``: ``fit``'s
        ``sample_weight`` and other parameters go to the steps that requested them
        (``net.set_fit_request(sample_weight=True)``). ``NNSearchCV`` itself may be asked
        for them by an enclosing meta-estimator (``set_fit_request(sample_weight=True)``).

        Returns
        -------
        sklearn.utils.metadata_routing.MetadataRouter
        """
        return (
            MetadataRouter(owner=type(self).__name__)
            .add_self_request(self)
            .add(
                estimator=self._base_estimator(),
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
        )

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        groups: Any = None,
        sample_weight: Any = None,
        **fit_params: Any,
    ) -> NNSearchCV:
        """Run a study on ``X, y`` and refit the best configuration.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        groups : array-like, optional
            Group labels for a group splitter in ``cv``.
        sample_weight : array-like of shape (n_samples,), optional
            Split per fold: the training rows' weights go to the network's fit, the
            held-out rows' to its validation loss and the scorers. With metadata routing
            enabled, only if the network requested them (``set_fit_request``).
        **fit_params
            ``step__param`` (to a pipeline step; per-sample values are split per fold),
            or with metadata routing enabled any parameter a step requested.

        Returns
        -------
        self
        """
        with optuna_verbosity(bool(self.verbose)):
            return self._fit(X, y, groups=groups, sample_weight=sample_weight, **fit_params)

    def _fit(self, X: Any, y: Any, *, groups: Any, sample_weight: Any, **fit_params: Any):
        if sample_weight is not None:
            fit_params["sample_weight"] = sample_weight
        if routing_enabled():
            fit_params = self._route(y, fit_params)
        check_run_limits(self.n_trials, self.timeout)
        if self.refit is not True and self.refit is not False and not isinstance(self.refit, str):
            raise SearchError(
                f"refit must be True, False, 'ensemble', 'seed_ensemble' or a scorer name, "
                f"got {self.refit!r}"
            )
        study_name = self.study_name
        if study_name is None and self.storage is not None:
            study_name = f"nncv-searchcv-{uuid.uuid4().hex[:12]}"
        settings = SearchSettings.from_mapping(self.get_params(deep=False), study_name=study_name)
        search = prepare(
            X,
            y,
            settings,
            estimator=self.estimator,
            groups=groups,
            refit_metric=False if self.refit in REFIT_ENSEMBLES else self.refit,
            fit_params=fit_params,
        )
        if search.run(self.n_trials, self.timeout):
            raise KeyboardInterrupt
        started = time.perf_counter()
        result = search.result(
            refit=self.refit if self.refit in REFIT_ENSEMBLES else bool(self.refit)
        )
        self.refit_time_ = time.perf_counter() - started
        scorers = build_scorers(search.estimator, self.scoring)
        self._set_fitted(result, scorers, len(search.setup.splits))
        return self

    def _route(self, y: Any, fit_params: dict[str, Any]) -> dict[str, Any]:
        """Fit params routed by the steps' requests, in the names the search takes."""
        estimator = self.estimator
        if estimator is None:
            from nncv.pipeline import default_estimator

            estimator = default_estimator(y, self.task)
        routed = process_routing(self, "fit", **fit_params)
        params = routed.estimator.fit
        weights, step_params = routed_fit_params(estimator, params, type(self).__name__)
        return {**step_params, **({} if weights is None else {"sample_weight": weights})}

    def _set_fitted(self, result: TuneResult, scorers: dict, n_splits: int) -> None:
        self.result_ = result
        self.study_ = result.study
        self.scorer_ = scorers if len(scorers) > 1 else scorers[result.metric]
        self.multimetric_ = len(scorers) > 1
        self.n_splits_ = n_splits
        self.cv_results_ = cv_results(
            result.study, result.metrics, n_splits, result.parameter_names
        )
        self.best_index_ = int(
            np.flatnonzero(self.cv_results_["trial_number"] == result.best_trial.number)[0]
        )
        self.best_params_ = result.best_params
        self.best_score_ = result.best_score
        if result.best_estimator is not None:
            self.best_estimator_ = result.best_estimator
            for name in ("n_features_in_", "feature_names_in_"):
                if hasattr(result.best_estimator, name):
                    setattr(self, name, getattr(result.best_estimator, name))

    @property
    def trials_frame_(self):
        """Trial × fold × epoch × metric of the fitted study, tidy."""
        check_is_fitted(self, "study_")
        return trials_frame(self.study_)

    @property
    def classes_(self) -> np.ndarray:
        """Class labels of the refit best estimator."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    def _check_refit(self, method: str) -> None:
        if not self.refit:
            raise SearchError(f"{method} needs refit=True (or a metric name) in NNSearchCV")
        check_is_fitted(self, "best_estimator_")

    @available_if(_estimator_has("predict"))
    def predict(self, X: Any) -> np.ndarray:
        """Predict with the refit best estimator."""
        self._check_refit("predict")
        return self.best_estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities from the refit best estimator."""
        self._check_refit("predict_proba")
        return self.best_estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log class probabilities from the refit best estimator."""
        self._check_refit("predict_log_proba")
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision function of the refit best estimator."""
        self._check_refit("decision_function")
        return self.best_estimator_.decision_function(X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Score of the refit best estimator with the refit metric's scorer."""
        self._check_refit("score")
        scorer = self.scorer_[self.result_.metric] if self.multimetric_ else self.scorer_
        return score_fold({"score": scorer}, self.best_estimator_, X, y, sample_weight)["score"]
