"""The public entry points of :mod:`nncv.persistence`: save, load and inspect."""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.exceptions import InconsistentVersionWarning

from nncv.exceptions import ArtifactError
from nncv.persistence import _container, _manifest, _npz, _types

__all__ = ["FORMAT_VERSION", "inspect", "load", "save"]

FORMAT_VERSION = _manifest.FORMAT_VERSION
PathLike = str | os.PathLike


def save(obj: Any, path: PathLike) -> Path:
    """Save a fitted nncv estimator or ``Pipeline`` to ``path``, atomically.

    Parameters
    ----------
    obj : NNClassifier, NNRegressor or sklearn.pipeline.Pipeline
        Fitted. A pipeline may hold ``StandardScaler``, ``MinMaxScaler``, ``RobustScaler``,
        ``MaxAbsScaler``, ``SimpleImputer``, ``PCA``, ``TruncatedSVD``,
        ``PolynomialFeatures``, ``SplineTransformer``, ``QuantileTransformer``,
        ``PowerTransformer``, ``Normalizer``, ``KBinsDiscretizer``, ``OneHotEncoder``,
        ``OrdinalEncoder``, ``ColumnTransformer`` (of these, remainder ``"drop"`` or
        ``"passthrough"``), nested ``Pipeline`` and ``"passthrough"`` steps.
    path : str or path-like
        A path ending in ``.nncv`` (or ``.zip``) gives a single zip file; any other path a
        directory. An existing artifact there is replaced; an unrelated non-empty directory
        is not.

    Returns
    -------
    pathlib.Path
        ``path``, so that ``load(save(model, path))`` reads back what was written.

    Raises
    ------
    ArtifactError
        If a step is unsupported or not fitted (the message names it), or writing fails.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from nncv import NNClassifier
    >>> from nncv.persistence import load, save
    >>> X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    >>> model = NNClassifier(hidden_layer_sizes=4, max_epochs=2, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     again = load(save(model, f"{folder}/model.nncv"))
    >>> bool(np.array_equal(again.predict_proba(X), model.predict_proba(X)))
    True
    """
    path = Path(os.fspath(path))
    where = type(obj).__name__
    _types.check_saveable(obj, where)
    arrays: dict[str, np.ndarray] = {}
    root = _types.encode_node(obj, "", where, arrays)
    manifest = {
        "format": _manifest.FORMAT,
        "format_version": _manifest.FORMAT_VERSION,
        "versions": _manifest.versions(),
        "summary": _types.summarise(obj, root, arrays),
        "root": root,
        "arrays": {key: _npz.describe(array) for key, array in arrays.items()},
    }
    files = {"manifest.json": _manifest.dumps(manifest), "arrays.npz": _npz.write_npz(arrays)}
    files["SHA256SUMS"] = _manifest.checksums(files)
    try:
        _container.write_files(path, files)
    except OSError as error:
        raise ArtifactError(f"could not save to {path}: {error}") from error
    return path


def _read_manifest(path: Path, names: tuple[str, ...]) -> tuple[dict[str, Any], dict]:
    files = _container.read_files(path, names)
    manifest = _manifest.parse_manifest(files["manifest.json"])
    sums = _manifest.parse_checksums(files["SHA256SUMS"])
    _manifest.verify_checksum("manifest.json", files["manifest.json"], sums)
    return manifest, {"files": files, "sums": sums}


def inspect(path: PathLike) -> dict[str, Any]:
    """The manifest of the artifact at ``path``, checked but without building any object.

    Parameters
    ----------
    path : str or path-like
        An artifact directory or ``.nncv`` file.

    Returns
    -------
    dict
        The parsed ``manifest.json``: ``format_version``, ``versions``, ``summary`` (steps,
        classes, feature names, layer shapes, estimator params), ``root`` and ``arrays``.

    Raises
    ------
    ArtifactError
        If the manifest is missing, malformed, edited (checksum) or of a newer format.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from nncv import NNRegressor
    >>> from nncv.persistence import inspect, save
    >>> X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40.0)
    >>> model = NNRegressor(hidden_layer_sizes=4, max_epochs=2, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     manifest = inspect(save(model, f"{folder}/model"))
    >>> manifest["summary"]["estimator"]["layer_shapes"]
    [[3, 4], [4, 1]]
    """
    manifest, _ = _read_manifest(Path(os.fspath(path)), ("SHA256SUMS", "manifest.json"))
    return copy.deepcopy(manifest)


def load(path: PathLike) -> Any:
    """Load an artifact written by :func:`save`, verifying it completely first.

    Parameters
    ----------
    path : str or path-like
        An artifact directory or ``.nncv`` file.

    Returns
    -------
    NNClassifier, NNRegressor or sklearn.pipeline.Pipeline
        Fitted, predicting exactly what the saved object predicted; nncv estimators can
        continue training with ``partial_fit``.

    Raises
    ------
    ArtifactError
        If anything is missing, malformed, changed (checksums), of a newer format, names a
        type outside the allow-list, holds an object array, a parameter value a saved model
        must not hold (``Pipeline.memory``, a callable, a path) or an array whose shape or
        dtype disagrees with the model; or if a file is not a regular file or is larger than
        the manifest implies.

    Warns
    -----
    sklearn.exceptions.InconsistentVersionWarning
        If it was saved with another scikit-learn version.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from nncv import make_pipeline
    >>> from nncv.persistence import load, save
    >>> X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 3
    >>> pipe = make_pipeline("standard", hidden_layer_sizes=4, max_epochs=2).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     again = load(save(pipe, f"{folder}/pipe.nncv"))
    >>> [name for name, _ in again.steps]
    ['scale', 'net']
    """
    path = Path(os.fspath(path))
    manifest, read = _read_manifest(path, ("SHA256SUMS", "manifest.json"))
    table = _manifest.array_table(manifest)
    limit = {"arrays.npz": _manifest.npz_size_limit(table)}
    data = _container.read_files(path, ("arrays.npz",), limit)["arrays.npz"]
    arrays = _npz.read_npz(data, table)
    _manifest.verify_checksum("arrays.npz", data, read["sums"])
    _warn_on_version(manifest, path)
    used: set[str] = set()
    try:
        obj = _types.decode_node(manifest.get("root"), "root", arrays, used)
    except RecursionError:
        raise ArtifactError(f"{path}: manifest.json nests too deeply") from None
    unused = sorted(set(arrays) - used)
    if unused:
        raise ArtifactError(f"{path}: arrays.npz holds arrays no object uses: {unused}")
    return obj


def _warn_on_version(manifest: dict[str, Any], path: Path) -> None:
    saved = manifest.get("versions", {})
    saved_sklearn = saved.get("scikit-learn") if isinstance(saved, dict) else None
    if saved_sklearn != sklearn.__version__:
        warnings.warn(
            InconsistentVersionWarning(
                estimator_name=f"the model in {path}",
                current_sklearn_version=sklearn.__version__,
                original_sklearn_version=str(saved_sklearn),
            ),
            stacklevel=3,
        )
