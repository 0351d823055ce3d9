"""One measurement's rounds: its sides, their copies and rounds directories, interleaved.

A measurement has one side (the package as found) or two (a same-run
comparison: the head and a revision's files). :class:`MeasurementRounds` runs
``warmup + rounds`` rounds on every side, one by one (head, base, head,
base...), through the round runner it is given, rebuilds a copy the import
wrote into, gives a side the stored counts whose inputs are unchanged, and
tells the observers about the head's rounds. The
:class:`~pytest_importcache.engine.measurer.Measurer` holds what every
measurement shares and builds one of these per measurement.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from filelock import FileLock

from pytest_importcache.model.errors import EnvironmentBuildError, RoundCrashedError
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.result import ImportResult
from pytest_importcache.model.spec import MeasurementSpec, Metric

from .cache import discard_copy, remove_tree
from .copying import PackageCopy, clear_bytecode, copy_state
from .countstore import CountStore, ReusedCount
from .locate import PackageLocation
from .roundcommand import round_pycache_prefix

__all__ = [
    "CopyMaker",
    "MeasurementObserver",
    "MeasurementRounds",
    "RoundRunner",
    "Side",
    "copy_in_use",
]


class RoundRunner(Protocol):
    """Runs one round; :func:`~pytest_importcache.engine.runner.run_round` is the real one.

    The seam through which a :class:`~pytest_importcache.engine.measurer.Measurer`
    gets its rounds (its ``round_runner`` argument): tests give one that returns
    fixed reports and starts no interpreter.
    """

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


#: Builds (or reuses) the copy of a spec's package: located, or from the given files.
CopyMaker = Callable[[MeasurementSpec, "PackageLocation | None"], PackageCopy]


@dataclass(frozen=True)
class Side:
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


def copy_in_use(
    copy_for: CopyMaker,
    spec: MeasurementSpec,
    stack: ExitStack,
    held: Path | None = None,
    location: PackageLocation | None = None,
) -> PackageCopy:
    """``copy_for``'s copy, holding the copy's measurement lock until ``stack`` closes.

    The lock keeps the cache's pruning (another process's) away from the copy
    and keeps two measurements of one cold copy apart. ``held`` is a copy
    whose lock this measurement already holds (taking it twice would wait forever).
    """
    __tracebackhide__ = True
    while True:
        copy = copy_for(spec, location)
        if copy.directory == held:
            return copy
        lock = FileLock(f"{copy.directory}.measure.lock")
        lock.acquire()
        if copy.directory.is_dir():
            stack.callback(lock.release)
            return copy
        lock.release()  # pruned between building and locking: build it again


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


class MeasurementRounds:
    """The rounds of one measurement of ``spec`` on each of ``sides``, under ``stack``.

    Each side's copy is built (sides with the same files share one) and
    locked, and its rounds directory made, on ``stack``; ``round_runner`` runs
    the rounds, ``observers`` hear about the head's (the first side's);
    ``module_counts=False`` makes counted rounds plain (no per-module counts).
    """

    def __init__(
        self,
        spec: MeasurementSpec,
        python: str,
        sides: Sequence[Side],
        stack: ExitStack,
        *,
        copy_for: CopyMaker,
        round_runner: RoundRunner,
        observers: Sequence[MeasurementObserver],
        module_counts: bool = True,
    ) -> None:
        __tracebackhide__ = True
        self.spec = spec
        self.python = python
        self.stack = stack
        self.copy_for = copy_for
        self.round_runner = round_runner
        self.observers = observers
        self.module_counts = module_counts
        self.states: list[_SideState] = []
        for side in sides:
            held = self.states[0].copy.directory if self.states else None
            copy = copy_in_use(copy_for, spec, stack, held=held, location=side.location)
            self.states.append(
                _SideState(
                    side.location,
                    side.import_path,
                    side.source_only,
                    side.label,
                    copy,
                    copy_state(copy),
                )
            )
        self.workdirs = self._rounds_directories()

    def _rounds_directories(self) -> dict[Path, Path]:
        """Each copy's rounds directory, entered on the stack, by copy directory.

        Each copy's rounds run in its own directory, so that a side's command
        lines (and its stored count's key) depend on its own files only: a
        baseline revision's count is reused whatever the head's files are.
        """
        workdirs: dict[Path, Path] = {}
        for state in self.states:
            if state.copy.directory not in workdirs:
                workdirs[state.copy.directory] = self.stack.enter_context(
                    _rounds_directory(state.copy)
                )
        return workdirs

    @property
    def head_workdir(self) -> Path:
        """The head's (first side's) rounds directory."""
        return self.workdirs[self.states[0].copy.directory]

    def reuse_counts(self, store: CountStore, runner: str) -> None:
        """Give each side the stored counts whose inputs are unchanged; note the others' keys.

        ``runner`` names the round runner in the keys.
        """
        for state in self.states:
            state.key = store.key(
                self.spec,
                self.python,
                state.copy.roots,
                self.workdirs[state.copy.directory],
                runner=runner,
                import_path=state.import_path,
                source_only=state.source_only,
                module_counts=self.module_counts,
            )
            found = store.lookup(state.key)
            if found is not None:
                state.reports, state.reused = list(found[0]), found[1]

    def run(self) -> None:
        """Every side's rounds, interleaved, but for reused counts; observers hear the head's."""
        __tracebackhide__ = True
        spec, states = self.spec, self.states
        counting = [state for state in states if state.reused is None]
        for index in range(spec.total_rounds):
            for state in counting:
                report = self._side_round(state, index)
                if state is states[0]:
                    for observer in self.observers:
                        observer.round_done(spec, index, report)
        if states[0].reused is not None:
            for index, report in enumerate(states[0].reports, start=spec.warmup):
                for observer in self.observers:
                    observer.round_done(spec, index, report)
        if spec.flavour == "cold":
            for state in states:
                clear_bytecode(state.copy.roots)

    def save_counts(self, store: CountStore, rounds_started_ns: int) -> None:
        """Store the counts of the sides that counted (their keys noted by :meth:`reuse_counts`)."""
        for state in self.states:
            if state.reused is None and state.key:
                # The environment directory holds the copies and the rounds
                # directories: what the rounds write there is not an input edited.
                store.save(
                    state.key,
                    self.spec,
                    state.reports,
                    rounds_started_ns=rounds_started_ns,
                    own=(state.copy.directory.parent,),
                )

    def side_reports(self) -> list[tuple[list[RoundReport], ReusedCount | None]]:
        """Each side's kept reports and, for a reused count, where it came from."""
        return [(state.reports, state.reused) for state in self.states]

    def _side_round(self, state: _SideState, index: int) -> RoundReport:
        """Round ``index`` on one side's copy, kept when counted; a copy written to is rebuilt."""
        __tracebackhide__ = True
        report = self._round(state, index)
        if copy_state(state.copy) != state.pristine:
            # The import wrote into its own package: the next round, and the
            # next measurement, start from a fresh copy, as after an install.
            stale = state.copy.directory
            discard_copy(stale)
            state.copy = copy_in_use(
                self.copy_for, self.spec, self.stack, held=stale, location=state.location
            )
            state.pristine = copy_state(state.copy)
        if index >= self.spec.warmup:
            state.reports.append(report)
        return report

    def _round(self, state: _SideState, index: int) -> RoundReport:
        """Round ``index`` on ``state``'s copy: cold bytecode cleared, the side named in errors.

        The side's label says whose files the copy holds (``"at main (8d19...)"``).
        """
        __tracebackhide__ = True
        spec, copy = self.spec, state.copy
        workdir = self.workdirs[copy.directory]
        if spec.flavour == "cold":
            clear_bytecode(copy.roots)
        prefix = round_pycache_prefix(workdir, index, closure=spec.closure)
        if prefix is not None:
            shutil.rmtree(prefix, ignore_errors=True)
        if index < spec.warmup:
            # "round ... before counting": "warm warm-up round" would say warm twice.
            phase = f"round {index + 1} of {spec.warmup} before counting"
        else:
            phase = f"round {index - spec.warmup + 1} of {spec.rounds}"
        # Only start-up rounds pass a command: round runners written for imports need not know it.
        startup = (
            {"command": spec.command, "exit_code": spec.exit_code}
            if spec.command is not None
            else {}
        )
        try:
            report = self.round_runner(
                spec.module,
                copy.roots,
                workdir,
                python=self.python,
                optimize=spec.optimize,
                timeout=spec.timeout,
                pycache_prefix=prefix,
                description=f"{spec.label} {phase}" + (f", {state.label}" if state.label else ""),
                metric=spec.metric,
                module_costs=spec.counts_modules(index) and self.module_counts,
                import_path=state.import_path,
                source_only=state.source_only,
                **startup,
                # Only when asked: a round runner written before PEP 810 takes no such keyword.
                **({"lazy_imports": spec.lazy_imports} if spec.lazy_imports == "all" else {}),
            )
        finally:
            if prefix is not None:
                shutil.rmtree(prefix, ignore_errors=True)
        if not isinstance(report, RoundReport):
            runner = getattr(self.round_runner, "__qualname__", repr(self.round_runner))
            raise RoundCrashedError(
                f"the round runner {runner} returned {type(report).__name__}, not a RoundReport"
            )
        if spec.flavour == "cold" and report.origin.endswith((".pyc", ".pyo")):
            raise EnvironmentBuildError(
                f"{spec.module!r} is a sourceless module ({Path(report.origin).name}): it has "
                "no source to compile, so it cannot be measured cold; measure it warm"
            )
        return report
