"""The epoch loop: mini-batches, shuffling, validation, callbacks, history.

:class:`Trainer` drives a :class:`~nncv.network.model.Network` with an optimiser and a
learning-rate schedule. :meth:`Trainer.iter_epochs` is a generator yielding one record per
epoch, so a caller can train several models in lockstep (the k-fold search does) and stop
whenever it likes. Early stopping, pruning and progress are callbacks; a callback ends
training by raising :class:`~nncv.exceptions.StopTraining`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from nncv.exceptions import ConfigurationError, DivergedError, StopTraining
from nncv.network.losses import mean_loss
from nncv.network.model import Network

__all__ = [
    "EARLY_STOPPING_KEYS",
    "GATHER_BYTES",
    "RECORD_KEYS",
    "Callback",
    "EarlyStopping",
    "EpochCallback",
    "IndexedRows",
    "Trainer",
]

Record = dict[str, Any]

#: The keys of every epoch record, in this order: the one definition that the estimators'
#: ``history_``, cross-validation curves and study histories follow. ``val_loss`` and
#: ``val_score`` are NaN without validation data.
RECORD_KEYS = ("epoch", "loss", "data_loss", "val_loss", "val_score", "learning_rate")
#: Added to a cross-validation fold's record when its network also has its own validation
#: split (``early_stopping=True``): that split's values, while ``val_loss``/``val_score``
#: are measured on the fold's held-out rows.
EARLY_STOPPING_KEYS = ("early_stopping_val_loss", "early_stopping_val_score")

#: About how many bytes of :class:`IndexedRows` are read and transformed at once in training
#: (a whole number of batches, at least one).
GATHER_BYTES = 4 * 2**20


@dataclass(frozen=True)
class IndexedRows:
    """Training inputs read from a larger array by row index and transformed as they are read.

    Stands for ``transform(data[rows]).astype(dtype)`` without ever holding it whole:
    :class:`Trainer` reads a few of its mini-batches at a time (about :data:`GATHER_BYTES`),
    so the memory a fit needs does not grow with the number of rows. Cross-validation
    uses it to train a fold's network straight from a memory-mapped ``X``, the fold's
    fitted scalers as ``transform``.

    Parameters
    ----------
    data : ndarray of shape (n_samples, n_features)
        The whole array, for example a read-only memory map; it is only read.
    rows : ndarray of int
        The rows of ``data`` to train on, in order: position ``i`` is row ``rows[i]``.
    transform : callable, optional
        ``transform(values) -> values``, applied to a fresh copy of some rows of ``data``;
        each output row must depend on its own input row only (a row-wise scaler), so that
        reading rows in any grouping gives the same numbers. It may work in place.
    dtype : numpy dtype, default=float32
        The dtype the rows are delivered in (the network's).

    Examples
    --------
    >>> import numpy as np
    >>> data = np.arange(12.0).reshape(4, 3)
    >>> rows = IndexedRows(data, np.array([3, 1]), lambda v: v - 1, np.dtype(np.float64))
    >>> rows.shape
    (2, 3)
    >>> rows.read()
    array([[ 8.,  9., 10.],
           [ 2.,  3.,  4.]])
    """

    data: np.ndarray
    rows: np.ndarray
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    dtype: np.dtype = np.dtype(np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        """``(number of rows, number of features)``."""
        return len(self.rows), self.data.shape[1]

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, positions: np.ndarray) -> IndexedRows:
        """The rows at ``positions`` (indices into :attr:`rows`, not into :attr:`data`)."""
        return replace(self, rows=self.rows[positions])

    def read(self, positions: np.ndarray | None = None, *, buffer: np.ndarray | None = None):
        """The transformed rows at ``positions`` (all rows when ``None``) in :attr:`dtype`.

        ``buffer``, of ``data``'s dtype and shape ``(len(positions), n_features)``, receives
        the rows read from ``data`` instead of a new array.
        """
        rows = self.rows if positions is None else self.rows[positions]
        if buffer is None:
            values = np.asarray(self.data).take(rows, axis=0)
        else:  # mode="clip": NumPy takes straight into ``out`` (the rows are valid)
            values = np.take(self.data, rows, axis=0, out=buffer, mode="clip")
        if self.transform is not None:
            values = self.transform(values)
        return values.astype(self.dtype, copy=False)

    def blocks(self, block_rows: int) -> Iterator[np.ndarray]:
        """The transformed rows, ``block_rows`` at a time (one empty block when there are none)."""
        for start in range(0, max(len(self), 1), block_rows):
            yield self.read(np.arange(start, min(start + block_rows, len(self))))


class Callback:
    """Hooks called by :class:`Trainer`; override any of them."""

    def on_train_begin(self, trainer: Trainer) -> None:
        """Called when :meth:`Trainer.iter_epochs` starts."""

    def on_epoch_end(self, trainer: Trainer, record: Record) -> None:
        """Called after each epoch with its record; raise ``StopTraining`` to stop."""

    def on_train_end(self, trainer: Trainer) -> None:
        """Called when the loop ends, however it ends (also on errors and ``close()``)."""


class EpochCallback(Callback):
    """Wrap a plain function ``f(record)`` as an epoch-end callback."""

    def __init__(self, function: Callable[[Record], None]) -> None:
        self.function = function

    def on_epoch_end(self, trainer: Trainer, record: Record) -> None:
        self.function(record)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best weights.

    The best epoch's batch-norm running statistics are kept and restored with its weights.

    Parameters
    ----------
    patience : int, default=10
        Epochs without improvement before stopping.
    monitor : str, default="val_loss"
        Record key to watch; keys ending in ``loss`` are minimised, others maximised.
    min_delta : float, default=0
        Smallest change that counts as an improvement.
    restore_best_weights : bool, default=True
        Put back the parameters of the best epoch when training ends.
    """

    def __init__(
        self,
        patience: int = 10,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ) -> None:
        self.patience = patience
        self.monitor = monitor
        self.min_delta = min_delta
        self.restore_best_weights = restore_best_weights
        self.best_epoch: int | None = None
        self.best_value = math.nan

    def on_train_begin(self, trainer: Trainer) -> None:
        self.sign = 1.0 if self.monitor.endswith("loss") else -1.0
        self.best_value = math.inf
        self.best_epoch = None
        self.best_parameters = None
        self.best_running_statistics = None
        self.wait = 0

    def on_epoch_end(self, trainer: Trainer, record: Record) -> None:
        if self.monitor not in record:
            raise ConfigurationError(
                f"EarlyStopping monitors {self.monitor!r}, which is not in the epoch record; "
                f"choose one of {sorted(record)}"
            )
        if math.isnan(record[self.monitor]):
            raise ConfigurationError(
                f"EarlyStopping monitors {self.monitor!r}, which is NaN: pass validation_data "
                "or monitor 'loss'"
            )
        value = self.sign * record[self.monitor]
        if value < self.best_value - self.min_delta:
            self.best_value = value
            self.best_epoch = record["epoch"]
            self.best_parameters = trainer.network.parameters.copy()
            self.best_running_statistics = trainer.network.running_statistics.copy()
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            raise StopTraining

    def on_train_end(self, trainer: Trainer) -> None:
        if self.restore_best_weights and self.best_parameters is not None:
            trainer.network.set_parameters(self.best_parameters)
            trainer.network.set_running_statistics(self.best_running_statistics)


class Trainer:
    """Train a network with mini-batch gradient descent.

    Parameters
    ----------
    network : Network
        The model; its parameters are updated in place.
    optimizer : Optimizer
        From :mod:`nncv.network.optimizers`.
    schedule : object with ``rate(step, epoch)``
        From :mod:`nncv.network.schedules`.
    rng : numpy.random.Generator
        Source of every random draw (shuffling, dropout).
    batch_size : int or None, default=None
        Rows per step; None means the full batch (no shuffling needed).
    score : callable ``score(outputs, targets, sample_weight) -> float``, optional
        Validation metric (accuracy, R²) recorded as ``val_score``.
    callbacks : sequence of Callback
        Called at the start, after each epoch, and at the end.

    Examples
    --------
    >>> import numpy as np
    >>> from nncv.network import Network, optimizers, schedules
    >>> from nncv.datasets import spiral
    >>> X, y = spiral(50, 3, random_state=0)
    >>> Y = np.eye(3)[y]
    >>> net = Network(2, [16], 3, dtype=np.float64)
    >>> net.initialize(np.random.default_rng(0))
    >>> trainer = Trainer(net, optimizers.Adam(), schedules.InverseTimeDecay(0.02),
    ...                   rng=np.random.default_rng(0))
    >>> records = list(trainer.iter_epochs(X, Y, n_epochs=3))
    >>> [r["epoch"] for r in records]
    [1, 2, 3]
    """

    def __init__(
        self,
        network: Network,
        optimizer,
        schedule,
        *,
        rng: np.random.Generator,
        batch_size: int | None = None,
        score: Callable[..., float] | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.network = network
        self.optimizer = optimizer
        self.schedule = schedule
        self.rng = rng
        self.batch_size = batch_size
        self.score = score
        self.callbacks = list(callbacks)
        self.epochs_done = 0
        self.history: list[Record] = []
        self._shuffle_buffers: dict[str, np.ndarray] = {}
        self._whole: tuple[IndexedRows, np.ndarray] | None = None

    def release_buffers(self) -> None:
        """Free the reused batch buffers (they come back on the next epoch)."""
        self._shuffle_buffers = {}
        self._whole = None

    # -------------------------------------------------------------- batches
    def _buffer(self, name: str, like: np.ndarray, n_rows: int) -> np.ndarray:
        shape = (n_rows, *like.shape[1:])
        buffer = self._shuffle_buffers.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != like.dtype:
            buffer = np.empty(shape, like.dtype)
            self._shuffle_buffers[name] = buffer
        return buffer

    def _read_whole(self, inputs: IndexedRows) -> np.ndarray:
        """All of ``inputs`` at once (full-batch training), read once and kept until released."""
        if self._whole is None or self._whole[0] is not inputs:
            self._whole = (inputs, inputs.read())
        return self._whole[1]

    def _batches(self, inputs, targets, sample_weight) -> Iterator[tuple[Any, np.ndarray, Any]]:
        """Yield ``(inputs, targets, weights)`` batches for one epoch in a fresh random order.

        Dense rows are gathered batch by batch into reused buffers (``take`` with
        ``mode="clip"``, which NumPy does not buffer; the indices are a permutation), so
        memory stays flat whatever the data size; a sparse matrix is reordered once.
        :class:`IndexedRows` are read and transformed about :data:`GATHER_BYTES` (a whole
        number of batches) at a time; each batch is a slice of that chunk.
        """
        n_rows = inputs.shape[0]
        batch_size = n_rows if self.batch_size is None else min(self.batch_size, n_rows)
        if batch_size >= n_rows:
            if isinstance(inputs, IndexedRows):
                inputs = self._read_whole(inputs)
            yield inputs, targets, sample_weight
            return
        order = self.rng.permutation(n_rows)
        if sp.issparse(inputs):
            inputs = inputs[order]
        arrays = {"targets": targets}
        if sample_weight is not None:
            arrays["weights"] = sample_weight
        indexed = isinstance(inputs, IndexedRows)
        if not (indexed or sp.issparse(inputs)):
            arrays["inputs"] = inputs
        chunk_rows = n_rows
        if indexed:
            row_bytes = max(1, inputs.shape[1] * inputs.data.dtype.itemsize)
            chunk_rows = batch_size * max(1, GATHER_BYTES // row_bytes // batch_size)
        for chunk_start in range(0, n_rows, chunk_rows):
            chunk_positions = order[chunk_start : chunk_start + chunk_rows]
            if indexed:
                chunk = inputs.read(
                    chunk_positions,
                    buffer=self._buffer("chunk", inputs.data, len(chunk_positions)),
                )
            for start in range(0, len(chunk_positions), batch_size):
                rows = chunk_positions[start : start + batch_size]
                gathered = {
                    name: array.take(
                        rows, axis=0, out=self._buffer(name, array, len(rows)), mode="clip"
                    )
                    for name, array in arrays.items()
                }
                batch_inputs = gathered.get("inputs")
                if indexed:  # a view: the chunk is only overwritten after its last batch
                    batch_inputs = chunk[start : start + batch_size]
                elif batch_inputs is None:
                    batch_inputs = inputs[chunk_start + start : chunk_start + start + batch_size]
                yield batch_inputs, gathered["targets"], gathered.get("weights")

    # ---------------------------------------------------------------- epochs
    def _train_one_epoch(self, inputs, targets, sample_weight) -> tuple[float, float]:
        """One pass over the data; returns ``(mean data loss, last learning rate)``."""
        network = self.network
        parameters, gradients = [network.parameters], [network.gradients]
        loss_sum = 0.0
        weight_sum = 0.0
        learning_rate = math.nan
        dtype = network.dtype
        for batch_inputs, batch_targets, batch_weights in self._batches(
            inputs, targets, sample_weight
        ):
            if batch_weights is None:
                n_rows = batch_inputs.shape[0]
                scale = 1.0 / n_rows
                losses = network.compute_gradients(batch_inputs, batch_targets, scale, self.rng)
                loss_sum += float(losses.sum(dtype=np.float64))
                weight_sum += n_rows
            else:
                batch_total = float(batch_weights.sum(dtype=np.float64))
                if batch_total <= 0:
                    continue
                scale = (batch_weights / batch_total).astype(dtype, copy=False)[:, None]
                losses = network.compute_gradients(batch_inputs, batch_targets, scale, self.rng)
                loss_sum += float(np.dot(losses, batch_weights))
                weight_sum += batch_total
            learning_rate = self.schedule.rate(self.optimizer.iterations, self.epochs_done)
            self.optimizer.update(parameters, gradients, learning_rate)
        return loss_sum / max(weight_sum, np.finfo(np.float64).tiny), learning_rate

    def _check_parameters(self, learning_rate: float) -> None:
        """Raise :class:`DivergedError` when the epoch's last update left NaN or infinity.

        The epoch loss is measured before each step, so a last step that overflows (one
        full batch, or a huge learning rate) leaves a finite loss and broken weights; one
        pass over the flat parameter vector per epoch (far cheaper than the epoch) sees it.
        """
        parameters = self.network.parameters
        if not np.isfinite(parameters).all():
            bad = int(parameters.size - np.count_nonzero(np.isfinite(parameters)))
            raise DivergedError(
                f"training diverged at epoch {self.epochs_done}: {bad} of {parameters.size} "
                f"weights became NaN or infinite (learning rate {learning_rate:g}); lower the "
                "learning rate or add decay"
            )

    def evaluate(self, inputs, targets: np.ndarray, sample_weight=None) -> tuple[float, float]:
        """``(data loss, score)`` of the current network on some data (dropout off)."""
        outputs = self.network.predict(inputs)
        loss = mean_loss(self.network.loss.per_sample(outputs, targets), sample_weight)
        score = math.nan if self.score is None else self.score(outputs, targets, sample_weight)
        return loss, score

    def iter_epochs(
        self,
        inputs,
        targets: np.ndarray,
        *,
        n_epochs: int,
        sample_weight: np.ndarray | None = None,
        validation_data: tuple | None = None,
    ) -> Iterator[Record]:
        """Train up to ``n_epochs`` more epochs, yielding each epoch's record.

        Records hold ``epoch`` (1-based, counted over the trainer's life), ``loss`` (data
        loss + regularisation at the end of the epoch), ``data_loss`` (mean over the
        epoch's batches), ``val_loss`` and ``val_score`` (NaN without validation data) and
        ``learning_rate`` (the rate of the epoch's last step).

        Raises
        ------
        DivergedError
            When the loss, or a weight after the epoch's updates, becomes NaN or infinite.
        """
        dtype = self.network.dtype
        if not isinstance(inputs, IndexedRows):
            inputs = inputs.astype(dtype, copy=False)
        elif inputs.dtype != dtype:
            inputs = replace(inputs, dtype=np.dtype(dtype))
        targets = np.asarray(targets, dtype=dtype)
        validation_inputs = validation_targets = validation_weight = None
        if validation_data is not None:
            validation_inputs, validation_targets, *rest = validation_data
            validation_weight = rest[0] if rest else None
        for callback in self.callbacks:
            callback.on_train_begin(self)
        try:
            for _ in range(n_epochs):
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    data_loss, learning_rate = self._train_one_epoch(inputs, targets, sample_weight)
                    regularisation = self.network.regularisation_loss()
                self.epochs_done += 1
                if not (math.isfinite(data_loss) and math.isfinite(regularisation)):
                    raise DivergedError(
                        f"training diverged at epoch {self.epochs_done}: the loss became "
                        f"{data_loss + regularisation} (learning rate {learning_rate:g}); "
                        "lower the learning rate or add decay"
                    )
                self._check_parameters(learning_rate)
                record: Record = dict(
                    zip(
                        RECORD_KEYS,
                        (
                            self.epochs_done,
                            data_loss + regularisation,
                            data_loss,
                            math.nan,
                            math.nan,
                            learning_rate,
                        ),
                        strict=True,
                    )
                )
                if validation_inputs is not None:
                    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                        record["val_loss"], record["val_score"] = self.evaluate(
                            validation_inputs, validation_targets, validation_weight
                        )
                self.history.append(record)
                stop = False
                try:
                    for callback in self.callbacks:
                        callback.on_epoch_end(self, record)
                except StopTraining:
                    stop = True
                yield record
                if stop:
                    return
        finally:
            for callback in self.callbacks:
                callback.on_train_end(self)
