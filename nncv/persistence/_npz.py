"""``arrays.npz``: SHA-256 of arrays, a byte-reproducible writer and a refusing reader.

The file is an ordinary NumPy ``.npz`` (a zip of ``<name>.npy`` files, stored uncompressed),
so ``numpy.load(path, allow_pickle=False)`` reads it too. The writer fixes every zip
timestamp, so one fitted model always gives the same bytes. The reader checks each entry
before allocating memory for it: a safe name listed in the manifest, a numeric dtype (never
an object array), the dtype and shape the manifest declares, and afterwards its SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from nncv.exceptions import ArtifactError
from nncv.persistence._container import ZIP_TIME, check_member_name, check_member_storage
from nncv.persistence._values import NUMERIC_DTYPES, check_key

__all__ = ["array_sha256", "describe", "normalise", "read_npz", "write_npz"]

_ZIP64_FROM = 1 << 30


def normalise(array: np.ndarray) -> np.ndarray:
    """``array`` as stored: little-endian and C-contiguous (a copy only when needed)."""
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return np.require(array, requirements="C")


def array_sha256(array: np.ndarray) -> str:
    """Hex SHA-256 of the array's bytes in C order (the ``.npy`` payload after its header)."""
    return hashlib.sha256(memoryview(normalise(array)).cast("B")).hexdigest()


def describe(array: np.ndarray) -> dict[str, Any]:
    """The manifest's record of one array: ``.npy`` dtype string, shape and SHA-256."""
    array = normalise(array)
    return {"dtype": array.dtype.str, "shape": list(array.shape), "sha256": array_sha256(array)}


def write_npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The bytes of an uncompressed ``.npz`` holding ``arrays``, entries sorted by name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key in sorted(arrays):
            array = normalise(arrays[key])
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=array.nbytes >= _ZIP64_FROM) as entry:
                npy_format.write_array(entry, array, allow_pickle=False)
    return buffer.getvalue()


def _entry_key(name: str) -> str:
    """The array name of entry ``<key>.npy``; any other entry name is refused."""
    check_member_name(name, "arrays.npz")
    if not name.endswith(".npy"):
        raise ArtifactError(f"arrays.npz holds an unexpected entry {name!r}")
    return check_key(name[: -len(".npy")], "arrays.npz")


def _read_header(entry: Any, key: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = npy_format.read_magic(entry)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(entry)
    if version == (2, 0):
        return npy_format.read_array_header_2_0(entry)
    raise ArtifactError(f"arrays.npz entry {key!r} uses unsupported .npy version {version}")


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, spec: Mapping) -> np.ndarray:
    with zf.open(info) as entry:
        shape, fortran_order, dtype = _read_header(entry, key)
        if dtype.hasobject:
            raise ArtifactError(
                f"arrays.npz entry {key!r} holds an object array; nncv never stores those "
                "and refuses to unpickle them"
            )
        if dtype.name not in NUMERIC_DTYPES or dtype.byteorder == ">":
            raise ArtifactError(f"arrays.npz entry {key!r} has unsupported dtype {dtype.str!r}")
        if dtype.str != spec["dtype"] or list(shape) != spec["shape"] or fortran_order:
            raise ArtifactError(
                f"arrays.npz entry {key!r} is {dtype.str} {list(shape)}, but manifest.json "
                f"declares {spec['dtype']} {spec['shape']}"
            )
        n_bytes = math.prod(shape) * dtype.itemsize
        if n_bytes > info.file_size:
            raise ArtifactError(f"arrays.npz entry {key!r} is shorter than its shape requires")
        buffer = bytearray(n_bytes)
        if entry.readinto(buffer) != n_bytes or entry.read(1):
            raise ArtifactError(f"arrays.npz entry {key!r} does not hold exactly {shape} values")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def read_npz(data: bytes, declared: Mapping[str, Mapping]) -> dict[str, np.ndarray]:
    """Read and verify every array of an ``.npz`` against the manifest's ``declared`` table.

    Raises
    ------
    ArtifactError
        On any unsafe, unexpected, missing, malformed, object-dtype or changed entry.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except Exception as error:  # zipfile parsing hostile bytes raises many types; none escape
        raise ArtifactError(
            f"arrays.npz is not a valid .npz (truncated or corrupted): {error}"
        ) from error
    arrays: dict[str, np.ndarray] = {}
    with zf:
        for info in zf.infolist():
            key = _entry_key(info.filename)
            check_member_storage(info, "arrays.npz", len(data))
            if key in arrays:
                raise ArtifactError(f"arrays.npz holds {key!r} twice")
            if key not in declared:
                raise ArtifactError(f"arrays.npz holds {key!r}, which manifest.json does not list")
            try:
                array = _read_entry(zf, info, key, declared[key])
            except ArtifactError:
                raise
            except Exception as error:  # as above, for zipfile and the .npy header parser
                raise ArtifactError(f"arrays.npz entry {key!r} is corrupted: {error}") from error
            if array_sha256(array) != declared[key]["sha256"]:
                raise ArtifactError(
                    f"array {key!r} does not match its SHA-256 in manifest.json: "
                    "arrays.npz was changed or corrupted"
                )
            arrays[key] = array
    missing = sorted(set(declared) - set(arrays))
    if missing:
        raise ArtifactError(f"arrays.npz lacks arrays listed in manifest.json: {missing}")
    return arrays
