"""``Measurer``: turn a :class:`~pytest_importcache.model.spec.MeasurementSpec` into a result.

A measurer holds what is shared by every measurement of a run: where copies
are cached, where packages are looked for, the lock that keeps measurements
apart, the observers told about each round and result, and the round runner.
The round runner (:class:`~pytest_importcache.engine.rounds.RoundRunner`, the
``round_runner`` argument) is :func:`~pytest_importcache.engine.runner.run_round`
(a real interpreter per round); tests give one that returns fixed reports. Each
measurement's rounds are run by a
:class:`~pytest_importcache.engine.rounds.MeasurementRounds`.
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
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from pathlib import Path
from typing import Literal

from pytest_importcache.model.errors import EnvironmentBuildError, InterpreterError
from pytest_importcache.model.result import ImportResult, build_result
from pytest_importcache.model.spec import MeasurementSpec

from .cache import default_cache_dir, default_cache_path
from .callgrind import find_valgrind
from .copying import PackageCopy, environment_dir_name, prepare_copy
from .countstore import CountStore, default_store_path, files_clock_now
from .interpreter import check_interpreter
from .lifecycle import adopt_orphans, signals_end_rounds, start_guardian
from .locate import PackageLocation, locate_package, warn_if_imported_elsewhere
from .roundcommand import check_lazy_imports
from .rounds import MeasurementObserver, MeasurementRounds, RoundRunner, Side
from .runner import run_round

__all__ = [
    "MeasurementObserver",
    "Measurer",
    "RoundRunner",
    "resolve_python",
    "round_import_path",
]


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
    another), duplicates go (the same real directory twice, as ``python -m
    pytest`` may put it: the first stays), and so do this interpreter's standard library,
    site-packages and user site: the child's own clean start-up provides its
    interpreter's (another interpreter must not get this one's), and the user
    site stays out as it always has. What remains is what the tests see on top
    of an installation: pytest's ``pythonpath``, rootdir and conftest
    insertions, ``PYTHONPATH``, ``--path``, in order.
    """
    installed = _installed_dirs()
    kept: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, str) or "\0" in entry:
            continue
        absolute = os.path.abspath(entry or os.curdir)
        real = os.path.join(os.path.realpath(absolute), "")
        if real.startswith(installed) or real.rstrip(os.sep) in installed:
            continue
        kept.setdefault(real, absolute)
    return tuple(kept.values())


def _enter_rounds(
    spec: MeasurementSpec,
    stack: ExitStack,
    lock: Callable[[], AbstractContextManager[object]] | None,
    *,
    round_runner: RoundRunner,
) -> None:
    """What every measurement's rounds run under, entered on ``stack``.

    Signals end the rounds, orphans are adopted, and timed rounds hold the
    measurement ``lock``. Counted rounds need valgrind (with the real
    ``round_runner``), checked first, and no lock: what else runs does not
    change their counts.
    """
    __tracebackhide__ = True
    counting = spec.metric == "instructions"
    if counting and inspect.unwrap(round_runner) is run_round:
        find_valgrind()
    stack.enter_context(signals_end_rounds())
    stack.enter_context(adopt_orphans())
    stack.enter_context(lock() if lock and not counting else nullcontext())
    # Under the lock: its interpreter's start-up must not overlap another's timed round.
    start_guardian()


class Measurer:
    """Measures specs: copies cached under ``cache_dir``, packages found on ``search_path``.

    ``cache_dir`` defaults to the per-user cache
    (:func:`~pytest_importcache.engine.cache.default_cache_dir`), ``search_path`` to
    ``sys.path`` (read when each measurement starts); the rounds also search
    it after the copy (:func:`round_import_path`), unless a spec names its own
    ``import_path``. ``lock`` wraps every measurement (the pytest plugin passes a
    cross-process lock); ``observers`` are told about rounds and results.
    ``round_runner`` runs each round (:class:`~pytest_importcache.engine.rounds.RoundRunner`:
    :func:`run_round` by default, a fake one in tests). ``count_store`` keeps
    instruction counts for reuse while their inputs are
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
        return self._measure_sides(spec, [Side(None, self.import_path_for(spec))])[0]

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
                Side(None, head_path, tuple(source_only[0])),
                Side(base, base_path, tuple(source_only[1]), base_label),
            ],
        )
        return head, base_result

    def _measure_sides(
        self,
        spec: MeasurementSpec,
        sides: Sequence[Side],
    ) -> list[ImportResult]:
        """``spec`` measured on each side's files (``None``: located), rounds interleaved.

        Each side's label is added to its rounds' errors.
        """
        __tracebackhide__ = True
        python = resolve_python(spec.python)
        check_lazy_imports(python, spec.lazy_imports)
        with ExitStack() as stack:
            _enter_rounds(spec, stack, self.lock, round_runner=self.round_runner)
            # Copies are built under the measurement lock too: compiling a copy
            # would slow down another process's rounds.
            rounds = MeasurementRounds(
                spec,
                python,
                sides,
                stack,
                copy_for=self.copy_for,
                round_runner=self.round_runner,
                observers=self.observers,
                module_counts=self.module_counts,
            )
            store = self.store_for(spec)
            if store is not None:
                rounds.reuse_counts(store, self._runner_name())
            rounds_started_ns = files_clock_now(rounds.head_workdir)
            rounds.run()
            if store is not None:
                rounds.save_counts(store, rounds_started_ns)
        results = [
            dataclasses.replace(
                build_result(
                    spec.module, spec.flavour, spec.closure, python, reports, metric=spec.metric
                ),
                reused=reused,
                # The spec's command, not the round runner's word for it (a fake may give none).
                command=None if spec.command is None else spec.command.key,
            )
            for reports, reused in rounds.side_reports()
        ]
        for observer in self.observers:
            observer.measured(spec, results[0])
        return results

    def _runner_name(self) -> str:
        """The round runner's qualified name, part of a stored count's key."""
        runner = getattr(self.round_runner, "__qualname__", type(self.round_runner).__qualname__)
        return f"{getattr(self.round_runner, '__module__', '')}.{runner}"
