"""The scaler registry: every input scaler nncv knows, and what it can do with each.

One entry per scaler records

* ``cls`` — the class (``make_pipeline(name)`` builds ``cls()``);
* ``rowwise`` — it transforms each row on its own, so cross-validation can apply it a
  block of rows at a time, in place, and a network can train straight from ``X``'s rows
  through it (:mod:`nncv.cv.rows`);
* ``blockwise_fit`` — it also learns its statistics a block of rows at a time
  (``partial_fit``), so fitting it never holds the training rows whole;
* ``saved_as`` — the type name :func:`nncv.save` writes it under (``None``: not savable).

Only exact types count: a subclass may change what fit or transform means. Adding a
scaler is one :func:`register_scaler` call (or one entry in :data:`SCALERS`).

Examples
--------
>>> SCALERS["standard"].rowwise, SCALERS["robust"].blockwise_fit
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

__all__ = ["SCALERS", "Scaler", "entry_of", "register_scaler"]


@dataclass(frozen=True)
class Scaler:
    """One entry of :data:`SCALERS` (see the module's docstring)."""

    cls: type
    rowwise: bool = False
    blockwise_fit: bool = False
    saved_as: str | None = None

    @property
    def savable(self) -> bool:
        """Whether :func:`nncv.save` can write it."""
        return self.saved_as is not None


def _sklearn(cls: type, *, blockwise_fit: bool) -> Scaler:
    return Scaler(
        cls,
        rowwise=True,
        blockwise_fit=blockwise_fit,
        saved_as=f"sklearn.preprocessing.{cls.__name__}",
    )


#: Public name -> :class:`Scaler`.
SCALERS: dict[str, Scaler] = {
    "standard": _sklearn(StandardScaler, blockwise_fit=True),
    "minmax": _sklearn(MinMaxScaler, blockwise_fit=True),
    "robust": _sklearn(RobustScaler, blockwise_fit=False),  # its quantiles need every row
    "maxabs": _sklearn(MaxAbsScaler, blockwise_fit=True),
}


def register_scaler(
    name: str,
    cls: type,
    *,
    rowwise: bool = False,
    blockwise_fit: bool = False,
    saved_as: str | None = None,
) -> Scaler:
    """Add (or replace) the scaler ``name``; return its entry."""
    entry = Scaler(cls, rowwise=rowwise, blockwise_fit=blockwise_fit, saved_as=saved_as)
    SCALERS[name] = entry
    return entry


def entry_of(step: Any) -> Scaler | None:
    """The entry whose class is exactly ``type(step)``, or ``None``."""
    for entry in SCALERS.values():
        if type(step) is entry.cls:
            return entry
    return None
