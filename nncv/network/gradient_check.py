"""Gradient checking: back-propagated gradients against central finite differences.

:func:`check_gradients` takes a :class:`~nncv.network.model.Network`, an ``NNClassifier`` /
``NNRegressor`` (fitted, or not yet: a network is then built as ``fit`` would build it) or a
scikit-learn ``Pipeline`` ending in one, and compares, for every parameter array (each Dense
layer's weights and biases, each batch-norm layer's gamma and beta), the gradient that
training uses with a finite-difference approximation of the same loss, on a float64 copy
of the network (the model itself is not changed). The measure is the one of Andrew Ng's
course: ``||g - g_approx|| / (||g|| + ||g_approx||)``, about 1e-7 or less when the
back-propagation is right, 1e-3 or more when it is wrong.

The loss differentiated is what training minimises on one batch holding all of ``X``:
the (sample-weighted) mean data loss plus the L1/L2 penalties, in training mode — batch
normalisation uses the statistics of ``X``, and dropout masks are held fixed (every pass
draws them from a generator seeded alike), so that dropout's backward pass is checked too.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from nncv.exceptions import ConfigurationError
from nncv.network.model import Network

__all__ = ["ArrayCheck", "GradientCheck", "check_gradients"]

DEFAULT_STEP = 1e-6
DEFAULT_THRESHOLD = 1e-6
#: An array whose two gradients both have a Euclidean norm at most this passes whatever their
#: relative difference: both are zero up to rounding (the bias of a Dense layer followed by
#: batch normalisation has a zero gradient, and the ratio of two rounding errors means nothing).
DEFAULT_ZERO_TOLERANCE = 1e-8


@dataclass(frozen=True)
class ArrayCheck:
    """The check of one parameter array.

    Attributes
    ----------
    name : str
        ``dense_<i>.weights``, ``dense_<i>.biases``, ``batch_norm_<i>.gamma`` or
        ``batch_norm_<i>.beta`` (see :meth:`Network.parameter_layout`).
    shape : tuple of int
    n_checked : int
        Entries compared (all of them unless ``entries_per_array`` was set).
    gradient_norm, approximation_norm : float
        ``||g||`` (back-propagation) and ``||g_approx||`` (finite differences) over the
        checked entries.
    absolute_difference : float
        ``||g - g_approx||``.
    relative_difference : float
        ``||g - g_approx|| / (||g|| + ||g_approx||)`` (0 when both are exactly zero).
    zero : bool
        Both norms are at most ``zero_tolerance``: the gradient is zero up to rounding.
    passed : bool
        ``relative_difference <= threshold``, or ``zero``.
    """

    name: str
    shape: tuple[int, ...]
    n_checked: int
    gradient_norm: float
    approximation_norm: float
    absolute_difference: float
    relative_difference: float
    zero: bool
    passed: bool


@dataclass(frozen=True)
class GradientCheck:
    """What :func:`check_gradients` found: one :class:`ArrayCheck` per parameter array.

    Attributes
    ----------
    arrays : tuple of ArrayCheck
    threshold, zero_tolerance, step : float
        The settings of the check.

    Examples
    --------
    >>> import numpy as np
    >>> from nncv.network import Network, check_gradients
    >>> net = Network(3, [4], 2, activation="tanh", batch_norm=True)
    >>> net.initialize(np.random.default_rng(0))
    >>> rng = np.random.default_rng(1)
    >>> X, y = rng.normal(size=(8, 3)), np.eye(2)[rng.integers(0, 2, 8)]
    >>> result = check_gradients(net, X, y)
    >>> result.passed, [a.name for a in result.arrays][-2:]
    (True, ['batch_norm_0.gamma', 'batch_norm_0.beta'])
    """

    arrays: tuple[ArrayCheck, ...]
    threshold: float
    zero_tolerance: float
    step: float

    @property
    def passed(self) -> bool:
        """Whether every array passed."""
        return all(array.passed for array in self.arrays)

    @property
    def worst(self) -> float:
        """The largest relative difference over the arrays whose gradient is not zero (0 when
        there are none)."""
        return max((a.relative_difference for a in self.arrays if not a.zero), default=0.0)

    def __getitem__(self, name: str) -> ArrayCheck:
        for array in self.arrays:
            if array.name == name:
                return array
        raise KeyError(f"no parameter array {name!r}; there are {[a.name for a in self.arrays]}")

    def __iter__(self) -> Iterator[ArrayCheck]:
        return iter(self.arrays)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per array (``pandas.DataFrame(result.rows())`` gives a table)."""
        return [
            {
                "array": a.name,
                "shape": a.shape,
                "checked": a.n_checked,
                "gradient_norm": a.gradient_norm,
                "approximation_norm": a.approximation_norm,
                "absolute_difference": a.absolute_difference,
                "relative_difference": a.relative_difference,
                "zero": a.zero,
                "passed": a.passed,
            }
            for a in self.arrays
        ]

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        header = (
            f"GradientCheck: {verdict} (worst relative difference {self.worst:.2e}, threshold "
            f"{self.threshold:.0e}; float64, central differences, step {self.step:.0e})"
        )
        columns = ("array", "shape", "checked", "|g|", "|g_approx|", "relative diff", "passed")
        body = [
            (
                a.name,
                "x".join(str(n) for n in a.shape),
                str(a.n_checked),
                f"{a.gradient_norm:.3e}",
                f"{a.approximation_norm:.3e}",
                f"{a.relative_difference:.2e}",
                ("yes (zero)" if a.zero else "yes") if a.passed else "NO",
            )
            for a in self.arrays
        ]
        widths = [max(len(row[i]) for row in (columns, *body)) for i in range(len(columns))]
        lines = [header]
        for row in (columns, *body):
            lines.append(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
        return "\n".join(lines)


def _float64_copy(network: Network) -> Network:
    twin = Network.from_config({**network.get_config(), "dtype": "float64"})
    twin.set_parameters(network.parameters.astype(np.float64))
    twin.set_running_statistics(network.running_statistics.astype(np.float64))
    return twin


def _problem(model: Any, X, y, sample_weight) -> tuple[Network, Any, np.ndarray, Any]:
    """``(network, inputs, targets, sample_weight)`` for a network, estimator or pipeline."""
    if isinstance(model, Network):
        targets = np.asarray(y, dtype=np.float64)
        if targets.ndim != 2 or targets.shape != (X.shape[0], model.n_outputs):
            raise ConfigurationError(
                f"y must be the network's 2-D target matrix ({X.shape[0]}, {model.n_outputs}) "
                f"(one-hot rows for softmax), got shape {targets.shape}"
            )
        return model, X, targets, sample_weight
    if hasattr(model, "steps"):  # a scikit-learn Pipeline: transform X by all but the last step
        final = model.steps[-1][1]
        if hasattr(final, "network_"):
            X = model[:-1].transform(X)
        else:
            X = copy.deepcopy(model[:-1]).fit_transform(X, y)
        model = final
    if not hasattr(model, "_gradient_check_problem"):
        raise ConfigurationError(
            "check_gradients takes a nncv.network.Network, an NNClassifier / NNRegressor or a "
            f"Pipeline ending in one, not {type(model).__name__}"
        )
    return model._gradient_check_problem(X, y, sample_weight)


def _total_loss(network: Network, inputs, targets, scale, seed: int) -> float:
    outputs = network.forward(
        inputs, training=True, rng=np.random.default_rng(seed), row_scale=scale
    )
    per_sample = network.loss.per_sample(outputs, targets)
    data = float(np.sum(per_sample * np.ravel(scale))) if np.ndim(scale) else per_sample.mean()
    return float(data) + network.regularisation_loss()


def check_gradients(
    model: Any,
    X,
    y,
    *,
    sample_weight=None,
    step: float = DEFAULT_STEP,
    threshold: float = DEFAULT_THRESHOLD,
    zero_tolerance: float = DEFAULT_ZERO_TOLERANCE,
    entries_per_array: int | None = None,
    random_state: int = 0,
) -> GradientCheck:
    """Compare back-propagated gradients with central finite differences, array by array.

    Parameters
    ----------
    model : Network, NNClassifier, NNRegressor or Pipeline ending in one
        A fitted estimator is checked at its fitted weights (``X`` and ``y`` are validated
        and encoded as ``predict`` and ``fit`` would); an unfitted one at the weights a
        ``fit`` would start from. A :class:`Network` is checked as it is, and ``y`` must
        then be its 2-D target matrix (one-hot rows for a softmax output). The model is
        never changed: the check runs on a float64 copy of its network.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        One batch; a few dozen rows are enough (batch normalisation needs two or more).
    y : array-like
        Targets of ``X``.
    sample_weight : array-like of shape (n_samples,), optional
        Weights of the rows in the loss (and in batch normalisation's statistics).
    step : float, default=1e-6
        Finite-difference step ``h``: ``g_approx = (J(p + h) - J(p - h)) / (2 h)``.
    threshold : float, default=1e-6
        Largest relative difference that passes.
    zero_tolerance : float, default=1e-8
        An array also passes when ``||g||`` and ``||g_approx||`` are both at most this: the
        gradient is zero up to rounding (a Dense bias followed by batch normalisation).
    entries_per_array : int, optional
        Check this many entries of each array, drawn at random (all by default). Each
        entry costs two forward passes over ``X``.
    random_state : int, default=0
        Seeds the dropout masks and the entries drawn.

    Returns
    -------
    GradientCheck
        ``.passed``, ``.worst`` and one :class:`ArrayCheck` per array; its ``repr`` is a
        table.

    Notes
    -----
    A ReLU unit whose pre-activation is within ``step`` of zero, or an L1-penalised
    parameter within ``step`` of zero, sits on a kink where finite differences are not a
    derivative: a fitted model can fail there by a little without a bug. Check an unfitted
    model, or another batch, to tell the two apart.

    Examples
    --------
    >>> from nncv import NNClassifier
    >>> from nncv.datasets import load
    >>> from nncv.network import check_gradients
    >>> X, y = load("iris")
    >>> clf = NNClassifier(hidden_layer_sizes=(5,), batch_norm=True, random_state=0)
    >>> check_gradients(clf, X[::10], y[::10]).passed
    True
    """
    if not (step > 0 and threshold > 0 and zero_tolerance >= 0):
        raise ConfigurationError(
            "step and threshold must be positive and zero_tolerance non-negative, got "
            f"{step!r}, {threshold!r}, {zero_tolerance!r}"
        )
    if entries_per_array is not None and entries_per_array < 1:
        raise ConfigurationError(f"entries_per_array must be positive, got {entries_per_array!r}")
    network, inputs, targets, sample_weight = _problem(model, X, y, sample_weight)
    network = _float64_copy(network)
    inputs = inputs.astype(np.float64) if sp.issparse(inputs) else np.asarray(inputs, np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    n_rows = inputs.shape[0]
    if sample_weight is None:
        scale: Any = 1.0 / n_rows
    else:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != (n_rows,) or not weights.sum() > 0 or (weights < 0).any():
            raise ConfigurationError(
                f"sample_weight must be {n_rows} non-negative weights with a positive sum"
            )
        scale = (weights / weights.sum())[:, None]
    seed = int(random_state)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        network.compute_gradients(inputs, targets, scale, np.random.default_rng(seed))
        analytic = network.gradients.copy()
        chooser = np.random.default_rng(seed)
        parameters = network.parameters
        results = []
        for name, where, shape in network.parameter_layout():
            size = where.stop - where.start
            entries = np.arange(size)
            if entries_per_array is not None and entries_per_array < size:
                entries = np.sort(chooser.choice(size, entries_per_array, replace=False))
            numeric = np.empty(len(entries))
            for position, entry in enumerate(where.start + entries):
                original = parameters[entry]
                parameters[entry] = original + step
                plus = _total_loss(network, inputs, targets, scale, seed)
                parameters[entry] = original - step
                minus = _total_loss(network, inputs, targets, scale, seed)
                parameters[entry] = original
                numeric[position] = (plus - minus) / (2 * step)
            backprop = analytic[where.start + entries]
            results.append(_compare(name, shape, backprop, numeric, threshold, zero_tolerance))
    return GradientCheck(tuple(results), threshold, zero_tolerance, step)


def _compare(name, shape, backprop, numeric, threshold, zero_tolerance) -> ArrayCheck:
    gradient_norm = float(np.linalg.norm(backprop))
    approximation_norm = float(np.linalg.norm(numeric))
    difference = float(np.linalg.norm(backprop - numeric))
    denominator = gradient_norm + approximation_norm
    relative = difference / denominator if denominator > 0 else 0.0
    if not math.isfinite(relative):
        relative = math.inf
    zero = max(gradient_norm, approximation_norm) <= zero_tolerance
    passed = bool(relative <= threshold or zero)
    return ArrayCheck(
        name,
        tuple(shape),
        len(backprop),
        gradient_norm,
        approximation_norm,
        difference,
        relative,
        zero,
        passed,
    )
