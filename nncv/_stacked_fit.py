"""Fit k nncv estimators of one configuration as one stack (the folds of a CV split).

:class:`StackedFit` is the stacked counterpart of ``k`` generators
``estimator._iter_fit(X_f, y_f, w_f, None)`` (``X_f`` an array, a CSR matrix or
:class:`~nncv.network.training.IndexedRows`, as the fold engine builds it):
each estimator validates its data and builds its network and trainer exactly as its own fit
does (early-stopping split included), then
:class:`~nncv.network.stacked_training.StackedTrainer` trains the ``k`` trainers together,
and :meth:`StackedFit.close` leaves every estimator fitted as its own fit would have (same
``history_``, ``best_epoch_``, weights, optimiser state: scoring, ``partial_fit`` and
persistence work unchanged). Private: the fold engine (:mod:`nncv.cv`) is its user.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from nncv.exceptions import ConfigurationError
from nncv.network import EarlyStopping
from nncv.network.stacked_training import FoldData, StackedTrainer

__all__ = ["StackedFit"]


class StackedFit:
    """Train ``estimators[f]`` on ``folds[f] = (X, y, sample_weight)``, all as one stack.

    Parameters
    ----------
    estimators : sequence of NNClassifier or NNRegressor
        Unfitted (or ``warm_start``) estimators with the same parameters except
        ``random_state``.
    folds : sequence of tuple ``(X, y, sample_weight)``
        Each estimator's training data; ``X`` may be
        :class:`~nncv.network.training.IndexedRows` (rows of a larger array read by index).
    max_stack : int, optional
        Most folds per stack (see :class:`StackedTrainer`).

    Examples
    --------
    >>> from nncv import NNClassifier
    >>> from nncv.datasets import load
    >>> X, y = load("iris")
    >>> estimators = [NNClassifier(8, max_epochs=3, random_state=s) for s in range(2)]
    >>> fit = StackedFit(estimators, [(X[:100], y[:100], None), (X[50:], y[50:], None)])
    >>> [len(records) for records in fit.advance()]
    [2, 2, 2]
    >>> fit.close()
    >>> [e.n_iter_ for e in estimators]
    [3, 3]
    """

    def __init__(
        self,
        estimators: Sequence[Any],
        folds: Sequence[tuple],
        *,
        max_stack: int | None = None,
    ) -> None:
        self.estimators = list(estimators)
        if len(folds) != len(self.estimators):
            raise ConfigurationError(
                f"got {len(self.estimators)} estimators but {len(folds)} folds of data"
            )
        max_epochs = {estimator.max_epochs for estimator in self.estimators}
        if len(max_epochs) != 1:
            raise ConfigurationError(f"the estimators' max_epochs differ: {sorted(max_epochs)}")
        self.max_epochs = max_epochs.pop()
        self._stoppers: list[EarlyStopping | None] = []
        self._first_epochs: list[int] = []
        data = []
        for estimator, (X, y, sample_weight) in zip(self.estimators, folds, strict=True):
            # What ``_BaseNN._iter_fit`` does before its epochs, estimator by estimator.
            estimator._validate_params()
            keep = estimator.warm_start and hasattr(estimator, "network_")
            X, Y, sample_weight, validation = estimator._prepare_fit(
                X, y, sample_weight, None, keep=keep
            )
            stopper = None
            if estimator.early_stopping and validation is not None:
                stopper = EarlyStopping(patience=estimator.patience, monitor="val_loss")
            estimator._trainer.callbacks = [stopper] if stopper else []
            self._stoppers.append(stopper)
            self._first_epochs.append(estimator._trainer.epochs_done)
            data.append(FoldData(X, Y, sample_weight, validation))
        self.stack = StackedTrainer(
            [estimator._trainer for estimator in self.estimators], data, max_stack=max_stack
        )
        self._epochs = 0
        self._closed = False

    @property
    def errors(self) -> dict:
        """Folds whose training diverged: index → :class:`~nncv.exceptions.DivergedError`
        (the error a fit alone raises; those estimators are left unfitted)."""
        return self.stack.errors

    def advance(self, n_epochs: int | None = None) -> Iterator[list[dict | None]]:
        """Train every running fold up to ``n_epochs`` more epochs (all that is left of
        ``max_epochs`` when None); yields one list of per-fold records (or None) per epoch."""
        left = self.max_epochs - self._epochs
        n_epochs = left if n_epochs is None else min(n_epochs, left)
        for records in self.stack.advance(n_epochs):
            self._epochs += 1
            yield records

    def close(self) -> None:
        """End training and set every estimator's fitted attributes (as its fit does)."""
        if self._closed:
            return
        self._closed = True
        self.stack.close()
        for fold, estimator in enumerate(self.estimators):
            if fold not in self.stack.errors:
                estimator._finish_fit(self._stoppers[fold], self._first_epochs[fold])

    def __enter__(self) -> StackedFit:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
