"""Private machinery of :mod:`nncv.persistence`: one concern per module.

``_values``     typed JSON encoding of Python/NumPy values (numeric arrays go to ``arrays.npz``)
``_types``      the allow-list of classes an artifact may name, and how each is (re)built
``_npz``        SHA-256 of arrays, deterministic ``arrays.npz`` writer, refusing reader
``_manifest``   manifest layout, canonical bytes, ``SHA256SUMS``, format-version checks
``_container``  directory or ``.nncv`` zip: safe reading and atomic writing
"""
