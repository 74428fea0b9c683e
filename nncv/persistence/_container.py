"""The artifact's container: a directory or a single zip file, read safely and written atomically.

Both hold the same three files (:data:`FILES`). Reading never extracts anything to disk and
refuses zip entries whose names could escape a directory (``..``, absolute paths, drive
letters, backslashes) as well as entries it does not expect.

Writing is atomic: the new artifact is written in full to a hidden sibling of the target
(``.<name>.<random>.tmp``), flushed to disk, then moved into place in one step — ``os.replace``
for a zip file, an atomic exchange of the two directories (Linux ``renameat2``) for a
directory. A save that fails or is killed leaves the previous artifact untouched (and at most
a stale hidden ``.tmp`` sibling behind).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import secrets
import shutil
import stat
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from nncv.exceptions import ArtifactError

__all__ = [
    "FILES",
    "READ_LIMITS",
    "ZIP_SUFFIXES",
    "ZIP_TIME",
    "check_member_name",
    "check_member_storage",
    "read_files",
    "write_files",
]

FILES = ("SHA256SUMS", "manifest.json", "arrays.npz")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_SUFFIXES = (".nncv", ".zip")


def check_member_name(name: str, container: str) -> None:
    """Refuse a zip entry name that is absolute, climbs with ``..`` or is otherwise odd."""
    parts = name.split("/")
    if (
        not name
        or name.startswith(("/", "\\"))
        or "\\" in name
        or "\x00" in name
        or (len(name) > 1 and name[1] == ":")
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ArtifactError(
            f"{container} holds an entry with an unsafe path {name!r}; refusing to read it"
        )


def check_member_storage(info: zipfile.ZipInfo, container: str, size: int) -> None:
    """Refuse a compressed entry (a zip bomb's tool) or one whose sizes do not fit the file.

    nncv writes every entry stored (uncompressed), so an entry can never claim more bytes
    than the container holds; memory use while loading stays bounded by the file's size.
    """
    if info.compress_type != zipfile.ZIP_STORED:
        raise ArtifactError(
            f"{container} entry {info.filename!r} is compressed; nncv artifacts hold stored "
            "(uncompressed) entries only"
        )
    if info.file_size != info.compress_size or info.header_offset + info.compress_size > size:
        raise ArtifactError(f"{container} entry {info.filename!r} has inconsistent sizes")


def is_zip_path(path: Path) -> bool:
    """Whether ``save`` writes ``path`` as a zip file (by suffix) rather than a directory."""
    return path.suffix.lower() in ZIP_SUFFIXES


# --------------------------------------------------------------------------- reading
#: The most bytes read of each small file; ``arrays.npz`` is bounded by the manifest instead.
READ_LIMITS = {"SHA256SUMS": 4096, "manifest.json": 64 * 2**20}


def read_files(
    path: Path, names: Iterable[str] = FILES, limits: Mapping[str, int] | None = None
) -> dict[str, bytes]:
    """The bytes of ``names`` from the artifact at ``path`` (a directory or a zip file).

    Each file is read only if it is a regular file (never a symlink, FIFO or device) of at
    most ``limits[name]`` bytes (default :data:`READ_LIMITS`); anything else is refused.
    """
    limits = {**READ_LIMITS, **(limits or {})}
    if path.is_dir():
        return _read_directory(path, names, limits)
    if path.is_file():
        return _read_zip(path, names, limits)
    if path.exists():
        raise ArtifactError(f"{path} is neither a directory nor a file")
    raise ArtifactError(f"no nncv artifact at {path}: nothing exists there")


def _too_big(where: str, limit: int) -> ArtifactError:
    return ArtifactError(
        f"{where} is larger than the {limit} bytes its artifact can need; refusing to read it"
    )


def _read_regular_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file ``path``, opened without following links."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ArtifactError(
                f"{path} is a symbolic link; nncv reads regular files only"
            ) from None
        raise
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ArtifactError(
                f"{path} is not a regular file (a FIFO, device or directory); nncv reads "
                "regular files only"
            )
        size = os.fstat(fd).st_size
        if size > limit:
            raise _too_big(str(path), limit)
        data = handle.read(size + 1)  # one more byte: a file that grew is refused too
    if len(data) > limit or len(data) > size:
        raise _too_big(str(path), limit)
    return data


def _read_directory(
    path: Path, names: Iterable[str], limits: Mapping[str, int]
) -> dict[str, bytes]:
    files = {}
    for name in names:
        try:
            files[name] = _read_regular_file(path / name, limits.get(name, 0))
        except FileNotFoundError:
            raise ArtifactError(f"{path} is not an nncv artifact: {name} is missing") from None
        except OSError as error:
            raise ArtifactError(f"cannot read {path / name}: {error}") from error
    return files


def _read_zip(path: Path, names: Iterable[str], limits: Mapping[str, int]) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            size = path.stat().st_size
            for info in infos:
                check_member_name(info.filename, str(path))
                check_member_storage(info, str(path), size)
                if info.filename not in FILES:
                    raise ArtifactError(f"{path} holds an unexpected entry {info.filename!r}")
            present = [info.filename for info in infos]
            if len(set(present)) != len(present):
                raise ArtifactError(f"{path} holds an entry twice")
            files = {}
            for name in names:
                if name not in present:
                    raise ArtifactError(f"{path} is not an nncv artifact: {name} is missing")
                if zf.getinfo(name).file_size > limits.get(name, 0):
                    raise _too_big(f"{path} entry {name!r}", limits.get(name, 0))
                files[name] = zf.read(name)
            return files
    except ArtifactError:
        raise
    except Exception as error:  # zipfile parsing hostile bytes raises many types; none escape
        raise ArtifactError(
            f"{path} is not a readable .nncv zip file (truncated or corrupted?): {error}"
        ) from error


# --------------------------------------------------------------------------- writing
def write_files(path: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` as the artifact ``path`` (zip or directory by suffix), atomically."""
    path = Path(os.path.abspath(path))
    if not path.parent.is_dir():
        raise ArtifactError(f"cannot save to {path}: directory {path.parent} does not exist")
    if is_zip_path(path):
        if path.is_dir():
            raise ArtifactError(f"cannot save to {path}: a directory of that name exists")
        _write_zip(path, files)
    else:
        if path.exists() and not path.is_dir():
            raise ArtifactError(
                f"cannot save to {path}: a file of that name exists (use a {ZIP_SUFFIXES[0]} "
                "suffix to save a zip file)"
            )
        if path.is_dir() and any(path.iterdir()) and not (path / "manifest.json").is_file():
            raise ArtifactError(
                f"refusing to replace {path}: it is a non-empty directory that holds no nncv "
                "artifact (no manifest.json)"
            )
        _write_directory(path, files)


def _sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def _fsync_directory(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _zip_bytes(files: Mapping[str, bytes]) -> Iterable[tuple[zipfile.ZipInfo, bytes]]:
    for name in FILES:
        info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
        info.external_attr = 0o644 << 16
        yield info, files[name]


def _write_zip(path: Path, files: Mapping[str, bytes]) -> None:
    temporary = _sibling(path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with io.FileIO(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for info, data in _zip_bytes(files):
                    zf.writestr(info, data)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _write_directory(path: Path, files: Mapping[str, bytes]) -> None:
    temporary = _sibling(path)
    os.mkdir(temporary)
    try:
        for name in FILES:
            with open(temporary / name, "wb") as handle:
                handle.write(files[name])
                handle.flush()
                os.fsync(handle.fileno())
        _fsync_directory(temporary)
        if not _move_into_place(temporary, path):
            _swap_in(temporary, path)
    finally:
        # After a successful exchange ``temporary`` holds the previous artifact; after a
        # failure it holds the half-written new one. Either way it goes.
        shutil.rmtree(temporary, ignore_errors=True)
    _fsync_directory(path.parent)


def _move_into_place(temporary: Path, path: Path) -> bool:
    """Rename when nothing (or an empty directory) is at ``path``; False if it is occupied."""
    if path.exists() and any(path.iterdir()):
        return False
    try:
        os.rename(temporary, path)
    except OSError as error:
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    return True


def _swap_in(temporary: Path, path: Path) -> None:
    """Put ``temporary`` at ``path`` and the previous ``path`` at ``temporary``."""
    if _rename_exchange(temporary, path):
        return
    # No atomic exchange on this system: two renames, the previous artifact kept aside
    # until the new one is in place (a crash in between leaves it at ``aside``).
    aside = _sibling(path)
    os.rename(path, aside)
    try:
        os.rename(temporary, path)
    except BaseException:
        os.rename(aside, path)
        raise
    os.rename(aside, temporary)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _rename_exchange(first: Path, second: Path) -> bool:
    """Atomically exchange two paths with Linux ``renameat2``; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), os.fspath(second))
