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
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from filelock import FileLock

from .cache import default_cache_dir, mark_used, prune_cache
from .copying import copy_files, package_files, source_fingerprint
from .errors import EnvironmentBuildError, InterpreterError
from .interpreter import check_interpreter
from .lifecycle import signals_end_rounds
from .locate import PackageLocation, locate_package, warn_if_imported_elsewhere
from .result import Flavour, ImportResult, build_result, flavour_label
from .runner import run_round

__all__ = [
    "ImportEnv",
    "InvalidationMode",
    "PackageCopy",
    "default_cache_dir",
    "prepare_copy",
    "source_fingerprint",
]

InvalidationMode = Literal["timestamp", "checked-hash", "unchecked-hash"]

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
    identity = f"{os.path.abspath(python)}\0{status.st_size}\0{status.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


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
    building a new one applies the cache's bounds (:mod:`pytest_importcache.cache`).
    """
    __tracebackhide__ = True
    environment_dir.mkdir(parents=True, exist_ok=True)
    files = package_files(location)
    directory = environment_dir / f"{location.top_level}-{source_fingerprint(location, files)}"
    roots = _copy_roots(location, directory)
    built = False
    with FileLock(f"{directory}.lock"):
        if not directory.exists():
            staging = Path(tempfile.mkdtemp(prefix=f"{directory.name}.", dir=environment_dir))
            try:
                copy_files(files, staging / "copy")
                staged_roots = _copy_roots(location, staging / "copy")
                for root in staged_roots:
                    root.mkdir(parents=True, exist_ok=True)
                if flavour == "warm":
                    _compile(python, staged_roots, optimize, invalidation_mode)
                (staging / "copy").rename(directory)
                built = True
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        mark_used(directory)
    if built:
        prune_cache(environment_dir.parent, keep=directory)
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
        raise InterpreterError(f"python interpreter {chosen!r} not found or not executable")
    found = os.path.abspath(found)
    check_interpreter(found)
    return found


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
        location = locate_package(module, self.search_path, python=self.python)
        warn_if_imported_elsewhere(location, self.python)
        return prepare_copy(
            location,
            self.path,
            flavour=self.flavour,
            python=self.python,
            optimize=self.optimize,
            invalidation_mode=self.invalidation_mode,
        )

    def _copy_in_use(self, module: str, stack: ExitStack) -> PackageCopy:
        """:meth:`copy_for`, holding the copy's measurement lock until ``stack`` closes.

        The lock keeps the cache's pruning (another process's) away from the copy
        and keeps two measurements of one cold copy apart.
        """
        __tracebackhide__ = True
        while True:
            copy = self.copy_for(module)
            lock = FileLock(f"{copy.directory}.measure.lock")
            lock.acquire()
            if copy.directory.is_dir():
                stack.callback(lock.release)
                return copy
            lock.release()  # pruned between building and locking: build it again

    def measure(self, module: str, rounds: int | None = None) -> ImportResult:
        """Import ``module`` in ``warmup`` + ``rounds`` fresh interpreters and summarise.

        Raises a subclass of :class:`~pytest_importcache.ImportCacheError` when the
        module cannot be found, raises on import, hangs or crashes. SIGTERM or
        SIGHUP during the rounds ends them and raises
        :class:`~pytest_importcache.lifecycle.RoundsInterrupted` (a ``KeyboardInterrupt``).
        """
        __tracebackhide__ = True
        counted = self.rounds if rounds is None else rounds
        _check_rounds(counted, "rounds", minimum=1)
        total = self.warmup + counted
        with ExitStack() as stack:
            stack.enter_context(signals_end_rounds())
            stack.enter_context(self.measurement_lock() if self.measurement_lock else nullcontext())
            # Built under the measurement lock too: compiling a copy would slow down
            # another process's rounds.
            copy = self._copy_in_use(module, stack)
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
                if self.flavour == "cold" and report.origin.endswith((".pyc", ".pyo")):
                    raise EnvironmentBuildError(
                        f"{module!r} is a sourceless module ({Path(report.origin).name}): it has "
                        "no source to compile, so it cannot be measured cold; measure it warm"
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
