"""The search space: which estimator parameters a study tunes, and over which ranges.

A :class:`SearchSpace` is plain data — an ordered, immutable mapping from a parameter
name to a :class:`Float`, :class:`Int` or :class:`Categorical` range — that a user
narrows, widens or extends in Python or in a TOML file, and that :func:`nncv.tune` turns
into Optuna suggestions.

Names are the network's constructor parameters (``learning_rate``, ``l2``, …; in a
``Pipeline`` they are resolved against the final step, or written in full as
``step__param``), with one exception: ``hidden_size`` and ``n_layers`` together set
``hidden_layer_sizes`` (``n_layers`` copies of ``hidden_size``; without ``n_layers`` the
estimator's own number of hidden layers is kept).

Examples
--------
>>> from nncv.search.space import Float, SearchSpace
>>> space = SearchSpace.default()
>>> list(space)
['learning_rate', 'decay', 'l2', 'l1', 'dropout', 'hidden_size']
>>> narrow = space.with_range("learning_rate", low=1e-3).drop("l1")
>>> narrow["learning_rate"]
Float(low=0.001, high=0.1, log=True, or_zero=False)
>>> wider = narrow.set(dropout=Float(0.0, 0.8))
>>> SearchSpace.from_toml_string(wider.to_toml_string()) == wider
True
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from nncv.exceptions import SearchError
from nncv.network.optimizers import OPTIMIZERS

__all__ = [
    "HIDDEN_LAYER_SIZES",
    "Categorical",
    "Float",
    "Int",
    "SearchSpace",
    "as_param",
    "did_you_mean",
]

#: The estimator parameter that the two composite names ``hidden_size`` and ``n_layers`` set.
HIDDEN_LAYER_SIZES = "hidden_layer_sizes"
_COMPOSITE = ("hidden_size", "n_layers")

Value = float | int | str | bool


def did_you_mean(name: str, known: list[str] | tuple[str, ...]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest of ``known``, or ``""``."""
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_number(name: str, what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SearchError(f"search space: {name}.{what} must be a finite number, got {value!r}")
    return value


@dataclass(frozen=True)
class Float:
    """A real range ``low…high`` (uniform, or log-uniform with ``log=True``).

    With ``or_zero=True`` the value is either exactly 0 or drawn from the range: the
    usual shape of a regularisation strength or a decay ("off, or somewhere between
    1e-7 and 1e-2"). Optuna then sees a boolean ``<name>_enabled`` and, when it is
    true, the float ``<name>``.

    Examples
    --------
    >>> Float(1e-4, 1e-1, log=True)
    Float(low=0.0001, high=0.1, log=True, or_zero=False)
    """

    low: float
    high: float
    log: bool = False
    or_zero: bool = False

    kind: ClassVar[str] = "float"

    def validate(self, name: str) -> None:
        """Raise :class:`~nncv.SearchError` when the range is empty or not representable."""
        low = _check_number(name, "low", self.low)
        high = _check_number(name, "high", self.high)
        if low > high:
            raise SearchError(f"search space: {name} has low={low!r} > high={high!r}")
        if self.log and low <= 0:
            raise SearchError(
                f"search space: {name} is log-scaled, so low must be > 0, got {low!r}"
            )

    def suggest(self, trial: Any, name: str) -> float:
        """Draw a value from an Optuna trial."""
        if self.or_zero and not trial.suggest_categorical(f"{name}_enabled", [False, True]):
            return 0.0
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)

    def trial_params(self, name: str, value: Any) -> dict[str, Value]:
        """The Optuna parameters that make :meth:`suggest` return ``value`` (for enqueueing)."""
        if self.or_zero:
            if value == 0:
                return {f"{name}_enabled": False}
            return {f"{name}_enabled": True, name: float(value)}
        return {name: float(value)}


@dataclass(frozen=True)
class Int:
    """An integer range ``low…high`` inclusive (log-uniform with ``log=True``).

    Examples
    --------
    >>> Int(16, 512, log=True)
    Int(low=16, high=512, log=True, step=1)
    """

    low: int
    high: int
    log: bool = False
    step: int = 1

    kind: ClassVar[str] = "int"

    def validate(self, name: str) -> None:
        """Raise :class:`~nncv.SearchError` when the range is empty or not representable."""
        for what in ("low", "high", "step"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SearchError(f"search space: {name}.{what} must be an integer, got {value!r}")
        if self.low > self.high:
            raise SearchError(f"search space: {name} has low={self.low} > high={self.high}")
        if self.step < 1:
            raise SearchError(f"search space: {name}.step must be >= 1, got {self.step}")
        if self.log and self.low < 1:
            raise SearchError(f"search space: {name} is log-scaled, so low must be >= 1")
        if self.log and self.step != 1:
            raise SearchError(f"search space: {name} cannot be log-scaled with step != 1")

    def suggest(self, trial: Any, name: str) -> int:
        """Draw a value from an Optuna trial."""
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def trial_params(self, name: str, value: Any) -> dict[str, Value]:
        """The Optuna parameters that make :meth:`suggest` return ``value``."""
        return {name: int(value)}


@dataclass(frozen=True)
class Categorical:
    """A choice among a few values (strings, numbers or booleans).

    Examples
    --------
    >>> Categorical(("adam", "sgd"))
    Categorical(choices=('adam', 'sgd'))
    """

    choices: tuple[Value, ...]

    kind: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        if isinstance(self.choices, list):
            object.__setattr__(self, "choices", tuple(self.choices))

    def validate(self, name: str) -> None:
        """Raise :class:`~nncv.SearchError` for no choices or a choice that is not plain data."""
        if not isinstance(self.choices, tuple) or not self.choices:
            raise SearchError(f"search space: {name} needs a non-empty list of choices")
        for choice in self.choices:
            if not isinstance(choice, str | int | float | bool):
                raise SearchError(
                    f"search space: {name} choices must be strings, numbers or booleans, "
                    f"got {choice!r}"
                )
        if len(set(self.choices)) != len(self.choices):
            raise SearchError(f"search space: {name} has repeated choices {list(self.choices)}")

    def suggest(self, trial: Any, name: str) -> Value:
        """Draw a value from an Optuna trial."""
        return trial.suggest_categorical(name, list(self.choices))

    def trial_params(self, name: str, value: Any) -> dict[str, Value]:
        """The Optuna parameters that make :meth:`suggest` return ``value``."""
        if value not in self.choices:
            raise SearchError(f"{value!r} is not one of {name}'s choices {list(self.choices)}")
        return {name: value}


Param = Float | Int | Categorical
_KINDS: dict[str, type] = {"float": Float, "int": Int, "categorical": Categorical}


def _param_from_dict(name: str, data: Mapping[str, Any]) -> Param:
    if not isinstance(data, Mapping):
        raise SearchError(f"search space: {name} must be a table of settings, got {data!r}")
    kind = data.get("type")
    if kind not in _KINDS:
        raise SearchError(
            f"search space: {name}.type must be one of {sorted(_KINDS)}, got {kind!r}"
            + did_you_mean(str(kind), list(_KINDS))
        )
    cls = _KINDS[kind]
    allowed = [f.name for f in fields(cls)]
    settings = {key: value for key, value in data.items() if key != "type"}
    for key in settings:
        if key not in allowed:
            raise SearchError(
                f"search space: {name} ({kind}) has no setting {key!r}; "
                f"allowed: {allowed}" + did_you_mean(key, allowed)
            )
    try:
        return cls(**settings)
    except TypeError as error:  # a required setting is missing
        raise SearchError(f"search space: {name} ({kind}): {error}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _from_optuna(name: str, distribution: Any) -> Param:
    """Float, Int or Categorical for an ``optuna.distributions`` object."""
    from optuna import distributions

    if isinstance(distribution, distributions.FloatDistribution):
        if distribution.step is not None:
            raise SearchError(
                f"search space: {name} is a FloatDistribution with step={distribution.step}, "
                "which nncv's Float has no equivalent for; use an IntDistribution of steps "
                "or a CategoricalDistribution of the values"
            )
        return Float(distribution.low, distribution.high, log=distribution.log)
    if isinstance(distribution, distributions.IntDistribution):
        return Int(
            distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    if isinstance(distribution, distributions.CategoricalDistribution):
        return Categorical(tuple(distribution.choices))
    raise SearchError(
        f"search space: {name} is an unsupported Optuna distribution "
        f"{type(distribution).__name__}; use FloatDistribution, IntDistribution or "
        "CategoricalDistribution"
    )


def as_param(name: str, value: Any) -> Param:
    """Turn any accepted form of a range into a Float, Int or Categorical range.

    Accepted: the three classes themselves; Optuna's ``FloatDistribution`` (without
    ``step``), ``IntDistribution`` and ``CategoricalDistribution``; a dict in
    :meth:`SearchSpace.to_dict`'s layout, whose ``"type"`` may be left out (``choices``
    makes it categorical, two int bounds an int range, anything else a float range); a
    tuple ``(low, high)`` (an int range when both are ints, else a float range); a list
    of choices.

    Examples
    --------
    >>> as_param("learning_rate", {"low": 1e-4, "high": 1e-1, "log": True})
    Float(low=0.0001, high=0.1, log=True, or_zero=False)
    >>> as_param("hidden_size", (16, 512))
    Int(low=16, high=512, log=False, step=1)
    >>> as_param("activation", ["relu", "tanh"])
    Categorical(choices=('relu', 'tanh'))
    """
    if isinstance(value, Float | Int | Categorical):
        return value
    if type(value).__module__.startswith("optuna.distributions"):
        return _from_optuna(name, value)
    if isinstance(value, Mapping):
        if "type" in value:
            return _param_from_dict(name, value)
        if "choices" in value:
            kind = "categorical"
        elif _is_int(value.get("low")) and _is_int(value.get("high")) and "or_zero" not in value:
            kind = "int"
        else:
            kind = "float"
        return _param_from_dict(name, {"type": kind, **value})
    if isinstance(value, tuple) and len(value) == 2 and not any(isinstance(v, str) for v in value):
        low, high = value
        return Int(low, high) if _is_int(low) and _is_int(high) else Float(low, high)
    if isinstance(value, list):
        return Categorical(tuple(value))
    raise SearchError(
        f"search space: {name} must be a Float, Int or Categorical range, an Optuna "
        f"distribution, a dict of settings, a (low, high) tuple or a list of choices; "
        f"got {value!r}"
    )


def _param_to_dict(param: Param) -> dict[str, Any]:
    data: dict[str, Any] = {"type": param.kind}
    for field in fields(param):
        value = getattr(param, field.name)
        data[field.name] = list(value) if isinstance(value, tuple) else value
    return data


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest round-tripping form; inf/nan are rejected by validate
    if isinstance(value, str):
        # A JSON string is a TOML basic string once DEL, which TOML wants escaped, is.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise SearchError(f"cannot write {value!r} to TOML")


def _toml_key(name: str) -> str:
    bare = name.replace("_", "").replace("-", "")
    return name if bare.isascii() and bare.isalnum() else json.dumps(name, ensure_ascii=False)


class SearchSpace(Mapping[str, Param]):
    """Named parameter ranges that a study searches; immutable, every edit returns a copy.

    Parameters
    ----------
    params : mapping of str to range, optional
        The ranges, in the order Optuna suggests them. A range is a :class:`Float`,
        :class:`Int` or :class:`Categorical`, or anything :func:`as_param` turns into one:
        an Optuna distribution (``FloatDistribution``, ``IntDistribution``,
        ``CategoricalDistribution``), a dict of settings as :meth:`to_dict` writes them
        (``"type"`` optional), a ``(low, high)`` tuple or a list of choices.
    **more : range
        More ranges by keyword.

    Examples
    --------
    >>> from nncv.search.space import Categorical, Float, Int, SearchSpace
    >>> space = SearchSpace({"learning_rate": Float(1e-3, 1e-1, log=True)},
    ...                     hidden_size=Int(32, 128, log=True))
    >>> space = space.set(activation=Categorical(["relu", "tanh"]))
    >>> sorted(space)
    ['activation', 'hidden_size', 'learning_rate']
    >>> from optuna.distributions import FloatDistribution
    >>> SearchSpace(l2=FloatDistribution(1e-6, 1e-2, log=True))["l2"]
    Float(low=1e-06, high=0.01, log=True, or_zero=False)
    """

    def __init__(self, params: Mapping[str, Any] | None = None, **more: Any) -> None:
        merged = dict(params or {})
        merged.update(more)
        for name, param in merged.items():
            if not isinstance(name, str) or not name:
                raise SearchError(f"search space names must be non-empty strings, got {name!r}")
            param = merged[name] = as_param(name, param)
            param.validate(name)
        if "n_layers" in merged and "hidden_size" not in merged:
            raise SearchError(
                "search space: n_layers needs hidden_size (they set hidden_layer_sizes)"
            )
        if HIDDEN_LAYER_SIZES in merged and "hidden_size" in merged:
            raise SearchError(
                "search space: give either hidden_layer_sizes or hidden_size/n_layers, not both"
            )
        self._params: dict[str, Param] = merged

    # ------------------------------------------------------------------ Mapping
    def __getitem__(self, name: str) -> Param:
        try:
            return self._params[name]
        except KeyError:
            raise KeyError(
                f"{name!r} is not in the search space{did_you_mean(name, list(self._params))}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return list(self._params.items()) == list(other._params.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={param!r}" for name, param in self._params.items())
        return f"SearchSpace({inner})"

    # ------------------------------------------------------------------ defaults
    @classmethod
    def default(
        cls, *, optimizer: bool = False, batch_size: bool = False, n_layers: bool = False
    ) -> SearchSpace:
        """The default space of the toolkit, optionally with optimizer, batch size and depth.

        learning_rate log 1e-4…1e-1; decay, l2 and l1 each 0 or log 1e-7…1e-2; dropout
        0…0.6; hidden_size log-int 16…512. ``optimizer`` adds every optimizer of
        :data:`nncv.network.optimizers.OPTIMIZERS` (adam/sgd/rmsprop/adagrad),
        ``batch_size`` adds 32/64/128/256, ``n_layers`` adds 1…3 hidden layers.

        Examples
        --------
        >>> SearchSpace.default(n_layers=True)["n_layers"]
        Int(low=1, high=3, log=False, step=1)
        """
        params: dict[str, Param] = {
            "learning_rate": Float(1e-4, 1e-1, log=True),
            "decay": Float(1e-7, 1e-2, log=True, or_zero=True),
            "l2": Float(1e-7, 1e-2, log=True, or_zero=True),
            "l1": Float(1e-7, 1e-2, log=True, or_zero=True),
            "dropout": Float(0.0, 0.6),
            "hidden_size": Int(16, 512, log=True),
        }
        if n_layers:
            params["n_layers"] = Int(1, 3)
        if optimizer:
            params["optimizer"] = Categorical(tuple(OPTIMIZERS))
        if batch_size:
            params["batch_size"] = Categorical((32, 64, 128, 256))
        return cls(params)

    # ------------------------------------------------------------------ edits
    def set(self, **params: Any) -> SearchSpace:
        """Return a copy with ranges added or replaced.

        Examples
        --------
        >>> SearchSpace.default().set(dropout=Float(0.0, 0.3))["dropout"].high
        0.3
        """
        return SearchSpace({**self._params, **params})

    def drop(self, *names: str) -> SearchSpace:
        """Return a copy without ``names`` (each must be in the space).

        Examples
        --------
        >>> "l1" in SearchSpace.default().drop("l1")
        False
        """
        for name in names:
            self[name]  # noqa: B018 - raises a KeyError with a suggestion
        return SearchSpace({k: v for k, v in self._params.items() if k not in names})

    def with_range(
        self, name: str, *, low: float | None = None, high: float | None = None
    ) -> SearchSpace:
        """Return a copy with the bounds of a numeric range narrowed or widened.

        Examples
        --------
        >>> SearchSpace.default().with_range("hidden_size", high=1024)["hidden_size"].high
        1024
        """
        param = self[name]
        if isinstance(param, Categorical):
            raise SearchError(f"search space: {name} is categorical; use set() to change choices")
        changes = {k: v for k, v in (("low", low), ("high", high)) if v is not None}
        return self.set(**{name: replace(param, **changes)})

    # ------------------------------------------------------------------ data
    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict, one table per parameter (the TOML layout)."""
        return {name: _param_to_dict(param) for name, param in self._params.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
        """Build from :meth:`to_dict`'s layout; unknown settings are refused by name."""
        if not isinstance(data, Mapping):
            raise SearchError(
                f"a search space must be a mapping of tables, got {type(data).__name__}"
            )
        return cls({name: _param_from_dict(name, settings) for name, settings in data.items()})

    def to_toml_string(self) -> str:
        """The space as TOML text: one ``[name]`` table per parameter."""
        lines = ["# nncv search space: one table per tuned parameter"]
        for name, settings in self.to_dict().items():
            lines.append("")
            lines.append(f"[{_toml_key(name)}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in settings.items())
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml_string(cls, text: str) -> SearchSpace:
        """Parse TOML text written by hand or by :meth:`to_toml_string`."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise SearchError(f"search space TOML is not valid: {error}") from None
        return cls.from_dict(data)

    def to_toml(self, path: str | Path) -> Path:
        """Write the space to a TOML file and return its path.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "space.toml"
        >>> SearchSpace.from_toml(SearchSpace.default().to_toml(path)) == SearchSpace.default()
        True
        """
        path = Path(path)
        path.write_text(self.to_toml_string(), encoding="utf-8")
        return path

    @classmethod
    def from_toml(cls, path: str | Path) -> SearchSpace:
        """Read a space from a TOML file (see :meth:`to_toml_string` for the layout)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise SearchError(f"cannot read search space {path}: {error.strerror}") from None
        try:
            return cls.from_toml_string(text)
        except SearchError as error:
            raise SearchError(f"{path}: {error}") from None

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON of the space (order included)."""
        text = json.dumps(list(self.to_dict().items()), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    # ------------------------------------------------------------------ Optuna
    def suggest(self, trial: Any, hidden_layers: int = 1) -> dict[str, Any]:
        """Draw every parameter from an Optuna trial and return estimator parameters.

        ``hidden_size``/``n_layers`` become ``hidden_layer_sizes``; ``hidden_layers`` is
        the depth used when ``n_layers`` is not searched.

        Examples
        --------
        >>> import optuna
        >>> trial = optuna.trial.FixedTrial({"hidden_size": 64, "dropout": 0.1})
        >>> SearchSpace(hidden_size=Int(16, 512, log=True), dropout=Float(0, 0.6)).suggest(trial)
        {'hidden_layer_sizes': (64,), 'dropout': 0.1}
        """
        raw = {name: param.suggest(trial, name) for name, param in self._params.items()}
        return self._assemble(raw, hidden_layers)

    def _assemble(self, raw: dict[str, Any], hidden_layers: int) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, value in raw.items():
            if name == "hidden_size":
                depth = int(raw.get("n_layers", hidden_layers))
                params[HIDDEN_LAYER_SIZES] = (int(value),) * depth
            elif name != "n_layers":
                params[name] = value
        return params

    def estimator_names(self) -> list[str]:
        """The estimator parameter names this space sets (``hidden_layer_sizes`` for the pair)."""
        names: list[str] = []
        for name in self._params:
            if name in _COMPOSITE:
                if HIDDEN_LAYER_SIZES not in names:
                    names.append(HIDDEN_LAYER_SIZES)
            else:
                names.append(name)
        return names

    def trial_params(self, **values: Any) -> dict[str, Value]:
        """Optuna parameters for ``study.enqueue_trial`` from space values.

        Names missing from ``values`` are left for the sampler to draw.

        Examples
        --------
        >>> SearchSpace.default().trial_params(learning_rate=0.01, l2=0.0)
        {'learning_rate': 0.01, 'l2_enabled': False}
        """
        out: dict[str, Value] = {}
        for name, value in values.items():
            out.update(self[name].trial_params(name, value))
        return out
