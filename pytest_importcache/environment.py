"""Import environments: cold and warm copies of the package under test, and their rounds.

A copy is built once per (package, interpreter, flavour, optimisation level,
invalidation mode, source fingerprint) under a cache directory and reused;
processes that want the same copy wait on a ``filelock`` lock and share it,
and a changed source tree gets a new copy. Copies never carry the source's
``__pycache__``; warm copies are compiled by the interpreter the rounds use.
Cold rounds delete the copy's bytecode before each round (holding a lock on
the copy while a measurement runs, so concurrent measurements of the same
copy cannot meet), and closure-cold rounds also point the child at a fresh,
empty ``pycache_prefix`` so every module the import reaches compiles.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from filelock import FileLock

from .errors import EnvironmentBuildError
from .locate import PackageLocation, locate_package
from .result import Flavour, ImportResult, build_result, flavour_label
from .runner import run_round

__all__ = ["ImportEnv", "InvalidationMode", "PackageCopy", "default_cache_dir", "prepare_copy"]

InvalidationMode = Literal["timestamp", "checked-hash", "unchecked-hash"]

_BYTECODE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
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


def default_cache_dir() -> Path:
    """Where copies live when no cache directory is given: a per-user temporary directory.

    The directory is created private (mode 0700). One that another user owns or
    can write to is refused: its copies would be code run as this user.
    """
    __tracebackhide__ = True
    user = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    directory = Path(tempfile.gettempdir()) / f"pytest-importcache-{user}"
    directory.mkdir(mode=0o700, exist_ok=True)
    if hasattr(os, "getuid"):
        status = directory.lstat()
        if (
            not stat.S_ISDIR(status.st_mode)
            or status.st_uid != os.getuid()
            or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            raise EnvironmentBuildError(
                f"refusing the cache directory {directory}: it is not a directory owned by "
                "this user and writable only by it; remove it or pass cache_dir="
            )
    return directory


def _iter_source_files(location: PackageLocation) -> Iterator[tuple[Path, Path]]:
    """(portion, file) for every file of the package that a copy carries."""
    for portion in location.portions:
        if portion.is_file():
            yield portion, portion
            continue
        # Symbolic links are followed, as the copy follows them.
        for directory, subdirectories, files in os.walk(portion, followlinks=True):
            subdirectories[:] = sorted(name for name in subdirectories if name != "__pycache__")
            for name in sorted(files):
                if not name.endswith((".pyc", ".pyo")):
                    yield portion, Path(directory) / name


def source_fingerprint(location: PackageLocation) -> str:
    """A digest of the package's file names, sizes and modification times."""
    digest = hashlib.sha256(location.kind.encode())
    for portion, path in _iter_source_files(location):
        try:
            status = path.stat()
        except OSError:  # a dangling symbolic link: the copy leaves it out too
            continue
        digest.update(f"{portion}\0{path}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def interpreter_key(python: str) -> str:
    """A short digest identifying an interpreter (its path and its binary's size and mtime)."""
    status = Path(python).resolve().stat()
    identity = f"{os.path.abspath(python)}\0{status.st_size}\0{status.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def _make_writable(root: Path) -> None:
    """Give the owner write access under ``root``, as a fresh install has.

    ``copytree`` keeps modes, so a read-only source tree (a Nix store, Bazel
    runfiles) would give a copy where no ``__pycache__`` can be written: warm
    copies would compile nothing and cold rounds could not write bytecode.
    """
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _copy_tree(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, ignore=_BYTECODE, ignore_dangling_symlinks=True)


def _copy_package(location: PackageLocation, destination: Path) -> tuple[Path, ...]:
    """Copy the package's files (no bytecode, modification times kept) into ``destination``."""
    if location.kind == "module":
        destination.mkdir(parents=True)
        shutil.copy2(location.portions[0], destination / location.portions[0].name)
        roots: tuple[Path, ...] = (destination,)
    elif location.kind == "package":
        _copy_tree(location.portions[0], destination / location.top_level)
        roots = (destination,)
    else:
        roots = tuple(destination / f"portion-{index}" for index in range(len(location.portions)))
        for portion, root in zip(location.portions, roots, strict=True):
            _copy_tree(portion, root / location.top_level)
    _make_writable(destination)
    return roots


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
    """
    __tracebackhide__ = True
    environment_dir.mkdir(parents=True, exist_ok=True)
    directory = environment_dir / f"{location.top_level}-{source_fingerprint(location)}"
    with FileLock(f"{directory}.lock"):
        if not directory.exists():
            staging = Path(tempfile.mkdtemp(prefix=f"{directory.name}.", dir=environment_dir))
            try:
                try:
                    staged_roots = _copy_package(location, staging / "copy")
                except (OSError, shutil.Error) as exc:
                    raise EnvironmentBuildError(
                        f"cannot copy {location.top_level!r} from "
                        f"{', '.join(map(str, location.portions))}: {exc}"
                    ) from None
                if flavour == "warm":
                    _compile(python, staged_roots, optimize, invalidation_mode)
                (staging / "copy").rename(directory)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    if location.kind == "namespace":
        roots = tuple(directory / f"portion-{index}" for index in range(len(location.portions)))
    else:
        roots = (directory,)
    return PackageCopy(location, directory, roots)


def clear_bytecode(roots: Sequence[Path]) -> None:
    """Delete every ``__pycache__`` directory under ``roots``."""
    for root in roots:
        for cache in list(root.rglob("__pycache__")):
            shutil.rmtree(cache, ignore_errors=True)


def _validated_python(python: str | None) -> str:
    chosen = python or sys.executable
    found = shutil.which(chosen)
    if not chosen or found is None:
        raise ValueError(f"python interpreter {chosen!r} not found or not executable")
    return os.path.abspath(found)


class ImportEnv:
    """An import environment: how to copy packages, and how to time their import.

    ``flavour`` is ``"cold"`` (no bytecode at the start of every round) or
    ``"warm"`` (bytecode compiled up front). ``closure=True`` (cold only) makes
    every module the import reaches compile, not only the package under test.
    ``python`` defaults to the running interpreter; ``optimize`` (0, 1, 2) is
    passed as ``-O``/``-OO`` to both the compilation and the rounds. Copies are
    cached under ``cache_dir`` (default: :func:`default_cache_dir`);
    ``search_path`` (default ``sys.path``) is where packages are located.
    ``measurement_lock`` wraps every measurement (the pytest plugin passes a
    cross-process lock), ``on_result`` is called with every result, and
    ``on_round(done, total)`` after every round. With ``raw_dir``, each round's
    raw ``-X importtime`` output is kept there as ``MODULE-FLAVOUR-ROUND.txt``.
    """

    def __init__(
        self,
        flavour: Flavour = "warm",
        *,
        python: str | None = None,
        optimize: int = 0,
        invalidation_mode: InvalidationMode = "timestamp",
        closure: bool = False,
        rounds: int = 10,
        warmup: int = 1,
        timeout: float = 60.0,
        cache_dir: Path | str | None = None,
        search_path: Sequence[str] | None = None,
        measurement_lock: Callable[[], AbstractContextManager[object]] | None = None,
        on_result: Callable[[ImportResult], None] | None = None,
        on_round: Callable[[int, int], None] | None = None,
        raw_dir: Path | str | None = None,
    ) -> None:
        __tracebackhide__ = True
        if flavour not in get_args(Flavour):
            raise ValueError(f"flavour must be 'cold' or 'warm', not {flavour!r}")
        if closure and flavour != "cold":
            raise ValueError("closure=True measures a cold import: use it with flavour='cold'")
        if optimize not in (0, 1, 2):
            raise ValueError(f"optimize must be 0, 1 or 2, not {optimize!r}")
        if invalidation_mode not in get_args(InvalidationMode):
            choices = ", ".join(get_args(InvalidationMode))
            raise ValueError(
                f"invalidation_mode must be one of {choices}, not {invalidation_mode!r}"
            )
        _check_rounds(rounds, "rounds", minimum=1)
        _check_rounds(warmup, "warmup", minimum=0)
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.flavour: Flavour = flavour
        self.python = _validated_python(python)
        self.optimize = optimize
        self.invalidation_mode: InvalidationMode = invalidation_mode
        self.closure = closure
        self.rounds = rounds
        self.warmup = warmup
        self.timeout = timeout
        # Absolute: the rounds run with another current directory.
        self.cache_dir = Path(cache_dir).absolute() if cache_dir is not None else None
        self.search_path = list(search_path) if search_path is not None else None
        self.measurement_lock = measurement_lock
        self.on_result = on_result
        self.on_round = on_round
        self.raw_dir = Path(raw_dir).absolute() if raw_dir is not None else None

    def __repr__(self) -> str:
        closure = ", closure=True" if self.closure else ""
        return f"ImportEnv({self.flavour!r}, python={self.python!r}{closure}, path={self.path})"

    @property
    def path(self) -> Path:
        """The directory holding this environment's package copies."""
        # Cold and closure-cold share copies: neither has bytecode at rest.
        flavour = "warm" if self.flavour == "warm" else "cold"
        settings = f"O{self.optimize}-{self.invalidation_mode}" if flavour == "warm" else ""
        cache_dir = self.cache_dir or default_cache_dir()
        return cache_dir / f"{flavour}-{interpreter_key(self.python)}{settings}"

    def copy_for(self, module: str) -> PackageCopy:
        """Locate the package of ``module`` and build (or reuse) its copy."""
        __tracebackhide__ = True
        location = locate_package(module, self.search_path)
        return prepare_copy(
            location,
            self.path,
            flavour=self.flavour,
            python=self.python,
            optimize=self.optimize,
            invalidation_mode=self.invalidation_mode,
        )

    def measure(self, module: str, rounds: int | None = None) -> ImportResult:
        """Import ``module`` in ``warmup`` + ``rounds`` fresh interpreters and summarise.

        Raises a subclass of :class:`~pytest_importcache.ImportCacheError` when the
        module cannot be found, raises on import, hangs or crashes.
        """
        __tracebackhide__ = True
        counted = self.rounds if rounds is None else rounds
        _check_rounds(counted, "rounds", minimum=1)
        total = self.warmup + counted
        with ExitStack() as stack:
            stack.enter_context(self.measurement_lock() if self.measurement_lock else nullcontext())
            # Built under the measurement lock too: compiling a copy would slow down
            # another process's rounds.
            copy = self.copy_for(module)
            if self.flavour == "cold":
                stack.enter_context(FileLock(f"{copy.directory}.measure.lock"))
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="round-")))
            reports = []
            for index in range(total):
                prefix = None
                if self.flavour == "cold":
                    clear_bytecode(copy.roots)
                if self.closure:
                    prefix = workdir / f"pycache-{index}"
                    shutil.rmtree(prefix, ignore_errors=True)
                warming_up = index < self.warmup
                number = index + 1 if warming_up else index - self.warmup + 1
                phase = (
                    f"warm-up round {number} of {self.warmup}"
                    if warming_up
                    else f"round {number} of {counted}"
                )
                raw_path = None
                if self.raw_dir is not None:
                    tag = f"warmup-{number}" if warming_up else f"round-{number:02d}"
                    raw_path = self.raw_dir / f"{module}-{self._label}-{tag}.txt"
                report = run_round(
                    module,
                    copy.roots,
                    workdir,
                    python=self.python,
                    optimize=self.optimize,
                    timeout=self.timeout,
                    pycache_prefix=prefix,
                    description=f"{self._label} {phase}",
                    raw_path=raw_path,
                )
                if index >= self.warmup:
                    reports.append(report)
                if prefix is not None:
                    shutil.rmtree(prefix, ignore_errors=True)
                if self.on_round is not None:
                    self.on_round(index + 1, total)
            if self.flavour == "cold":
                clear_bytecode(copy.roots)
        result = build_result(module, self.flavour, self.closure, self.python, reports)
        if self.on_result is not None:
            self.on_result(result)
        return result

    @property
    def _label(self) -> str:
        return flavour_label(self.flavour, self.closure)


def _check_rounds(value: int, name: str, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, not {value!r}")
