"""Input checks that name the problem: numeric, rectangular, representable, non-negative.

scikit-learn's own validation catches most bad inputs; these helpers cover what it lets
through or reports without naming the argument:

- a ragged list (NumPy's "inhomogeneous shape") or text where numbers are expected
  ("could not convert string to float") — the message names the argument;
- values finite in float64 but too large for the network's arithmetic (``X * 1e300``):
  Adam's second moment squares gradients that scale with ``X``, a scaler squares ``X`` to
  get its variance, so values above ``sqrt(finfo(dtype).max)`` overflow silently into one
  constant prediction or a NaN much later;
- negative sample weights, which train toward maximising the loss;
- targets whose standardisation overflows (``y * 1e300``), and NaN/inf predictions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import InvalidParameterError

__all__ = [
    "check_finite_outputs",
    "check_finite_range",
    "check_non_negative_weights",
    "check_not_ragged",
    "check_positive_ints",
    "check_training_data",
    "conversion_error",
    "largest_safe_value",
    "standardisation",
    "to_floats",
]


def largest_safe_value(dtype: Any) -> float:
    """The largest magnitude whose square is still finite in ``dtype`` (1.8e19 in float32)."""
    return math.sqrt(float(np.finfo(np.dtype(dtype)).max))


def check_not_ragged(X: Any, name: str = "X") -> None:
    """Refuse a list (or tuple) of rows whose rows have different lengths, naming the row.

    Anything else (arrays, DataFrames, sparse matrices) is left to scikit-learn.
    """
    if not isinstance(X, list | tuple) or not X:
        return
    first = X[0]
    if not isinstance(first, Sequence | np.ndarray) or isinstance(first, str | bytes):
        return
    width = len(first)
    for index, row in enumerate(X):
        length = len(row) if isinstance(row, Sequence | np.ndarray) else None
        if length != width or isinstance(row, str | bytes):
            shown = "not a sequence" if length is None else f"{length} values"
            raise ValueError(
                f"{name} is a ragged list: row 0 has {width} values but row {index} has "
                f"{shown}; every row must have the same number of features"
            )


def _text_column(X: Any) -> Any:
    """The first non-numeric column of a DataFrame ``X`` (None for anything else)."""
    if not (hasattr(X, "dtypes") and hasattr(X, "columns")):
        return None
    for column, dtype in zip(X.columns, X.dtypes, strict=True):
        if getattr(dtype, "kind", "O") in "fiub":
            continue
        try:  # a categorical or object column of numbers converts
            np.asarray(X[column], dtype=np.float64)
        except (TypeError, ValueError):
            return column
    return None


def conversion_error(error: Exception, name: str, X: Any = None) -> ValueError | None:
    """Rewrite NumPy's "could not convert string to float: 'a'" so it names ``name``
    (and the column, when ``X`` is a DataFrame)."""
    text = str(error)
    if "could not convert" in text or "invalid literal" in text:
        column = _text_column(X)
        if column is not None:
            name = f"{name} column {column!r}"
        return ValueError(
            f"{name} must hold numbers only, but {text}; encode text columns first "
            "(OneHotEncoder or OrdinalEncoder in the pipeline)"
        )
    if "inhomogeneous" in text or "setting an array element with a sequence" in text:
        return ValueError(f"{name} is ragged (rows of different lengths): {text}")
    return None


def to_floats(value: Any, name: str) -> tuple[float, ...]:
    """A sequence parameter as floats; text or nested values raise a ValueError naming it."""
    values = []
    for item in value:
        if isinstance(item, str | bytes) or np.ndim(item) != 0:
            raise InvalidParameterError(f"The {name!r} parameter must hold numbers, got {value!r}")
        try:
            values.append(float(item))
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"The {name!r} parameter must hold numbers, got {value!r}"
            ) from None
    return tuple(values)


def check_positive_ints(value: Any, name: str) -> tuple[int, ...]:
    """One positive int or a sequence of them (maybe empty); booleans are refused."""
    sizes = tuple(value) if np.ndim(value) else (value,)
    if not all(
        isinstance(s, Integral | np.integer) and not isinstance(s, bool | np.bool_) and s >= 1
        for s in sizes
    ):
        raise InvalidParameterError(
            f"The {name!r} parameter must be a positive int or a sequence of positive ints "
            f"(not booleans); got {value!r}."
        )
    return tuple(int(s) for s in sizes)


def check_finite_range(
    X: Any, dtype: Any, name: str = "X", *, what: str = "the network's dtype"
) -> None:
    """Refuse values of ``X`` whose squares overflow ``dtype``, saying that they overflow.

    ``X`` is a numeric array or sparse matrix already checked for NaN and infinity.
    """
    values = X.data if sp.issparse(X) else X
    values = np.asarray(values)
    if values.size == 0 or values.dtype.kind not in "fiu":
        return
    with np.errstate(all="ignore"):
        largest = float(max(abs(float(np.max(values))), abs(float(np.min(values)))))
    limit = largest_safe_value(dtype)
    if math.isinf(largest):
        return  # infinity: scikit-learn's own check names it ("Input X contains infinity")
    if largest > limit:
        raise ValueError(
            f"{name} has values up to {largest:.3g} in magnitude, above {limit:.3g}, where "
            f"squares overflow {np.dtype(dtype).name} ({what}): a StandardScaler's variance "
            "or the optimiser's squared gradients would overflow, and training would "
            f"silently give NaN or one constant prediction; rescale {name} first"
        )


def check_non_negative_weights(
    sample_weight: np.ndarray | None, name: str = "sample_weight"
) -> None:
    """Refuse negative weights: they turn the loss around (training maximises it)."""
    if sample_weight is None:
        return
    negative = np.flatnonzero(np.asarray(sample_weight) < 0)
    if negative.size:
        raise ValueError(
            f"{name} must be non-negative: {negative.size} negative weight(s), the first "
            f"{float(sample_weight[negative[0]])!r} at index {int(negative[0])}; a negative "
            "weight makes training maximise that sample's loss"
        )


def standardisation(
    Y: np.ndarray, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, scale)`` per column of the float64 targets ``Y`` (scale 1 for a constant).

    Computed directly; when that overflows (``y * 1e300``: the squared deviations are not
    representable), again on ``Y`` divided by its largest magnitude, then scaled back.
    Raises a ValueError naming y when even that is not representable in float64.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = np.average(Y, axis=0, weights=sample_weight)
        scale = np.sqrt(np.average((Y - mean) ** 2, axis=0, weights=sample_weight))
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale))):
            magnitude = np.max(np.abs(Y), axis=0)
            magnitude = np.where(magnitude > 0, magnitude, 1.0)
            unit = Y / magnitude
            unit_mean = np.average(unit, axis=0, weights=sample_weight)
            unit_scale = np.sqrt(np.average((unit - unit_mean) ** 2, axis=0, weights=sample_weight))
            mean, scale = unit_mean * magnitude, unit_scale * magnitude
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale))):
        raise ValueError(
            f"y is too large to standardise in float64 (values up to "
            f"{float(np.max(np.abs(Y))):.3g} in magnitude); rescale y"
        )
    return mean, np.where(scale > 0, scale, 1.0)


def check_finite_outputs(outputs: np.ndarray, what: str) -> None:
    """Raise :class:`~nncv.exceptions.DivergedError` when predictions hold NaN or infinity."""
    if not np.all(np.isfinite(outputs)):
        from nncv.exceptions import DivergedError

        raise DivergedError(
            f"{what} hold NaN or infinity: the network's arithmetic overflowed (weights or "
            "inputs too large for its dtype); rescale X and y or lower the learning rate"
        )


#: Estimators (or a pipeline's first step) that need numeric X: text in X is an error
#: nncv names before fitting, rather than NumPy's "could not convert string to float".
_NUMERIC_FIRST_STEPS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler")


def _needs_numbers(estimator: Any) -> bool:
    from sklearn.pipeline import Pipeline

    first = estimator
    while isinstance(first, Pipeline):
        first = first.steps[0][1]
    return hasattr(first, "iter_fit") or type(first).__name__ in _NUMERIC_FIRST_STEPS


def check_training_data(X: Any, estimator: Any = None, error: type = ValueError) -> None:
    """What :func:`nncv.cross_validate` and :func:`nncv.tune` check in ``X`` before any fit.

    Raises ``error`` (a ValueError subclass: ``CVSetupError``, ``SearchError``).
    """
    try:
        _check_training_data(X, estimator)
    except ValueError as problem:
        if isinstance(problem, error):
            raise
        raise error(str(problem)) from problem


def _check_training_data(X: Any, estimator: Any) -> None:
    """The body of :func:`check_training_data`.

    A ragged list is refused; text is refused (naming X, or the DataFrame column) when the
    estimator is an nncv network or a pipeline starting with a numeric scaler (a pipeline
    starting with an encoder may take text); numeric values whose squares overflow
    float64 are refused: a StandardScaler's variance would overflow into "Input X
    contains NaN" a step later, and the network's arithmetic with it.
    """
    check_not_ragged(X, "X")
    numbers_only = estimator is None or _needs_numbers(estimator)
    if hasattr(X, "dtypes") and hasattr(X, "columns"):  # a DataFrame
        text = _text_column(X)
        if text is not None:
            if numbers_only:
                raise ValueError(
                    f"X column {text!r} is not numeric (dtype {X[text].dtype}); encode it "
                    "first (OneHotEncoder or OrdinalEncoder in the pipeline)"
                )
            return
        # column extremes, not a copy of the frame (cross-validation keeps memory flat)
        numeric = [c for c, d in zip(X.columns, X.dtypes, strict=True) if d.kind in "fiub"]
        values = np.array([float(f(X[c])) for c in numeric for f in (np.max, np.min)])
    elif sp.issparse(X):
        values = X.data
    elif isinstance(X, np.ndarray):
        values = X
    else:
        values = X if hasattr(X, "dtype") else None
        if values is None:
            try:
                values = np.asarray(X)
            except ValueError as error:
                named = conversion_error(error, "X")
                raise (named or error) from error
    values = np.asarray(values)
    if values.dtype.kind not in "fiub":
        if not numbers_only:
            return
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError) as error:
            named = conversion_error(error, "X")
            raise (named or ValueError(f"X must hold numbers only: {error}")) from error
    check_finite_range(values, np.float64, "X", what="where scalers compute")
