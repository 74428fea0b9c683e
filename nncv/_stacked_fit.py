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
from nncv.network.stacked_training import FoldData, StackCallback, StackedTrainer

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
    callbacks : sequence of sequences of Callback, optional
        Each fold's own training callbacks (run before its early stopping, as ``iter_fit``
        runs the callbacks it is given).
    stack_callbacks : sequence of StackCallback, optional
        Called after every epoch for the whole stack, before the folds' own callbacks
        (see :class:`~nncv.network.stacked_training.StackedTrainer`).

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
        callbacks: Sequence[Sequence[Any]] | None = None,
        stack_callbacks: Sequence[StackCallback] = (),
    ) -> None:
        self.estimators = list(estimators)
        if callbacks is None:
            callbacks = [()] * len(self.estimators)
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
        self._n_rows: list[int] = []
        data = []
        for estimator, (X, y, sample_weight), extra in zip(
            self.estimators, folds, callbacks, strict=True
        ):
            # What ``_BaseNN._iter_fit`` does before its epochs, estimator by estimator.
            estimator._validate_params()
            keep = estimator.warm_start and hasattr(estimator, "network_")
            X, Y, sample_weight, validation = estimator._prepare_fit(
                X, y, sample_weight, None, keep=keep
            )
            stopper = None
            if estimator.early_stopping and validation is not None:
                stopper = EarlyStopping(patience=estimator.patience, monitor="val_loss")
            estimator._trainer.callbacks = [*extra, *([stopper] if stopper else [])]
            if not keep:
                estimator._samples_seen = 0
            self._n_rows.append(X.shape[0])
            self._stoppers.append(stopper)
            self._first_epochs.append(estimator._trainer.epochs_done)
            data.append(FoldData(X, Y, sample_weight, validation))
        self.stack = StackedTrainer(
            [estimator._trainer for estimator in self.estimators],
            data,
            max_stack=max_stack,
            stack_callbacks=stack_callbacks,
        )
        self._epochs = 0
        self._closed = False
        self._finished: set[int] = set()

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
            for fold, record in enumerate(records):
                if record is not None:
                    estimator = self.estimators[fold]
                    estimator._samples_seen = getattr(estimator, "_samples_seen", 0)
                    estimator._samples_seen += self._n_rows[fold]
            yield records

    @property
    def done(self) -> bool:
        """Whether no fold trains any more (all stopped, or ``max_epochs`` reached)."""
        return self._epochs >= self.max_epochs or not any(self.stack.running)

    def finish(self, fold: int) -> None:
        """Set fold ``fold``'s fitted attributes once it has stopped (the others go on)."""
        if fold in self._finished or fold in self.stack.errors:
            return
        if self.stack.running[fold] and not self.done:
            raise ConfigurationError(f"fold {fold} is still training")
        if self.stack.running[fold]:
            self.stack._stop(fold)
        self._finished.add(fold)
        self.estimators[fold]._finish_fit(self._stoppers[fold], self._first_epochs[fold])

    def close(self) -> None:
        """End training and set every estimator's fitted attributes (as its fit does)."""
        if self._closed:
            return
        self._closed = True
        self.stack.close()
        for fold, estimator in enumerate(self.estimators):
            if fold not in self.stack.errors and fold not in self._finished:
                self._finished.add(fold)
                estimator._finish_fit(self._stoppers[fold], self._first_epochs[fold])

    def __enter__(self) -> StackedFit:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
