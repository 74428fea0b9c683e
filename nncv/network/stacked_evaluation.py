"""Score k networks of one configuration, each on its own fixed rows, in stacked passes.

After every epoch of a stacked training each fold's network is scored on rows of its own
(its held-out rows in cross-validation, or its early-stopping split). Done fold by fold
that is one :meth:`Network.predict`, loss and score per fold per epoch, the per-call
overhead paid ``k`` times. :class:`StackedEvaluator` lays the folds' rows out once as
``[n_group, n_rows, n_inputs]`` arrays and scores every fold of a group in one forward pass
of a :class:`~nncv.network.stacked.StackedNetwork` and one loss call (the output
activation and the score are applied network by network).

Folds are grouped by their number of rows (and their targets' dtype): a group is a stack
without padding, so each network's products have exactly the shapes of its own
:meth:`Network.predict` (BLAS picks its kernel by shape: another row count could change
the last bits), and each fold's
``(loss, score)`` is bit for bit :meth:`Trainer.evaluate`'s, whichever folds share a
group. k-fold splits differ by at most one row, so that is one or two passes per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from nncv.exceptions import ConfigurationError
from nncv.network import metrics
from nncv.network.losses import mean_loss
from nncv.network.model import PREDICT_CHUNK_ROWS, Network
from nncv.network.stacked import StackedNetwork

__all__ = ["EVALUATION_BYTES", "StackedEvaluator", "can_stack_rows"]

#: Most bytes of one layer's activations a stacked pass computes at once: bigger groups are
#: scored a few networks at a time (large held-out sets are arithmetic, not call overhead,
#: and a stack of them would only leave the CPU cache).
EVALUATION_BYTES = 2**21

Score = Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]


def can_stack_rows(inputs) -> bool:
    """Whether ``inputs`` can be scored in a stack: a 2-D dense ndarray with rows."""
    return type(inputs) in (np.ndarray, np.memmap) and inputs.ndim == 2 and inputs.shape[0] > 0


class _Group:
    """The folds of one row count: their rows as one ``[n, n_rows, n_inputs]`` array."""

    def __init__(self, folds: list[int], inputs: np.ndarray, targets: np.ndarray) -> None:
        self.folds = folds
        self.position = {fold: index for index, fold in enumerate(folds)}
        self.inputs = inputs
        self.targets = targets
        # metrics.accuracy's per-fold choice, which depends on the targets only: arg-max
        # against one-hot targets (one label per row), else thresholds at 0.5
        one_hot = [targets.shape[2] > 1 and bool(np.all(y.sum(axis=1) == 1)) for y in targets]
        self.one_hot = one_hot[0] if len(set(one_hot)) == 1 else None
        self.labels = targets.argmax(axis=2) if self.one_hot else None
        self.positive = targets > 0.5 if self.one_hot is False else None


class StackedEvaluator:
    """``(loss, score)`` of k networks, network ``f`` on ``data[f]``, in stacked passes.

    Parameters
    ----------
    template : Network
        The networks' configuration (architecture, dtype, loss).
    data : sequence of tuple ``(inputs, targets, sample_weight)``
        Fold ``f``'s rows: a dense ``(n_rows, n_inputs)`` array (see :func:`can_stack_rows`;
        cast once to the network's dtype, as the network casts them), encoded targets
        ``(n_rows, n_outputs)`` and weights (or None).
    score : callable ``score(outputs, targets, sample_weight) -> float``, optional
        As :attr:`Trainer.score` (NaN when None).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> networks = [Network(4, [8], 3, dtype=np.float64) for _ in range(3)]
    >>> for seed, net in enumerate(networks):
    ...     net.initialize(np.random.default_rng(seed))
    >>> data = [(rng.normal(size=(n, 4)), np.eye(3)[rng.integers(0, 3, n)], None)
    ...         for n in (10, 10, 9)]
    >>> evaluator = StackedEvaluator(networks[0], data)
    >>> scores = evaluator.evaluate(networks)
    >>> loss = float(np.mean(networks[2].loss.per_sample(networks[2].predict(data[2][0]),
    ...                                                    data[2][1])))
    >>> scores[2][0] == loss
    True
    """

    def __init__(
        self,
        template: Network,
        data: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
        score: Score | None = None,
    ) -> None:
        self.template = template
        self.dtype = template.dtype
        self.score = score
        self.weights = [None if w is None else np.asarray(w) for _, _, w in data]
        self.n_rows = []
        by_shape: dict[tuple[int, np.dtype], list[int]] = {}
        for fold, (inputs, targets, _) in enumerate(data):
            if not can_stack_rows(inputs):
                raise ConfigurationError(f"fold {fold}'s rows are not a dense 2-D array")
            if inputs.shape[1] != template.n_inputs or len(targets) != len(inputs):
                raise ConfigurationError(
                    f"fold {fold} has rows of shape {inputs.shape} and {len(targets)} targets; "
                    f"the network takes {template.n_inputs} inputs"
                )
            self.n_rows.append(inputs.shape[0])
            key = (inputs.shape[0], np.asarray(targets).dtype)
            by_shape.setdefault(key, []).append(fold)
        self._groups: list[_Group] = []
        for (n_rows, target_dtype), folds in by_shape.items():
            inputs = np.empty((len(folds), n_rows, template.n_inputs), self.dtype)
            # targets keep their dtype: the loss and score see them as a fold alone does
            targets = np.empty((len(folds), n_rows, template.n_outputs), target_dtype)
            for index, fold in enumerate(folds):
                np.copyto(inputs[index], data[fold][0], casting="unsafe")
                np.copyto(targets[index], data[fold][1], casting="unsafe")
            self._groups.append(_Group(folds, inputs, targets))
        self._stacks: dict[int, StackedNetwork] = {}

    def _stack(self, size: int) -> StackedNetwork:
        stack = self._stacks.get(size)
        if stack is None:
            stack = self._stacks[size] = StackedNetwork(self.template, size)
        return stack

    def evaluate(
        self, networks: Sequence[Network], folds: Sequence[int] | None = None
    ) -> dict[int, tuple[float, float]]:
        """Score ``networks[f]`` on fold ``f``'s rows for every ``f`` in ``folds`` (all by
        default): ``{f: (loss, score)}``, each what ``Trainer.evaluate`` gives it alone."""
        wanted = set(range(len(self.n_rows)) if folds is None else folds)
        results: dict[int, tuple[float, float]] = {}
        for group in self._groups:
            chosen = [fold for fold in group.folds if fold in wanted]
            size = self._pass_size(group.inputs.shape[1])
            for start in range(0, len(chosen), size):
                self._evaluate(group, chosen[start : start + size], networks, results)
        return results

    def _pass_size(self, n_rows: int) -> int:
        """How many networks one pass stacks (:data:`EVALUATION_BYTES`)."""
        template = self.template
        width = max(template.n_inputs, *template.hidden_layer_sizes, template.n_outputs)
        return max(1, EVALUATION_BYTES // max(1, n_rows * width * self.dtype.itemsize))

    def _evaluate(self, group: _Group, members: list[int], networks, results: dict) -> None:
        """Score ``members`` (folds of ``group``) in one stacked pass into ``results``."""
        if len(members) == len(group.folds):
            inputs, targets = group.inputs, group.targets
        else:
            index = [group.position[fold] for fold in members]
            inputs, targets = group.inputs[index], group.targets[index]
        outputs = self._predict([networks[fold] for fold in members], inputs)
        n_outputs = outputs.shape[2]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            losses = self.template.loss.per_sample(
                outputs.reshape(-1, n_outputs), targets.reshape(-1, n_outputs)
            ).reshape(len(members), -1)
            correct = self._correct(group, members, outputs)
            for position, fold in enumerate(members):
                weights = self.weights[fold]
                loss = mean_loss(losses[position], weights)
                if correct is not None:  # metrics.accuracy, its comparisons stacked
                    score = metrics.weighted_mean(correct[position], weights)
                elif self.score is not None:
                    score = self.score(outputs[position], targets[position], weights)
                else:
                    score = math.nan
                results[fold] = (loss, score)

    def _correct(self, group: _Group, members: list[int], outputs: np.ndarray):
        """``[n_members, n_rows]`` of the rows :func:`metrics.accuracy` counts as right, for
        every member at once, or None when the score is another function."""
        if self.score is not metrics.accuracy or group.one_hot is None:
            return None
        index = slice(None)
        if len(members) != len(group.folds):
            index = [group.position[fold] for fold in members]
        if group.one_hot:
            return outputs.argmax(axis=2) == group.labels[index]
        return np.all((outputs > 0.5) == group.positive[index], axis=2)

    def _predict(self, networks: list[Network], inputs: np.ndarray) -> np.ndarray:
        """Every network's outputs on its row of ``inputs``, in ``PREDICT_CHUNK_ROWS`` chunks
        as :meth:`Network.predict` computes them."""
        stack = self._stack(len(networks))
        for row, network in enumerate(networks):
            stack.parameters[row] = network.parameters
            stack.running_statistics[row] = network.running_statistics
        n_rows = inputs.shape[1]
        result = np.empty((len(networks), n_rows, self.template.n_outputs), self.dtype)
        output = self.template.loss.output
        for start in range(0, n_rows, PREDICT_CHUNK_ROWS):
            stop = min(start + PREDICT_CHUNK_ROWS, n_rows)
            logits = stack.forward(inputs[:, start:stop], activate_output=False)
            # Network by network: the softmax's row sums are a BLAS matrix-vector product,
            # whose last bits depend on its number of rows (a stack's would be k times more).
            for row in range(len(networks)):
                result[row, start:stop] = output(logits[row])
        return result
