"""Exceptions raised by nncv. Every error derives from :class:`NncvError`."""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ConfigurationError",
    "DivergedError",
    "NncvError",
    "SearchError",
    "StopTraining",
    "TableError",
]


class NncvError(Exception):
    """Root of every error nncv raises on purpose; catch it to catch them all."""


class ConfigurationError(NncvError, ValueError):
    """A network, layer, schedule or callback was configured with an impossible value."""


class DivergedError(NncvError, FloatingPointError):
    """Training produced a NaN or infinite loss (learning rate too high, for example)."""


class ArtifactError(NncvError, ValueError):
    """A saved model could not be written or read: tampered, truncated or unsupported."""


class SearchError(NncvError, ValueError):
    """A search space, study or storage is inconsistent with the request."""


class TableError(NncvError, ValueError):
    """A CSV/Parquet file cannot be used: empty, corrupt, no feature columns, text values."""


class StopTraining(Exception):  # noqa: N818 - control flow, not an error
    """Raised by an epoch callback to end training cleanly after the current epoch."""
