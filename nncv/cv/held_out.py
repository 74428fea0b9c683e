"""A fold's held-out rows, read from ``X`` a block at a time: curves and final scores.

Part of the fold engine (:mod:`nncv.cv.fold`), so of :func:`nncv.cross_validate` and of
the search alike. The held-out rows are never copied out whole while the network trains:
after each epoch :func:`network_evaluator` scores them block by block (held-out rows that
fit in one block are transformed once and kept). For the final scores,
:func:`score_held_out` predicts block by block too when that gives bit for bit the
predictions on all rows at once — an nncv network after row-wise scalers only, scored by
scikit-learn scorers or its own ``score`` — and otherwise gathers the rows once and lets
the scorers predict on them.
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics._scorer import _BaseScorer, _PassthroughScorer

from nncv.cv import rows as _rowwise
from nncv.cv.rows import is_rowwise, take_rows, transform_through
from nncv.cv.scoring import score_fold
from nncv.estimators import _BaseNN
from nncv.network import model
from nncv.network.losses import mean_loss
from nncv.network.stacked_evaluation import StackedEvaluator, can_stack_rows
from nncv.network.stacked_training import StackCallback
from nncv.network.training import EARLY_STOPPING_KEYS, Callback

__all__ = [
    "HeldOut",
    "HeldOutScoring",
    "StackedHeldOutScoring",
    "network_evaluator",
    "score_held_out",
]

_RESPONSE_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
_MIXIN_SCORES = (ClassifierMixin.score, RegressorMixin.score)


@dataclass
class HeldOut:
    """A fold's held-out rows of ``X``, read through the fitted transformers on demand."""

    X: Any
    rows: np.ndarray
    y: Any
    sample_weight: np.ndarray | None
    transformers: list[Any] = field(default_factory=list)

    def blocks(self, block_rows: int | None = None) -> Iterator[Any]:
        """The transformed held-out rows, ``block_rows`` (default ``BLOCK_ROWS``) at a time."""
        block_rows = block_rows or _rowwise.BLOCK_ROWS
        for start in range(0, len(self.rows), block_rows):
            rows = self.rows[start : start + block_rows]
            yield transform_through(self.transformers, take_rows(self.X, rows))

    def materialize(self) -> Any:
        """All transformed held-out rows at once."""
        return transform_through(self.transformers, take_rows(self.X, self.rows))


class _NetworkEvaluator:
    """``evaluate() -> (val_loss, val_score)`` of an nncv network on a fold's held-out rows.

    The same numbers as the network's own ``validation_data`` evaluation (its loss and
    score applied to all held-out outputs at once), without holding the held-out rows
    whole: rows that fit in one block are read and transformed once and kept (the
    transformers are fitted before training starts, so every epoch would compute the same
    block again); more rows are read a block at a time after every epoch.
    """

    def __init__(self, net: Any, held_out: HeldOut) -> None:
        self.net = net
        self._encoded: np.ndarray | None = None
        self._kept: list[Any] = []
        self._use(held_out)

    def _use(self, held_out: HeldOut) -> None:
        """Evaluate on ``held_out``'s rows (their weights, blocks read afresh)."""
        self.held_out = held_out
        self.weights = None
        if held_out.sample_weight is not None:
            self.weights = np.asarray(held_out.sample_weight, dtype=np.float64)
        self._kept.clear()
        self._keep = len(held_out.rows) <= _rowwise.BLOCK_ROWS

    def _inputs(self) -> Iterator[Any]:
        if self._kept:
            return iter(self._kept)
        validate = self.net._validate_input
        blocks = (validate(block, reset=False) for block in self.held_out.blocks())
        if not self._keep:
            return blocks
        self._kept.extend(blocks)
        return iter(self._kept)

    def targets(self) -> np.ndarray:
        """The held-out targets encoded as the network's (once training has started)."""
        if self._encoded is None:
            self._leave_out_unknown_labels()
            self._encoded = self.net._encode_targets(self.held_out.y, reset=False)
        return self._encoded

    def _leave_out_unknown_labels(self) -> None:
        """Score the curves on the held-out rows whose class the network was trained on.

        A fold's held-out rows may hold a class its training rows lack (a class rarer than
        the folds, a time-series split): the network has no output for it, so neither a
        loss nor an arg-max can be computed on those rows. They are left out of the
        per-epoch ``val_loss``/``val_score``, with a warning; the final scores, from the
        scorers, still count them (accuracy as errors), as scikit-learn's do.
        """
        find = getattr(self.net, "_known_label_rows", None)
        known = None if find is None else find(self.held_out.y)
        if known is None:
            return
        unknown = np.unique(np.asarray(self.held_out.y)[~known])
        warnings.warn(
            f"{np.count_nonzero(~known)} of {len(known)} held-out rows have a class the "
            f"fold's training rows lack ({unknown.tolist()[:5]}); the per-epoch val_loss "
            "and val_score leave them out, the final scores count them",
            UserWarning,
            stacklevel=2,
        )
        held_out = self.held_out
        weights = held_out.sample_weight
        self._use(
            replace(
                held_out,
                rows=held_out.rows[known],
                y=np.asarray(held_out.y)[known],
                sample_weight=None if weights is None else np.asarray(weights)[known],
            )
        )

    def stackable_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """``(inputs, targets, weights)`` when the held-out rows are kept as one dense block
        (what :class:`~nncv.network.stacked_evaluation.StackedEvaluator` takes), else None."""
        targets = self.targets()
        if not self._keep:
            return None
        blocks = list(self._inputs())
        if len(blocks) != 1 or not can_stack_rows(blocks[0]):
            return None
        return blocks[0], targets, self.weights

    def __call__(self) -> tuple[float, float]:
        network = self.net.network_
        encoded = self.targets()
        if len(encoded) == 0:  # every held-out row's class is unknown to the network
            return math.nan, math.nan
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            outputs = np.concatenate([network.predict(block) for block in self._inputs()])
            loss = mean_loss(network.loss.per_sample(outputs, encoded), self.weights)
            score = self.net._score_function()(outputs, encoded, self.weights)
        return loss, score


def network_evaluator(net: Any, held_out: HeldOut) -> Callable[[], tuple[float, float]] | None:
    """``evaluate() -> (val_loss, val_score)`` of ``net`` on ``held_out``, block by block.

    The same numbers as the network's own ``validation_data`` evaluation (its loss and
    score applied to all held-out outputs at once), without holding the held-out rows
    whole. ``None`` when ``net`` lacks the nncv network hooks.
    """
    hooks = ("_encode_targets", "_score_function", "_validate_input")
    if not all(hasattr(net, name) for name in hooks):
        return None
    return _NetworkEvaluator(net, held_out)


class HeldOutScoring(Callback):
    """A training callback scoring the held-out rows after each epoch (skorch's EpochScoring).

    Given to the network's ``iter_fit(..., callbacks=[scoring])``, it calls ``evaluate()``
    after every epoch — before early stopping looks at the epoch, so on the weights that
    epoch reached — and keeps the result; :meth:`annotate` then puts it in a copy of that
    epoch's record as ``val_loss``/``val_score``. The network's own early-stopping values,
    when it has any, move to ``early_stopping_val_loss`` and ``early_stopping_val_score``.
    """

    def __init__(self, evaluate: Callable[[], tuple[float, float]]) -> None:
        self.evaluate = evaluate
        self.scores: dict[int, tuple[float, float]] = {}
        self._given: tuple[int, tuple[float, float]] | None = None

    def give(self, epoch: int, scores: tuple[float, float]) -> None:
        """Take epoch ``epoch``'s held-out ``(loss, score)`` computed for it (by
        :class:`StackedHeldOutScoring`, for every fold of a stack at once) instead of
        evaluating them itself at that epoch's end."""
        self._given = (epoch, scores)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        epoch = record["epoch"]
        given, self._given = self._given, None
        if given is not None and given[0] == epoch:
            self.scores[epoch] = given[1]
        else:
            self.scores[epoch] = self.evaluate()

    def annotate(self, record: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``record`` with the held-out scores of its epoch."""
        record = dict(record)
        own_loss = record.get("val_loss", math.nan)
        own_score = record.get("val_score", math.nan)
        record["val_loss"], record["val_score"] = self.scores[record["epoch"]]
        if not (math.isnan(own_loss) and math.isnan(own_score)):
            record.update(zip(EARLY_STOPPING_KEYS, (own_loss, own_score), strict=True))
        return record


class StackedHeldOutScoring(StackCallback):
    """Score every fold of a stack on its held-out rows in stacked forward passes.

    Given to :class:`~nncv.network.stacked_training.StackedTrainer` (through the fold
    engine's :class:`~nncv.cv.fold.FoldGroup`) with the folds' own
    :class:`HeldOutScoring` callbacks, in the stack's order. After every epoch, before the
    folds' callbacks run, it scores the networks of the folds that trained that epoch on
    their held-out rows with one
    :class:`~nncv.network.stacked_evaluation.StackedEvaluator` pass per held-out size and
    hands each fold's ``(loss, score)`` to its callback: the numbers that callback computes
    alone, bit for bit, for a fraction of the calls. Folds whose held-out rows are not one
    dense block (sparse, or more than ``BLOCK_ROWS`` rows read block by block) keep
    evaluating themselves.
    """

    def __init__(self, scorings: Sequence[HeldOutScoring]) -> None:
        self.scorings = list(scorings)
        self._evaluator: StackedEvaluator | None = None
        self._folds: list[int] = []  # the stack's folds scored here, in evaluator order
        self._started = False

    def _start(self, stack: Any) -> None:
        rows, folds = [], []
        for fold, scoring in enumerate(self.scorings):
            stackable = getattr(scoring.evaluate, "stackable_rows", None)
            found = stackable() if stackable is not None else None
            if found is not None:
                rows.append(found)
                folds.append(fold)
        first = stack.trainers[0]
        if len(folds) < 2 or any(t.score is not first.score for t in stack.trainers):
            return  # nothing to stack: every fold evaluates itself
        self._folds = folds
        self._evaluator = StackedEvaluator(first.network, rows, first.score)

    def on_epoch_end(self, stack: Any, records: Sequence[dict[str, Any] | None]) -> None:
        if not self._started:  # the held-out targets are encoded once training has begun
            self._started = True
            self._start(stack)
        if self._evaluator is None:
            return
        wanted = [i for i, fold in enumerate(self._folds) if records[fold] is not None]
        if not wanted:
            return
        networks = [stack.trainers[fold].network for fold in self._folds]
        for index, scores in self._evaluator.evaluate(networks, wanted).items():
            fold = self._folds[index]
            self.scorings[fold].give(records[fold]["epoch"], scores)


class _BlockwisePredictions:
    """The fitted network as scorers see it, predicting on the held-out rows block by block.

    Scorers get it with ``X=None``: scikit-learn's scorers only hand ``X`` to the
    response method (``predict``, ``predict_proba``, …), which here ignores it and
    concatenates the network's answers on the held-out blocks; ``score`` is the
    network's ``ClassifierMixin``/``RegressorMixin`` method, which calls ``predict``.
    The blocks hold the network's own prediction chunk of rows (``PREDICT_CHUNK_ROWS``),
    so every chunk is computed on the same rows as on all rows at once. Anything else
    is the network's.
    """

    def __init__(self, estimator: Any, held_out: HeldOut) -> None:
        self._estimator = estimator
        self._held_out = held_out

    def __sklearn_tags__(self):
        return self._estimator.__sklearn_tags__()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._estimator, name)  # the network's AttributeError if it lacks it
        if name == "score":
            return types.MethodType(type(self._estimator).score, self)
        if name not in _RESPONSE_METHODS:
            return value

        def respond(X: None) -> np.ndarray:
            blocks = self._held_out.blocks(model.PREDICT_CHUNK_ROWS)
            return np.concatenate([value(block) for block in blocks])

        respond.__name__ = name  # scikit-learn post-processes by the method's name
        return respond


def _can_score_blockwise(scorers: Mapping[str, Any], final: Any, held_out: HeldOut) -> bool:
    return (
        isinstance(final, _BaseNN)
        and all(is_rowwise(step) for step in held_out.transformers)
        and all(
            isinstance(scorer, _BaseScorer)
            or (isinstance(scorer, _PassthroughScorer) and type(final).score in _MIXIN_SCORES)
            for scorer in scorers.values()
        )
    )


def score_held_out(scorers: Mapping[str, Any], final: Any, held_out: HeldOut) -> dict[str, float]:
    """Score the fitted ``final`` step on the held-out rows with every scorer.

    What ``score_fold(scorers, final, held_out.materialize(), …)`` gives, bit for bit;
    without gathering the rows when :class:`_BlockwisePredictions` can stand in.
    """
    y, weights = held_out.y, held_out.sample_weight
    if _can_score_blockwise(scorers, final, held_out) and len(held_out.rows):
        return score_fold(scorers, _BlockwisePredictions(final, held_out), None, y, weights)
    return score_fold(scorers, final, held_out.materialize(), y, weights)
