"""An nncv estimator's saved state checked against itself, before anything is built.

The manifest describes the network (``state.network``: input width, hidden widths, outputs,
dtype), repeats it as ``state.layer_shapes`` and ``state.n_features_in``, and lists the
state's arrays (``network.parameters``, ``optimizer.<slot>_<i>``, ``history.<column>``,
``classes`` or ``target_mean``/``target_scale``). :func:`check_state` derives from the
description the shape and dtype each array must have — :data:`STATE_ARRAYS`, one entry per
kind of array — and refuses, naming the array, any that differs. Only then is the estimator
built, so nothing is allocated beyond what the (already read and hashed) arrays hold: a
manifest declaring ``hidden_layer_sizes=[3000000]`` next to a small parameter vector is refused
without allocating the network it describes.

A new kind of state array (say a batch-normalisation statistic) is one :class:`StateArray`
entry here, and possibly one line in :class:`StateFacts`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nncv.exceptions import ArtifactError

__all__ = ["STATE_ARRAYS", "StateArray", "StateFacts", "check_state"]

#: Hidden widths, output width and input width above this are refused outright (a network of
#: that size could not have been saved by anyone: its parameters would not fit the format).
_MAX_WIDTH = 2**31 - 1


def _count(value: Any, what: str, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _MAX_WIDTH:
        raise ArtifactError(f"{where}: {what} must be an integer >= {minimum}, got {value!r}")
    return value


def _flags(value: Any, n_hidden: int, where: str) -> list[bool]:
    """Batch-normalisation flags of the hidden layers (absent: none)."""
    if value is None or isinstance(value, bool):
        return [bool(value)] * n_hidden
    if (
        isinstance(value, list)
        and len(value) == n_hidden
        and all(isinstance(f, bool) for f in value)
    ):
        return value
    raise ArtifactError(f"{where}: state.network.batch_norm is malformed ({value!r})")


@dataclass(frozen=True)
class StateFacts:
    """What the manifest's description of an nncv estimator implies about its arrays."""

    n_inputs: int
    widths: tuple[int, ...]  # input, hidden..., output
    dtype: str
    n_parameters: int
    n_statistics: int
    n_epochs: int
    n_classes: int | None  # classifiers: the number of class labels the outputs stand for

    @property
    def n_outputs(self) -> int:
        return self.widths[-1]

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], where: str) -> StateFacts:
        network = meta.get("network")
        if not isinstance(network, dict):
            raise ArtifactError(f"{where}: state.network must be a JSON object")
        hidden = network.get("hidden_layer_sizes")
        if not isinstance(hidden, list):
            raise ArtifactError(f"{where}: state.network.hidden_layer_sizes must be a list")
        widths = (
            _count(network.get("n_inputs"), "state.network.n_inputs", where),
            *(_count(h, "state.network.hidden_layer_sizes", where) for h in hidden),
            _count(network.get("n_outputs"), "state.network.n_outputs", where),
        )
        shapes = [[a, b] for a, b in zip(widths[:-1], widths[1:], strict=True)]
        if meta.get("layer_shapes") != shapes:
            raise ArtifactError(
                f"{where}: state.layer_shapes {_short(meta.get('layer_shapes'))} does not match "
                f"the network it describes ({shapes})"
            )
        if meta.get("n_features_in") != widths[0]:
            raise ArtifactError(
                f"{where}: state.n_features_in {_short(meta.get('n_features_in'))} is not the "
                f"network's input width {widths[0]}"
            )
        dtype = network.get("dtype")
        if dtype not in ("float32", "float64"):
            raise ArtifactError(f"{where}: state.network.dtype {_short(dtype)} is not a float")
        bn = _flags(network.get("batch_norm"), len(hidden), where)
        bn_widths = [h for h, on in zip(hidden, bn, strict=True) if on]
        dense = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
        epochs = meta.get("epochs_done")
        return cls(
            n_inputs=widths[0],
            widths=widths,
            dtype=dtype,
            n_parameters=dense + 2 * sum(bn_widths),
            n_statistics=2 * sum(bn_widths),
            n_epochs=_count(epochs, "state.epochs_done", where, minimum=0),
            n_classes=_n_classes(meta, widths[-1], where),
        )


def _n_classes(meta: Mapping[str, Any], n_outputs: int, where: str) -> int | None:
    """How many class labels a classifier with ``n_outputs`` outputs must have."""
    if meta.get("estimator") != "NNClassifier":
        return None
    target_type = meta.get("target_type")
    if target_type == "binary":
        expected = 2 if n_outputs == 1 else None
    elif target_type in ("multiclass", "multilabel-indicator"):
        expected = n_outputs if n_outputs >= 2 or target_type != "multiclass" else None
    else:
        raise ArtifactError(f"{where}: state.target_type {_short(target_type)} is not known")
    if expected is None:
        raise ArtifactError(
            f"{where}: a {target_type} classifier cannot have {n_outputs} output(s)"
        )
    labels = meta.get("classes")
    if labels is not None and (not isinstance(labels, list) or len(labels) != expected):
        raise ArtifactError(
            f"{where}: state.classes holds {_length(labels)} labels, the network's "
            f"{n_outputs} output(s) stand for {expected}"
        )
    return expected


@dataclass(frozen=True)
class StateArray:
    """One kind of array in an nncv estimator's state: its name and what it must look like.

    ``name`` is the array's name in ``_get_fitted_state``'s output, or a prefix ending in
    ``.`` for a family of arrays (``history.``); ``shape`` and ``dtype`` compute what the
    manifest's description implies (``dtype`` None: any numeric dtype).
    """

    name: str
    shape: Callable[[StateFacts], tuple[int, ...]]
    dtype: Callable[[StateFacts], str] | None = None

    def matches(self, key: str) -> bool:
        return key.startswith(self.name) if self.name.endswith(".") else key == self.name


def _network_dtype(facts: StateFacts) -> str:
    return facts.dtype


#: Every kind of array an nncv estimator's state may hold (a new kind is one entry).
STATE_ARRAYS: tuple[StateArray, ...] = (
    StateArray("network.parameters", lambda f: (f.n_parameters,), _network_dtype),
    StateArray("network.running_statistics", lambda f: (f.n_statistics,), _network_dtype),
    StateArray("optimizer.", lambda f: (f.n_parameters,), _network_dtype),
    StateArray("history.", lambda f: (f.n_epochs,), lambda f: "float64"),
    StateArray("classes", lambda f: (f.n_classes or 0,)),
    StateArray("target_mean", lambda f: (f.n_outputs,), lambda f: "float64"),
    StateArray("target_scale", lambda f: (f.n_outputs,), lambda f: "float64"),
)


def check_state(meta: Any, arrays: Mapping[str, np.ndarray], where: str) -> StateFacts:
    """Refuse, naming the array, any state array whose shape or dtype the description denies.

    Parameters
    ----------
    meta : dict
        The ``state`` of the estimator's manifest node.
    arrays : mapping
        Its arrays by state name (``network.parameters``, ...), already read and hashed.
    where : str
        Locates the estimator in error messages.
    """
    if not isinstance(meta, dict):
        raise ArtifactError(f"{where}: state must be a JSON object")
    facts = StateFacts.from_meta(meta, where)
    for key, array in arrays.items():
        kind = next((k for k in STATE_ARRAYS if k.matches(key)), None)
        if kind is None:
            raise ArtifactError(f"{where}: state array {key!r} is not one nncv saves")
        shape = kind.shape(facts)
        if array.shape != shape:
            raise ArtifactError(
                f"{where}: state array {key!r} has shape {array.shape}, the manifest's "
                f"description of the estimator implies {shape}"
            )
        if kind.dtype is not None and array.dtype.name != kind.dtype(facts):
            raise ArtifactError(
                f"{where}: state array {key!r} has dtype {array.dtype}, expected "
                f"{kind.dtype(facts)}"
            )
    if "network.parameters" not in arrays:
        raise ArtifactError(f"{where}: the state lacks its array 'network.parameters'")
    _check_labels(meta, arrays, facts, where)
    return facts


def _check_labels(
    meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], facts: StateFacts, where: str
) -> None:
    """A classifier's labels: stored once (array or manifest list), distinct and sorted."""
    if facts.n_classes is None:
        return
    labels = meta.get("classes")
    if (labels is None) == ("classes" not in arrays):
        raise ArtifactError(f"{where}: the classes must be stored either as an array or a list")
    values = np.asarray(arrays["classes"]) if labels is None else np.asarray(labels, dtype=object)
    if meta.get("target_type") != "multilabel-indicator" and len(set(values.tolist())) != len(
        values
    ):
        raise ArtifactError(f"{where}: state array 'classes' holds a label twice")


def _length(value: Any) -> str:
    return str(len(value)) if isinstance(value, list) else _short(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
