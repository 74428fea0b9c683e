"""Constructor parameters of a scikit-learn step, checked by value on save and on load.

Types alone are not enough: ``Pipeline(memory="/some/dir")`` holds only a string, yet refitting
it makes joblib unpickle whatever cache files that directory holds. So every parameter is

1. checked against the class's own ``_parameter_constraints`` (scikit-learn's validation:
   types, ranges, string options);
2. checked for the *kind* of value it holds: a NumPy dtype only in a ``dtype`` parameter, an
   estimator only where a composite holds its steps (:data:`ESTIMATOR_PARAMS`), never a
   callable;
3. held to :data:`ONLY_VALUES` where scikit-learn accepts any string or object but a saved
   model needs a plain value (``Pipeline.memory`` must be null), and refused as a string where
   scikit-learn's constraint accepts *any* string and no entry here says which are safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from nncv.exceptions import ArtifactError

__all__ = ["ESTIMATOR_PARAMS", "ONLY_VALUES", "check_params", "value_kinds"]

#: (class, parameter) → the only values an artifact may hold there, and why.
ONLY_VALUES: dict[tuple[type, str], tuple[tuple[Any, ...], str]] = {
    (Pipeline, "memory"): (
        (None,),
        "a cache directory (joblib would unpickle the files in it when the model is refit)",
    ),
    (ColumnTransformer, "verbose_feature_names_out"): (
        (True, False),
        "a format string or callable for feature names",
    ),
}

#: (class, parameter) pairs that hold estimators: the steps of composites.
ESTIMATOR_PARAMS: frozenset[tuple[type, str]] = frozenset(
    {(Pipeline, "steps"), (ColumnTransformer, "transformers"), (ColumnTransformer, "remainder")}
)


def value_kinds(value: Any) -> set[str]:
    """The kinds of plain value found in ``value`` (containers are looked through)."""
    if value is None:
        return {"null"}
    if isinstance(value, bool | np.bool_):
        return {"bool"}
    if isinstance(value, int | float | np.number):
        return {"number"}
    if isinstance(value, str):
        return {"string"}
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return {"dtype"}
    if isinstance(value, slice):
        return {"slice"}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return set().union(*(value_kinds(v) for v in value.ravel()), {"array"})
        return {"array"}
    if isinstance(value, list | tuple):
        return set().union(set(), *(value_kinds(v) for v in value))
    if isinstance(value, dict):
        return set().union(set(), *(value_kinds(v) for v in value.values()))
    if hasattr(value, "get_params") and not isinstance(value, type):
        return {"estimator"}
    if callable(value):
        return {"callable"}
    return {"object"}


def _accepts_any_string(constraints: list[Any]) -> bool:
    return any(c is str for c in constraints)


def check_params(cls: type, params: Mapping[str, Any], where: str) -> None:
    """Refuse, naming it, a parameter of ``cls`` whose value a saved model must not hold.

    Raises
    ------
    ArtifactError
        If a value fails the class's constraints, is of a kind not allowed there (a dtype
        outside ``dtype``, an estimator outside a composite's steps, a callable, an object) or
        is not among :data:`ONLY_VALUES` for its parameter.
    """
    constraints: dict[str, list[Any]] = getattr(cls, "_parameter_constraints", {})
    for name, value in params.items():
        label = f"{where}: parameter {name!r} of {cls.__name__}"
        allowed = {"null", "bool", "number", "string", "array", "slice"}
        if name == "dtype":
            allowed.add("dtype")
        if (cls, name) in ESTIMATOR_PARAMS:
            allowed.add("estimator")
        refused = value_kinds(value) - allowed
        if refused:
            raise ArtifactError(
                f"{label} holds a {sorted(refused)[0]} ({_short(value)}); nncv stores plain "
                "values there only"
            )
        if (cls, name) in ONLY_VALUES:
            values, meaning = ONLY_VALUES[(cls, name)]
            if not any(value is v or (type(value) is type(v) and value == v) for v in values):
                raise ArtifactError(
                    f"{label} is {_short(value)}, but a saved model may only hold "
                    f"{' or '.join(repr(v) for v in values)} there, never {meaning}"
                )
        elif isinstance(value, str) and _accepts_any_string(constraints.get(name, [])):
            raise ArtifactError(
                f"{label} is the string {_short(value)}; scikit-learn accepts any string there "
                "(a path?) and nncv does not store such values"
            )
    try:
        validate_parameter_constraints(
            {k: v for k, v in constraints.items() if k in params},
            dict(params),
            caller_name=cls.__name__,
        )
    except InvalidParameterError as error:
        raise ArtifactError(f"{where}: {error}") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
