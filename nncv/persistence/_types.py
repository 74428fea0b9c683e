"""The fixed allow-list of classes an artifact may hold, and how each is saved and rebuilt.

A *node* describes one estimator:

* scikit-learn classes: ``{"type": <name>, "params": {...}, "attributes": {...}}`` — the
  constructor parameters (``get_params(deep=False)``) and every learnt attribute (the rest of
  the instance ``__dict__``), both as typed JSON values. Rebuilt as ``Class(**params)`` followed
  by ``setattr`` of each attribute.
* nncv estimators: ``{"type": <name>, "state": {...}, "arrays": {<name>: <npz key>}}`` — the
  output of ``_get_fitted_state``; rebuilt with ``_from_fitted_state``.

Types are looked up by name in :data:`TYPES` only: nothing named in a file is ever imported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.exceptions import NotFittedError
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    SplineTransformer,
)
from sklearn.utils.validation import check_is_fitted

from nncv.ensemble import FoldEnsemble, SeedEnsemble
from nncv.estimators import NNClassifier, NNRegressor
from nncv.exceptions import ArtifactError, NncvError
from nncv.persistence._params import check_params
from nncv.persistence._shapes import check_chain, check_shapes
from nncv.persistence._state import check_state
from nncv.persistence._values import ValueDecoder, ValueEncoder, check_key
from nncv.scalers import SCALERS

__all__ = ["TYPES", "check_saveable", "decode_node", "encode_node", "summarise"]

NNCV_TYPES: dict[str, type] = {"nncv.NNClassifier": NNClassifier, "nncv.NNRegressor": NNRegressor}


def _by_name(module: str, *classes: type) -> dict[str, type]:
    """``{"<public module>.<class name>": class}``: the names artifacts use."""
    return {f"{module}.{cls.__name__}": cls for cls in classes}


#: The savable scalers of the scaler registry (:mod:`nncv.scalers`).
SCALER_TYPES: dict[str, type] = {
    entry.saved_as: entry.cls for entry in SCALERS.values() if entry.saved_as
}
#: Other preprocessing steps an artifact may hold.
TRANSFORMER_TYPES: dict[str, type] = {
    **_by_name("sklearn.decomposition", PCA, TruncatedSVD),
    **_by_name("sklearn.impute", SimpleImputer),
    **_by_name(
        "sklearn.preprocessing",
        FunctionTransformer,
        KBinsDiscretizer,
        Normalizer,
        OneHotEncoder,
        OrdinalEncoder,
        PolynomialFeatures,
        PowerTransformer,
        QuantileTransformer,
        SplineTransformer,
    ),
}
#: Composites: they hold other steps.
COMPOSITE_TYPES: dict[str, type] = {
    **_by_name("sklearn.compose", ColumnTransformer),
    **_by_name("sklearn.pipeline", Pipeline),
}
SKLEARN_TYPES: dict[str, type] = {
    **COMPOSITE_TYPES,
    **SCALER_TYPES,
    **TRANSFORMER_TYPES,
}
#: Ensembles: saved as their fitted members only (``estimators_``), rebuilt from them.
ENSEMBLE_TYPES: dict[str, type] = {
    "nncv.FoldEnsemble": FoldEnsemble,
    "nncv.SeedEnsemble": SeedEnsemble,
}
TYPES: dict[str, type] = {**NNCV_TYPES, **SKLEARN_TYPES, **ENSEMBLE_TYPES}
_NAMES: dict[type, str] = {cls: name for name, cls in TYPES.items()}
_SKIPPED_STEPS = ("passthrough", "drop", None)


def _supported() -> str:
    return ", ".join(name.rsplit(".", 1)[1] for name in sorted(TYPES) if "Function" not in name)


def _type_name(obj: Any, where: str) -> str:
    name = _NAMES.get(type(obj))
    if name is None:
        raise ArtifactError(
            f"cannot save {where}: {type(obj).__module__}.{type(obj).__qualname__} is not "
            f"supported; nncv saves {_supported()} (and identity FunctionTransformers)"
        )
    if type(obj) is FunctionTransformer and (obj.func is not None or obj.inverse_func is not None):
        raise ArtifactError(
            f"cannot save {where}: a FunctionTransformer with a function cannot be saved "
            "without pickle (only the identity, func=None, is supported)"
        )
    return name


def _child_labels(obj: Any, where: str, root: bool) -> dict[int, str]:
    """Names for the estimators inside ``obj`` to use in error messages."""
    prefix = "" if root else f"{where} → "
    labels: dict[int, str] = {}
    if isinstance(obj, Pipeline):
        for name, step in obj.steps:
            labels[id(step)] = f"{prefix}step {name!r}"
    if isinstance(obj, ColumnTransformer):
        for name, transformer, _ in [*obj.transformers, *getattr(obj, "transformers_", [])]:
            labels[id(transformer)] = f"{prefix}transformer {name!r}"
    return labels


# --------------------------------------------------------------------------- checks
def check_saveable(obj: Any, where: str, root: bool = True) -> None:
    """Refuse, naming the step, an unsupported or unfitted estimator anywhere in ``obj``."""
    name = _type_name(obj, where)
    labels = _child_labels(obj, where, root)
    if isinstance(obj, Pipeline):
        for step in [s for _, s in obj.steps if not _is_skipped(s)]:
            check_saveable(step, labels[id(step)], root=False)
        return
    if isinstance(obj, FunctionTransformer):
        return
    if isinstance(obj, FoldEnsemble):
        if not hasattr(obj, "estimators_"):
            raise ArtifactError(
                f"cannot save {where}: this {type(obj).__name__} is not fitted; fit it first"
            )
        for index, member in enumerate(obj.estimators_):
            check_saveable(member, f"{where} → member {index}", root=False)
        return
    try:
        check_is_fitted(obj, "network_" if name in NNCV_TYPES else None)
    except NotFittedError:
        raise ArtifactError(
            f"cannot save {where}: this {type(obj).__name__} is not fitted; fit it first"
        ) from None
    if isinstance(obj, ColumnTransformer):
        for _, transformer, _ in obj.transformers_:
            if not _is_skipped(transformer):
                check_saveable(transformer, labels[id(transformer)], root=False)


def _is_skipped(step: Any) -> bool:
    return isinstance(step, str | type(None)) and step in _SKIPPED_STEPS


# --------------------------------------------------------------------------- saving
def encode_node(obj: Any, key: str, where: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The manifest node of ``obj``; its numeric arrays are added to ``arrays``."""
    name = _type_name(obj, where)
    if name in NNCV_TYPES:
        return _encode_nncv(obj, name, key, where, arrays)

    def nested(child: Any, child_key: str, child_where: str) -> dict[str, Any]:
        return encode_node(child, child_key, child_where, arrays)

    encoder = ValueEncoder(arrays, nested)
    labels = _child_labels(obj, where, root=key == "")
    if name in ENSEMBLE_TYPES:  # the members; params and the rest are rebuilt from them
        params, attributes = {}, {"estimators_": list(obj.estimators_)}
    else:
        params = obj.get_params(deep=False)
        check_params(type(obj), params, f"cannot save {where}")
        attributes = {k: v for k, v in vars(obj).items() if k not in params}
    for attribute in attributes:
        _check_attribute_name(type(obj), attribute, where)
    prefix = f"{key}." if key else ""
    return {
        "type": name,
        "params": {k: encoder.encode(v, prefix + k, where, labels) for k, v in params.items()},
        "attributes": {
            k: encoder.encode(v, prefix + k, where, labels) for k, v in attributes.items()
        },
    }


def _encode_nncv(
    obj: Any, name: str, key: str, where: str, arrays: dict[str, np.ndarray]
) -> dict[str, Any]:
    try:
        meta, state_arrays = obj._get_fitted_state()
        json.dumps(meta, allow_nan=False)
    except (NncvError, TypeError, ValueError) as error:
        raise ArtifactError(f"cannot save {where}: {error}") from error
    prefix = f"{key}." if key else ""
    references = {}
    for array_name, array in state_arrays.items():
        array_key = check_key(prefix + array_name, f"cannot save {where}")
        if type(array) is not np.ndarray or array.dtype.kind not in "biuf":
            raise ArtifactError(f"cannot save {where}: state array {array_name!r} is not numeric")
        if array_key in arrays:
            raise ArtifactError(f"cannot save {where}: two arrays share the name {array_key!r}")
        arrays[array_key] = array
        references[array_name] = array_key
    return {"type": name, "state": meta, "arrays": references}


def _check_attribute_name(cls: type, attribute: Any, where: str) -> None:
    """Only plain instance attributes: never dunders, methods or properties of the class."""
    if (
        not isinstance(attribute, str)
        or not attribute.isidentifier()
        or attribute.startswith("__")
        or hasattr(cls, attribute)
    ):
        raise ArtifactError(f"{where}: {attribute!r} is not a learnt attribute nncv can set")


# --------------------------------------------------------------------------- loading
def decode_node(node: Any, where: str, arrays: Mapping[str, np.ndarray], used: set[str]) -> Any:
    """Build the estimator described by ``node`` (``where`` locates it in error messages)."""
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise ArtifactError(f"{where}: an estimator node needs a 'type' string")
    name = node["type"]
    cls = TYPES.get(name)
    if cls is None:
        raise ArtifactError(
            f"{where}: manifest.json names the unknown type {name!r}; nncv only builds "
            f"{sorted(TYPES)} and never imports a name read from a file"
        )
    if name in NNCV_TYPES:
        return _decode_nncv(cls, node, where, arrays, used)
    if set(node) != {"type", "params", "attributes"}:
        raise ArtifactError(f"{where}: a {name} node holds exactly type, params and attributes")
    params, attributes = node["params"], node["attributes"]
    if not isinstance(params, dict) or not isinstance(attributes, dict):
        raise ArtifactError(f"{where}: params and attributes must be JSON objects")

    def nested(child: Any, child_where: str) -> Any:
        return decode_node(child, child_where, arrays, used)

    decoder = ValueDecoder(arrays, nested, used)
    kwargs = {k: decoder.decode(v, f"{where}.params.{k}") for k, v in params.items()}
    check_params(cls, kwargs, where)
    try:
        obj = cls(**kwargs)
    except TypeError as error:
        raise ArtifactError(f"{where}: {name} does not accept these params: {error}") from error
    _type_name(obj, where)  # refuses a FunctionTransformer that would call a function
    for attribute, value in attributes.items():
        _check_attribute_name(cls, attribute, where)
        if attribute in kwargs:
            raise ArtifactError(f"{where}: {attribute!r} is both a param and an attribute")
        setattr(obj, attribute, decoder.decode(value, f"{where}.attributes.{attribute}"))
    if name in ENSEMBLE_TYPES:
        _rebuild_ensemble(obj, attributes, where)
        return obj
    check_shapes(obj, where)
    if isinstance(obj, Pipeline):
        check_chain(obj, where)
    return obj


def _rebuild_ensemble(obj: Any, attributes: dict, where: str) -> None:
    """Check a loaded ensemble's members (one task, one input width, the same classes)."""
    members = getattr(obj, "estimators_", None)
    if set(attributes) != {"estimators_"} or not isinstance(members, list) or not members:
        raise ArtifactError(
            f"{where}: a {type(obj).__name__} node holds a non-empty estimators_ list"
        )
    try:
        obj._set_members(members)
    except NncvError as error:
        raise ArtifactError(f"{where}: inconsistent ensemble members: {error}") from error
    obj.estimators = [clone(member) for member in members]


def _decode_nncv(
    cls: type, node: dict, where: str, arrays: Mapping[str, np.ndarray], used: set[str]
) -> Any:
    if set(node) != {"type", "state", "arrays"}:
        raise ArtifactError(f"{where}: an nncv estimator node holds exactly type, state and arrays")
    meta, references = node["state"], node["arrays"]
    if not isinstance(meta, dict) or not isinstance(references, dict):
        raise ArtifactError(f"{where}: state and arrays must be JSON objects")
    state_arrays = {}
    for array_name, key in references.items():
        if not isinstance(key, str) or key not in arrays:
            raise ArtifactError(f"{where}: refers to array {key!r}, which arrays.npz lacks")
        used.add(key)
        state_arrays[array_name] = arrays[key]
    check_state(meta, state_arrays, where)
    try:
        estimator = cls._from_fitted_state(meta, state_arrays)
        estimator._validate_params()  # the hook does not check the constructor params
        _check_network_fits(estimator)
    except (NncvError, KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise ArtifactError(
            f"{where}: the saved {cls.__name__} state is inconsistent: {error!r}"
        ) from error
    _check_optimizer_slots(estimator, state_arrays, where)
    return estimator


def _check_optimizer_slots(estimator: Any, state_arrays: Mapping[str, Any], where: str) -> None:
    """The optimiser's moments in the state are exactly those its optimiser keeps."""
    optimizer = estimator._trainer.optimizer
    stored = sorted(key for key in state_arrays if key.startswith("optimizer."))
    expected = sorted(f"optimizer.{slot}_0" for slot in optimizer._slots)
    if stored and stored != expected:
        raise ArtifactError(
            f"{where}: the state holds optimizer arrays {stored}, but its "
            f"{type(optimizer).__name__} optimizer keeps {expected}"
        )


def _check_network_fits(estimator: Any) -> None:
    """The input width and dtype the estimator declares are the network's."""
    network = estimator.network_
    if estimator.n_features_in_ != network.n_inputs:
        raise ValueError(
            f"n_features_in is {estimator.n_features_in_}, the network takes {network.n_inputs}"
        )
    if np.dtype(estimator.dtype) != network.dtype:
        raise ValueError(f"dtype is {estimator.dtype}, the network computes in {network.dtype}")


# --------------------------------------------------------------------------- summary
def summarise(obj: Any, root: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> dict:
    """What ``inspect`` shows first: steps, final estimator, classes, features, layers."""
    summary: dict[str, Any] = {"type": root["type"]}
    final = root
    if root["type"] == "sklearn.pipeline.Pipeline":
        summary["steps"] = []
        for name, step in obj.steps:
            step_type = step if _is_skipped(step) else _NAMES[type(step)]
            summary["steps"].append({"name": name, "type": step_type})
        last = root["params"]["steps"][-1]["tuple"][1]
        final = last.get("estimator", {}) if isinstance(last, dict) else {}
    n_features = getattr(obj, "n_features_in_", None)
    names = getattr(obj, "feature_names_in_", None)
    summary["n_features_in"] = None if n_features is None else int(n_features)
    summary["feature_names_in"] = None if names is None else [str(n) for n in names]
    if final.get("type") in NNCV_TYPES:
        meta = final["state"]
        classes = meta.get("classes")
        if classes is None and "classes" in final["arrays"]:
            classes = arrays[final["arrays"]["classes"]].tolist()
        summary["estimator"] = {
            "type": final["type"],
            "params": meta.get("params"),
            "classes": classes,
            "target_type": meta.get("target_type"),
            "layer_shapes": meta.get("layer_shapes"),
            "n_iter": meta.get("n_iter"),
        }
    return summary
