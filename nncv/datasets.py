"""Datasets: the NNFS spiral, scikit-learn's bundled sets, and CSV/Parquet tables.

Examples
--------
>>> from nncv import datasets
>>> X, y = datasets.spiral(100, 3, random_state=0)
>>> X.shape, sorted(set(y.tolist()))
((300, 2), [0, 1, 2])
>>> X, y = datasets.load("digits")
>>> X.shape
(1797, 64)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nncv.exceptions import TableError

__all__ = ["BUNDLED", "load", "read_frame", "read_table", "spiral", "text_columns"]


def spiral(
    n_per_class: int,
    n_classes: int,
    noise: float = 0.2,
    random_state: int | np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Make the NNFS spiral data set: ``n_classes`` interleaved arms in 2-D.

    For class ``k`` and ``r = linspace(0, 1, n_per_class)`` the angle is
    ``t = linspace(4k, 4(k+1), n_per_class) + noise * N(0, 1)`` and the point is
    ``(r sin(2.5 t), r cos(2.5 t))`` — the formula of ``nnfs.datasets.spiral_data``.

    Parameters
    ----------
    n_per_class : int
        Samples per class.
    n_classes : int
        Number of arms (classes).
    noise : float, default=0.2
        Standard deviation of the angular noise.
    random_state : int, numpy.random.Generator or None
        Seed or generator for the noise.

    Returns
    -------
    X : ndarray of shape (n_per_class * n_classes, 2), float64
    y : ndarray of shape (n_per_class * n_classes,), int64
    """
    if n_per_class < 1 or n_classes < 1:
        raise ValueError(
            f"spiral needs n_per_class >= 1 and n_classes >= 1, got {n_per_class}, {n_classes}"
        )
    rng = np.random.default_rng(random_state)
    X = np.zeros((n_per_class * n_classes, 2))
    y = np.zeros(n_per_class * n_classes, dtype=np.int64)
    for class_number in range(n_classes):
        rows = slice(n_per_class * class_number, n_per_class * (class_number + 1))
        radius = np.linspace(0.0, 1.0, n_per_class)
        angle = np.linspace(class_number * 4, (class_number + 1) * 4, n_per_class)
        angle += rng.standard_normal(n_per_class) * noise
        X[rows] = np.c_[radius * np.sin(angle * 2.5), radius * np.cos(angle * 2.5)]
        y[rows] = class_number
    return X, y


def _sklearn_loader(name: str) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def loader() -> tuple[np.ndarray, np.ndarray]:
        from sklearn import datasets as sk_datasets

        return getattr(sk_datasets, f"load_{name}")(return_X_y=True)

    return loader


BUNDLED: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    name: _sklearn_loader(name) for name in ("digits", "breast_cancer", "iris", "wine", "diabetes")
}
BUNDLED["spiral"] = lambda: spiral(1000, 3, random_state=0)


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a bundled data set by name (no download needed).

    Parameters
    ----------
    name : {"digits", "breast_cancer", "iris", "wine", "diabetes", "spiral"}
        ``digits`` stands in for MNIST; ``spiral`` is 1000 samples/class × 3 classes, seed 0.

    Returns
    -------
    X, y : ndarray
    """
    try:
        loader = BUNDLED[name]
    except KeyError:
        known = ", ".join(sorted(BUNDLED))
        raise ValueError(f"unknown data set {name!r}; choose one of: {known}") from None
    return loader()


def read_frame(path: str | Path, *, header: bool = True) -> Any:
    """Read a CSV (``.csv``, ``.tsv``, compressed ``.csv.gz`` …) or Parquet file.

    Parameters
    ----------
    path : str or Path
    header : bool, default=True
        Whether a CSV's first row names the columns; ``False`` numbers them 0, 1, …
        (Parquet files always name their columns).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    nncv.exceptions.TableError
        A missing, empty, corrupt or unrecognised file; the message names it.
    """
    import pandas as pd

    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise TableError(f"no such file: {where}")
    suffixes = "".join(path.suffixes).lower()
    try:
        if ".parquet" in suffixes or suffixes.endswith(".pq"):
            return pd.read_parquet(path)
        if ".csv" in suffixes or ".tsv" in suffixes:
            sep = "\t" if ".tsv" in suffixes else ","
            return pd.read_csv(path, sep=sep, header=0 if header else None)
    except pd.errors.EmptyDataError:
        raise TableError(f"{where} is empty: no header and no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TableError(f"{where} is not a readable table: {reason}") from None
    raise TableError(f"cannot tell the format of {where!r}: use a .csv or .parquet file")


def text_columns(frame: Any) -> dict[str, Any]:
    """The columns of ``frame`` that hold neither numbers nor booleans, with a sample value.

    Examples
    --------
    >>> import pandas as pd
    >>> text_columns(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "2"]}))
    {'b': 'x'}
    """
    import pandas as pd

    found: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        bad = column[numbers.isna() & column.notna()]
        if len(bad) or not len(column):
            found[str(name)] = bad.iloc[0] if len(bad) else None
    return found


def read_table(path: str | Path, target: str) -> tuple[Any, Any]:
    """Read a CSV or Parquet file and split off the ``target`` column.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (optionally compressed, e.g. ``.csv.gz``) or ``.parquet``/``.pq``.
    target : str
        Column holding the labels.

    Returns
    -------
    X : pandas.DataFrame
        The other columns, with their names (they become ``feature_names_in_``).
    y : pandas.Series

    Raises
    ------
    nncv.exceptions.TableError
        (a ``ValueError``) for a missing, empty or corrupt file, a missing target column,
        a file with no rows or no column besides the target; the message names the file.
    """
    frame = read_frame(path)
    where = str(path)
    if target not in frame.columns:
        raise TableError(
            f"target column {target!r} not in {where!r}; columns are {list(frame.columns)}"
        )
    if len(frame.columns) == 1:
        raise TableError(
            f"{where!r} has only the target column {target!r}: no feature columns to learn from"
        )
    if frame.empty:
        raise TableError(f"{where!r} has a header but no rows")
    return frame.drop(columns=[target]), frame[target]
