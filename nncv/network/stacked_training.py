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

After every epoch each fold's state — parameters, optimiser state and step count, epoch
count, history — is written back into its own :class:`Trainer`, so the ``k`` trainers (and
their networks) are at any time exactly what training each fold alone would have left:
fitted estimators, scoring and persistence use them unchanged.
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
from nncv.network.training import GATHER_BYTES, IndexedRows, Record, Trainer

__all__ = ["FoldData", "StackedTrainer"]

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


class _Stack:
    """The networks and optimiser state of some folds (``folds``, positions in the
    trainer's list) as one stack."""

    def __init__(self, network: Network, optimizer: Optimizer, folds: Sequence[int]) -> None:
        self.folds = list(folds)
        self.network = StackedNetwork(network, len(self.folds))
        self.optimizer = StackedOptimizer(
            optimizer, self.network.parameters.shape, network.dtype
        )

    def load(self, source: _Stack, positions: np.ndarray) -> None:
        """Copy rows ``positions`` of ``source`` into this stack."""
        self.network.parameters[...] = source.network.parameters[positions]
        self.optimizer.iterations[...] = source.optimizer.iterations[positions]
        for slot, values in self.optimizer.state.items():
            values[...] = source.optimizer.state[slot][positions]

    def store(self, target: _Stack, positions: np.ndarray) -> None:
        """Copy this stack back into rows ``positions`` of ``target``."""
        target.network.parameters[positions] = self.network.parameters
        target.optimizer.iterations[positions] = self.optimizer.iterations
        for slot, values in self.optimizer.state.items():
            target.optimizer.state[slot][positions] = values


class _FoldInputs:
    """A fold's training inputs, cast as :meth:`Trainer.iter_epochs` casts them."""

    def __init__(self, inputs, dtype: np.dtype) -> None:
        self.indexed = isinstance(inputs, IndexedRows)
        self.sparse = not self.indexed and sp.issparse(inputs)
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

    def read(self, positions: np.ndarray | None) -> np.ndarray:
        """Dense rows at ``positions`` (all rows when None), in the network's dtype."""
        if self.indexed:
            return self.inputs.read(positions)
        if positions is None:
            return self.inputs
        return self.inputs.take(positions, axis=0)


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
        Each fold's training data (and optional validation data).

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

    def __init__(self, trainers: Sequence[Trainer], folds: Sequence[FoldData]) -> None:
        self.trainers = list(trainers)
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
        self._inputs = [_FoldInputs(fold.inputs, self.dtype) for fold in folds]
        if len({fold.sparse for fold in self._inputs}) > 1:
            raise ConfigurationError("the folds of a stack must be all sparse or all dense")
        self._targets = [np.asarray(fold.targets, dtype=self.dtype) for fold in folds]
        self._weights = [fold.sample_weight for fold in folds]
        if len({w is None for w in self._weights}) > 1:
            raise ConfigurationError("give sample weights for every fold of a stack or for none")
        self._validation = [fold.validation_data for fold in folds]
        for fold, (inputs, targets) in enumerate(zip(self._inputs, self._targets, strict=True)):
            if len(targets) != inputs.n_rows:
                raise ConfigurationError(
                    f"fold {fold} has {inputs.n_rows} input rows but {len(targets)} targets"
                )
        self.running = [True] * len(self.trainers)
        self.errors: dict[int, DivergedError] = {}
        self._started = False
        self._stack = _Stack(self._template_network, self._template_optimizer, range(len(folds)))
        self._load_trainers()
        self._substacks: dict[tuple[int, ...], _Stack] = {}
        self._buffers: dict[str, np.ndarray] = {}

    @property
    def networks(self) -> list[Network]:
        """The ``k`` single networks (their parameters as of the last finished epoch)."""
        return [trainer.network for trainer in self.trainers]

    # ----------------------------------------------------------- fold state
    def _load_trainers(self) -> None:
        stack = self._stack
        for position, trainer in enumerate(self.trainers):
            stack.network.parameters[position] = trainer.network.parameters
            stack.optimizer.iterations[position] = trainer.optimizer.iterations
            for slot, values in stack.optimizer.state.items():
                saved = trainer.optimizer.state.get(slot)
                if saved and saved[0].shape == values[position].shape:
                    values[position] = saved[0]

    def _sync_trainer(self, position: int, fold: int) -> None:
        """Write stack row ``position`` into fold ``fold``'s own network and optimiser."""
        stack = self._stack
        trainer = self.trainers[fold]
        trainer.network.set_parameters(stack.network.parameters[position])
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
        """Keep only the running folds in the working stack."""
        old = self._stack
        keep = [p for p, f in enumerate(old.folds) if self.running[f]]
        if len(keep) == len(old.folds):
            return
        self._substacks = {}
        if not keep:
            return
        new = _Stack(self._template_network, self._template_optimizer, [old.folds[p] for p in keep])
        new.load(old, np.asarray(keep))
        self._stack = new

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

    def __enter__(self) -> StackedTrainer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ---------------------------------------------------------------- epochs
    def _epoch(self) -> list[Record | None]:
        stack = self._stack
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss_sums, weight_sums, rates = self._train_one_epoch(stack)
        records: list[Record | None] = [None] * len(self.trainers)
        for position, fold in enumerate(stack.folds):
            self._sync_trainer(position, fold)
            trainer = self.trainers[fold]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                regularisation = trainer.network.regularisation_loss()
            data_loss = float(loss_sums[position]) / max(
                float(weight_sums[position]), np.finfo(np.float64).tiny
            )
            trainer.epochs_done += 1
            if not (math.isfinite(data_loss) and math.isfinite(regularisation)):
                self.errors[fold] = DivergedError(
                    f"training diverged at epoch {trainer.epochs_done}: the loss became "
                    f"{data_loss + regularisation} (learning rate {rates[position]:g}); "
                    "lower the learning rate or add decay"
                )
                self._stop(fold)
                continue
            record: Record = {
                "epoch": trainer.epochs_done,
                "loss": data_loss + regularisation,
                "data_loss": data_loss,
                "val_loss": math.nan,
                "val_score": math.nan,
                "learning_rate": rates[position],
            }
            if self._validation[fold] is not None:
                inputs, targets, *rest = self._validation[fold]
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    record["val_loss"], record["val_score"] = trainer.evaluate(
                        inputs, targets, rest[0] if rest else None
                    )
            trainer.history.append(record)
            records[fold] = record
            try:
                for callback in trainer.callbacks:
                    callback.on_epoch_end(trainer, record)
            except StopTraining:
                self._stop(fold)
        self._repack()
        return records

    def _buffer(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        size = math.prod(shape)
        flat = self._buffers.get(name)
        if flat is None or flat.size < size or flat.dtype != dtype:
            flat = np.empty(size, dtype)
            self._buffers[name] = flat
        return flat[:size].reshape(shape)

    def _train_one_epoch(self, stack: _Stack) -> tuple[np.ndarray, np.ndarray, list[float]]:
        """One pass of every fold in ``stack`` over its data; per-fold loss sums, weight
        sums and last learning rates."""
        folds = stack.folds
        n_stack = len(folds)
        inputs = [self._inputs[f] for f in folds]
        n_rows = [fold.n_rows for fold in inputs]
        batch_rows = [n if self.batch_size is None else min(self.batch_size, n) for n in n_rows]
        width = max(batch_rows)  # rows per batch slot; full-batch folds may use fewer
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
        row_bytes = max(fold.row_bytes for fold in inputs)
        chunk_rows = width * max(1, GATHER_BYTES // row_bytes // width)
        chunk_rows = min(chunk_rows, -(-max(n_rows) // width) * width)
        slots = chunk_rows // width
        n_features = inputs[0].n_features
        x_buffer = None
        if not sparse:
            x_buffer = self._buffer("inputs", (slots, n_stack, width, n_features), self.dtype)
        y_buffer = self._buffer("targets", (slots, n_stack, width, n_outputs), self.dtype)
        w_buffer = None
        if weighted:
            w_buffer = self._buffer("weights", (slots, n_stack, width), np.float64)
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
                positions = None
                if order is not None:
                    positions = order[chunk_start : chunk_start + length]
                elif chunk_start or length != n_rows[position]:  # pragma: no cover
                    positions = np.arange(chunk_start, chunk_start + length)
                targets = self._targets[fold]
                rows = positions if positions is not None else slice(None)
                _scatter(y_buffer, position, targets[rows], width)
                if weighted:
                    _scatter(w_buffer, position, self._weights[fold][rows], width)
                if not sparse:
                    _scatter(x_buffer, position, inputs[position].read(positions), width)
            n_slots = -(-max(lengths) // width)
            for slot in range(n_slots):
                counts = [min(max(length - slot * width, 0), width) for length in lengths]
                start = chunk_start + slot * width
                self._step(
                    stack,
                    counts,
                    x_buffer[slot] if x_buffer is not None else None,
                    [matrix[start : start + width] for matrix in sparse_inputs]
                    if sparse
                    else None,
                    y_buffer[slot],
                    w_buffer[slot] if w_buffer is not None else None,
                    loss_sums,
                    weight_sums,
                    rates,
                )
        return loss_sums, weight_sums, rates

    def _step(
        self, stack, counts, x_slot, sparse_slot, y_slot, w_slot, loss_sums, weight_sums, rates
    ) -> None:
        """One mini-batch step of every fold that has a batch in this slot.

        Folds whose batches have the same number of rows (and, with sample weights, a
        positive total weight: a single trainer skips a batch without) run as one stack:
        the whole working stack when that is all of them, else a smaller stack copied out
        and back.
        """
        n_stack = len(counts)
        totals = None
        if w_slot is not None:
            totals = np.array(
                [w_slot[p, :c].sum(dtype=np.float64) for p, c in enumerate(counts)]
            )
        width = y_slot.shape[1]
        if all(c == width for c in counts) and (totals is None or bool((totals > 0).all())):
            self._run(stack, slice(None), width, x_slot, sparse_slot, y_slot, w_slot, totals,
                      loss_sums, weight_sums, rates)  # fmt: skip
            return
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
                sub = self._substacks.get(key)
                if sub is None:
                    sub = _Stack(
                        self._template_network,
                        self._template_optimizer,
                        [stack.folds[p] for p in positions],
                    )
                    self._substacks[key] = sub
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
        trainers = [self.trainers[f] for f in stack.folds]
        rngs = [trainer.rng for trainer in trainers]
        inputs = sparse if sparse is not None else x
        if w is None:
            losses = network.compute_gradients(inputs, y, 1.0 / count, rngs)
            loss_sums[positions] += losses.sum(axis=1, dtype=np.float64)
            weight_sums[positions] += count
        else:
            scale = (w / totals[:, None]).astype(self.dtype, copy=False)[..., None]
            losses = network.compute_gradients(inputs, y, scale, rngs)
            dots = [float(np.dot(losses[i], w[i])) for i in range(len(trainers))]
            loss_sums[positions] += dots
            weight_sums[positions] += totals
        iterations = stack.optimizer.iterations
        epochs = [trainer.epochs_done for trainer in trainers]
        if (iterations == iterations[0]).all() and epochs.count(epochs[0]) == len(epochs):
            rate = trainers[0].schedule.rate(int(iterations[0]), epochs[0])
            step_rates = [rate] * len(trainers)
        else:
            step_rates = [
                trainer.schedule.rate(int(step), epoch)
                for trainer, step, epoch in zip(trainers, iterations, epochs, strict=True)
            ]
        stack.optimizer.update(network.parameters, network.gradients, step_rates)
        if isinstance(positions, slice):
            rates[:] = step_rates
        else:
            for position, rate in zip(positions, step_rates, strict=True):
                rates[position] = rate


def _scatter(buffer: np.ndarray, position: int, values: np.ndarray, width: int) -> None:
    """Lay ``values`` (rows in order) into ``buffer[:, position]`` batch slot by batch slot."""
    n_full, rest = divmod(len(values), width)
    if n_full:
        buffer[:n_full, position] = values[: n_full * width].reshape(
            n_full, width, *values.shape[1:]
        )
    if rest:
        buffer[n_full, position, :rest] = values[n_full * width :]


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
