"""Fold ensembles: the k fold models of a cross-validation kept as one final model.

:class:`FoldEnsemble` is what ``refit="ensemble"`` in :func:`nncv.tune` and
:class:`nncv.NNSearchCV` returns instead of a refit on all the data: the fitted
estimators of the best trial's folds (each a Pipeline: its scaler fitted on its own
training rows, then its network), whose ``predict_proba`` is the mean of theirs
(regression: the mean prediction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.validation import check_is_fitted

from nncv.cv.fold import final_step
from nncv.exceptions import ConfigurationError

__all__ = ["FoldEnsemble"]


class FoldEnsemble(BaseEstimator):
    """The mean of several fitted estimators of one task (the folds of a CV split).

    Parameters
    ----------
    estimators : list of estimators
        The members (templates: :meth:`fit` fits a clone of each on all its data).
        :meth:`from_fitted` keeps already fitted members as they are.

    Attributes
    ----------
    estimators_ : list of fitted estimators
        The members whose predictions are averaged.
    classes_ : ndarray
        Class labels (classification; the members' common ones).
    n_features_in_ : int

    Examples
    --------
    >>> from nncv import NNClassifier
    >>> from nncv.datasets import load
    >>> X, y = load("iris")
    >>> members = [NNClassifier(8, max_epochs=5, random_state=s).fit(X, y) for s in (0, 1)]
    >>> ensemble = FoldEnsemble.from_fitted(members)
    >>> ensemble.predict_proba(X[:2]).shape
    (2, 3)
    """

    def __init__(self, estimators: Sequence[Any] | None = None) -> None:
        self.estimators = estimators

    @classmethod
    def from_fitted(cls, estimators: Sequence[Any]) -> FoldEnsemble:
        """An ensemble of already fitted ``estimators`` (their clones are its params)."""
        ensemble = cls([clone(estimator) for estimator in estimators])
        ensemble._set_members(list(estimators))
        return ensemble

    def fit(self, X: Any, y: Any, **fit_params: Any) -> FoldEnsemble:
        """Fit a clone of every member on ``X, y`` (each with its own ``random_state``)."""
        if not self.estimators:
            raise ConfigurationError("a FoldEnsemble needs at least one estimator")
        self._set_members([clone(e).fit(X, y, **fit_params) for e in self.estimators])
        return self

    def _set_members(self, members: list[Any]) -> None:
        check_members(members)
        self.estimators_ = members
        first = members[0]
        if hasattr(first, "classes_"):
            self.classes_ = first.classes_
        if hasattr(first, "n_features_in_"):
            self.n_features_in_ = first.n_features_in_
        if hasattr(first, "feature_names_in_"):
            self.feature_names_in_ = first.feature_names_in_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.estimators:
            inner = self.estimators[0].__sklearn_tags__()
            tags.estimator_type = inner.estimator_type
            tags.classifier_tags = inner.classifier_tags
            tags.regressor_tags = inner.regressor_tags
        return tags

    # ------------------------------------------------------------- predicting
    def predict_proba(self, X: Any) -> np.ndarray:
        """Mean of the members' class probabilities."""
        check_is_fitted(self, "estimators_")
        total = None
        for member in self.estimators_:
            proba = member.predict_proba(X)
            total = np.array(proba, dtype=np.float64) if total is None else total + proba
        return total / len(self.estimators_)

    def predict(self, X: Any) -> np.ndarray:
        """Class of highest mean probability, or the mean prediction (regression)."""
        check_is_fitted(self, "estimators_")
        if hasattr(self, "classes_") and hasattr(self.estimators_[0], "predict_proba"):
            proba = self.predict_proba(X)
            if getattr(self.classes_, "ndim", 1) == 1 and proba.ndim == 2:
                if np.ndim(self.classes_) == 1 and len(self.classes_) == proba.shape[1]:
                    return self.classes_[np.argmax(proba, axis=1)]
            return (proba >= 0.5).astype(int)  # multilabel: one probability per label
        total = None
        for member in self.estimators_:
            prediction = np.asarray(member.predict(X), dtype=np.float64)
            total = prediction if total is None else total + prediction
        return total / len(self.estimators_)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (classification) or R² (regression) of :meth:`predict`."""
        if is_classifier(self):
            return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))
        return float(r2_score(y, self.predict(X), sample_weight=sample_weight))


def check_members(members: Sequence[Any]) -> None:
    """Members of one ensemble: one task, the same input width and classes."""
    if not members:
        raise ConfigurationError("a FoldEnsemble needs at least one estimator")
    first = members[0]
    kind = type(final_step(first))
    for index, member in enumerate(members[1:], start=1):
        if type(final_step(member)) is not kind:
            raise ConfigurationError(f"member {index} is not a {kind.__name__} like member 0")
        for name in ("n_features_in_", "classes_"):
            a, b = getattr(first, name, None), getattr(member, name, None)
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                raise ConfigurationError(f"member {index}'s {name} differs from member 0's")
