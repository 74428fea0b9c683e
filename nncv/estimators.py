"""``NNClassifier`` and ``NNRegressor``: scikit-learn estimators over the scratch network.

They behave like any scikit-learn estimator (``Pipeline``, ``GridSearchCV``,
``cross_val_score``, ``clone``) and expose what ``MLPClassifier`` hides: dropout, L1 and L2 on
weights and biases per layer, learning-rate decay and schedules, the four optimisers, and a
per-epoch ``history_`` with validation curves. :meth:`iter_fit` trains epoch by epoch so a
search can drive several folds in lockstep.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    _check_y,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

from nncv._validation import (
    check_finite_outputs,
    check_finite_range,
    check_non_negative_weights,
    check_not_ragged,
    check_positive_ints,
    conversion_error,
    standardisation,
    to_floats,
)
from nncv.exceptions import NncvError
from nncv.network import EarlyStopping, Network, Trainer, metrics
from nncv.network.activations import ACTIVATIONS
from nncv.network.initializers import INITIALIZERS
from nncv.network.model import BATCH_NORM_MOMENTUM, PREDICT_CHUNK_ROWS
from nncv.network.optimizers import OPTIMIZERS
from nncv.network.registry import build, required_settings
from nncv.network.schedules import SCHEDULES, make_schedule
from nncv.network.training import RECORD_KEYS, IndexedRows

__all__ = ["NNClassifier", "NNRegressor"]

HISTORY_COLUMNS = RECORD_KEYS
#: Rows per block when :class:`IndexedRows` inputs are validated.
VALIDATION_BLOCK_ROWS = 4096
_PER_LAYER_PARAMS = ("l1", "l2", "bias_l1", "bias_l2")
#: Integer parameters, where scikit-learn's constraints let booleans through.
INT_PARAMS = ("batch_size", "max_epochs", "patience", "random_state")


def _non_negative_or_per_layer() -> list:
    return [Interval(Real, 0, None, closed="left"), "array-like"]


def _validation_scores(history: pd.DataFrame) -> list[float] | None:
    """The per-epoch validation scores, or None when no epoch had validation data."""
    scores = history["val_score"]
    return None if scores.isna().all() else scores.tolist()


#: ``out_activation_`` (MLPClassifier's names) of each output loss of the network.
OUT_ACTIVATIONS = {
    "softmax_cross_entropy": "softmax",
    "sigmoid_cross_entropy": "logistic",
    "mse": "identity",
}


def _named_init(init: Callable, owner: str) -> Callable:
    """A copy of ``init`` whose errors say ``owner.__init__()`` (same signature, defaults)."""
    code = init.__code__.replace(co_qualname=f"{owner}.__init__")
    copy = types.FunctionType(
        code, init.__globals__, "__init__", init.__defaults__, init.__closure__
    )
    copy.__kwdefaults__ = init.__kwdefaults__
    copy.__doc__ = init.__doc__
    copy.__qualname__ = f"{owner}.__init__"
    copy.__annotations__ = dict(init.__annotations__)
    return copy


class _BaseNN(BaseEstimator):
    """Shared machinery of :class:`NNClassifier` and :class:`NNRegressor`."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "activation": [StrOptions(ACTIVATIONS.keys())],
        "optimizer": [StrOptions(OPTIMIZERS.keys())],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "decay": [Interval(Real, 0, None, closed="left")],
        "schedule": [StrOptions(SCHEDULES.keys())],
        "final_learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
        "l1": _non_negative_or_per_layer(),
        "l2": _non_negative_or_per_layer(),
        "bias_l1": _non_negative_or_per_layer(),
        "bias_l2": _non_negative_or_per_layer(),
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "batch_norm": ["boolean", "array-like"],
        "batch_norm_momentum": [Interval(Real, 0, 1, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"full"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "init": [StrOptions(INITIALIZERS.keys())],
        "dtype": [StrOptions({"float32", "float64"})],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass without its own __init__ gets a copy of this one under its own name,
        # so `NNClassifier(hiden=3)` says "NNClassifier.__init__() got an unexpected ...".
        super().__init_subclass__(**kwargs)
        inherited = cls.__init__  # the nearest one: NNRegressor's own for its subclasses
        if "__init__" not in vars(cls) and isinstance(inherited, types.FunctionType):
            cls.__init__ = _named_init(inherited, cls.__name__)

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        activation="relu",
        optimizer="adam",
        learning_rate=0.001,
        decay=0.0,
        schedule="inverse_time",
        final_learning_rate=None,
        momentum=0.9,
        nesterov=False,
        l1=0.0,
        l2=1e-3,
        bias_l1=0.0,
        bias_l2=0.0,
        dropout=0.0,
        batch_norm=False,
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        batch_size=32,
        max_epochs=200,
        early_stopping=False,
        patience=10,
        validation_fraction=0.1,
        init="glorot_uniform",
        dtype="float32",
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.decay = decay
        self.schedule = schedule
        self.final_learning_rate = final_learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.l1 = l1
        self.l2 = l2
        self.bias_l1 = bias_l1
        self.bias_l2 = bias_l2
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.init = init
        self.dtype = dtype
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    # ------------------------------------------------------- subclass hooks
    def _encode_targets(self, y, *, reset: bool, sample_weight=None) -> np.ndarray:
        """Turn ``y`` into the 2-D float target matrix the network trains on."""
        raise NotImplementedError

    def _loss_name(self) -> str:
        raise NotImplementedError

    def _score_function(self):
        raise NotImplementedError

    # -------------------------------------------------------- validation
    def _validate_params(self) -> None:
        """scikit-learn's constraint check, then what it lets through: booleans for ints
        (``hidden_layer_sizes=(True,)`` would build a 1-unit layer) and per-layer values."""
        super()._validate_params()
        for name in INT_PARAMS:
            value = getattr(self, name)
            if isinstance(value, bool | np.bool_):
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be an int, "
                    f"not a boolean; got {value!r}."
                )
        self._check_layer_params()

    def _check_layer_params(self) -> tuple[tuple[int, ...], dict[str, Any]]:
        """Validate per-layer sequences (lengths, ranges) beyond ``_parameter_constraints``."""
        sizes = check_positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")
        n_dense = len(sizes) + 1
        per_layer: dict[str, Any] = {}
        for name in _PER_LAYER_PARAMS:
            value = getattr(self, name)
            if np.ndim(value) == 0:
                per_layer[name] = float(value)
                continue
            values = to_floats(value, name)
            if len(values) != n_dense or any(not v >= 0 for v in values):
                raise InvalidParameterError(
                    f"The {name!r} parameter must be a non-negative float or one non-negative "
                    f"value per Dense layer ({n_dense}: {len(sizes)} hidden + output); "
                    f"got {value!r}."
                )
            per_layer[name] = values
        dropout = self.dropout
        if np.ndim(dropout) == 0:
            per_layer["dropout"] = float(dropout)
        else:
            rates = to_floats(dropout, "dropout")
            if len(rates) != len(sizes) or any(not 0 <= r < 1 for r in rates):
                raise InvalidParameterError(
                    "The 'dropout' parameter must be a float in [0, 1) or one such value per "
                    f"hidden layer ({len(sizes)}); got {dropout!r}."
                )
            per_layer["dropout"] = rates
        if np.ndim(self.batch_norm) == 0:
            per_layer["batch_norm"] = bool(self.batch_norm)
        else:
            flags = tuple(self.batch_norm)
            if len(flags) != len(sizes) or not all(isinstance(f, bool | np.bool_) for f in flags):
                raise InvalidParameterError(
                    "The 'batch_norm' parameter must be a bool or one bool per hidden layer "
                    f"({len(sizes)}); got {self.batch_norm!r}."
                )
            per_layer["batch_norm"] = tuple(bool(f) for f in flags)
        needs = required_settings(SCHEDULES[self.schedule])
        if "final_learning_rate" in needs and self.final_learning_rate is None:
            raise InvalidParameterError(
                f"The 'final_learning_rate' parameter must be set when schedule={self.schedule!r}."
            )
        return tuple(int(s) for s in sizes), per_layer

    def _validate_input(self, X, y=None, *, reset: bool):
        """``validate_data``, with errors naming X, and X's range checked for the dtype."""
        dtype = np.dtype(self.dtype)
        check_not_ragged(X, "X")
        try:
            if y is None:
                validated = validate_data(self, X, reset=reset, accept_sparse="csr", dtype=dtype)
            else:
                validated = validate_data(
                    self, X, y, reset=reset, accept_sparse="csr", dtype=dtype, multi_output=True
                )
        except ValueError as error:
            named = conversion_error(error, "X", X)
            if named is None:
                raise
            raise named from error
        check_finite_range(
            validated if y is None else validated[0],
            dtype,
            "X",
            what=f"the dtype of {type(self).__name__}",
        )
        return validated

    def _validate_rows(self, X: IndexedRows, y, *, reset: bool):
        """What ``_validate_input(X, y)`` checks, for rows read by index, a block at a time.

        The transformed rows are read and checked (dtype, finite values, number of
        features) :data:`VALIDATION_BLOCK_ROWS` at a time; ``y`` as ``check_X_y`` does.
        """
        for number, block in enumerate(X.blocks(VALIDATION_BLOCK_ROWS)):
            self._validate_input(block, reset=reset and number == 0)
        y = _check_y(y, multi_output=True, estimator=self)
        check_consistent_length(X.rows, y)
        return y

    # ----------------------------------------------------------- building
    def _rng(self) -> np.random.Generator:
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        return np.random.default_rng(seed)

    def _build(self, n_features: int, n_outputs: int) -> None:
        """Create the network and its trainer from the constructor parameters."""
        sizes, per_layer = self._check_layer_params()
        rng = self._rng()
        network = Network(
            n_features,
            sizes,
            n_outputs,
            activation=self.activation,
            loss=self._loss_name(),
            dropout=per_layer["dropout"],
            init=self.init,
            weight_l1=per_layer["l1"],
            weight_l2=per_layer["l2"],
            bias_l1=per_layer["bias_l1"],
            bias_l2=per_layer["bias_l2"],
            dtype=self.dtype,
            batch_norm=per_layer["batch_norm"],
            batch_norm_momentum=self.batch_norm_momentum,
        )
        network.initialize(rng)
        self.network_ = network
        self._trainer = self._make_trainer(network, rng)

    def _make_optimizer(self):
        """The optimizer :data:`OPTIMIZERS` names, given the settings it takes (momentum…)."""
        return build(
            OPTIMIZERS, "optimizer", self.optimizer, momentum=self.momentum, nesterov=self.nesterov
        )

    def _make_trainer(self, network: Network, rng: np.random.Generator) -> Trainer:
        schedule = make_schedule(
            self.schedule,
            self.learning_rate,
            decay=self.decay,
            final_learning_rate=self.final_learning_rate,
            n_epochs=self.max_epochs,
        )
        return Trainer(
            network,
            self._make_optimizer(),
            schedule,
            rng=rng,
            batch_size=None if self.batch_size == "full" else int(self.batch_size),
            score=self._score_function(),
        )

    # ------------------------------------------------------------ training
    def _split_validation(self, X, Y, sample_weight, rng):
        """Hold out ``validation_fraction`` of the rows (stratified for classifiers if possible)."""
        seed = int(rng.integers(np.iinfo(np.int32).max))
        indexed = isinstance(X, IndexedRows)
        inputs = X.rows if indexed else X  # rows read by index: split the indices
        arrays = [inputs, Y] if sample_weight is None else [inputs, Y, sample_weight]
        stratify = None
        if isinstance(self, ClassifierMixin) and self._target_type != "multilabel-indicator":
            stratify = Y.argmax(axis=1) if Y.shape[1] > 1 else Y[:, 0]
        try:
            split = train_test_split(
                *arrays, test_size=self.validation_fraction, random_state=seed, stratify=stratify
            )
        except ValueError:  # a class too small to stratify
            split = train_test_split(*arrays, test_size=self.validation_fraction, random_state=seed)
        train, validation = split[0::2], split[1::2]
        if indexed:
            validation[0] = replace(X, rows=validation[0]).read()
            train[0] = replace(X, rows=train[0])
        if sample_weight is None:
            return train[0], train[1], None, (validation[0], validation[1])
        return train[0], train[1], train[2], (validation[0], validation[1], validation[2])

    def _prepare_fit(self, X, y, sample_weight, validation_data, *, keep: bool, primed=False):
        """Validate data, build (or keep) the network; return what ``iter_epochs`` needs.

        ``keep``: continue with the fitted network; ``primed``: the targets' encoding is
        already set (``partial_fit(classes=...)``).
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        if isinstance(X, IndexedRows):
            y = self._validate_rows(X, y, reset=not keep)
        else:
            X, y = self._validate_input(X, y, reset=not keep)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
            check_non_negative_weights(sample_weight)
            if not np.any(sample_weight > 0):
                raise ValueError("sample_weight must contain at least one positive weight")
        Y = self._encode_targets(y, reset=not (keep or primed), sample_weight=sample_weight)
        if not keep:
            self._build(X.shape[1], Y.shape[1])
        elif self.network_.n_outputs != Y.shape[1]:
            raise ValueError(
                f"y has {Y.shape[1]} outputs but the fitted network has {self.network_.n_outputs}"
            )
        validation = None
        if validation_data is not None:
            X_val, y_val, *rest = validation_data
            X_val = self._validate_input(X_val, reset=False)
            validation = (X_val, self._encode_targets(y_val, reset=False))
            if rest and rest[0] is not None:
                weights = _check_sample_weight(rest[0], X_val, dtype=np.float64)
                check_non_negative_weights(weights, "validation sample_weight")
                validation += (weights,)
        elif self.early_stopping and not keep:
            X, Y, sample_weight, validation = self._split_validation(
                X, Y, sample_weight, self._trainer.rng
            )
        return X, Y, sample_weight, validation

    def iter_fit(
        self, X, y, sample_weight=None, *, validation_data=None, callbacks=()
    ) -> Iterator[dict[str, Any]]:
        """Fit epoch by epoch, yielding each epoch's record.

        Parameters
        ----------
        X : {array-like, sparse matrix, IndexedRows} of shape (n_samples, n_features)
            An :class:`~nncv.network.training.IndexedRows` (some rows of a larger or
            memory-mapped array, read by index) trains on ``transform(X[rows])`` bit for
            bit without holding those rows whole: they are validated a block at a time and
            read a few mini-batches at a time.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights; a zero weight removes the row from the loss.
        validation_data : tuple ``(X_val, y_val)`` or ``(X_val, y_val, w_val)``, optional
            Data scored after each epoch; replaces the ``validation_fraction`` split.
        callbacks : sequence of :class:`~nncv.network.training.Callback`, optional
            Called by the trainer after each epoch, before early stopping (an
            :class:`~nncv.network.training.EpochCallback` wraps a plain function); one
            that raises :class:`~nncv.StopTraining` ends training after that epoch.

        Yields
        ------
        record : dict
            ``epoch``, ``loss``, ``data_loss``, ``val_loss``, ``val_score``, ``learning_rate``.

        Notes
        -----
        However the iteration ends (exhausted, or ``close()``), the estimator is left fitted
        with the state reached (best weights restored when ``early_stopping=True``).

        Examples
        --------
        >>> from nncv import NNClassifier
        >>> from nncv.datasets import load
        >>> X, y = load("iris")
        >>> net = NNClassifier(max_epochs=5, random_state=0)
        >>> [r["epoch"] for r in net.iter_fit(X, y)]
        [1, 2, 3, 4, 5]
        """
        return self._iter_fit(X, y, sample_weight, validation_data, callbacks)

    def _iter_fit(
        self, X, y, sample_weight, validation_data, callbacks=()
    ) -> Iterator[dict[str, Any]]:
        """The body of :meth:`iter_fit`; ``X`` may be :class:`IndexedRows`."""
        self._validate_params()
        keep = self.warm_start and hasattr(self, "network_")
        X, Y, sample_weight, validation = self._prepare_fit(
            X, y, sample_weight, validation_data, keep=keep
        )
        stopper = None
        if self.early_stopping and validation is not None:
            stopper = EarlyStopping(patience=self.patience, monitor="val_loss")
        self._trainer.callbacks = [*callbacks, *([stopper] if stopper else [])]
        first_epoch = self._trainer.epochs_done
        epochs = self._trainer.iter_epochs(
            X, Y, n_epochs=self.max_epochs, sample_weight=sample_weight, validation_data=validation
        )
        progress = self._progress_bar()
        if not keep:
            self._samples_seen = 0
        try:
            for record in epochs:
                self._samples_seen = getattr(self, "_samples_seen", 0) + X.shape[0]
                self._report(progress, record)
                yield record
        except GeneratorExit:
            epochs.close()
            self._finish_fit(stopper, first_epoch)
            raise
        finally:
            epochs.close()
            if progress is not None:
                progress.close()
        self._finish_fit(stopper, first_epoch)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, callbacks=()):
        """Fit the network to ``X`` and ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; pandas DataFrames keep their column names.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, non-negative (a negative weight is refused).
        callbacks : sequence of :class:`~nncv.network.training.Callback`, optional
            Epoch callbacks for the trainer (see :meth:`iter_fit`).

        Returns
        -------
        self
        """
        for _ in self.iter_fit(X, y, sample_weight, callbacks=callbacks):
            pass
        return self

    def _partial_fit(self, X, y, sample_weight=None, *, primed: bool = False):
        """One epoch on ``X, y``; the first call validates parameters and builds the network."""
        keep = hasattr(self, "network_")
        if not keep:
            self._validate_params()
        X, Y, sample_weight, _ = self._prepare_fit(
            X, y, sample_weight, None, keep=keep, primed=primed
        )
        self._trainer.callbacks = []
        first_epoch = self._trainer.epochs_done
        if not keep:
            self._samples_seen = 0
        for _ in self._trainer.iter_epochs(X, Y, n_epochs=1, sample_weight=sample_weight):
            self._samples_seen = getattr(self, "_samples_seen", 0) + X.shape[0]
        self._finish_fit(None, first_epoch)
        return self

    def _finish_fit(self, stopper, first_epoch: int) -> None:
        """Set the fitted attributes from the trainer's history (all epochs of its life)."""
        # Batch-sized work buffers are not state: free them so fitted models stay small
        # (they travel back from joblib workers and into artifacts).
        self.network_.release_buffers()
        self._trainer.release_buffers()
        # The callbacks were for this fit; dropping them also breaks the reference cycle a
        # callback holding this estimator would make (freed at once, not at the next gc).
        self._trainer.callbacks = []
        frame = pd.DataFrame(self._trainer.history, columns=list(HISTORY_COLUMNS))
        self._history = {column: frame[column].to_numpy() for column in HISTORY_COLUMNS}
        self.n_iter_ = int(frame["epoch"].iloc[-1]) if len(frame) else 0
        if stopper is not None and stopper.best_epoch is not None:
            self.best_epoch_ = int(stopper.best_epoch)
        else:
            self.best_epoch_ = self.n_iter_
        self.loss_curve_ = frame["loss"].tolist()
        self.validation_scores_ = _validation_scores(frame)
        epochs_run = self._trainer.epochs_done - first_epoch
        if stopper is not None and epochs_run >= self.max_epochs and stopper.wait < self.patience:
            warnings.warn(
                f"max_epochs={self.max_epochs} reached before early stopping triggered; "
                "the validation loss may still improve with more epochs.",
                ConvergenceWarning,
                stacklevel=3,
            )

    # ------------------------------------------- MLPClassifier's fitted attributes
    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrix of each Dense layer, ``(n_in, n_out)``, in the network dtype.

        Views into the network's parameters (as ``MLPClassifier.coefs_``, layer by layer):
        writing into them changes the model.
        """
        check_is_fitted(self, "network_")
        return [dense.weights for dense in self.network_.dense_layers]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vector of each Dense layer, in the network dtype (views, as ``coefs_``)."""
        check_is_fitted(self, "network_")
        return [dense.biases for dense in self.network_.dense_layers]

    @property
    def n_layers_(self) -> int:
        """Number of layers counting input and output, as ``MLPClassifier.n_layers_``."""
        check_is_fitted(self, "network_")
        return len(self.network_.hidden_layer_sizes) + 2

    @property
    def n_outputs_(self) -> int:
        """Width of the output layer."""
        check_is_fitted(self, "network_")
        return int(self.network_.n_outputs)

    @property
    def out_activation_(self) -> str:
        """Output activation: ``"softmax"``, ``"logistic"`` or ``"identity"``."""
        check_is_fitted(self, "network_")
        return OUT_ACTIVATIONS[self.network_.loss_name]

    @property
    def best_loss_(self) -> float | None:
        """Lowest training loss over the epochs; None with early stopping (as scikit-learn)."""
        check_is_fitted(self, "network_")
        if self.validation_scores_ is not None and self.early_stopping:
            return None
        return float(min(self.loss_curve_)) if self.loss_curve_ else None

    @property
    def best_validation_score_(self) -> float | None:
        """Best validation score (accuracy or R²); None without validation data."""
        check_is_fitted(self, "network_")
        if self.validation_scores_ is None:
            return None
        return float(np.nanmax(self.validation_scores_))

    @property
    def t_(self) -> int | None:
        """Training samples seen by the optimiser (epochs × training rows).

        None for a model read back from an artifact (the count is not stored).
        """
        check_is_fitted(self, "network_")
        return getattr(self, "_samples_seen", None)

    # ------------------------------------------------------------ progress
    def _progress_bar(self):
        if not self.verbose:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.max_epochs, desc=type(self).__name__, unit="epoch")

    @staticmethod
    def _report(progress, record) -> None:
        if progress is None:
            return
        progress.update(1)
        shown = {k: f"{record[k]:.4g}" for k in ("loss", "val_loss", "val_score")}
        progress.set_postfix(shown, refresh=False)

    # ----------------------------------------------------------- inference
    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        if isinstance(X, IndexedRows):
            outputs = self._forward_rows(X)
        else:
            X = self._validate_input(X, reset=False)
            with np.errstate(over="ignore", invalid="ignore"):
                outputs = self.network_.predict(X)
        check_finite_outputs(outputs, "the network's outputs")
        return outputs

    def _forward_rows(self, X: IndexedRows) -> np.ndarray:
        """Outputs for rows read by index, a prediction chunk at a time: the rows are never
        held whole, and the numbers equal those of ``predict`` on the transformed rows (the
        network predicts in the same chunks)."""
        outputs = np.empty((len(X), self.network_.n_outputs), dtype=self.network_.dtype)
        for start, block in zip(
            range(0, len(X), PREDICT_CHUNK_ROWS), X.blocks(PREDICT_CHUNK_ROWS), strict=False
        ):
            block = self._validate_input(block, reset=False)
            with np.errstate(over="ignore", invalid="ignore"):
                outputs[start : start + len(block)] = self.network_.predict(block)
        return outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    @property
    def history_(self) -> pd.DataFrame:
        """One row per epoch: epoch, loss, data_loss, val_loss, val_score, learning_rate.

        Built on each access from plain arrays (kept as a dict of NumPy arrays, so that the
        fitted estimator holds no pandas object and ``skops.io`` can save it).
        """
        if "_history" not in vars(self):
            raise AttributeError(f"{type(self).__name__} is not fitted: it has no history_ yet")
        return pd.DataFrame({column: values.copy() for column, values in self._history.items()})

    # ---------------------------------------------------------- gradient check
    def _gradient_check_problem(self, X, y, sample_weight=None):
        """``(network, inputs, targets, sample_weight)`` for
        :func:`nncv.network.check_gradients`: the fitted network and ``X, y`` validated and
        encoded as for scoring, or, unfitted, the network a ``fit`` would start from (built
        on a clone; this estimator is not changed)."""
        if hasattr(self, "network_"):
            X = self._validate_input(X, reset=False)
            Y = self._encode_targets(y, reset=False)
            network = self.network_
        else:
            builder = clone(self).set_params(early_stopping=False, warm_start=False)
            builder._validate_params()
            X, Y, sample_weight, _ = builder._prepare_fit(X, y, sample_weight, None, keep=False)
            network = builder.network_
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        return network, X, Y, sample_weight

    # --------------------------------------------------------- persistence
    def _get_fitted_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-friendly description and numeric arrays of the fitted estimator (no pickle)."""
        check_is_fitted(self, "network_")
        iterations, optimizer_arrays = self._trainer.optimizer.get_state()
        meta: dict[str, Any] = {
            "estimator": type(self).__name__,
            "params": _encode_params(self.get_params(deep=False)),
            "network": self.network_.get_config(),
            "layer_shapes": [list(s) for s in self.network_.layer_shapes],
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": (
                [str(n) for n in self.feature_names_in_]
                if hasattr(self, "feature_names_in_")
                else None
            ),
            "n_iter": int(self.n_iter_),
            "best_epoch": int(self.best_epoch_),
            "epochs_done": int(self._trainer.epochs_done),
            "optimizer_iterations": int(iterations),
            "rng_state": _encode_rng_state(self._trainer.rng),
        }
        arrays = {"network.parameters": self.network_.parameters.copy()}
        if self.network_.running_statistics.size:  # batch normalisation's running mean, variance
            arrays["network.running_statistics"] = self.network_.running_statistics.copy()
        arrays.update({f"optimizer.{k}": v for k, v in optimizer_arrays.items()})
        arrays.update(
            {f"history.{c}": np.asarray(self._history[c], np.float64) for c in HISTORY_COLUMNS}
        )
        self._add_target_state(meta, arrays)
        return meta, arrays

    @classmethod
    def _from_fitted_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]):
        """Rebuild a fitted estimator from :meth:`_get_fitted_state`'s output."""
        if meta.get("estimator") != cls.__name__:
            raise NncvError(f"state describes {meta.get('estimator')!r}, not {cls.__name__}")
        try:
            estimator = cls(**_decode_params(meta["params"]))
            network = Network.from_config(meta["network"])
            network.set_parameters(arrays["network.parameters"])
            if network.parameters.dtype != arrays["network.parameters"].dtype:
                raise NncvError("network parameters have the wrong dtype")
            if network.running_statistics.size or "network.running_statistics" in arrays:
                statistics = arrays["network.running_statistics"]
                network.set_running_statistics(statistics)
                if network.running_statistics.dtype != statistics.dtype:
                    raise NncvError("batch-norm running statistics have the wrong dtype")
            estimator._validate_params()
            _check_params_describe(estimator, network)
        except (KeyError, TypeError, ValueError) as error:
            raise NncvError(f"inconsistent {cls.__name__} state: {error}") from error
        estimator.network_ = network
        estimator._trainer = estimator._make_trainer(network, estimator._rng())
        optimizer_arrays = {
            k.removeprefix("optimizer."): v for k, v in arrays.items() if k.startswith("optimizer.")
        }
        estimator._trainer.optimizer.set_state(meta["optimizer_iterations"], optimizer_arrays)
        estimator._trainer.epochs_done = int(meta["epochs_done"])
        if meta.get("rng_state") is not None:
            _decode_rng_state(estimator._trainer.rng, meta["rng_state"])
        estimator.n_features_in_ = int(meta["n_features_in"])
        if meta.get("feature_names_in") is not None:
            estimator.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
        history = pd.DataFrame({c: arrays[f"history.{c}"] for c in HISTORY_COLUMNS})
        history["epoch"] = history["epoch"].astype(np.int64)
        estimator._trainer.history = history.to_dict("records")
        estimator._history = {column: history[column].to_numpy() for column in HISTORY_COLUMNS}
        estimator.n_iter_ = int(meta["n_iter"])
        estimator.best_epoch_ = int(meta["best_epoch"])
        estimator.loss_curve_ = history["loss"].tolist()
        estimator.validation_scores_ = _validation_scores(history)
        estimator._set_target_state(meta, arrays)
        return estimator


def _check_params_describe(estimator: _BaseNN, network: Network) -> None:
    """Refuse saved constructor parameters that describe another network than the saved one
    (a refit or ``partial_fit`` after loading would silently build that other network)."""
    sizes, _ = estimator._check_layer_params()
    implied = {
        "hidden_layer_sizes": list(sizes),
        "activation": estimator.activation,
        "init": estimator.init,
        "dtype": np.dtype(estimator.dtype).name,
    }
    stored = network.get_config()
    for name, value in implied.items():
        if stored[name] != value:
            raise NncvError(
                f"the parameters say {name}={value!r} but the saved network has {stored[name]!r}"
            )


def _encode_rng_state(rng: np.random.Generator) -> dict[str, Any] | None:
    """The generator's state as JSON (128-bit integers as decimal strings)."""
    state = rng.bit_generator.state
    if state["bit_generator"] != "PCG64":
        return None
    return {
        "bit_generator": "PCG64",
        "state": str(state["state"]["state"]),
        "inc": str(state["state"]["inc"]),
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def _decode_rng_state(rng: np.random.Generator, encoded: dict[str, Any]) -> None:
    """Put back what :func:`_encode_rng_state` wrote, so training continues identically."""
    try:
        rng.bit_generator.state = {
            "bit_generator": encoded["bit_generator"],
            "state": {"state": int(encoded["state"]), "inc": int(encoded["inc"])},
            "has_uint32": int(encoded["has_uint32"]),
            "uinteger": int(encoded["uinteger"]),
        }
    except (KeyError, TypeError, ValueError) as error:
        raise NncvError(f"inconsistent random generator state: {error}") from error


def _encode_params(params: dict[str, Any]) -> dict[str, Any]:
    """Constructor parameters as JSON values; tuples are tagged so they come back as tuples."""

    def encode(value):
        if isinstance(value, tuple):
            return {"tuple": [encode(v) for v in value]}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, np.random.RandomState | np.random.Generator):
            return None
        raise NncvError(f"cannot store parameter value {value!r} of type {type(value).__name__}")

    return {name: encode(value) for name, value in params.items()}


def _decode_params(params: dict[str, Any]) -> dict[str, Any]:
    def decode(value):
        if isinstance(value, dict):
            if set(value) != {"tuple"}:
                raise NncvError(f"unexpected parameter encoding {value!r}")
            return tuple(decode(v) for v in value["tuple"])
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return {name: decode(value) for name, value in params.items()}


def _plain_labels(y: Any) -> bool:
    """Whether ``y`` is a non-empty 1-D array of integer (or boolean) labels: binary or
    multiclass targets for scikit-learn's checks, which need not run on it."""
    return isinstance(y, np.ndarray) and y.ndim == 1 and y.size > 0 and y.dtype.kind in "biu"


def _one_hot(y: np.ndarray, classes: np.ndarray, dtype) -> np.ndarray | None:
    """``LabelBinarizer(classes).transform(y)`` in ``dtype`` for a plain 1-D label array.

    The binarizer's own checks cost a fold more than the encoding (it runs for every
    fold's training and held-out rows); labels of one sortable kind (booleans, integers,
    floats, strings) that are all in ``classes`` (sorted, as ``np.unique`` gives them) are
    encoded directly: one column of ``y == classes[1]`` for two classes, else one-hot.
    None for anything else (unknown labels, objects, mixed kinds), which takes the
    binarizer's path and its errors.
    """
    kind = y.dtype.kind
    if y.ndim != 1 or kind not in "biufU" or classes.dtype.kind != kind or len(classes) < 2:
        return None
    positions = np.searchsorted(classes, y)
    np.minimum(positions, len(classes) - 1, out=positions)
    if not np.array_equal(classes[positions], y):  # unknown labels (or NaN)
        return None
    if len(classes) == 2:
        return (positions == 1).astype(dtype)[:, None]
    encoded = np.zeros((len(y), len(classes)), dtype)
    encoded[np.arange(len(y)), positions] = 1
    return encoded


class NNClassifier(ClassifierMixin, _BaseNN):
    """Neural-network classifier trained from scratch in NumPy.

    Binary targets get one sigmoid output, multiclass targets a softmax output, and
    multilabel targets (a 2-D 0/1 ``y``) one sigmoid per label.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Width of each hidden layer.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid", "identity"}, default="relu"
        Hidden-layer activation.
    optimizer : {"adam", "sgd", "rmsprop", "adagrad"}, default="adam"
        Update rule (NNFS formulas).
    learning_rate : float, default=0.001
        Initial learning rate.
    decay : float, default=0
        Inverse-time decay per step, ``lr / (1 + decay * step)`` (``schedule="inverse_time"``).
    schedule : {"inverse_time", "exponential", "linear"}, default="inverse_time"
        ``exponential`` and ``linear`` go per epoch from ``learning_rate`` to
        ``final_learning_rate`` at epoch ``max_epochs``.
    final_learning_rate : float, default=None
        End rate of the exponential and linear schedules (required for them).
    momentum : float, default=0.9
        Momentum of ``optimizer="sgd"``.
    nesterov : bool, default=False
        Nesterov momentum for ``optimizer="sgd"``.
    l1, l2 : float or tuple of float, default=0 and 1e-3
        L1/L2 strength on the weights: the loss gains ``l1 * sum|W| + l2 * sum W**2``. A
        tuple gives one value per Dense layer, hidden layers then output (NNFS: ``(5e-4, 0)``).
    bias_l1, bias_l2 : float or tuple of float, default=0
        The same on the biases.
    dropout : float or tuple of float, default=0
        Inverted-dropout rate after each hidden layer, in [0, 1).
    batch_norm : bool or tuple of bool, default=False
        Batch-normalise each hidden layer's pre-activation (or those marked True, one bool
        per hidden layer): Dense → BatchNorm → activation → dropout. In training each unit
        is normalised with the mini-batch's mean and variance (weighted by
        ``sample_weight``), then scaled and shifted by a learnt ``gamma`` and ``beta``;
        running means and variances replace the batch's at inference, so a row's
        prediction never depends on the rest of its batch. ``epsilon`` is fixed at 1e-5.
    batch_norm_momentum : float, default=0.9
        Weight of the old running mean and variance at each training step, in [0, 1).
    batch_size : int or "full", default=32
        Mini-batch size; ``"full"`` uses the whole training set per step.
    max_epochs : int, default=200
        Number of passes over the data (the most, with early stopping).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when the validation loss has
        not improved for ``patience`` epochs; the best weights are restored.
    patience : int, default=10
        Epochs without improvement before early stopping.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping (stratified).
    init : str, default="glorot_uniform"
        Weight initialiser: ``nnfs`` (0.01·N(0, 1)), ``he``, ``glorot_normal``,
        ``glorot_uniform`` (and ``xavier_*`` aliases), ``zeros``.
    dtype : {"float32", "float64"}, default="float32"
        The one dtype of the whole fit.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, dropout and the validation split.
    warm_start : bool, default=False
        Continue from the fitted weights (and optimiser state) on the next ``fit``.
    verbose : int, default=0
        Show a progress bar over epochs when positive.

    Attributes
    ----------
    classes_ : ndarray
        Class labels (any type); for multilabel ``y``, ``arange(n_labels)``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` was a DataFrame with string column names.
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights the model holds (the last one without early stopping).
    loss_curve_ : list of float
    validation_scores_ : list of float or None
        Validation accuracy per epoch; None without validation data.
    history_ : pandas.DataFrame
        One row per epoch: epoch, loss, data_loss, val_loss, val_score, learning_rate.
    network_ : nncv.network.Network
    coefs_, intercepts_ : list of ndarray
        Weights ``(n_in, n_out)`` and biases of each Dense layer, in the network dtype
        (views of the network's parameters), as ``MLPClassifier``'s.
    n_layers_, n_outputs_ : int
        Layers counting input and output; width of the output layer.
    out_activation_ : {"softmax", "logistic", "identity"}
    best_loss_ : float or None
        Lowest training loss; None with early stopping (as ``MLPClassifier``).
    best_validation_score_ : float or None
        Best validation score; None without validation data.
    t_ : int or None
        Training samples seen (epochs × rows); None for a model read from an artifact.

    Examples
    --------
    >>> from nncv import NNClassifier
    >>> from nncv.datasets import load
    >>> X, y = load("iris")
    >>> clf = NNClassifier(hidden_layer_sizes=16, max_epochs=50, random_state=0).fit(X, y)
    >>> clf.predict(X[:2]).tolist()
    [0, 0]
    """

    def _loss_name(self) -> str:
        if self._target_type == "multiclass":
            return "softmax_cross_entropy"
        return "sigmoid_cross_entropy"

    def _score_function(self):
        return metrics.accuracy

    def _encode_targets(self, y, *, reset: bool, sample_weight=None) -> np.ndarray:
        if reset:
            if np.ndim(y) == 2 and np.shape(y)[1] == 1:
                warnings.warn(
                    "A column-vector y was passed when a 1d array was expected; it is raveled.",
                    DataConversionWarning,
                    stacklevel=4,
                )
                y = np.ravel(y)
            if _plain_labels(y):  # what the checks below conclude, without their overhead
                self._set_classes(np.unique(y))
                return self._binarize(y)
            check_classification_targets(y)
            target_type = type_of_target(y, input_name="y")
            if target_type not in ("binary", "multiclass", "multilabel-indicator"):
                raise ValueError(f"NNClassifier does not support {target_type} targets")
            binarizer = LabelBinarizer()
            binarizer.fit(y)
            if len(binarizer.classes_) < 2:
                raise ValueError(
                    "y contains only one class "
                    f"({binarizer.classes_[0]!r}); a classifier needs at least two"
                )
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
            self._target_type = (
                "multilabel-indicator"
                if binarizer.y_type_ == "multilabel-indicator"
                else ("binary" if len(self.classes_) == 2 else "multiclass")
            )
        return self._binarize(y)

    def _binarize(self, y) -> np.ndarray:
        y = np.asarray(y)
        if self._target_type != "multilabel-indicator":
            y = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
            encoded = _one_hot(y, self.classes_, self.dtype)
            if encoded is not None:
                return encoded
            known = self._known_label_rows(y)
            if known is not None:
                raise ValueError(
                    f"y contains labels not seen in the first fit: "
                    f"{np.unique(y[~known]).tolist()}; known classes are {self.classes_.tolist()}"
                )
        return self._binarizer().transform(y).astype(self.dtype, copy=False)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train one more epoch on ``X, y`` (the first call builds the network).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like, optional
            All class labels; required on the first call unless ``y`` is multilabel.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        if hasattr(self, "network_"):
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(
                    f"classes={list(classes)!r} differs from the first call's "
                    f"{self.classes_.tolist()}"
                )
            return self._partial_fit(X, y, sample_weight)
        if classes is None:
            if type_of_target(y) != "multilabel-indicator":
                raise ValueError("classes must be passed on the first call to partial_fit")
            return self._partial_fit(X, y, sample_weight)
        self._validate_params()
        self._prime_classes(np.asarray(classes))
        return self._partial_fit(X, y, sample_weight, primed=True)

    def _prime_classes(self, classes: np.ndarray) -> None:
        classes = np.unique(classes)
        if len(classes) < 2:
            raise ValueError(f"classes must hold at least two labels, got {classes.tolist()}")
        binarizer = LabelBinarizer().fit(classes)
        self._label_binarizer = binarizer
        self.classes_ = binarizer.classes_
        self._target_type = "binary" if len(classes) == 2 else "multiclass"

    def _set_classes(self, classes: np.ndarray) -> None:
        """Binary or multiclass targets of these (sorted, unique) integer labels, as
        ``LabelBinarizer().fit(y)`` would find them; the binarizer itself is made when a
        label array needs it (:meth:`_binarize` encodes plain labels without it)."""
        if len(classes) < 2:
            raise ValueError(
                f"y contains only one class ({classes[0]!r}); a classifier needs at least two"
            )
        self.__dict__.pop("_label_binarizer", None)
        self.classes_ = classes
        self._target_type = "binary" if len(classes) == 2 else "multiclass"

    def _known_label_rows(self, y) -> np.ndarray | None:
        """A boolean mask of the rows of ``y`` whose label is one of ``classes_``, or None
        when every row's is (and for multilabel targets, whose columns are fixed)."""
        if self._target_type == "multilabel-indicator":
            return None
        y = np.asarray(y)
        y = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
        known = np.isin(y, self.classes_)
        return None if known.all() else known

    def _binarizer(self) -> LabelBinarizer:
        binarizer = self.__dict__.get("_label_binarizer")
        if binarizer is None:
            binarizer = self._label_binarizer = LabelBinarizer().fit(self.classes_)
        return binarizer

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix, IndexedRows} of shape (n_samples, n_features)
            An :class:`~nncv.network.training.IndexedRows` (rows of a larger or memory-mapped
            array, transformed as they are read) is predicted a chunk at a time, with the
            numbers of the transformed rows; so are :meth:`predict` and :meth:`score`.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return self._proba_from_outputs(self._forward(X))

    def _proba_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` from the network's outputs (shared with ensembles)."""
        if self._target_type == "binary":
            return np.hstack([1 - outputs, outputs])
        return outputs

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """Predicted labels (a 0/1 matrix for multilabel targets)."""
        outputs = self._forward(X)
        if self._target_type == "multilabel-indicator":
            return (outputs > 0.5).astype(np.int64)
        if self._target_type == "binary":
            return self.classes_[(outputs[:, 0] > 0.5).astype(np.int64)]
        return self.classes_[outputs.argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _add_target_state(self, meta, arrays) -> None:
        meta["target_type"] = self._target_type
        if self.classes_.dtype.kind in "biuf":
            arrays["classes"] = self.classes_
            meta["classes"] = None
        else:
            meta["classes"] = [str(c) for c in self.classes_]
            if any(not isinstance(c, str) for c in self.classes_):
                raise NncvError(
                    "only numeric or string class labels can be saved, got "
                    f"{self.classes_.dtype} labels"
                )

    def _set_target_state(self, meta, arrays) -> None:
        target_type = meta["target_type"]
        if meta.get("classes") is None:
            classes = np.asarray(arrays["classes"])
        else:
            classes = np.asarray(meta["classes"], dtype=object)
        if target_type == "multilabel-indicator":
            binarizer = LabelBinarizer().fit(np.eye(len(classes), dtype=np.int64))
        else:
            binarizer = LabelBinarizer().fit(classes)
        self._label_binarizer = binarizer
        self.classes_ = classes
        self._target_type = target_type


class NNRegressor(RegressorMixin, _BaseNN):
    """Neural-network regressor trained from scratch in NumPy (one or several outputs).

    The targets are standardised internally (mean 0, variance 1 per output, learnt on the
    first fit) and predictions are mapped back, so learning rates and penalties mean the same
    whatever the scale of ``y``; ``loss`` and ``val_loss`` are in standardised units and
    ``val_score`` is R².

    Parameters
    ----------
    hidden_layer_sizes, activation, optimizer, learning_rate, decay, schedule, \
final_learning_rate, momentum, nesterov, l1, l2, bias_l1, bias_l2, dropout, batch_norm, \
batch_norm_momentum, batch_size, max_epochs, early_stopping, patience, validation_fraction, \
init, dtype, random_state, warm_start, verbose
        As for :class:`NNClassifier` (the validation split is not stratified), except the
        default ``l2=1e-2``: stronger weight decay suits small regression sets (diabetes).

    Attributes
    ----------
    n_features_in_, feature_names_in_, n_iter_, best_epoch_, loss_curve_, history_, \
network_, coefs_, intercepts_, n_layers_, n_outputs_, out_activation_, best_loss_, \
best_validation_score_, t_
        As for :class:`NNClassifier` (``out_activation_`` is ``"identity"``).
    validation_scores_ : list of float or None
        Validation R² per epoch; None without validation data.

    Examples
    --------
    >>> from nncv import NNRegressor
    >>> from nncv.datasets import load
    >>> X, y = load("diabetes")
    >>> reg = NNRegressor(hidden_layer_sizes=8, max_epochs=5, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        activation="relu",
        optimizer="adam",
        learning_rate=0.001,
        decay=0.0,
        schedule="inverse_time",
        final_learning_rate=None,
        momentum=0.9,
        nesterov=False,
        l1=0.0,
        l2=1e-2,
        bias_l1=0.0,
        bias_l2=0.0,
        dropout=0.0,
        batch_norm=False,
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        batch_size=32,
        max_epochs=200,
        early_stopping=False,
        patience=10,
        validation_fraction=0.1,
        init="glorot_uniform",
        dtype="float32",
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        super().__init__(
            hidden_layer_sizes,
            activation=activation,
            optimizer=optimizer,
            learning_rate=learning_rate,
            decay=decay,
            schedule=schedule,
            final_learning_rate=final_learning_rate,
            momentum=momentum,
            nesterov=nesterov,
            l1=l1,
            l2=l2,
            bias_l1=bias_l1,
            bias_l2=bias_l2,
            dropout=dropout,
            batch_norm=batch_norm,
            batch_norm_momentum=batch_norm_momentum,
            batch_size=batch_size,
            max_epochs=max_epochs,
            early_stopping=early_stopping,
            patience=patience,
            validation_fraction=validation_fraction,
            init=init,
            dtype=dtype,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
        )

    def _loss_name(self) -> str:
        return "mse"

    def _score_function(self):
        return metrics.r2

    def _encode_targets(self, y, *, reset: bool, sample_weight=None) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if reset:
            if not np.all(np.isfinite(y)):
                raise ValueError("y contains NaN or infinity")
            self._single_output = y.ndim == 1
            self._target_mean, self._target_scale = standardisation(
                y.reshape(len(y), -1), sample_weight
            )
        Y = y.reshape(len(y), -1)
        if Y.shape[1] != len(self._target_mean):
            raise ValueError(
                f"y has {Y.shape[1]} outputs, the model was fitted with {len(self._target_mean)}"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            standardised = (Y - self._target_mean) / self._target_scale
        if not np.all(np.isfinite(standardised)):
            raise ValueError(
                "y overflows float64 once standardised with the first fit's mean and scale "
                f"(mean {self._target_mean.tolist()}, scale {self._target_scale.tolist()}); "
                "rescale y"
            )
        check_finite_range(
            standardised,
            self.dtype,
            "y standardised with the first fit's mean and scale",
            what=f"the dtype of {type(self).__name__}",
        )
        return standardised.astype(self.dtype)

    def partial_fit(self, X, y, sample_weight=None):
        """Train one more epoch on ``X, y`` (the first call builds the network).

        Returns
        -------
        self
        """
        return self._partial_fit(X, y, sample_weight)

    def predict(self, X) -> np.ndarray:
        """Predicted targets, shape (n_samples,) or (n_samples, n_outputs) like ``y``."""
        return self._predictions_from_outputs(self._forward(X))

    def _predictions_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """:meth:`predict` from the network's outputs (shared with ensembles)."""
        outputs = outputs.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            outputs *= self._target_scale
            outputs += self._target_mean
        check_finite_outputs(outputs, "the predictions mapped back to the scale of y")
        return outputs[:, 0] if self._single_output else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _add_target_state(self, meta, arrays) -> None:
        meta["single_output"] = bool(self._single_output)
        arrays["target_mean"] = self._target_mean
        arrays["target_scale"] = self._target_scale

    def _set_target_state(self, meta, arrays) -> None:
        self._single_output = bool(meta["single_output"])
        self._target_mean = np.asarray(arrays["target_mean"], dtype=np.float64)
        self._target_scale = np.asarray(arrays["target_scale"], dtype=np.float64)
