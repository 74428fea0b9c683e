"""The version of nncv (its own module, so that any part of nncv can read it)."""

__version__ = "0.1.0"
