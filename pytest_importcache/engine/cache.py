"""The persistent cache of package copies: where it lives, what it holds, its bounds.

Copies are laid out as ``<cache>/<environment>/<package>-<fingerprint>/``, where
the environment directory names the flavour, the interpreter and the
compilation settings (``warm-1a2b3c4d5e6fO0-timestamp``), and the fingerprint
is a digest of the package's content. Beside each copy, ``<copy>.lock`` guards
its building and ``<copy>.measure.lock`` is held while a measurement uses it,
so a copy in use is never removed.

Bounds: after a new copy is built, older copies of the same package in the
same environment are removed beyond :data:`MAX_COPIES_PER_PACKAGE`, and any
copy unused for :data:`MAX_AGE_DAYS` is removed. A copy's modification time
records its last use.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from pytest_importcache.model.errors import EnvironmentBuildError

__all__ = [
    "MAX_AGE_DAYS",
    "MAX_COPIES_PER_PACKAGE",
    "CachedCopy",
    "cached_copies",
    "clear_cache",
    "complete_marker",
    "default_cache_dir",
    "default_cache_path",
    "discard_copy",
    "mark_used",
    "prune_cache",
    "remove_tree",
]

MAX_AGE_DAYS = 14
MAX_COPIES_PER_PACKAGE = 3
_LOCK_SUFFIXES = (".lock", ".measure.lock")
# Staging and trash directories older than this belong to a process that died.
_LEFTOVER_AGE = 3600
# Environment directories start with their flavour; anything else in the cache is not a copy.
ENVIRONMENT_PREFIXES = ("warm-", "cold-")


@dataclass(frozen=True)
class CachedCopy:
    """One copy of a package in the cache."""

    path: Path
    package: str
    environment: str
    size_bytes: int
    last_used: float


def default_cache_path() -> Path:
    """Where copies live when no cache directory is given: a per-user temporary directory."""
    user = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"pytest-importcache-{user}"


# What chooses another directory than the default: TMPDIR (as tempfile reads it), or an
# explicit directory (the engine's cache_dir=, the cache subcommand's --dir).
_ANOTHER_DIRECTORY = (
    "set TMPDIR to choose another directory (the cache is $TMPDIR/pytest-importcache-UID; "
    "from Python, ImportEnv(cache_dir=...); pytest-importcache cache takes --dir)"
)


def default_cache_dir() -> Path:
    """:func:`default_cache_path`, created private (mode 0700) if need be.

    One that another user owns or can write to is refused: its copies would
    be code run as this user.
    """
    __tracebackhide__ = True
    directory = default_cache_path()
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise EnvironmentBuildError(
            f"cannot use the cache directory {directory}: {exc.strerror or exc}; remove what "
            f"is there, or {_ANOTHER_DIRECTORY}"
        ) from None
    if hasattr(os, "getuid"):
        status = directory.lstat()
        if (
            not stat.S_ISDIR(status.st_mode)
            or status.st_uid != os.getuid()
            or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            raise EnvironmentBuildError(
                f"refusing the cache directory {directory}: it is not a directory owned by "
                f"this user and writable only by it; remove it, or {_ANOTHER_DIRECTORY}"
            )
    return directory


def _tree_size(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                continue
    return total


def _environment_dirs(cache_dir: Path) -> Iterator[Path]:
    """The environment directories of ``cache_dir``."""
    if not cache_dir.is_dir():
        return
    for environment in sorted(cache_dir.iterdir()):
        if (
            environment.name.startswith(ENVIRONMENT_PREFIXES)
            and environment.is_dir()
            and not environment.is_symlink()
        ):
            yield environment


def _iter_copy_dirs(cache_dir: Path) -> Iterator[Path]:
    """Every copy directory under ``cache_dir`` (two levels down, no staging or lock files).

    A copy is one the cache finished building (its :func:`complete_marker`
    beside it): a directory the cache did not build, in a folder named as the
    cache by mistake, is neither listed nor removed.
    """
    for environment in _environment_dirs(cache_dir):
        for entry in sorted(environment.iterdir()):
            # Staging and trash directories have a dot in their names; copies have none.
            if (
                entry.is_dir()
                and not entry.is_symlink()
                and "." not in entry.name
                and complete_marker(entry).is_file()
            ):
                yield entry


def _package_of(copy: Path) -> str:
    return copy.name.rpartition("-")[0] or copy.name


def cached_copies(cache_dir: Path) -> list[CachedCopy]:
    """The copies in ``cache_dir``, most recently used first."""
    copies = [
        CachedCopy(
            path=copy,
            package=_package_of(copy),
            environment=copy.parent.name,
            size_bytes=_tree_size(copy),
            last_used=copy.stat().st_mtime,
        )
        for copy in _iter_copy_dirs(cache_dir)
    ]
    return sorted(copies, key=lambda copy: -copy.last_used)


def mark_used(copy: Path) -> None:
    """Record that ``copy`` was just used (its modification time is its last use)."""
    with contextlib.suppress(OSError):
        os.utime(copy)


def complete_marker(copy: Path) -> Path:
    """The file whose presence says ``copy`` was built completely (written last)."""
    return Path(f"{copy}.complete")


def _writable_and_retry(function: Any, path: str, _: Any) -> None:
    """``rmtree``'s error handler: make the parent and the path writable, then retry."""
    with contextlib.suppress(OSError):
        parent = os.path.dirname(path)
        os.chmod(parent, os.stat(parent).st_mode | stat.S_IRWXU)
        if not os.path.islink(path):
            os.chmod(path, os.stat(path).st_mode | stat.S_IRWXU)
        function(path)


def remove_tree(path: Path) -> None:
    """Delete ``path``, also where the import left directories without write permission."""
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=_writable_and_retry)
    else:
        shutil.rmtree(path, onerror=_writable_and_retry)


def discard_copy(copy: Path) -> None:
    """Take ``copy`` out of the cache: first its completion mark, then the tree.

    The tree is renamed aside before it is deleted, so a deletion that fails
    halfway (a read-only directory the import made) never leaves a partial
    copy under the copy's name.
    """
    complete_marker(copy).unlink(missing_ok=True)
    trash = copy.with_name(f"{copy.name}.trash-{secrets.token_hex(4)}")
    try:
        copy.rename(trash)
    except FileNotFoundError:
        return
    remove_tree(trash)


def _remove_if_unused(copy: Path) -> bool:
    """Remove ``copy`` unless another process is building or measuring it.

    Its lock files stay: a lock file removed while another process waits on it
    would let two processes "hold" the same lock.
    """
    build_lock = FileLock(f"{copy}.lock")
    measure_lock = FileLock(f"{copy}.measure.lock")
    try:
        with build_lock.acquire(timeout=0), measure_lock.acquire(timeout=0):
            discard_copy(copy)
    except Timeout:
        return False
    return not copy.exists()


def _remove_leftovers(environment: Path, now: float) -> None:
    """Staging and trash directories of processes that died, and locks of long-gone copies."""
    for entry in environment.iterdir():
        try:
            age = now - entry.lstat().st_mtime
        except OSError:
            continue
        if "." not in entry.name or age < _LEFTOVER_AGE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            remove_tree(entry)
        elif entry.name.endswith(_LOCK_SUFFIXES) and age > MAX_AGE_DAYS * 86400:
            copy = environment / entry.name.split(".", 1)[0]
            if not copy.exists():
                entry.unlink(missing_ok=True)


def prune_cache(cache_dir: Path, *, keep: Path | None = None, now: float | None = None) -> int:
    """Apply the cache's bounds; ``keep`` (the copy just built or used) is never removed.

    Returns how many copies were removed.
    """
    now = time.time() if now is None else now
    for environment in _environment_dirs(cache_dir):
        _remove_leftovers(environment, now)
    removed = 0
    per_package: dict[tuple[str, str], int] = {}
    for copy in cached_copies(cache_dir):
        key = (copy.environment, copy.package)
        per_package[key] = per_package.get(key, 0) + 1
        if copy.path == keep:
            continue
        too_old = now - copy.last_used > MAX_AGE_DAYS * 86400
        if (too_old or per_package[key] > MAX_COPIES_PER_PACKAGE) and _remove_if_unused(copy.path):
            removed += 1
    return removed


def clear_cache(cache_dir: Path) -> int:
    """Remove every copy in ``cache_dir`` that no process is using; returns how many."""
    return sum(1 for copy in list(_iter_copy_dirs(cache_dir)) if _remove_if_unused(copy))
