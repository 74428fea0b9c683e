"""Ensembles of networks of one configuration, predicted in one stacked forward pass.

:class:`FoldEnsemble` is what ``refit="ensemble"`` in :func:`nncv.tune` and
:class:`nncv.NNSearchCV` returns instead of a refit on all the data: the fitted
estimators of the best trial's folds (each a Pipeline: its scaler fitted on its own
training rows, then its network), whose ``predict_proba`` is the mean of theirs
(regression: the mean prediction). :class:`SeedEnsemble` (``refit="seed_ensemble"``) holds
members refit on *all* the rows, each from its own seed.

When the members' networks share one architecture (the folds of one trial, the seeds of one
configuration), their outputs come from one :class:`~nncv.network.stacked.StackedNetwork`
pass: each member's preprocessing transforms ``X`` (a chunk of rows at a time), the ``k``
networks run as one stack, and each member turns its outputs into probabilities or
predictions as its own ``predict`` does. Members of different architectures (hidden sizes,
dtypes, …) or giving sparse inputs to their networks are predicted one after another;
the numbers are the same either way (float64: equal to 1e-12, see the tests). Fitting
trains the members as one stack too (:class:`nncv._stacked_fit.StackedFit`) when they share
one configuration apart from ``random_state``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples, check_is_fitted

from nncv._validation import check_finite_outputs
from nncv.cv.fold import _same_params, final_step, pipeline_steps, stack_refusal
from nncv.cv.splits import derive_seed
from nncv.estimators import _BaseNN
from nncv.exceptions import ConfigurationError
from nncv.network.model import PREDICT_CHUNK_ROWS
from nncv.network.stacked import StackedNetwork

__all__ = ["FoldEnsemble", "SeedEnsemble", "member_seeds"]


class FoldEnsemble(BaseEstimator):
    """The mean of several fitted estimators of one task (the folds of a CV split).

    Parameters
    ----------
    estimators : list of estimators
        The members (templates: :meth:`fit` fits a clone of each on all its data, each with
        its own ``random_state``; as one stacked network when they share one configuration).
        :meth:`from_fitted` keeps already fitted members as they are.

    Attributes
    ----------
    estimators_ : list of fitted estimators
        The members whose predictions are averaged.
    classes_ : ndarray
        Class labels (classification): every member's, sorted. A member that lacks a
        class (a fold model whose training rows had none of a rare class) gives it
        probability 0.
    n_features_in_ : int

    Notes
    -----
    :meth:`predict_proba` and :meth:`predict` run the members' networks as one stack
    when they share one architecture and dtype (see the module's notes); otherwise member
    by member. Both give the same numbers.

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
        """Fit a clone of every member on ``X, y`` (each with its own ``random_state``).

        The members train as one stacked network when they are nncv networks (alone or
        after the same preprocessing) with the same parameters apart from ``random_state``,
        and ``fit_params`` holds at most the network's ``sample_weight``; otherwise one after
        another. Each member's numbers are those of its own ``fit``.
        """
        if not self.estimators:
            raise ConfigurationError(f"a {type(self).__name__} needs at least one estimator")
        self._set_members(fit_members(self.estimators, X, y, fit_params))
        return self

    def _set_members(self, members: list[Any]) -> None:
        check_members(members)
        self._stack_cache = {}
        self.estimators_ = members
        first = members[0]
        if hasattr(first, "classes_"):
            self.classes_ = _union_of_classes([member.classes_ for member in members])
        if hasattr(first, "n_features_in_"):
            self.n_features_in_ = first.n_features_in_
        if hasattr(first, "feature_names_in_"):
            self.feature_names_in_ = first.feature_names_in_

    def __getstate__(self) -> dict:
        """The state without the cached stacked network (rebuilt on the next prediction): a
        pickled or ``skops``-saved ensemble carries its members, not scratch buffers."""
        state = super().__getstate__()
        state.pop("_stack_cache", None)
        return state

    def _stacks(self) -> dict:
        """The stacked network (and its buffers) kept between predictions."""
        if not hasattr(self, "_stack_cache"):
            self._stack_cache: dict = {}
        return self._stack_cache

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
        outputs = stacked_outputs(self.estimators_, X, self._stacks())
        if outputs is None:
            probas = (member.predict_proba(X) for member in self.estimators_)
        else:
            probas = (
                final_step(member)._proba_from_outputs(out)
                for member, out in zip(self.estimators_, outputs, strict=True)
            )
        aligned = (
            _in_columns_of(self.classes_, member.classes_, proba)
            for member, proba in zip(self.estimators_, probas, strict=True)
        )
        return _mean(aligned, len(self.estimators_))

    def predict(self, X: Any) -> np.ndarray:
        """Class of highest mean probability, or the mean prediction (regression)."""
        check_is_fitted(self, "estimators_")
        if hasattr(self, "classes_") and hasattr(self.estimators_[0], "predict_proba"):
            proba = self.predict_proba(X)
            target_type = getattr(final_step(self.estimators_[0]), "_target_type", None)
            one_column_per_class = (
                np.ndim(self.classes_) == 1
                and proba.ndim == 2
                and len(self.classes_) == proba.shape[1]
            )
            if target_type == "multilabel-indicator" or not one_column_per_class:
                # one probability per label (whose classes_ are 0..n_labels-1): a 0/1
                # matrix, as each member's own predict gives it
                return (proba > 0.5).astype(np.int64)
            return self.classes_[np.argmax(proba, axis=1)]
        outputs = stacked_outputs(self.estimators_, X, self._stacks())
        if outputs is None:
            predictions = (member.predict(X) for member in self.estimators_)
        else:
            predictions = (
                final_step(member)._predictions_from_outputs(out)
                for member, out in zip(self.estimators_, outputs, strict=True)
            )
        return _mean(predictions, len(self.estimators_))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (classification) or R² (regression) of :meth:`predict`."""
        if is_classifier(self):
            return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))
        return float(r2_score(y, self.predict(X), sample_weight=sample_weight))


class SeedEnsemble(FoldEnsemble):
    """Members of one configuration fitted on all the rows, each from its own seed.

    What ``refit="seed_ensemble"`` in :func:`nncv.tune` and :class:`nncv.NNSearchCV`
    returns: the best configuration refit ``ensemble_size`` times on all the data; member 0
    has the seed a ``refit=True`` search gives its single refit (so it *is* that model).
    Like :class:`FoldEnsemble` (whose behaviour it has), its params are the seeded member
    templates, so ``clone(ensemble).fit(X, y)`` refits every member with its own seed.

    Parameters
    ----------
    estimators : list of estimators
        The seeded members; build them with :meth:`from_estimator`.

    Examples
    --------
    >>> from nncv import NNClassifier
    >>> from nncv.datasets import load
    >>> X, y = load("iris")
    >>> ensemble = SeedEnsemble.from_estimator(NNClassifier(8, max_epochs=5), 3, random_state=0)
    >>> [member.random_state for member in ensemble.estimators][0]
    0
    >>> ensemble.fit(X, y).predict_proba(X[:2]).shape
    (2, 3)
    """

    @classmethod
    def from_estimator(
        cls, estimator: Any, n_members: int = 5, random_state: int | None = None
    ) -> SeedEnsemble:
        """``n_members`` clones of ``estimator``, seeded by :func:`member_seeds`.

        ``estimator`` is an nncv network or a Pipeline ending in one; its network's
        ``random_state`` is replaced by each member's seed.
        """
        if isinstance(n_members, bool) or not isinstance(n_members, int | np.integer):
            raise ConfigurationError(f"n_members must be an int, got {n_members!r}")
        if n_members < 1:
            raise ConfigurationError(f"n_members must be at least 1, got {n_members}")
        _, (path, network) = pipeline_steps(estimator)
        if not isinstance(network, _BaseNN):
            raise ConfigurationError(
                "a SeedEnsemble's estimator must be an nncv network or a Pipeline ending in "
                f"one; got {type(network).__name__}"
            )
        name = f"{path}__random_state" if path else "random_state"
        if random_state is None:
            random_state = int(np.random.SeedSequence().generate_state(1)[0])
        return cls(
            [
                clone(estimator).set_params(**{name: seed})
                for seed in member_seeds(random_state, n_members)
            ]
        )


def member_seeds(random_state: int, n_members: int) -> list[int]:
    """Seeds of a :class:`SeedEnsemble`'s members: ``random_state`` itself for member 0,
    then ``derive_seed(random_state, m)`` for member ``m``.

    Examples
    --------
    >>> member_seeds(7, 3)[0], len(set(member_seeds(7, 3)))
    (7, 3)
    """
    return [int(random_state)] + [derive_seed(int(random_state), m) for m in range(1, n_members)]


def _mean(arrays: Any, count: int) -> np.ndarray:
    """Mean of ``arrays`` summed in member order (the same sum whichever way each came)."""
    total = None
    for array in arrays:
        array = np.asarray(array, dtype=np.float64)
        total = array.copy() if total is None else total + array
    return total / count


# --------------------------------------------------------------------------- stacking
def stacked_outputs(
    members: Sequence[Any], X: Any, cache: dict | None = None
) -> list[np.ndarray] | None:
    """Every member's network outputs for ``X`` from one stacked forward pass, or None.

    None when the members cannot run as one stack: not all nncv networks, different
    architectures or dtypes, or a sparse input to the networks. Each member's
    preprocessing transforms ``X`` a chunk of :data:`~nncv.network.model.PREDICT_CHUNK_ROWS`
    rows at a time (a row's transform does not depend on the other rows), so the networks
    see the rows a member alone would, in the same chunks. ``cache`` (a dict the caller
    keeps) keeps the stack and its buffers between calls, as a network keeps its own: the
    members' parameters are copied into it on every call.
    """
    finals = [final_step(member) for member in members]
    first = finals[0]
    if not all(type(f) is type(first) and hasattr(f, "network_") for f in finals):
        return None
    config = first.network_.get_config()
    if any(f.network_.get_config() != config for f in finals[1:]):
        return None
    preprocessing = [[step for _, step in pipeline_steps(member)[0]] for member in members]
    n_rows = _num_samples(X)
    k, n_outputs = len(members), first.network_.n_outputs
    outputs = np.empty((k, n_rows, n_outputs), dtype=first.network_.dtype)
    stack = None
    for start in range(0, n_rows, PREDICT_CHUNK_ROWS):
        rows = slice(start, min(start + PREDICT_CHUNK_ROWS, n_rows))
        chunk = _safe_indexing(X, rows) if n_rows > PREDICT_CHUNK_ROWS else X
        inputs = []
        for steps, final in zip(preprocessing, finals, strict=True):
            transformed = chunk
            for step in steps:
                transformed = step.transform(transformed)
            transformed = final._validate_input(transformed, reset=False)
            if sp.issparse(transformed):
                return None
            inputs.append(transformed)
        if stack is None:
            stack = _stack_for(first.network_, k, cache)
            stack.load_networks([f.network_ for f in finals])
        with np.errstate(over="ignore", invalid="ignore"):
            outputs[:, rows] = stack.forward(np.stack(inputs))
    for output in outputs:
        check_finite_outputs(output, "the network's outputs")
    return list(outputs)


def _stack_for(template: Any, n_stack: int, cache: dict | None) -> StackedNetwork:
    """A stack for ``n_stack`` networks like ``template``, kept in ``cache`` for reuse."""
    key = (n_stack, template.dtype.str, json.dumps(template.get_config(), sort_keys=True))
    stack = None if cache is None else cache.get(key)
    if stack is None:
        stack = StackedNetwork(template, n_stack)
        if cache is not None:
            cache.clear()
            cache[key] = stack
    return stack


def fit_members(templates: Sequence[Any], X: Any, y: Any, fit_params: dict[str, Any]) -> list:
    """A fitted clone of every template, trained as one stack where they allow it."""
    refusal = _stack_refusal(templates, fit_params)
    if refusal is not None:
        return [clone(template).fit(X, y, **fit_params) for template in templates]
    from nncv._stacked_fit import StackedFit

    shared = clone(templates[0])
    steps, _ = pipeline_steps(shared)
    transformed = X
    for _, step in steps:
        transformed = step.fit_transform(transformed, y)  # a copy: X is the caller's
    networks = [clone(final_step(template)) for template in templates]
    sample_weight = next(iter(fit_params.values()), None)
    data = (transformed, y, sample_weight)
    fit = StackedFit(networks, [data] * len(networks))
    with fit:
        for _ in fit.advance():
            pass
    if fit.errors:
        raise next(iter(fit.errors.values()))
    return [_with_network(shared, network) for network in networks]


def _stack_refusal(templates: Sequence[Any], fit_params: dict[str, Any]) -> str | None:
    """Why ``templates`` cannot be fitted as one stack (None when they can): the fold
    engine's :func:`~nncv.cv.fold.stack_refusal` for their networks, the same
    preprocessing, and no fit parameter but the network's ``sample_weight``."""
    first_steps, (path, _) = pipeline_steps(templates[0])
    weight_name = f"{path}__sample_weight" if path else "sample_weight"
    if set(fit_params) - {weight_name}:
        return "fit parameters other than the network's sample_weight"
    refusal = stack_refusal([SimpleNamespace(final=final_step(t)) for t in templates])
    if refusal is not None:
        return refusal
    for template in templates[1:]:
        steps, _ = pipeline_steps(template)
        if len(steps) != len(first_steps):
            return "different preprocessing"
        for (_, a), (_, b) in zip(first_steps, steps, strict=True):
            if type(a) is not type(b) or not _same_params(
                a.get_params(deep=False), b.get_params(deep=False)
            ):
                return "different preprocessing"
    return None


def _with_network(pipeline: Any, network: Any) -> Any:
    """A copy of the fitted ``pipeline`` (or just ``network``) ending in ``network``."""
    if not isinstance(pipeline, Pipeline):
        return network
    member = copy.deepcopy(pipeline)
    inner = member
    while isinstance(inner.steps[-1][1], Pipeline):
        inner = inner.steps[-1][1]
    inner.steps[-1] = (inner.steps[-1][0], network)
    return member


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
            if name == "classes_" and _single_label(first) and _single_label(member):
                continue  # fold models may lack a rare class: see _union_of_classes
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                raise ConfigurationError(f"member {index}'s {name} differs from member 0's")


def _single_label(member: Any) -> bool:
    """Whether ``member`` is a single-label classifier (one class per row)."""
    final = final_step(member)
    return hasattr(member, "classes_") and getattr(final, "_target_type", None) in (
        "binary",
        "multiclass",
    )


def _union_of_classes(classes: Sequence[np.ndarray]) -> np.ndarray:
    """The ensemble's classes: every member's, sorted (as each member's own are).

    Fold models of one study may know different classes — a class rarer than the folds is
    missing from some training folds — and each gives probability 0 to a class it lacks.
    """
    first = classes[0]
    if all(np.array_equal(first, other) for other in classes[1:]):
        return first
    return np.unique(np.concatenate(classes))


def _in_columns_of(classes: np.ndarray, member_classes: np.ndarray, proba: Any) -> Any:
    """``proba`` (columns ``member_classes``) in the columns ``classes`` (zeros elsewhere)."""
    if np.array_equal(classes, member_classes):
        return proba
    proba = np.asarray(proba)
    aligned = np.zeros((proba.shape[0], len(classes)), dtype=proba.dtype)
    aligned[:, np.searchsorted(classes, member_classes)] = proba
    return aligned
