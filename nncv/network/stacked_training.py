"""Train the k folds of one configuration as one stacked network, each as if alone.

:class:`StackedTrainer` takes ``k`` ready :class:`~nncv.network.training.Trainer` objects
(network, optimiser, schedule, generator, batch size, callbacks: one per fold, all of one
configuration) and their data, and trains them in lockstep as one
:class:`~nncv.network.stacked.StackedNetwork`: every mini-batch step is one pass over the
whole stack, so the per-batch Python and NumPy overhead is paid once for ``k`` folds.

Each fold keeps everything a fold trained alone has: its own rows (an array, a CSR matrix or
:class:`~nncv.network.training.IndexedRows` read by index, so no copy of ``X`` per fold), its
own shuffling and dropout draws from its own generator (in the order a single
:class:`Trainer` draws them), sample weights, validation data, callbacks (early stopping
with its best weights) and history. Folds of unequal size run their last, shorter batches
(and any extra batches) as smaller stacks. A fold that stops (early stopping, or a diverged
loss) stops changing while the others go on; training ends when every fold has stopped.

After every epoch each fold's state — parameters, batch-norm running statistics, optimiser
state and step count, epoch count, history — is written back into its own :class:`Trainer`,
so the ``k`` trainers (and their networks) are at any time exactly what training each fold
alone would have left: fitted estimators, scoring and persistence use them unchanged.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from nncv.exceptions import ConfigurationError, DivergedError, StopTraining
from nncv.network.model import Network
from nncv.network.optimizers import Optimizer
from nncv.network.stacked import StackedNetwork, StackedOptimizer
from nncv.network.stacked_evaluation import StackedEvaluator, can_stack_rows
from nncv.network.training import GATHER_BYTES, IndexedRows, Record, Trainer

__all__ = ["FoldData", "StackCallback", "StackedTrainer"]

#: Optimiser attributes that are state, not configuration (compared across folds).
_OPTIMIZER_STATE = ("iterations", "state", "_layout", "_scratch", "_slots_per_array")


@dataclass(frozen=True)
class FoldData:
    """One fold's training data, as :meth:`Trainer.iter_epochs` takes it.

    Parameters
    ----------
    inputs : ndarray, scipy CSR matrix or IndexedRows
        The fold's training rows.
    targets : ndarray of shape (n_rows, n_outputs)
        Encoded targets (one-hot, 0/1 columns or standardised values).
    sample_weight : ndarray of shape (n_rows,), optional
    validation_data : tuple ``(inputs, targets)`` or ``(inputs, targets, weights)``, optional
        Scored after each epoch (``val_loss``, ``val_score``), as by a single trainer.
    """

    inputs: Any
    targets: np.ndarray
    sample_weight: np.ndarray | None = None
    validation_data: tuple | None = None


class StackCallback:
    """Hooks called by :class:`StackedTrainer` for the whole stack; override any of them.

    Where a fold's own :class:`~nncv.network.training.Callback` sees one fold, a stack
    callback sees every fold at once, so work done for each fold after every epoch
    (scoring held-out rows, say) can be done in one stacked pass.
    """

    def on_epoch_end(self, stack: StackedTrainer, records: list[Record | None]) -> None:
        """Called after each epoch with every fold's record (None for folds that did not
        train it), once all are made and the folds' networks hold the epoch's weights,
        before any fold's own callbacks run."""


class _Stack:
    """The networks and optimiser state of some folds (``folds``, positions in the
    trainer's list) as one stack."""

    def __init__(self, network: Network, optimizer: Optimizer, folds: Sequence[int]) -> None:
        self.folds = list(folds)
        self.trainers: list[Trainer] | None = None  # set on the first step
        self.rngs: list[np.random.Generator] = []
        self.network = StackedNetwork(network, len(self.folds))
        self.optimizer = StackedOptimizer(optimizer, self.network.parameters.shape, network.dtype)

    def load(self, source: _Stack, positions: np.ndarray) -> None:
        """Copy rows ``positions`` of ``source`` into this stack."""
        self.network.parameters[...] = source.network.parameters[positions]
        self.network.running_statistics[...] = source.network.running_statistics[positions]
        self.optimizer.iterations[...] = source.optimizer.iterations[positions]
        self.optimizer.iterations_changed()
        for slot, values in self.optimizer.state.items():
            values[...] = source.optimizer.state[slot][positions]

    def store(self, target: _Stack, positions: np.ndarray) -> None:
        """Copy this stack back into rows ``positions`` of ``target``."""
        target.network.parameters[positions] = self.network.parameters
        target.network.running_statistics[positions] = self.network.running_statistics
        target.optimizer.iterations[positions] = self.optimizer.iterations
        target.optimizer.iterations_changed()
        for slot, values in self.optimizer.state.items():
            target.optimizer.state[slot][positions] = values


class _FoldInputs:
    """A fold's training inputs, cast as :meth:`Trainer.iter_epochs` casts them.

    :class:`IndexedRows` of at most ``keep_bytes`` (the stack's share of
    :data:`GATHER_BYTES`) are read and transformed once and kept: a single :class:`Trainer`
    holds a chunk of that size between epochs too, and the transform being row-wise, taking
    rows from the kept array gives the numbers it computes again every epoch.
    """

    def __init__(self, inputs, dtype: np.dtype, keep_bytes: int) -> None:
        self.indexed = isinstance(inputs, IndexedRows)
        self.sparse = not self.indexed and sp.issparse(inputs)
        self.dtype = np.dtype(dtype)
        if self.indexed:
            if inputs.dtype != dtype:
                inputs = replace(inputs, dtype=np.dtype(dtype))
            self.row_bytes = max(1, inputs.shape[1] * inputs.data.dtype.itemsize)
        else:
            inputs = inputs.astype(dtype, copy=False)
            self.row_bytes = max(1, inputs.shape[1] * np.dtype(dtype).itemsize)
        self.inputs = inputs
        self.n_rows = inputs.shape[0]
        self.n_features = inputs.shape[1]
        self.keep = self.indexed and self.n_rows * self.row_bytes <= keep_bytes
        self._kept: np.ndarray | None = None

    def read_into(self, positions: np.ndarray | None, out: np.ndarray) -> None:
        """Write the dense rows at ``positions`` (all rows when None) into ``out`` (rows of a
        contiguous buffer, or their first ``n_features`` columns)."""
        source = self.inputs
        if self.indexed:
            if self._kept is None and self.keep:
                self._kept = source.read()
            if self._kept is None:
                np.copyto(out, source.read(positions))
                return
            source = self._kept
        if positions is None:
            np.copyto(out, source)
        elif out.flags.c_contiguous:
            np.take(source, positions, axis=0, out=out, mode="clip")
        else:  # beside a column of ones: taking into a strided ``out`` is ~3x slower
            np.copyto(out, np.take(source, positions, axis=0))

    def release(self) -> None:
        self._kept = None


class StackedTrainer:
    """Train ``k`` folds of one configuration as one stacked network.

    Parameters
    ----------
    trainers : sequence of Trainer
        One per fold, each with its own network (initialised), optimiser, schedule,
        generator and callbacks. Networks, optimisers, schedules and batch sizes must be of
        one configuration (a :class:`~nncv.exceptions.ConfigurationError` says which
        differs). They are updated in place: after each epoch every trainer holds exactly
        the state training its fold alone with :meth:`Trainer.iter_epochs` would reach.
    folds : sequence of FoldData
        Each fold's training data (and optional validation data). Rows read by index
        (:class:`IndexedRows`) are read a chunk at a time, about :data:`GATHER_BYTES` for
        the whole stack, or read once and kept when the stack's folds fit in that much.
    max_stack : int, optional
        Most folds trained as one stack; more folds run as several stacks one after
        another (each fold's numbers do not depend on it). By default as many as keep a
        step's activations within :data:`STACK_BYTES` (all folds for small batches and
        layers; few for large ones, whose steps are not dominated by call overhead).
    stack_callbacks : sequence of StackCallback, optional
        Called after every epoch for the whole stack, before the folds' own callbacks.

    Notes
    -----
    Batch normalisation is stacked like the rest: each fold's ``gamma`` and ``beta`` are part
    of its parameter row, its running statistics a row of the stack's
    ``(k, n_statistics)`` array (loaded from and written back into its network with the
    parameters, so early stopping keeps and restores them as a fold alone does), and its
    batch statistics are taken over its own rows of each step only, weighted by its sample
    weights (a shorter last batch runs in a smaller stack, never with padding rows).

    Attributes
    ----------
    running : list of bool
        Whether each fold still trains (False once it stopped early, diverged or was
        closed).
    errors : dict of int to DivergedError
        Folds whose loss became NaN or infinite (a single trainer raises the error; here the
        fold stops and the others go on).

    Examples
    --------
    >>> import numpy as np
    >>> from nncv.network import Network, Trainer, optimizers, schedules
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(60, 4)), np.eye(3)[rng.integers(0, 3, 60)]
    >>> def trainer(seed):
    ...     net = Network(4, [8], 3, dtype=np.float64)
    ...     net.initialize(np.random.default_rng(seed))
    ...     return Trainer(net, optimizers.Adam(), schedules.InverseTimeDecay(0.01),
    ...                    rng=np.random.default_rng(seed), batch_size=16)
    >>> folds = [FoldData(X[:40], Y[:40]), FoldData(X[20:], Y[20:])]
    >>> stack = StackedTrainer([trainer(0), trainer(1)], folds)
    >>> [[r["epoch"] for r in records] for records in stack.advance(2)]
    [[1, 1], [2, 2]]
    >>> stack.close()
    >>> len(stack.networks)
    2
    """

    def __init__(
        self,
        trainers: Sequence[Trainer],
        folds: Sequence[FoldData],
        *,
        max_stack: int | None = None,
        stack_callbacks: Sequence[StackCallback] = (),
    ) -> None:
        self.trainers = list(trainers)
        self.stack_callbacks = list(stack_callbacks)
        if not self.trainers:
            raise ConfigurationError("a stack needs at least one trainer")
        if len(folds) != len(self.trainers):
            raise ConfigurationError(
                f"got {len(self.trainers)} trainers but {len(folds)} folds of data"
            )
        _check_one_configuration(self.trainers)
        first = self.trainers[0]
        self.dtype = first.network.dtype
        self.batch_size = first.batch_size
        self._template_network = first.network
        self._template_optimizer = copy.copy(first.optimizer)
        self._template_optimizer.state = {}
        keep_bytes = GATHER_BYTES // len(folds)
        self._inputs = [_FoldInputs(fold.inputs, self.dtype, keep_bytes) for fold in folds]
        if len({fold.sparse for fold in self._inputs}) > 1:
            raise ConfigurationError("the folds of a stack must be all sparse or all dense")
        self._targets = [np.asarray(fold.targets, dtype=self.dtype) for fold in folds]
        network = first.network
        for fold, (inputs, targets) in enumerate(zip(self._inputs, self._targets, strict=True)):
            if inputs.n_features != network.n_inputs:
                raise ConfigurationError(
                    f"fold {fold} has {inputs.n_features} features, the network takes "
                    f"{network.n_inputs}"
                )
            if targets.ndim != 2 or targets.shape[1] != network.n_outputs:
                raise ConfigurationError(
                    f"fold {fold}'s targets have shape {targets.shape}; the network needs "
                    f"(n_rows, {network.n_outputs})"
                )
        self._weights = [
            None if fold.sample_weight is None else np.asarray(fold.sample_weight) for fold in folds
        ]
        # Batches of weights are gathered in the weights' own dtype, as a single trainer
        # gathers them (folds of different weight dtypes share the common one).
        given = [w.dtype for w in self._weights if w is not None]
        self._weight_dtype = np.result_type(*given) if given else None
        if len({w is None for w in self._weights}) > 1:
            raise ConfigurationError("give sample weights for every fold of a stack or for none")
        self._validation = [fold.validation_data for fold in folds]
        self._validation_evaluator: tuple[list[int], StackedEvaluator | None] | None = None
        for fold, (inputs, targets) in enumerate(zip(self._inputs, self._targets, strict=True)):
            if len(targets) != inputs.n_rows:
                raise ConfigurationError(
                    f"fold {fold} has {inputs.n_rows} input rows but {len(targets)} targets"
                )
        self.running = [True] * len(self.trainers)
        self.errors: dict[int, DivergedError] = {}
        self._started = False
        if max_stack is None:
            max_stack = auto_stack_size(first.network, first.batch_size, self._inputs)
        if max_stack < 1:
            raise ConfigurationError(f"max_stack must be at least 1, got {max_stack!r}")
        self.max_stack = int(max_stack)
        whole = _Stack(self._template_network, self._template_optimizer, range(len(folds)))
        self._load_trainers(whole)
        self._stacks = [whole]
        self._fold_position = {fold: (0, fold) for fold in range(len(folds))}
        self._substacks: dict[tuple[int, ...], _Stack] = {}
        self._buffers: dict[str, np.ndarray] = {}
        self._repack()

    @property
    def networks(self) -> list[Network]:
        """The ``k`` single networks (their parameters as of the last finished epoch)."""
        return [trainer.network for trainer in self.trainers]

    # ----------------------------------------------------------- fold state
    def _load_trainers(self, stack: _Stack) -> None:
        for position, trainer in enumerate(self.trainers):
            stack.network.parameters[position] = trainer.network.parameters
            stack.network.running_statistics[position] = trainer.network.running_statistics
            stack.optimizer.iterations[position] = trainer.optimizer.iterations
            stack.optimizer.iterations_changed()
            for slot, values in stack.optimizer.state.items():
                saved = trainer.optimizer.state.get(slot)
                if saved and saved[0].shape == values[position].shape:
                    values[position] = saved[0]

    def _sync_trainer(self, stack: _Stack, position: int, fold: int) -> None:
        """Write ``stack``'s row ``position`` into fold ``fold``'s own network and optimiser."""
        trainer = self.trainers[fold]
        trainer.network.set_parameters(stack.network.parameters[position])
        trainer.network.set_running_statistics(stack.network.running_statistics[position])
        optimizer = trainer.optimizer
        optimizer.iterations = int(stack.optimizer.iterations[position])
        for slot, values in stack.optimizer.state.items():
            saved = optimizer.state.get(slot)
            if saved and saved[0].shape == values[position].shape:
                np.copyto(saved[0], values[position])
            else:
                optimizer.state[slot] = [values[position].copy()]
                optimizer._layout = None

    def _stop(self, fold: int) -> None:
        self.running[fold] = False
        for callback in self.trainers[fold].callbacks:
            callback.on_train_end(self.trainers[fold])

    def _repack(self) -> None:
        """Lay the running folds out as stacks of at most :attr:`max_stack` folds each."""
        running = [f for stack in self._stacks for f in stack.folds if self.running[f]]
        n_stacks = -(-len(running) // self.max_stack)
        sizes = [len(running) // n_stacks + (i < len(running) % n_stacks) for i in range(n_stacks)]
        layout = []
        start = 0
        for size in sizes:
            layout.append(running[start : start + size])
            start += size
        if layout == [stack.folds for stack in self._stacks]:
            return
        stacks = []
        for folds in layout:
            new = _Stack(self._template_network, self._template_optimizer, folds)
            for position, fold in enumerate(folds):
                old_stack, old_position = self._fold_position[fold]
                single = self._stacks[old_stack]
                new.network.parameters[position] = single.network.parameters[old_position]
                new.network.running_statistics[position] = single.network.running_statistics[
                    old_position
                ]
                new.optimizer.iterations[position] = single.optimizer.iterations[old_position]
                new.optimizer.iterations_changed()
                for slot, values in new.optimizer.state.items():
                    values[position] = single.optimizer.state[slot][old_position]
            stacks.append(new)
        self._stacks = stacks
        self._fold_position = {
            fold: (index, position)
            for index, stack in enumerate(stacks)
            for position, fold in enumerate(stack.folds)
        }
        self._substacks = {}

    # --------------------------------------------------------------- public
    def advance(self, n_epochs: int) -> Iterator[list[Record | None]]:
        """Train every running fold up to ``n_epochs`` more epochs, epoch by epoch.

        Yields, after each epoch, a list with one entry per fold: that fold's epoch record
        (the keys of :meth:`Trainer.iter_epochs`' records, also appended to its trainer's
        ``history``), or None for a fold that did not train in that epoch. Ends early when
        every fold has stopped. Callbacks' ``on_train_begin`` runs on the first call,
        ``on_train_end`` when a fold stops (after the epoch that stopped it) or on
        :meth:`close`.
        """
        if not self._started:
            self._started = True
            for trainer in self.trainers:
                for callback in trainer.callbacks:
                    callback.on_train_begin(trainer)
        for _ in range(n_epochs):
            if not any(self.running):
                return
            yield self._epoch()

    def close(self) -> None:
        """End training: folds still running get their callbacks' ``on_train_end`` (early
        stopping restores its best weights)."""
        for fold, running in enumerate(self.running):
            if running:
                self._stop(fold)
        self._substacks = {}
        self._buffers = {}
        for fold in self._inputs:
            fold.release()

    def __enter__(self) -> StackedTrainer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ---------------------------------------------------------------- epochs
    def _epoch(self) -> list[Record | None]:
        sums = {}
        for stack in self._stacks:  # the folds are independent: stack after stack
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss_sums, weight_sums, rates = self._train_one_epoch(stack)
            for position, fold in enumerate(stack.folds):
                sums[fold] = (loss_sums[position], weight_sums[position], rates[position])
                self._sync_trainer(stack, position, fold)
        records: list[Record | None] = [None] * len(self.trainers)
        for fold in sorted(sums):
            loss_sum, weight_sum, rate = sums[fold]
            trainer = self.trainers[fold]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                regularisation = trainer.network.regularisation_loss()
            data_loss = float(loss_sum) / max(float(weight_sum), np.finfo(np.float64).tiny)
            trainer.epochs_done += 1
            if not (math.isfinite(data_loss) and math.isfinite(regularisation)):
                self.errors[fold] = DivergedError(
                    f"training diverged at epoch {trainer.epochs_done}: the loss became "
                    f"{data_loss + regularisation} (learning rate {rate:g}); "
                    "lower the learning rate or add decay"
                )
                self._stop(fold)
                continue
            records[fold] = {
                "epoch": trainer.epochs_done,
                "loss": data_loss + regularisation,
                "data_loss": data_loss,
                "val_loss": math.nan,
                "val_score": math.nan,
                "learning_rate": rate,
            }
        self._validate(records)
        for callback in self.stack_callbacks:
            callback.on_epoch_end(self, records)
        for fold, record in enumerate(records):
            if record is None:
                continue
            trainer = self.trainers[fold]
            trainer.history.append(record)
            try:
                for callback in trainer.callbacks:
                    callback.on_epoch_end(trainer, record)
            except StopTraining:
                self._stop(fold)
        self._repack()
        return records

    def _validate(self, records: list[Record | None]) -> None:
        """Each fold's own validation data (``val_loss``, ``val_score``) into its record:
        the folds whose validation rows are dense arrays in stacked passes, the others one
        by one (the numbers :meth:`Trainer.evaluate` gives each, bit for bit)."""
        folds = [f for f, r in enumerate(records) if r is not None and self._validation[f]]
        if not folds:
            return
        if self._validation_evaluator is None:
            stackable = [
                f for f, data in enumerate(self._validation) if data and can_stack_rows(data[0])
            ]
            first = self.trainers[0]
            if len(stackable) > 1 and all(t.score is first.score for t in self.trainers):
                data = [self._validation[f] for f in stackable]
                rows = [(x, targets, rest[0] if rest else None) for x, targets, *rest in data]
                self._validation_evaluator = (
                    stackable,
                    StackedEvaluator(first.network, rows, first.score),
                )
            else:
                self._validation_evaluator = ([], None)
        stacked, evaluator = self._validation_evaluator
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if evaluator is not None:
                wanted = [index for index, fold in enumerate(stacked) if records[fold] is not None]
                networks = [self.trainers[fold].network for fold in stacked]
                for index, (loss, score) in evaluator.evaluate(networks, wanted).items():
                    record = records[stacked[index]]
                    record["val_loss"], record["val_score"] = loss, score
            for fold in folds:
                if fold in stacked:
                    continue
                inputs, targets, *rest = self._validation[fold]
                record = records[fold]
                record["val_loss"], record["val_score"] = self.trainers[fold].evaluate(
                    inputs, targets, rest[0] if rest else None
                )

    def _buffer(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        size = math.prod(shape)
        flat = self._buffers.get(name)
        if flat is None or flat.size < size or flat.dtype != dtype:
            flat = np.empty(size, dtype)
            self._buffers[name] = flat
        return flat[:size].reshape(shape)

    def _train_one_epoch(self, stack: _Stack) -> tuple[np.ndarray, np.ndarray, list[float]]:
        """One pass of every fold in ``stack`` over its data; per-fold loss sums, weight
        sums and last learning rates.

        Each fold's rows are gathered a chunk at a time (about :data:`GATHER_BYTES`, a whole
        number of batches) into row ``f`` of ``[n_stack, chunk_rows, ...]`` buffers, in the
        order of the fold's own permutation; a step takes the next ``width`` rows of every
        fold.
        """
        folds = stack.folds
        n_stack = len(folds)
        inputs = [self._inputs[f] for f in folds]
        n_rows = [fold.n_rows for fold in inputs]
        batch_rows = [n if self.batch_size is None else min(self.batch_size, n) for n in n_rows]
        width = max(batch_rows)  # rows per step; a full-batch fold may have fewer
        orders: list[np.ndarray | None] = []
        for fold, n, rows in zip(folds, n_rows, batch_rows, strict=True):
            # The draw a single Trainer makes at the start of the epoch, from the same generator.
            orders.append(None if rows >= n else self.trainers[fold].rng.permutation(n))
        sparse = inputs[0].sparse
        sparse_inputs = []
        if sparse:
            for fold, order in zip(inputs, orders, strict=True):
                sparse_inputs.append(fold.inputs if order is None else fold.inputs[order])
        weighted = self._weights[folds[0]] is not None
        n_outputs = self._targets[folds[0]].shape[1]
        # The stack gathers about GATHER_BYTES of rows in all, as one trainer does alone.
        row_bytes = max(fold.row_bytes for fold in inputs) * n_stack
        chunk_rows = width * max(1, GATHER_BYTES // row_bytes // width)
        chunk_rows = min(chunk_rows, -(-max(n_rows) // width) * width)
        n_features = inputs[0].n_features
        x_buffer = x_columns = None
        if not sparse:
            # With a first layer that folds its bias into its product, the rows are gathered
            # beside a column of ones, which the stack's product then takes as it is.
            augmented = stack.network.augments_inputs
            x_buffer = self._buffer(
                "inputs", (n_stack, chunk_rows, n_features + augmented), self.dtype
            )
            x_columns = x_buffer
            if augmented:
                x_buffer[..., -1] = 1
                x_columns = x_buffer[..., :-1]
        y_buffer = self._buffer("targets", (n_stack, chunk_rows, n_outputs), self.dtype)
        w_buffer = None
        if weighted:
            w_buffer = self._buffer("weights", (n_stack, chunk_rows), self._weight_dtype)
        loss_sums = np.zeros(n_stack)
        weight_sums = np.zeros(n_stack)
        rates = [math.nan] * n_stack
        for chunk_start in range(0, max(n_rows), chunk_rows):
            lengths = [min(max(n - chunk_start, 0), chunk_rows) for n in n_rows]
            for position, (fold, order, length) in enumerate(
                zip(folds, orders, lengths, strict=True)
            ):
                if length == 0:
                    continue
                positions = None if order is None else order[chunk_start : chunk_start + length]
                for source, buffer in (
                    (self._targets[fold], y_buffer),
                    (self._weights[fold], w_buffer),
                ):
                    if buffer is None:
                        continue
                    if positions is None:
                        np.copyto(buffer[position, :length], source)
                    else:
                        np.take(
                            source, positions, axis=0, out=buffer[position, :length], mode="clip"
                        )
                if x_columns is not None:
                    inputs[position].read_into(positions, x_columns[position, :length])
            shortest = min(lengths)
            for start in range(0, max(lengths), width):
                stop = start + width
                counts = None  # every fold has a whole batch here: the common case
                if stop > shortest:
                    counts = [min(max(length - start, 0), width) for length in lengths]
                row = chunk_start + start
                self._step(
                    stack,
                    counts,
                    None if x_buffer is None else x_buffer[:, start:stop],
                    [matrix[row : row + width] for matrix in sparse_inputs] if sparse else None,
                    y_buffer[:, start:stop],
                    None if w_buffer is None else w_buffer[:, start:stop],
                    loss_sums,
                    weight_sums,
                    rates,
                )
        return loss_sums, weight_sums, rates

    def _step(
        self, stack, counts, x_slot, sparse_slot, y_slot, w_slot, loss_sums, weight_sums, rates
    ) -> None:
        """One mini-batch step of every fold that has a batch in this slot.

        ``counts[p]`` is the number of rows of stack row ``p``'s batch (None: all whole).
        Folds whose batches have the same number of rows (and, with sample weights, a
        positive total weight: a single trainer skips a batch without) run as one stack:
        the whole working stack when that is all of them, else a smaller stack copied out
        and back.
        """
        n_stack, width = y_slot.shape[:2]
        totals = None
        if w_slot is not None:
            totals = np.array(
                [
                    w_slot[p, : width if counts is None else counts[p]].sum(dtype=np.float64)
                    for p in range(n_stack)
                ]
            )
        if counts is None and (totals is None or bool((totals > 0).all())):
            self._run(stack, slice(None), width, x_slot, sparse_slot, y_slot, w_slot, totals,
                      loss_sums, weight_sums, rates)  # fmt: skip
            return
        if counts is None:
            counts = [width] * n_stack
        groups: dict[int, list[int]] = {}
        for position, count in enumerate(counts):
            if count > 0 and (totals is None or totals[position] > 0):
                groups.setdefault(count, []).append(position)
        for count, positions in groups.items():
            index = np.asarray(positions)
            key = tuple(positions)
            if len(positions) == n_stack:
                sub, selection = stack, slice(None)
            else:
                sub = self._substacks.get((id(stack), key))
                if sub is None:
                    sub = _Stack(
                        self._template_network,
                        self._template_optimizer,
                        [stack.folds[p] for p in positions],
                    )
                    self._substacks[(id(stack), key)] = sub
                sub.load(stack, index)
                selection = index
            x_part = None if x_slot is None else x_slot[selection, :count]
            sparse_part = None
            if sparse_slot is not None:
                sparse_part = [sparse_slot[p][:count] for p in positions]
            y_part = y_slot[selection, :count]
            w_part = None if w_slot is None else w_slot[selection, :count]
            total_part = None if totals is None else totals[selection]
            self._run(sub, index, count, x_part, sparse_part, y_part, w_part, total_part,
                      loss_sums, weight_sums, rates)  # fmt: skip
            if sub is not stack:
                sub.store(stack, index)

    def _run(
        self, stack, positions, count, x, sparse, y, w, totals, loss_sums, weight_sums, rates
    ) -> None:
        """Forward, backward and update of ``stack`` on one batch of ``count`` rows per fold;
        ``positions`` are its folds' rows in the epoch's per-fold sums."""
        network = stack.network
        if stack.trainers is None:
            stack.trainers = [self.trainers[f] for f in stack.folds]
            stack.rngs = [trainer.rng for trainer in stack.trainers]
        trainers, rngs = stack.trainers, stack.rngs
        augmented = sparse is None and network.augments_inputs  # see _train_one_epoch
        inputs = sparse if sparse is not None else x
        if w is None:
            losses = network.compute_gradients(inputs, y, 1.0 / count, rngs, augmented)
            loss_sums[positions] += losses.sum(axis=1, dtype=np.float64)
            weight_sums[positions] += count
        else:
            scale = (w / totals[:, None]).astype(self.dtype, copy=False)[..., None]
            losses = network.compute_gradients(inputs, y, scale, rngs, augmented)
            dots = [float(np.dot(losses[i], w[i])) for i in range(len(trainers))]
            loss_sums[positions] += dots
            weight_sums[positions] += totals
        common = stack.optimizer.common_step()
        epochs = [trainer.epochs_done for trainer in trainers]
        if common is not None and epochs.count(epochs[0]) == len(epochs):
            step_rates = [trainers[0].schedule.rate(common, epochs[0])] * len(trainers)
        else:
            step_rates = [
                trainer.schedule.rate(int(step), epoch)
                for trainer, step, epoch in zip(
                    trainers, stack.optimizer.iterations, epochs, strict=True
                )
            ]
        stack.optimizer.update(network.parameters, network.gradients, step_rates)
        if isinstance(positions, slice):
            rates[:] = step_rates
        else:
            for position, rate in zip(positions, step_rates, strict=True):
                rates[position] = rate


#: Working-set budget of one stack: as many folds as keep ``batch rows x widest layer`` of
#: every fold's activations within about this many bytes go into one stack (at least one).
#: Small batches stack all folds (the per-batch overhead dominates); large ones stack few,
#: so that a step's buffers stay in the CPU cache.
STACK_BYTES = 2**19


def auto_stack_size(network: Network, batch_size: int | None, inputs=()) -> int:
    """How many folds to stack at most, from :data:`STACK_BYTES`."""
    n_rows = max((fold.n_rows for fold in inputs), default=1)
    rows = n_rows if batch_size is None else min(batch_size, n_rows)
    width = max(network.n_inputs, *network.hidden_layer_sizes, network.n_outputs)
    return max(1, STACK_BYTES // max(1, rows * width * network.dtype.itemsize))


def _check_one_configuration(trainers: Sequence[Trainer]) -> None:
    """Raise ConfigurationError naming what differs between the folds' trainers."""
    first = trainers[0]
    config = first.network.get_config()
    settings = _optimizer_settings(first.optimizer)
    for fold, trainer in enumerate(trainers[1:], start=1):
        if trainer.network.get_config() != config:
            raise ConfigurationError(f"fold {fold}'s network differs from fold 0's")
        if _optimizer_settings(trainer.optimizer) != settings:
            raise ConfigurationError(f"fold {fold}'s optimiser differs from fold 0's")
        if trainer.schedule != first.schedule:
            raise ConfigurationError(f"fold {fold}'s learning-rate schedule differs from fold 0's")
        if trainer.batch_size != first.batch_size:
            raise ConfigurationError(f"fold {fold}'s batch size differs from fold 0's")
        if trainer.rng is first.rng:
            raise ConfigurationError(f"fold {fold} shares fold 0's random generator")


def _optimizer_settings(optimizer: Optimizer) -> tuple:
    settings = {k: v for k, v in vars(optimizer).items() if k not in _OPTIMIZER_STATE}
    return type(optimizer), sorted(settings.items())
