"""Learnt arrays of a loaded scikit-learn step, checked against the step's input width.

Every allowed step states, in :data:`SHAPES`, the shape each of its learnt arrays must have in
terms of ``n_features_in_`` and its other learnt sizes (a scaler's ``mean_`` is ``(n,)``, a
PCA's ``components_`` is ``(n_components_, n)``), and in :data:`OUTPUT_WIDTHS` how many columns
it outputs; :func:`check_chain` then requires each step of a pipeline to take exactly as many
columns as the step before gives. A mismatch is an :class:`ArtifactError` naming the array,
raised before the model is returned — never a broadcast error, a wrong prediction or an
``IndexError`` at ``predict`` time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    SplineTransformer,
    StandardScaler,
)

from nncv.exceptions import ArtifactError

__all__ = ["OUTPUT_WIDTHS", "SHAPES", "check_chain", "check_shapes", "output_width"]


def _n(obj: Any) -> int:
    return obj.n_features_in_


def _per_feature(*names: str, optional: bool = False) -> Callable[[Any], dict[str, Any]]:
    """Each of ``names`` is a ``(n_features_in_,)`` array (or None when ``optional``)."""

    def shapes(obj: Any) -> dict[str, Any]:
        return {name: ((_n(obj),), optional) for name in names}

    return shapes


def _pca(obj: Any) -> dict[str, Any]:
    k = _size(obj, "n_components_")
    return {
        "mean_": ((_n(obj),), False),
        "components_": ((k, _n(obj)), False),
        "explained_variance_": ((k,), False),
        "explained_variance_ratio_": ((k,), False),
        "singular_values_": ((k,), False),
    }


def _svd(obj: Any) -> dict[str, Any]:
    k = _array(obj, "components_").shape[0]
    return {
        "components_": ((k, _n(obj)), False),
        "explained_variance_": ((k,), False),
        "explained_variance_ratio_": ((k,), False),
        "singular_values_": ((k,), False),
    }


def _quantiles(obj: Any) -> dict[str, Any]:
    q = _size(obj, "n_quantiles_")
    return {"quantiles_": ((q, _n(obj)), False), "references_": ((q,), False)}


def _bins(obj: Any) -> dict[str, Any]:
    shapes = {"n_bins_": ((_n(obj),), False), "bin_edges_": ((_n(obj),), False)}
    n_bins, edges = _array(obj, "n_bins_"), _array(obj, "bin_edges_")
    if n_bins.shape == edges.shape == (_n(obj),):
        for i, (count, edge) in enumerate(zip(n_bins, edges, strict=True)):
            if not (isinstance(edge, np.ndarray) and edge.shape == (int(count) + 1,)):
                raise ArtifactError(
                    f"bin_edges_[{i}] must hold n_bins_[{i}] + 1 = {count + 1} edges"
                )
    return shapes


def _lists(name: str) -> Callable[[Any], dict[str, Any]]:
    """``name`` is a list with one entry per input feature."""

    def shapes(obj: Any) -> dict[str, Any]:
        value = getattr(obj, name, None)
        if not isinstance(value, list) or len(value) != _n(obj):
            raise ArtifactError(f"{name!r} must be a list of {_n(obj)} entries, one per feature")
        return {}

    return shapes


def _no_arrays(obj: Any) -> dict[str, Any]:
    return {}


def _selected(columns: Any, obj: Any, name: str) -> int | None:
    """How many of the ``n_features_in_`` columns ``columns`` selects (None: not known)."""
    n = _n(obj)
    if isinstance(columns, int | np.integer) and not isinstance(columns, bool):
        columns = [columns]
    if isinstance(columns, slice):
        return len(range(n)[columns])
    values = np.asarray(columns) if isinstance(columns, list | tuple | np.ndarray) else None
    if values is None:
        return None
    if values.dtype.kind == "b":
        if values.shape != (n,):
            raise ArtifactError(
                f"transformer {name!r} selects columns with a mask of {values.shape}"
            )
        return int(values.sum())
    if values.dtype.kind in "iu":
        if values.ndim != 1 or np.any(values >= n) or np.any(values < -n):
            raise ArtifactError(
                f"transformer {name!r} selects columns {values.tolist()[:10]} of {n} features"
            )
        return len(values)
    names = getattr(obj, "feature_names_in_", None)
    if names is not None and values.ndim == 1 and not set(values.tolist()) <= set(names.tolist()):
        raise ArtifactError(f"transformer {name!r} selects columns the input does not have")
    return len(values) if values.ndim == 1 else None


def _columns(obj: Any) -> dict[str, Any]:
    """A fitted ColumnTransformer's column selections fit its input; each transformer takes them."""
    for entry in getattr(obj, "transformers_", None) or []:
        if not (isinstance(entry, tuple) and len(entry) == 3):
            raise ArtifactError("'transformers_' must hold (name, transformer, columns) triples")
        name, transformer, columns = entry
        count = _selected(columns, obj, name)
        takes = getattr(transformer, "n_features_in_", None)
        if count is not None and takes is not None and takes != count:
            raise ArtifactError(
                f"transformer {name!r} takes {takes} features, but its columns select {count}"
            )
    return {}


#: Allowed class → expected ``{attribute: (shape, may_be_None)}`` of its learnt arrays.
SHAPES: dict[type, Callable[[Any], dict[str, Any]]] = {
    StandardScaler: _per_feature("mean_", "scale_", "var_", optional=True),
    MinMaxScaler: _per_feature("min_", "scale_", "data_min_", "data_max_", "data_range_"),
    RobustScaler: _per_feature("center_", "scale_", optional=True),
    MaxAbsScaler: _per_feature("max_abs_", "scale_"),
    SimpleImputer: _per_feature("statistics_"),
    PCA: _pca,
    TruncatedSVD: _svd,
    QuantileTransformer: _quantiles,
    PowerTransformer: _per_feature("lambdas_"),
    KBinsDiscretizer: _bins,
    OneHotEncoder: _lists("categories_"),
    OrdinalEncoder: _lists("categories_"),
    SplineTransformer: _lists("bsplines_"),
    ColumnTransformer: _columns,
    PolynomialFeatures: _no_arrays,
    Normalizer: _no_arrays,
}


def _polynomial_width(obj: PolynomialFeatures) -> int:
    expected = PolynomialFeatures._num_combinations(
        _n(obj), obj._min_degree, obj._max_degree, obj.interaction_only, obj.include_bias
    )
    if obj.n_output_features_ != expected:
        raise ArtifactError(
            f"n_output_features_ is {obj.n_output_features_}, the degree and input width give "
            f"{expected}"
        )
    return expected


def _spline_width(obj: SplineTransformer) -> int:
    splines = {b.c.shape[1:] for b in obj.bsplines_}
    if len(splines) != 1 or len(next(iter(splines))) != 1:
        raise ArtifactError("bsplines_ must all have 2-D coefficients of one width")
    expected = _n(obj) * (next(iter(splines))[0] - (0 if obj.include_bias else 1))
    if obj.n_features_out_ != expected:
        raise ArtifactError(f"n_features_out_ is {obj.n_features_out_}, bsplines_ give {expected}")
    return expected


def _bins_width(obj: KBinsDiscretizer) -> int:
    if obj.encode == "ordinal":
        return _n(obj)
    return int(np.sum(obj.n_bins_))


def _named_width(obj: Any) -> int:
    """The number of output feature names (the step's own account of its output)."""
    try:
        return len(obj.get_feature_names_out())
    except Exception as error:  # a hostile state can make scikit-learn fail in many ways
        raise ArtifactError(f"its learnt state does not describe its output: {error}") from None


#: Allowed class → the number of columns it outputs (absent: not checked).
OUTPUT_WIDTHS: dict[type, Callable[[Any], int]] = {
    **dict.fromkeys(
        [StandardScaler, MinMaxScaler, RobustScaler, MaxAbsScaler, Normalizer],
        _n,
    ),
    **dict.fromkeys([QuantileTransformer, PowerTransformer, OrdinalEncoder], _n),
    PCA: lambda obj: _array(obj, "components_").shape[0],
    TruncatedSVD: lambda obj: _array(obj, "components_").shape[0],
    PolynomialFeatures: _polynomial_width,
    SplineTransformer: _spline_width,
    KBinsDiscretizer: _bins_width,
    SimpleImputer: _named_width,
    OneHotEncoder: _named_width,
}


def _size(obj: Any, name: str) -> int:
    value = getattr(obj, name, None)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ArtifactError(f"{name!r} must be a non-negative integer, got {value!r}")
    return int(value)


def _array(obj: Any, name: str) -> np.ndarray:
    value = getattr(obj, name, None)
    if not isinstance(value, np.ndarray):
        raise ArtifactError(f"{name!r} must be an array, got {type(value).__name__}")
    return value


def check_shapes(obj: Any, where: str) -> None:
    """Refuse, naming the array, a learnt array of ``obj`` of the wrong shape or dtype."""
    rule = SHAPES.get(type(obj))
    learnt = [v for v in vars(obj) if v.endswith("_") and not v.startswith("__")]
    if rule is None or not learnt:  # not fitted: a template inside a composite's params
        return
    try:
        _size(obj, "n_features_in_")
        for name, (shape, optional) in rule(obj).items():
            value = getattr(obj, name, None)
            if value is None and optional:
                continue
            array = _array(obj, name)
            if array.shape != shape:
                raise ArtifactError(
                    f"{name!r} has shape {array.shape}, but this {type(obj).__name__} takes "
                    f"{_n(obj)} features, so it must be {shape}"
                )
            if array.dtype.kind not in "fiuO":
                raise ArtifactError(f"{name!r} has dtype {array.dtype}, expected a number")
        for nested in ("_scaler", "_encoder"):
            inner = getattr(obj, nested, None)
            if inner is not None and getattr(inner, "n_features_in_", None) != _n(obj):
                raise ArtifactError(f"{nested!r} takes a different number of features")
        output_width(obj)
    except ArtifactError as error:
        raise ArtifactError(f"{where}: {error}") from None


def output_width(obj: Any) -> int | None:
    """How many columns ``obj`` outputs, where nncv knows (None otherwise)."""
    if isinstance(obj, Pipeline):
        widths = [output_width(step) for _, step in obj.steps if _is_step(step)]
        return widths[-1] if widths else None
    rule = OUTPUT_WIDTHS.get(type(obj))
    if rule is None or getattr(obj, "n_features_in_", None) is None:  # unknown or not fitted
        return None
    return int(rule(obj))


def _is_step(step: Any) -> bool:
    return not (step is None or isinstance(step, str))


def check_chain(pipeline: Pipeline, where: str) -> None:
    """Each step takes as many columns as the step before it outputs."""
    previous: tuple[str, int] | None = None
    for name, step in pipeline.steps:
        if not _is_step(step):
            continue
        takes = getattr(step, "n_features_in_", None)
        if previous is not None and takes is not None and takes != previous[1]:
            raise ArtifactError(
                f"{where}: step {name!r} takes {takes} features, but step {previous[0]!r} "
                f"outputs {previous[1]}"
            )
        width = output_width(step)
        previous = None if width is None else (name, width)
