"""``manifest.json`` and ``SHA256SUMS``: canonical bytes, checksums and format-version checks.

``manifest.json`` is UTF-8 JSON (ASCII only: every other character is ``\\u`` escaped), keys
sorted, two-space indent, a final newline — the same model always gives the same bytes.
``SHA256SUMS`` is in the format of ``sha256sum``: one ``<64 hex digits>  <file name>`` line for
``arrays.npz`` and one for ``manifest.json``, so ``sha256sum -c SHA256SUMS`` checks an
unzipped artifact from a shell.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import sklearn

from nncv.exceptions import ArtifactError
from nncv.persistence._values import NUMERIC_DTYPES, check_key, is_shape

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "array_table",
    "checksums",
    "dumps",
    "npz_size_limit",
    "parse_checksums",
    "parse_manifest",
    "verify_checksum",
    "versions",
]

FORMAT = "nncv-artifact"
FORMAT_VERSION = 1
CHECKED_FILES = ("arrays.npz", "manifest.json")
#: Deeper JSON is refused (an artifact's deepest value is a few dozen levels down).
MAX_DEPTH = 100
_CHECKSUM_LINE = re.compile(r"^([0-9a-f]{64})  (\S+)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NPY_DTYPES = frozenset(np.dtype(name).str for name in NUMERIC_DTYPES)


def versions() -> dict[str, str]:
    """Versions of the libraries that wrote the artifact."""
    from nncv._version import __version__

    return {
        "nncv": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
    }


def dumps(manifest: Mapping[str, Any]) -> bytes:
    """The canonical bytes of ``manifest`` (strict JSON: NaN and infinity are refused)."""
    try:
        text = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ArtifactError(f"cannot write manifest.json: {error}") from error
    return text.encode("ascii") + b"\n"


def checksums(files: Mapping[str, bytes]) -> bytes:
    """``SHA256SUMS`` for the checked files among ``files``."""
    lines = [f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n" for name in CHECKED_FILES]
    return "".join(lines).encode("ascii")


def parse_checksums(data: bytes) -> dict[str, str]:
    """File name → hex SHA-256 from ``SHA256SUMS``; exactly the checked files, once each."""
    sums: dict[str, str] = {}
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        lines = ["<not ASCII>"]
    for line in lines:
        match = _CHECKSUM_LINE.match(line)
        if match is None or match[2] not in CHECKED_FILES or match[2] in sums:
            raise ArtifactError(f"SHA256SUMS is malformed (line {line[:100]!r})")
        sums[match[2]] = match[1]
    if set(sums) != set(CHECKED_FILES):
        raise ArtifactError(f"SHA256SUMS must list {list(CHECKED_FILES)}, it lists {sorted(sums)}")
    return sums


def verify_checksum(name: str, data: bytes, sums: Mapping[str, str]) -> None:
    """Raise unless ``data`` (the bytes of file ``name``) has the SHA-256 in ``sums``."""
    if hashlib.sha256(data).hexdigest() != sums[name]:
        raise ArtifactError(
            f"{name} does not match its SHA-256 in SHA256SUMS: the artifact was edited, "
            "truncated or corrupted"
        )


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("an object holds the same key twice")
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _check_depth(text: str) -> None:
    """Refuse JSON nested deeper than :data:`MAX_DEPTH`, before the (recursive) parser runs."""
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if match[0] in "[{" else -1
        if depth > MAX_DEPTH:
            raise ArtifactError(
                f"manifest.json nests more than {MAX_DEPTH} levels deep; no nncv artifact does"
            )


def npz_size_limit(table: Mapping[str, Mapping[str, Any]]) -> int:
    """The most bytes an ``arrays.npz`` holding the arrays of ``table`` can take."""
    total = 64 * 1024
    for key, spec in table.items():
        n_bytes = math.prod(spec["shape"]) * np.dtype(spec["dtype"]).itemsize
        total += n_bytes + 4096 + 2 * len(key)
    return total


def parse_manifest(data: bytes) -> dict[str, Any]:
    """Parse ``manifest.json`` and check its format name and version (nothing else yet)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ArtifactError(f"manifest.json is not UTF-8 (edited or truncated?): {error}") from None
    _check_depth(text)
    try:
        manifest = json.loads(
            text,
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ArtifactError(
            f"manifest.json is not valid JSON (edited or truncated?): {error}"
        ) from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"manifest.json does not describe an {FORMAT!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArtifactError(f"manifest.json has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ArtifactError(
            f"the artifact has format version {version}, newer than the {FORMAT_VERSION} this "
            "nncv reads; upgrade nncv to load it"
        )
    return manifest


def array_table(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest's ``arrays`` table, each record checked for shape."""
    table = manifest.get("arrays")
    if not isinstance(table, dict):
        raise ArtifactError("manifest.json lacks its 'arrays' table")
    for key, spec in table.items():
        check_key(key, "manifest.json 'arrays'")
        if not (
            isinstance(spec, dict)
            and set(spec) == {"dtype", "shape", "sha256"}
            and spec["dtype"] in _NPY_DTYPES
            and is_shape(spec["shape"])
            and isinstance(spec["sha256"], str)
            and _HEX64.match(spec["sha256"])
        ):
            raise ArtifactError(f"manifest.json 'arrays' record for {key!r} is malformed")
    return table
