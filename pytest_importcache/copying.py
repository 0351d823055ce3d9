"""The files of a package under test: list them, fingerprint their content, copy them.

One walk decides what a copy holds, and both the fingerprint and the copy use
it, so a cached copy is reused exactly when the files it would copy are
unchanged:

- Symbolic links (to files or directories, relative or absolute) are followed
  and copied as what they point to, resolved from the link's own directory,
  whatever the current directory is. A link that points nowhere is left out,
  as Python's import would not find it either.
- A link that leads back into a directory being walked (a loop) is an error
  that names the link, raised as soon as it is met.
- ``__pycache__`` directories are left out; a ``.pyc`` beside the sources (a
  sourceless module) is kept, since it is the module.
- Only regular files are copied: a FIFO or a socket in the tree would block
  or fail a plain copy.
- Any name the file system allows is copied (undecodable bytes included).

The fingerprint hashes each file's relative path and content: an edit that
keeps size and modification time (``touch -d``) still gets a new copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import EnvironmentBuildError
from .locate import PackageLocation

__all__ = ["PackageFile", "copy_files", "package_files", "source_fingerprint"]

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class PackageFile:
    """One file (or directory) of a copy: its path inside the copy, and where it is read.

    Directories are listed too, so an empty one (a namespace subpackage) is copied.
    """

    relative: Path
    source: Path
    is_directory: bool = False


def _walk(
    directory: Path, relative: Path, ancestors: tuple[tuple[int, int], ...]
) -> Iterator[PackageFile]:
    """The files under ``directory`` (followed through links), as they go into ``relative``."""
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as exc:
        raise EnvironmentBuildError(f"cannot list {directory}: {exc.strerror or exc}") from None
    for entry in entries:
        path = Path(entry.path)
        try:
            status = os.stat(path)  # follows links, relative to the link's directory
        except FileNotFoundError:
            continue  # a dangling link: nothing to import there
        except OSError as exc:
            raise EnvironmentBuildError(f"cannot read {path}: {exc.strerror or exc}") from None
        if stat.S_ISDIR(status.st_mode):
            if entry.name == "__pycache__":
                continue
            identity = (status.st_dev, status.st_ino)
            if identity in ancestors:
                raise EnvironmentBuildError(
                    f"symbolic link loop in the package: {path} -> {os.readlink(path)} leads "
                    "back into a directory that contains it"
                    if entry.is_symlink()
                    else f"directory loop in the package at {path}"
                )
            yield PackageFile(relative / entry.name, path, is_directory=True)
            yield from _walk(path, relative / entry.name, (*ancestors, identity))
        elif stat.S_ISREG(status.st_mode):
            yield PackageFile(relative / entry.name, path)


def package_files(location: PackageLocation) -> list[PackageFile]:
    """Every file a copy of ``location`` holds, relative to the copy's root.

    A package's files go under ``<top_level>/``; a one-file module is the file
    itself; each portion of a namespace package goes under
    ``portion-N/<top_level>/``.
    """
    __tracebackhide__ = True
    if location.kind == "module":
        source = location.portions[0]
        return [PackageFile(Path(source.name), source)]
    files: list[PackageFile] = []
    for index, portion in enumerate(location.portions):
        base = Path(location.top_level)
        if location.kind == "namespace":
            base = Path(f"portion-{index}") / location.top_level
        status = os.stat(portion)
        files += _walk(portion, base, ((status.st_dev, status.st_ino),))
    return files


# File digests by (path, device, inode, size, mtime, ctime). The change time is
# set by the kernel on every write and cannot be set back (`touch -d` sets only
# the modification time), so an unchanged key means unchanged content.
_FILE_DIGESTS: dict[tuple[str, int, int, int, int, int], bytes] = {}


def _file_digest(path: Path) -> bytes:
    """The SHA-256 of a file's content, read once per process while it is unchanged."""
    __tracebackhide__ = True
    try:
        status = os.stat(path)
        key = (
            os.fsdecode(path),
            status.st_dev,
            status.st_ino,
            status.st_size,
            status.st_mtime_ns,
            status.st_ctime_ns,
        )
        if key not in _FILE_DIGESTS:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                while chunk := handle.read(_HASH_CHUNK):
                    digest.update(chunk)
            _FILE_DIGESTS[key] = digest.digest()
    except OSError as exc:
        raise EnvironmentBuildError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _FILE_DIGESTS[key]


def source_fingerprint(location: PackageLocation, files: list[PackageFile] | None = None) -> str:
    """A digest of the package's kind, file names and file contents."""
    __tracebackhide__ = True
    digest = hashlib.sha256(location.kind.encode())
    for file in package_files(location) if files is None else files:
        digest.update(os.fsencode(file.relative) + (b"/\0" if file.is_directory else b"\0"))
        if not file.is_directory:
            digest.update(_file_digest(file.source))
    return digest.hexdigest()[:16]


def copy_files(files: list[PackageFile], destination: Path) -> None:
    """Copy ``files`` under ``destination``, keeping modification times, all writable.

    Copies are writable by their owner even when the sources are not (a Nix
    store, Bazel runfiles): cold rounds must be able to write ``__pycache__``.
    """
    __tracebackhide__ = True
    destination.mkdir(parents=True, exist_ok=True)
    for file in files:
        target = destination / file.relative
        if file.is_directory:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(file.source, target)
        except OSError as exc:
            raise EnvironmentBuildError(
                f"cannot copy {file.source}: {exc.strerror or exc}"
            ) from None
        target.chmod(target.stat().st_mode | stat.S_IWUSR)
    for directory, _, _ in os.walk(destination):
        os.chmod(directory, os.stat(directory).st_mode | stat.S_IWUSR | stat.S_IXUSR)
