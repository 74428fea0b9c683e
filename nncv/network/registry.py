"""Build an object from a name-keyed table, passing the settings its constructor takes.

The network's tables — :data:`~nncv.network.optimizers.OPTIMIZERS`,
:data:`~nncv.network.schedules.SCHEDULES` — map a public name to a class. An estimator
builds the entry it names with :func:`build`, which hands the constructor those of the
estimator's settings it names as parameters and nothing else; so adding an entry to a
table at run time is all it takes to use it by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from nncv.exceptions import ConfigurationError

__all__ = ["build", "required_settings"]


def _parameters(factory: Callable[..., Any]) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature: build it without arguments
        return {}


def required_settings(factory: Callable[..., Any]) -> set[str]:
    """The parameters ``factory`` has no default for."""
    return {
        name
        for name, parameter in _parameters(factory).items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }


def build(table: Mapping[str, Callable[..., Any]], kind: str, name: str, **settings: Any) -> Any:
    """``table[name](**{the settings it takes})``; settings given as ``None`` are left out.

    Examples
    --------
    >>> from nncv.network.optimizers import OPTIMIZERS
    >>> build(OPTIMIZERS, "optimizer", "sgd", momentum=0.9, decay=0.1).momentum
    0.9
    """
    if name not in table:
        raise ConfigurationError(f"unknown {kind} {name!r}; choose one of {sorted(table)}")
    factory = table[name]
    parameters = _parameters(factory)
    given = {key: value for key, value in settings.items() if value is not None}
    missing = sorted(required_settings(factory) - set(given))
    if missing:
        raise ConfigurationError(f"{kind} {name!r} needs {', '.join(missing)}")
    return factory(**{key: value for key, value in given.items() if key in parameters})
