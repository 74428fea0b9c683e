"""Exceptions raised by nncv. Every error derives from :class:`NncvError`."""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "BackendError",
    "CVSetupError",
    "ConfigurationError",
    "DivergedError",
    "NncvError",
    "ScoringError",
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
    """A search or cross-validation request is inconsistent: space, study, storage, data.

    The cross-validation engine that the search stands on raises its subclasses
    :class:`CVSetupError` and :class:`ScoringError` for the same mistakes whether they reach
    it through :func:`nncv.cross_validate` or through :func:`nncv.tune`.
    """


class CVSetupError(SearchError):
    """The data, the splitter or the weights given to a cross-validation do not fit."""


class ScoringError(SearchError):
    """The ``scoring`` argument names no scikit-learn scorer or has the wrong type."""


class BackendError(NncvError, ValueError):
    """A parallel backend (a Dask cluster, say) was named wrongly, is missing or unreachable."""


class TableError(NncvError, ValueError):
    """A CSV/Parquet file cannot be used: empty, corrupt, no feature columns, text values."""


class StopTraining(Exception):  # noqa: N818 - control flow, not an error
    """Raised by an epoch callback to end training cleanly after the current epoch."""
