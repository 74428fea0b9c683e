"""Typed JSON encoding of the values found in estimator parameters and learnt attributes.

Plain JSON carries ``null``, booleans, integers, strings, finite floats and lists. Everything
else is a one-key object whose key names the kind of value (the *tag*):

======================  =================================================================
``{"float": "nan"}``    a non-finite float: ``"nan"``, ``"inf"`` or ``"-inf"``
``{"tuple": [...]}``    a tuple
``{"dict": [[k, v]]}``  a dict with string or integer keys, in insertion order
``{"slice": [a,b,c]}``  ``slice(a, b, c)`` (ints or null)
``{"number": {...}}``   a NumPy scalar: ``{"dtype": "float64", "value": 1.5}``
``{"numpy_type": n}``   a NumPy scalar type such as ``numpy.float64`` (numeric only)
``{"numpy_dtype": n}``  a ``numpy.dtype`` (numeric only)
``{"array": key}``      a numeric array stored in ``arrays.npz`` under ``key``
``{"fortran_array":``   the same, loaded in Fortran (column-major) order as it was saved,
``key}``                  so that products with it are bit-identical after loading
``{"bspline": {...}}``  a ``scipy.interpolate.BSpline``: ``t``, ``c`` (arrays), ``k``,
                          ``extrapolate`` (bool or ``"periodic"``), ``axis``
``{"object_array":``    a string/object array kept in the manifest:
``{dtype,shape,items}}``  dtype ``"object"`` or ``"<U<n>"``, items flat in C order (scalars,
                          or numeric arrays as ``{"array": key}``)
``{"estimator": node}`` a nested estimator (see ``_types``)
======================  =================================================================

Decoding builds nothing but these values; an unknown tag is an :class:`ArtifactError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy.interpolate import BSpline

from nncv.exceptions import ArtifactError

__all__ = ["NUMERIC_DTYPES", "ValueDecoder", "ValueEncoder", "check_key", "is_shape"]

NUMERIC_DTYPES = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
    + ["float16", "float32", "float64"]
)
_TEXT_DTYPE = re.compile(r"^<U[0-9]{1,6}$")
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def check_key(key: str, where: str) -> str:
    """Return ``key`` if it is a safe ``arrays.npz`` entry stem, else raise."""
    if not isinstance(key, str) or not _KEY.match(key) or ".." in key:
        raise ArtifactError(f"{where}: {key!r} is not a valid array name")
    return key


def is_shape(value: Any) -> bool:
    """Whether ``value`` is a JSON list of non-negative integers."""
    return isinstance(value, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value
    )


def _encode_float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


class ValueEncoder:
    """Turn values into typed JSON, moving numeric arrays into ``arrays``.

    Parameters
    ----------
    arrays : dict
        Receives every numeric array under a key derived from its position.
    encode_estimator : callable
        ``encode_estimator(obj, key, where) -> node`` for nested estimators.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        encode_estimator: Callable[[Any, str, str], dict[str, Any]],
    ) -> None:
        self.arrays = arrays
        self.encode_estimator = encode_estimator

    def encode(self, value: Any, key: str, where: str, labels: Mapping[int, str]) -> Any:
        """Encode ``value`` found at ``key``; ``where`` names its owner in error messages.

        ``labels`` maps ``id(estimator)`` to the name errors should use for that estimator
        (``"step 'scale'"``, ...).
        """
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int) and not isinstance(value, np.integer):
            return int(value)
        if isinstance(value, float) and not isinstance(value, np.floating):
            return _encode_float(float(value))
        if isinstance(value, np.generic):
            return {"number": self._number(value, key, where)}
        if isinstance(value, list):
            return [self.encode(v, f"{key}.{i}", where, labels) for i, v in enumerate(value)]
        if isinstance(value, tuple) and type(value) is tuple:
            items = [self.encode(v, f"{key}.{i}", where, labels) for i, v in enumerate(value)]
            return {"tuple": items}
        if isinstance(value, dict) and type(value) is dict:
            return {"dict": self._dict(value, key, where, labels)}
        if isinstance(value, slice):
            return {"slice": [self._slice_bound(b, key, where) for b in _slice_parts(value)]}
        if isinstance(value, np.dtype):
            return {"numpy_dtype": self._dtype_name(value, key, where)}
        if isinstance(value, type) and issubclass(value, np.generic):
            return {"numpy_type": self._dtype_name(np.dtype(value), key, where)}
        if type(value) is np.ndarray:
            return self._array(value, key, where)
        if type(value) is BSpline:
            return {"bspline": self._bspline(value, key, where)}
        if hasattr(value, "get_params") and not isinstance(value, type):
            child = labels.get(id(value), f"{where} → {key}")
            return {"estimator": self.encode_estimator(value, key, child)}
        raise ArtifactError(
            f"cannot save {where}: {key.rsplit('.', 1)[-1]!r} holds a "
            f"{type(value).__module__}.{type(value).__qualname__}, which nncv cannot store "
            "without pickle"
        )

    def _dict(self, value: dict, key: str, where: str, labels: Mapping[int, str]) -> list:
        pairs = []
        for i, (name, item) in enumerate(value.items()):
            if not isinstance(name, str | int) or isinstance(name, bool | np.integer):
                raise ArtifactError(
                    f"cannot save {where}: {key!r} has a key {name!r} that is not a string or int"
                )
            pairs.append([name, self.encode(item, f"{key}.{i}", where, labels)])
        return pairs

    @staticmethod
    def _slice_bound(bound: Any, key: str, where: str) -> int | None:
        if bound is None or (isinstance(bound, int | np.integer) and not isinstance(bound, bool)):
            return None if bound is None else int(bound)
        raise ArtifactError(f"cannot save {where}: {key!r} is a slice with bound {bound!r}")

    @staticmethod
    def _dtype_name(dtype: np.dtype, key: str, where: str) -> str:
        if dtype.name not in NUMERIC_DTYPES:
            raise ArtifactError(f"cannot save {where}: {key!r} names dtype {dtype}")
        return dtype.name

    def _number(self, value: np.generic, key: str, where: str) -> dict[str, Any]:
        name = self._dtype_name(value.dtype, key, where)
        item = value.item()
        return {"dtype": name, "value": _encode_float(item) if isinstance(item, float) else item}

    def _bspline(self, value: BSpline, key: str, where: str) -> dict[str, Any]:
        extrapolate = value.extrapolate
        if not (isinstance(extrapolate, bool) or extrapolate == "periodic"):
            raise ArtifactError(f"cannot save {where}: {key!r} has extrapolate={extrapolate!r}")
        return {
            "t": self._array(np.asarray(value.t), f"{key}.t", where),
            "c": self._array(np.asarray(value.c), f"{key}.c", where),
            "k": int(value.k),
            "extrapolate": extrapolate,
            "axis": int(value.axis),
        }

    def _array(self, value: np.ndarray, key: str, where: str) -> dict[str, Any]:
        if value.dtype.name in NUMERIC_DTYPES:
            if key in self.arrays:
                raise ArtifactError(f"cannot save {where}: two arrays share the name {key!r}")
            self.arrays[check_key(key, f"cannot save {where}")] = value
            fortran = value.ndim > 1 and value.flags.f_contiguous and not value.flags.c_contiguous
            return {"fortran_array" if fortran else "array": key}
        if value.dtype.kind == "U" or value.dtype == object:
            items = [
                self._item(v, f"{key}.{i}", where) for i, v in enumerate(value.ravel(order="C"))
            ]
            dtype = "object" if value.dtype == object else value.dtype.newbyteorder("<").str
            return {"object_array": {"dtype": dtype, "shape": list(value.shape), "items": items}}
        raise ArtifactError(f"cannot save {where}: {key!r} is an array of dtype {value.dtype}")

    def _item(self, value: Any, key: str, where: str) -> Any:
        """Encode one element of an object array: a scalar or a numeric array."""
        if type(value) is np.ndarray and value.dtype.name in NUMERIC_DTYPES:
            return self._array(value, key, where)
        if isinstance(value, str):
            return str(value)
        if isinstance(value, np.generic):
            return {"number": self._number(value, key, where)}
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            return _encode_float(value)
        raise ArtifactError(
            f"cannot save {where}: {key!r} is an object array holding a "
            f"{type(value).__name__}; only strings, numbers and None can be stored"
        )


def _slice_parts(value: slice) -> tuple[Any, Any, Any]:
    return value.start, value.stop, value.step


class ValueDecoder:
    """Rebuild values from typed JSON, taking numeric arrays from ``arrays``.

    Parameters
    ----------
    arrays : mapping
        Arrays read (and verified) from ``arrays.npz``.
    decode_estimator : callable
        ``decode_estimator(node, where) -> estimator`` for ``{"estimator": node}``.
    used : set, optional
        Collects the keys of the arrays taken (shared by nested decoders).
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        decode_estimator: Callable[[Any, str], Any],
        used: set[str] | None = None,
    ) -> None:
        self.arrays = arrays
        self.decode_estimator = decode_estimator
        self.used: set[str] = set() if used is None else used

    def array(self, key: Any, where: str) -> np.ndarray:
        """The stored array ``key`` (recorded as used)."""
        if not isinstance(key, str) or key not in self.arrays:
            raise ArtifactError(f"{where}: refers to array {key!r}, which arrays.npz lacks")
        self.used.add(key)
        return self.arrays[key]

    def decode(self, value: Any, where: str) -> Any:
        """Decode the typed JSON ``value`` found at ``where`` (a path for error messages)."""
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, list):
            return [self.decode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, dict) or len(value) != 1:
            raise ArtifactError(f"{where}: unknown value encoding {_short(value)}")
        ((tag, body),) = value.items()
        handler = self._handlers().get(tag)
        if handler is None:
            raise ArtifactError(f"{where}: unknown value encoding {tag!r}")
        return handler(body, f"{where}.{tag}")

    def _handlers(self) -> dict[str, Callable[[Any, str], Any]]:
        return {
            "float": self._float,
            "tuple": lambda body, where: tuple(self._list(body, where)),
            "dict": self._dict,
            "slice": self._slice,
            "number": self._number,
            "numpy_type": lambda body, where: np.dtype(self._dtype(body, where)).type,
            "numpy_dtype": lambda body, where: np.dtype(self._dtype(body, where)),
            "array": self.array,
            "fortran_array": lambda body, where: np.asfortranarray(self.array(body, where)),
            "bspline": self._bspline,
            "object_array": self._object_array,
            "estimator": self.decode_estimator,
        }

    def _list(self, body: Any, where: str) -> list:
        if not isinstance(body, list):
            raise ArtifactError(f"{where}: expected a list, got {_short(body)}")
        return self.decode(body, where)

    @staticmethod
    def _float(body: Any, where: str) -> float:
        if body not in _NON_FINITE:
            raise ArtifactError(f"{where}: {_short(body)} is not one of {sorted(_NON_FINITE)}")
        return _NON_FINITE[body]

    def _dict(self, body: Any, where: str) -> dict:
        pairs = self._list(body, where)
        if not all(
            isinstance(p, list)
            and len(p) == 2
            and isinstance(p[0], str | int)
            and not isinstance(p[0], bool)
            for p in pairs
        ):
            raise ArtifactError(f"{where}: expected [key, value] pairs with string or int keys")
        result = dict(pairs)
        if len(result) != len(pairs):
            raise ArtifactError(f"{where}: a key appears twice")
        return result

    def _bspline(self, body: Any, where: str) -> BSpline:
        if not isinstance(body, dict) or set(body) != {"t", "c", "k", "extrapolate", "axis"}:
            raise ArtifactError(f"{where}: expected t, c, k, extrapolate and axis")
        t, c = self.decode(body["t"], f"{where}.t"), self.decode(body["c"], f"{where}.c")
        k, extrapolate, axis = body["k"], body["extrapolate"], body["axis"]
        if not (
            isinstance(t, np.ndarray)
            and isinstance(c, np.ndarray)
            and t.ndim == 1
            and c.ndim in (1, 2)
            and t.dtype.kind == "f"
            and c.dtype.kind == "f"
            and isinstance(k, int)
            and not isinstance(k, bool)
            and 0 <= k <= 10
            and c.shape[0] == t.shape[0] - k - 1
            and (isinstance(extrapolate, bool) or extrapolate == "periodic")
            and axis == 0
        ):
            raise ArtifactError(f"{where}: the spline's knots, coefficients and degree disagree")
        try:
            return BSpline(t, c, k, extrapolate=extrapolate, axis=0)
        except ValueError as error:
            raise ArtifactError(f"{where}: not a valid spline: {error}") from None

    @staticmethod
    def _slice(body: Any, where: str) -> slice:
        if not (
            isinstance(body, list)
            and len(body) == 3
            and all(b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in body)
        ):
            raise ArtifactError(f"{where}: expected [start, stop, step], got {_short(body)}")
        return slice(*body)

    @staticmethod
    def _dtype(body: Any, where: str) -> str:
        if body not in NUMERIC_DTYPES:
            raise ArtifactError(f"{where}: {_short(body)} is not a supported numeric dtype")
        return body

    def _number(self, body: Any, where: str) -> np.generic:
        if not isinstance(body, dict) or set(body) != {"dtype", "value"}:
            raise ArtifactError(f"{where}: expected {{'dtype', 'value'}}, got {_short(body)}")
        dtype = np.dtype(self._dtype(body["dtype"], where))
        value = body["value"]
        if isinstance(value, dict):
            value = self.decode(value, where)
        if not isinstance(value, bool | int | float):
            raise ArtifactError(f"{where}: {_short(value)} is not a number")
        try:
            return dtype.type(value)
        except (OverflowError, ValueError) as error:
            raise ArtifactError(f"{where}: {value!r} does not fit {dtype}") from error

    def _object_array(self, body: Any, where: str) -> np.ndarray:
        if not isinstance(body, dict) or set(body) != {"dtype", "shape", "items"}:
            raise ArtifactError(f"{where}: expected dtype, shape and items, got {_short(body)}")
        dtype, shape, items = body["dtype"], body["shape"], body["items"]
        if not (dtype == "object" or (isinstance(dtype, str) and _TEXT_DTYPE.match(dtype))):
            raise ArtifactError(f"{where}: {_short(dtype)} is not 'object' or a '<U' dtype")
        if not (is_shape(shape) and isinstance(items, list) and math.prod(shape) == len(items)):
            raise ArtifactError(f"{where}: shape {_short(shape)} does not match the items")
        values = []
        for i, item in enumerate(items):
            decoded = self.decode(item, f"{where}[{i}]") if isinstance(item, dict) else item
            scalar = decoded is None or isinstance(decoded, bool | int | float | str | np.generic)
            if not (scalar or (dtype == "object" and type(decoded) is np.ndarray)):
                raise ArtifactError(f"{where}[{i}]: object arrays hold scalars or arrays only")
            if dtype != "object" and not isinstance(decoded, str):
                raise ArtifactError(f"{where}[{i}]: a {dtype} array holds strings only")
            values.append(decoded)
        if dtype != "object":
            return np.array(values, dtype=dtype).reshape(shape)
        array = np.empty(len(values), dtype=object)
        for i, item in enumerate(values):
            array[i] = item
        return array.reshape(shape)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
