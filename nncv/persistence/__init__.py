"""Save and load fitted models without pickle: :func:`save`, :func:`load`, :func:`inspect`.

An artifact holds a fitted ``NNClassifier``/``NNRegressor``, or a fitted scikit-learn
``Pipeline`` of supported preprocessing steps (the scalers, ``SimpleImputer``, ``PCA``,
``TruncatedSVD``, ``PolynomialFeatures``, ``SplineTransformer``, ``QuantileTransformer``,
``PowerTransformer``, ``Normalizer``, ``KBinsDiscretizer``, ``OneHotEncoder``,
``OrdinalEncoder``, a ``ColumnTransformer`` of these) ending in one — the preprocessing
together with the network it was trained behind.

It is a directory, or a single zip file when the path ends in ``.nncv`` (or ``.zip``), holding

* ``manifest.json`` — format version; nncv, NumPy and scikit-learn versions; every step's type,
  parameters and learnt attributes; classes, feature names, layer shapes; the dtype, shape and
  SHA-256 of every array;
* ``arrays.npz`` — the numeric arrays, read with ``allow_pickle=False``;
* ``SHA256SUMS`` — the SHA-256 of the two files above (``sha256sum -c`` format).

Loading verifies every checksum and builds only classes from a fixed allow-list: a tampered,
truncated or foreign file raises :class:`~nncv.exceptions.ArtifactError` and never runs code.
Even with recomputed checksums, every parameter is checked by value and every array's shape
and dtype against what the model implies, before anything large is allocated.
Saving is atomic: the previous artifact at the path survives a failed or killed save.

The package's private modules, one concern each:

``_api``        :func:`save`, :func:`load`, :func:`inspect`
``_values``     typed JSON encoding of Python/NumPy values (numeric arrays go to ``arrays.npz``)
``_types``      the allow-list of classes an artifact may name, and how each is (re)built
``_params``     constructor parameters checked by value (``Pipeline.memory`` must be null ...)
``_shapes``     learnt arrays of scikit-learn steps against their input width; pipeline chains
``_state``      an nncv estimator's state arrays against its own description
``_npz``        SHA-256 of arrays, deterministic ``arrays.npz`` writer, refusing reader
``_manifest``   manifest layout, canonical bytes, ``SHA256SUMS``, format-version checks
``_container``  directory or ``.nncv`` zip: safe reading and atomic writing

The format is described byte by byte in the README, section "Saving and loading models".
"""

from nncv.persistence._api import FORMAT_VERSION, inspect, load, save

__all__ = ["FORMAT_VERSION", "inspect", "load", "save"]
