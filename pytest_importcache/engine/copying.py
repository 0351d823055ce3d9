"""The copy of a package under test: its files, their fingerprint, building and compiling it.

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

A copy is built once per (package, interpreter, flavour, optimisation level,
invalidation mode, fingerprint) under a cache directory and reused;
processes that want the same copy wait on a ``filelock`` lock and share it.
Copies never carry the source's ``__pycache__``; warm copies are compiled by
the interpreter the rounds use. Cold rounds delete the copy's bytecode before
each round (:func:`clear_bytecode`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from pytest_importcache.model.errors import EnvironmentBuildError
from pytest_importcache.model.spec import Flavour, InvalidationMode, MeasurementSpec

from .cache import complete_marker, discard_copy, mark_used, prune_cache, remove_tree
from .interpreter import past_sibling_links
from .locate import PackageLocation

__all__ = [
    "PackageCopy",
    "PackageFile",
    "clear_bytecode",
    "copy_files",
    "copy_state",
    "environment_dir_name",
    "file_sha256",
    "fit_file_name",
    "interpreter_key",
    "package_files",
    "prepare_copy",
    "source_fingerprint",
]

_HASH_CHUNK = 1 << 20
# Room for the package's name in a copy's directory name, which also carries a
# fingerprint and, beside it, ".measure.lock": file names stop at 255 bytes.
_NAME_ROOM = 120


def fit_file_name(name: str, room: int) -> str:
    """``name``, or its start and a digest of the whole when it is longer than ``room``."""
    if len(os.fsencode(name)) <= room:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    return f"{os.fsdecode(os.fsencode(name)[: room - 13])}~{digest}"


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

    A package's files go under ``<top_level>/`` (those an import hook serves
    first, then each of its directories, the first to hold a path winning); a
    one-file module is the file itself; each portion of a namespace package
    goes under ``portion-N/<top_level>/``.
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
    if location.kind == "package" and (len(location.portions) > 1 or location.mapped):
        # Files an import hook serves come first: they are what the import reads.
        served = [
            PackageFile(Path(location.top_level) / inside, source)
            for inside, source in location.mapped
        ]
        # A package merged from several places: the first one to hold a path wins.
        unique: dict[Path, PackageFile] = {}
        for file in [*served, *files]:
            unique.setdefault(file.relative, file)
        files = list(unique.values())
    return files


# File digests by (path, device, inode, size, mtime, ctime). The change time is
# set by the kernel on every write and cannot be set back (`touch -d` sets only
# the modification time), so an unchanged key means unchanged content.
_FILE_DIGESTS: dict[tuple[str, int, int, int, int, int], bytes] = {}


def file_sha256(path: str | Path, status: os.stat_result | None = None) -> bytes:
    """The SHA-256 of a file's content, read once per process while it is unchanged.

    ``status`` is the file's, when the caller has it; ``OSError`` when it cannot be read.
    Shared by the copies' fingerprints and the count store's digests of inputs.
    """
    if status is None:
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
    return _FILE_DIGESTS[key]


def _file_digest(path: Path) -> bytes:
    """:func:`file_sha256`, or one line naming the file that cannot be read."""
    __tracebackhide__ = True
    try:
        return file_sha256(path)
    except OSError as exc:
        raise EnvironmentBuildError(f"cannot read {path}: {exc.strerror or exc}") from None


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


# compileall's process pool costs more than it saves below this many source files,
# and on fewer cores than this (measured: 25% slower on 2 cores, tests/benchmarks).
_PARALLEL_COMPILE_THRESHOLD = 200
_PARALLEL_COMPILE_CORES = 4


@dataclass(frozen=True)
class PackageCopy:
    """A built copy of a package under test: ``roots`` go first on the child's ``sys.path``."""

    location: PackageLocation
    directory: Path
    roots: tuple[Path, ...]


def interpreter_key(python: str) -> str:
    """A short digest identifying an interpreter (its path and its binary's size and mtime)."""
    status = Path(python).resolve().stat()
    # `python` and its sibling link `python3` share one key (and so one copy's path).
    identity = (
        f"{past_sibling_links(os.path.abspath(python))}\0{status.st_size}\0{status.st_mtime_ns}"
    )
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def environment_dir_name(spec: MeasurementSpec, python: str) -> str:
    """The name of the cache directory for ``spec``'s copies under ``python``.

    Cold and closure-cold share copies (neither has bytecode at rest); warm
    copies are kept apart per optimisation level and invalidation mode.
    """
    if spec.flavour == "warm":
        return f"warm-{interpreter_key(python)}O{spec.optimize}-{spec.invalidation_mode}"
    return f"cold-{interpreter_key(python)}"


def _copy_roots(location: PackageLocation, directory: Path) -> tuple[Path, ...]:
    """The directories of a copy that go on ``sys.path``: one, or one per namespace portion."""
    if location.kind == "namespace":
        return tuple(directory / f"portion-{index}" for index in range(len(location.portions)))
    return (directory,)


def _compile(
    python: str, roots: Sequence[Path], optimize: int, invalidation_mode: InvalidationMode
) -> None:
    """Compile every source file under ``roots`` with the rounds' interpreter and settings."""
    __tracebackhide__ = True
    source_count = sum(1 for root in roots for _ in root.rglob("*.py"))
    command = [python, "-I", "-m", "compileall", "-q", "-o", str(optimize)]
    command += ["--invalidation-mode", invalidation_mode]
    cores = os.cpu_count() or 1
    if source_count >= _PARALLEL_COMPILE_THRESHOLD and cores >= _PARALLEL_COMPILE_CORES:
        command += ["-j", "0"]
    completed = subprocess.run(
        [*command, *map(str, roots)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    # compileall exits 1 when a file does not compile; the import reports that
    # file if it is ever imported, so only a compileall that could not run fails here.
    if completed.returncode not in (0, 1):
        raise EnvironmentBuildError(
            f"compiling the warm copy with {python} failed (exit code {completed.returncode}):\n"
            f"{completed.stderr.strip()}"
        )


def prepare_copy(
    location: PackageLocation,
    environment_dir: Path,
    *,
    flavour: Flavour,
    python: str,
    optimize: int = 0,
    invalidation_mode: InvalidationMode = "timestamp",
) -> PackageCopy:
    """Build (or reuse) the copy of ``location`` inside ``environment_dir``.

    The copy is assembled in a private directory and renamed into place, under a
    file lock, so concurrent callers build it once and never see half a copy.
    A copy is reused only while the content it was built from is unchanged;
    building a new one applies the cache's bounds (:mod:`pytest_importcache.engine.cache`).
    """
    __tracebackhide__ = True
    environment_dir.mkdir(parents=True, exist_ok=True)
    files = package_files(location)
    name = fit_file_name(location.top_level, _NAME_ROOM)
    directory = environment_dir / f"{name}-{source_fingerprint(location, files)}"
    roots = _copy_roots(location, directory)
    built = False
    with FileLock(f"{directory}.lock"):
        if not complete_marker(directory).exists():
            # Absent, or left half-built or half-deleted by a process that died.
            discard_copy(directory)
            staging = Path(tempfile.mkdtemp(prefix=f"{directory.name}.", dir=environment_dir))
            try:
                copy_files(files, staging / "copy")
                staged_roots = _copy_roots(location, staging / "copy")
                for root in staged_roots:
                    root.mkdir(parents=True, exist_ok=True)
                if flavour == "warm":
                    _compile(python, staged_roots, optimize, invalidation_mode)
                (staging / "copy").rename(directory)
                complete_marker(directory).touch()
                built = True
            finally:
                remove_tree(staging)
        mark_used(directory)
    if built:
        prune_cache(environment_dir.parent, keep=directory)
    return PackageCopy(location, directory, roots)


def clear_bytecode(roots: Sequence[Path]) -> None:
    """Delete every ``__pycache__`` directory under ``roots``."""
    for root in roots:
        for cache in list(root.rglob("__pycache__")):
            shutil.rmtree(cache, ignore_errors=True)


def copy_state(copy: PackageCopy) -> frozenset[tuple[str, int, int]]:
    """Every file of ``copy`` outside ``__pycache__``, with its size and modification time.

    Compared before and after a round, it tells whether the import wrote into
    its own package (a generated table, a deleted file).
    """
    state = set()
    for directory, subdirectories, names in os.walk(copy.directory):
        subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
        for name in names:
            path = os.path.join(directory, name)
            try:
                status = os.lstat(path)
            except OSError:
                continue
            state.add((path, status.st_size, status.st_mtime_ns))
    return frozenset(state)
