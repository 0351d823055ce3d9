"""``Measurer``: turn a :class:`~pytest_importcache.model.spec.MeasurementSpec` into a result.

A measurer holds what is shared by every measurement of a run: where copies
are cached, where packages are looked for, the lock that keeps measurements
apart, the observers told about each round and result, and the round runner.
The round runner is :func:`~pytest_importcache.engine.runner.run_round` (a real
interpreter per round); tests inject one that returns fixed reports.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import shutil
import site
import sys
import sysconfig
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from filelock import FileLock

from pytest_importcache.model.errors import EnvironmentBuildError, InterpreterError
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.result import ImportResult, build_result
from pytest_importcache.model.spec import MeasurementSpec, Metric

from .cache import default_cache_dir, default_cache_path, discard_copy, remove_tree
from .callgrind import find_valgrind
from .copying import (
    PackageCopy,
    clear_bytecode,
    copy_state,
    environment_dir_name,
    prepare_copy,
)
from .countstore import CountStore, ReusedCount, default_store_path, files_clock_now
from .interpreter import check_interpreter
from .lifecycle import adopt_orphans, signals_end_rounds, start_guardian
from .locate import PackageLocation, locate_package, warn_if_imported_elsewhere
from .runner import round_pycache_prefix, run_round

__all__ = [
    "MeasurementObserver",
    "Measurer",
    "RoundRunner",
    "resolve_python",
    "round_import_path",
]


@contextmanager
def _rounds_directory(copy: PackageCopy) -> Iterator[Path]:
    """The rounds' working directory, beside ``copy``, removed afterwards.

    Its path is the same in every measurement of the copy (whose measurement
    lock the caller holds, so no one else uses it at the same time): path
    strings reach the import's dictionaries through their hashes, and a
    random temporary name made instruction counts differ by a few hundred
    from one measurement to the next.
    """
    directory = copy.directory.with_name(f"{copy.directory.name}.rounds")
    remove_tree(directory)  # left behind by a measurement that was killed
    directory.mkdir()
    try:
        yield directory
    finally:
        remove_tree(directory)


@dataclass(frozen=True)
class _Side:
    """What one side of a measurement is given: whose files, its path, its source-only dirs."""

    location: PackageLocation | None
    import_path: tuple[str, ...]
    source_only: tuple[str, ...] = ()
    label: str = ""


@dataclass
class _SideState:
    """One side of a measurement: whose files, its copy, that copy's state, its counted rounds.

    ``import_path`` is what the side's rounds search after the copy; modules
    under ``source_only`` are compiled in every round.
    """

    location: PackageLocation | None
    import_path: tuple[str, ...]
    source_only: tuple[str, ...]
    label: str
    copy: PackageCopy
    pristine: frozenset[tuple[str, int, int]]
    reports: list[RoundReport] = field(default_factory=list)
    key: str = ""
    reused: ReusedCount | None = None


class RoundRunner(Protocol):
    """Runs one round; :func:`~pytest_importcache.engine.runner.run_round` is the real one."""

    def __call__(
        self,
        module: str,
        roots: Sequence[Path],
        workdir: Path,
        *,
        python: str,
        optimize: int,
        timeout: float,
        pycache_prefix: Path | None,
        description: str,
        metric: Metric,
        module_costs: bool,
        import_path: Sequence[str],
        source_only: Sequence[str],
    ) -> RoundReport:
        """Import ``module`` once with ``roots``, then ``import_path``, on ``sys.path``.

        Modules under ``source_only`` are compiled in every round.
        """
        ...


class MeasurementObserver(Protocol):
    """Told what measurements do: the raw-rounds writer, the recorder, a progress bar."""

    def round_done(self, spec: MeasurementSpec, index: int, report: RoundReport) -> None:
        """Round ``index`` (0-based, warm-up rounds first) of ``spec`` finished."""
        ...

    def measured(self, spec: MeasurementSpec, result: ImportResult) -> None:
        """``spec`` was measured."""
        ...


@functools.lru_cache(maxsize=64)
def resolve_python(python: str | None) -> str:
    """The absolute path of ``python`` (default: this interpreter), checked to run the rounds.

    Cached per process: a measurement asks several times.
    """
    __tracebackhide__ = True
    chosen = python or sys.executable
    found = shutil.which(chosen)
    if not chosen or found is None:
        raise InterpreterError(f"python interpreter {chosen!r} not found or not executable")
    found = os.path.abspath(found)
    check_interpreter(found)
    return found


def _installed_dirs() -> tuple[str, ...]:
    """This interpreter's standard library, scripts, site-packages and user site: path prefixes.

    Directories end with a separator; the standard library's zip file is named as it is.
    """
    paths = sysconfig.get_paths()
    directories = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib", "scripts")}
    directories.update(site.getsitepackages() if hasattr(site, "getsitepackages") else ())
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if user_site:
        directories.add(user_site)
    zip_name = f"python{sys.version_info[0]}{sys.version_info[1]}.zip"
    zips = {
        os.path.join(os.path.realpath(prefix), "lib", zip_name)
        for prefix in (sys.prefix, sys.base_prefix)
    }
    return (
        *(os.path.join(os.path.realpath(directory), "") for directory in directories),
        *zips,
    )


def round_import_path(entries: Sequence[str]) -> tuple[str, ...]:
    """The import path a round searches after the copy: ``entries`` (``sys.path``) made fit.

    Entries become absolute (``""`` is the current directory: the rounds run in
    another), duplicates go, and so do this interpreter's standard library,
    site-packages and user site: the child's own clean start-up provides its
    interpreter's (another interpreter must not get this one's), and the user
    site stays out as it always has. What remains is what the tests see on top
    of an installation: pytest's ``pythonpath``, rootdir and conftest
    insertions, ``PYTHONPATH``, ``--path``, in order.
    """
    installed = _installed_dirs()
    kept: dict[str, None] = {}
    for entry in entries:
        if not isinstance(entry, str) or "\0" in entry:
            continue
        absolute = os.path.abspath(entry or os.curdir)
        real = os.path.join(os.path.realpath(absolute), "")
        if real.startswith(installed) or real.rstrip(os.sep) in installed:
            continue
        kept.setdefault(absolute)
    return tuple(kept)


class Measurer:
    """Measures specs: copies cached under ``cache_dir``, packages found on ``search_path``.

    ``cache_dir`` defaults to the per-user cache
    (:func:`~pytest_importcache.engine.cache.default_cache_dir`), ``search_path`` to
    ``sys.path`` (read when each measurement starts); the rounds also search
    it after the copy (:func:`round_import_path`), unless a spec names its own
    ``import_path``. ``lock`` wraps every measurement (the pytest plugin passes a
    cross-process lock); ``observers`` are told about rounds and results.
    ``count_store`` keeps instruction counts for reuse while their inputs are
    unchanged (:mod:`~pytest_importcache.engine.countstore`): by default the store in
    the cache directory when the rounds are real (:func:`run_round`), none with
    another round runner unless one is given; ``False`` counts every time.
    ``module_counts=False`` counts instructions for the import only, not per
    module (a plain round: two to three times cheaper; the total is the same).
    """

    def __init__(
        self,
        *,
        cache_dir: Path | str | None = None,
        search_path: Sequence[str] | None = None,
        lock: Callable[[], AbstractContextManager[object]] | None = None,
        observers: Sequence[MeasurementObserver] = (),
        round_runner: RoundRunner = run_round,
        count_store: CountStore | Literal[False] | None = None,
        module_counts: bool = True,
    ) -> None:
        # Absolute: the rounds run with another current directory.
        self.cache_dir = Path(cache_dir).absolute() if cache_dir is not None else None
        self.search_path = list(search_path) if search_path is not None else None
        self.lock = lock
        self.observers = list(observers)
        self.round_runner = round_runner
        self.count_store = count_store
        self.module_counts = module_counts

    def store_for(self, spec: MeasurementSpec) -> CountStore | None:
        """The count store ``spec``'s counts are reused from and saved to; ``None`` for none."""
        if spec.metric != "instructions" or self.count_store is False:
            return None
        if self.count_store is not None:
            return self.count_store
        if inspect.unwrap(self.round_runner) is not run_round:
            return None  # made-up rounds must never land in a real store
        return CountStore(default_store_path(self.cache_dir or default_cache_dir()))

    def import_path_for(self, spec: MeasurementSpec) -> tuple[str, ...]:
        """What ``spec``'s rounds search after the copy: its own, or the search path's now."""
        if spec.import_path is not None:
            return spec.import_path
        return round_import_path(sys.path if self.search_path is None else self.search_path)

    def environment_dir(self, spec: MeasurementSpec) -> Path:
        """The directory holding ``spec``'s package copies (nothing is created)."""
        cache_dir = self.cache_dir or default_cache_path()
        return cache_dir / environment_dir_name(spec, resolve_python(spec.python))

    def copy_for(
        self, spec: MeasurementSpec, location: PackageLocation | None = None
    ) -> PackageCopy:
        """Locate the package of ``spec.module`` and build (or reuse) its copy.

        ``location`` gives the package's files instead (a git revision's tree).
        """
        __tracebackhide__ = True
        python = resolve_python(spec.python)
        if location is None:
            location = locate_package(spec.module, self.search_path, python=python)
            warn_if_imported_elsewhere(location, python)
        if self.cache_dir is None:
            default_cache_dir()  # created private, or refused
        environment_dir = self.environment_dir(spec)
        try:
            return prepare_copy(
                location,
                environment_dir,
                flavour=spec.flavour,
                python=python,
                optimize=spec.optimize,
                invalidation_mode=spec.invalidation_mode,
            )
        except OSError as exc:
            raise EnvironmentBuildError(
                f"cannot build the copy of {location.top_level!r} in {environment_dir}: "
                f"{exc.strerror or exc}"
            ) from None

    def _copy_in_use(
        self,
        spec: MeasurementSpec,
        stack: ExitStack,
        held: Path | None = None,
        location: PackageLocation | None = None,
    ) -> PackageCopy:
        """:meth:`copy_for`, holding the copy's measurement lock until ``stack`` closes.

        The lock keeps the cache's pruning (another process's) away from the copy
        and keeps two measurements of one cold copy apart. ``held`` is a copy
        whose lock this measurement already holds (taking it twice would wait forever).
        """
        __tracebackhide__ = True
        while True:
            copy = self.copy_for(spec, location)
            if copy.directory == held:
                return copy
            lock = FileLock(f"{copy.directory}.measure.lock")
            lock.acquire()
            if copy.directory.is_dir():
                stack.callback(lock.release)
                return copy
            lock.release()  # pruned between building and locking: build it again

    def measure(self, spec: MeasurementSpec) -> ImportResult:
        """Import ``spec.module`` in ``warmup`` + ``rounds`` fresh interpreters and summarise.

        Raises a subclass of :class:`~pytest_importcache.ImportCacheError` when the
        module cannot be found, raises on import, hangs or crashes. SIGTERM or
        SIGHUP during the rounds ends them and raises
        :class:`~pytest_importcache.engine.lifecycle.RoundsInterrupted` (a ``KeyboardInterrupt``).
        Instruction rounds (valgrind required) do not take the measurement lock:
        what else runs does not change their counts.
        """
        __tracebackhide__ = True
        return self._measure_sides(spec, [_Side(None, self.import_path_for(spec))])[0]

    def measure_pair(
        self,
        spec: MeasurementSpec,
        base: PackageLocation,
        base_label: str = "at the baseline",
        base_import_path: Sequence[str] | None = None,
        source_only: tuple[Sequence[str], Sequence[str]] = ((), ()),
    ) -> tuple[ImportResult, ImportResult]:
        """Measure ``spec`` (head) and the same import from ``base``'s files, rounds interleaved.

        ``base_import_path`` is what the base's rounds search after its copy
        (default: the head's, :meth:`import_path_for`). ``source_only`` holds,
        for head and base, directories whose modules are compiled in every
        round (a repository's siblings: the working tree's bytecode must not
        favour the head).

        Rounds alternate head, base, head, base...: warm-up rounds first (as
        many on each side), then ``spec.rounds`` counted rounds on each side,
        all under one hold of the measurement lock, so whatever the machine
        does at a moment hits both sides alike (one by one rather than in
        blocks: a little steadier, ``tests/benchmarks/bench_ab.py --order``).
        Returns (head, base) results.
        Observers hear about the head's rounds and result only. Errors as
        :meth:`measure`; an error in a base round names ``base_label``
        (``"at main (8d1961923007)"``).
        """
        __tracebackhide__ = True
        head_path = self.import_path_for(spec)
        base_path = head_path if base_import_path is None else tuple(base_import_path)
        head, base_result = self._measure_sides(
            spec,
            [
                _Side(None, head_path, tuple(source_only[0])),
                _Side(base, base_path, tuple(source_only[1]), base_label),
            ],
        )
        return head, base_result

    def _measure_sides(
        self,
        spec: MeasurementSpec,
        sides: Sequence[_Side],
    ) -> list[ImportResult]:
        """``spec`` measured on each side's files (``None``: located), rounds interleaved.

        Each side's label is added to its rounds' errors.
        """
        __tracebackhide__ = True
        python = resolve_python(spec.python)
        with ExitStack() as stack:
            self._enter_rounds(spec, stack)
            # Built under the measurement lock too: compiling a copy would slow down
            # another process's rounds. Sides with the same files (an unchanged
            # package) share one copy.
            states: list[_SideState] = []
            for side in sides:
                held = states[0].copy.directory if states else None
                copy = self._copy_in_use(spec, stack, held=held, location=side.location)
                states.append(
                    _SideState(
                        side.location,
                        side.import_path,
                        side.source_only,
                        side.label,
                        copy,
                        copy_state(copy),
                    )
                )
            workdirs = self._rounds_directories(states, stack)
            store = self.store_for(spec)
            if store is not None:
                self._reuse_counts(spec, python, store, states, workdirs)
            rounds_started_ns = files_clock_now(workdirs[states[0].copy.directory])
            self._run_rounds(spec, states, stack, workdirs, python)
            if spec.flavour == "cold":
                for state in states:
                    clear_bytecode(state.copy.roots)
            if store is not None:
                for state in states:
                    if state.reused is None and state.key:
                        # The environment directory holds the copies and the rounds
                        # directories: what the rounds write there is not an input edited.
                        store.save(
                            state.key,
                            spec,
                            state.reports,
                            rounds_started_ns=rounds_started_ns,
                            own=(state.copy.directory.parent,),
                        )
        results = [
            dataclasses.replace(
                build_result(
                    spec.module,
                    spec.flavour,
                    spec.closure,
                    python,
                    state.reports,
                    metric=spec.metric,
                ),
                reused=state.reused,
            )
            for state in states
        ]
        for observer in self.observers:
            observer.measured(spec, results[0])
        return results

    @staticmethod
    def _rounds_directories(states: Sequence[_SideState], stack: ExitStack) -> dict[Path, Path]:
        """Each copy's rounds directory, entered on ``stack``, by copy directory.

        Each copy's rounds run in its own directory, so that a side's command
        lines (and its stored count's key) depend on its own files only: a
        baseline revision's count is reused whatever the head's files are.
        """
        workdirs: dict[Path, Path] = {}
        for state in states:
            if state.copy.directory not in workdirs:
                workdirs[state.copy.directory] = stack.enter_context(_rounds_directory(state.copy))
        return workdirs

    def _run_rounds(
        self,
        spec: MeasurementSpec,
        states: Sequence[_SideState],
        stack: ExitStack,
        workdirs: dict[Path, Path],
        python: str,
    ) -> None:
        """Every side's rounds, interleaved, but for reused counts; observers hear the head's."""
        __tracebackhide__ = True
        counting = [state for state in states if state.reused is None]
        for index in range(spec.total_rounds):
            for state in counting:
                workdir = workdirs[state.copy.directory]
                report = self._side_round(
                    spec, state, stack, workdir=workdir, python=python, index=index
                )
                if state is states[0]:
                    for observer in self.observers:
                        observer.round_done(spec, index, report)
        if states[0].reused is not None:
            for index, report in enumerate(states[0].reports, start=spec.warmup):
                for observer in self.observers:
                    observer.round_done(spec, index, report)

    def _reuse_counts(
        self,
        spec: MeasurementSpec,
        python: str,
        store: CountStore,
        states: Sequence[_SideState],
        workdirs: dict[Path, Path],
    ) -> None:
        """Give each side the stored counts whose inputs are unchanged; note the others' keys."""
        runner = getattr(self.round_runner, "__qualname__", type(self.round_runner).__qualname__)
        runner = f"{getattr(self.round_runner, '__module__', '')}.{runner}"
        for state in states:
            state.key = store.key(
                spec,
                python,
                state.copy.roots,
                workdirs[state.copy.directory],
                runner=runner,
                import_path=state.import_path,
                source_only=state.source_only,
                module_counts=self.module_counts,
            )
            found = store.lookup(state.key)
            if found is not None:
                state.reports, state.reused = list(found[0]), found[1]

    def _side_round(
        self,
        spec: MeasurementSpec,
        state: _SideState,
        stack: ExitStack,
        *,
        workdir: Path,
        python: str,
        index: int,
    ) -> RoundReport:
        """Round ``index`` on one side's copy, kept when counted; a copy written to is rebuilt."""
        __tracebackhide__ = True
        report = self._round(
            spec,
            state.copy,
            workdir,
            python,
            index,
            side=state.label,
            import_path=state.import_path,
            source_only=state.source_only,
        )
        if copy_state(state.copy) != state.pristine:
            # The import wrote into its own package: the next round, and the
            # next measurement, start from a fresh copy, as after an install.
            stale = state.copy.directory
            discard_copy(stale)
            state.copy = self._copy_in_use(spec, stack, held=stale, location=state.location)
            state.pristine = copy_state(state.copy)
        if index >= spec.warmup:
            state.reports.append(report)
        return report

    def _enter_rounds(self, spec: MeasurementSpec, stack: ExitStack) -> None:
        """What every measurement's rounds run under, entered on ``stack``.

        Signals end the rounds, orphans are adopted, and timed rounds hold the
        measurement lock. Counted rounds need valgrind, checked first, and no
        lock: what else runs does not change their counts.
        """
        __tracebackhide__ = True
        counting = spec.metric == "instructions"
        if counting and inspect.unwrap(self.round_runner) is run_round:
            find_valgrind()
        stack.enter_context(signals_end_rounds())
        stack.enter_context(adopt_orphans())
        stack.enter_context(self.lock() if self.lock and not counting else nullcontext())
        # Under the lock: its interpreter's start-up must not overlap another's timed round.
        start_guardian()

    def _round(
        self,
        spec: MeasurementSpec,
        copy: PackageCopy,
        workdir: Path,
        python: str,
        index: int,
        *,
        side: str = "",
        import_path: tuple[str, ...] = (),
        source_only: tuple[str, ...] = (),
    ) -> RoundReport:
        """Round ``index`` of ``spec`` on ``copy``: cold bytecode cleared, named in errors.

        ``side`` names whose files the copy holds, in errors (``"at main (8d19...)"``);
        ``import_path`` is what the round searches after the copy; modules under
        ``source_only`` are compiled in every round.
        """
        __tracebackhide__ = True
        if spec.flavour == "cold":
            clear_bytecode(copy.roots)
        prefix = round_pycache_prefix(workdir, index, closure=spec.closure)
        if prefix is not None:
            shutil.rmtree(prefix, ignore_errors=True)
        if index < spec.warmup:
            phase = f"warm-up round {index + 1} of {spec.warmup}"
        else:
            phase = f"round {index - spec.warmup + 1} of {spec.rounds}"
        try:
            report = self.round_runner(
                spec.module,
                copy.roots,
                workdir,
                python=python,
                optimize=spec.optimize,
                timeout=spec.timeout,
                pycache_prefix=prefix,
                description=f"{spec.label} {phase}" + (f", {side}" if side else ""),
                metric=spec.metric,
                module_costs=spec.counts_modules(index) and self.module_counts,
                import_path=import_path,
                source_only=source_only,
            )
        finally:
            if prefix is not None:
                shutil.rmtree(prefix, ignore_errors=True)
        if spec.flavour == "cold" and report.origin.endswith((".pyc", ".pyo")):
            raise EnvironmentBuildError(
                f"{spec.module!r} is a sourceless module ({Path(report.origin).name}): it has "
                "no source to compile, so it cannot be measured cold; measure it warm"
            )
        return report
