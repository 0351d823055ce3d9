"""Counted measurements in the background, several at once: :class:`CountPool`.

Instruction counts do not depend on what else the machine runs, so the
counted measurements of a session need not wait for each other: a few
threads (the rounds are subprocesses) measure them, ahead of their tests, and
each test takes its own result. Timed rounds must have the machine to
themselves: while one is measured (:meth:`CountPool.paused`) no background
measurement starts, and those running are waited for.

A measurement runs exactly as in the foreground (same copy, same rounds
directory beside it, under the copy's lock), so its counts are the same.
Needs no pytest.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_importcache.model.errors import ImportCacheError
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.result import ImportResult
from pytest_importcache.model.spec import MeasurementSpec

from .callgrind import find_valgrind
from .countstore import CountStore
from .lifecycle import adopt_orphans, end_rounds_of_this_process, signals_end_rounds
from .measurer import Measurer, RoundRunner
from .runner import run_round

__all__ = ["CountPool", "CountedJob", "MeasurementStopped", "available_cores"]


class MeasurementStopped(ImportCacheError):
    """The run stopped (Ctrl-C, SIGTERM, ``-x``) before this count was finished."""


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass
class CountedJob:
    """One background measurement: its spec, its rounds so far, and its future result."""

    spec: MeasurementSpec
    future: Future[ImportResult] = field(default_factory=Future)
    rounds: list[tuple[int, RoundReport]] = field(default_factory=list)
    started: float | None = None

    def round_done(self, spec: MeasurementSpec, index: int, report: RoundReport) -> None:
        """Keep the round, to replay to the test's observers."""
        self.rounds.append((index, report))

    def measured(self, spec: MeasurementSpec, result: ImportResult) -> None:
        """Nothing: the result is the future's."""

    def describe(self) -> str:
        """``steady (warm instructions): round 2 of 3, 7.1 s`` or ``... queued``."""
        spec = self.spec
        what = f"{spec.module} ({spec.label} {spec.metric})"
        if self.started is None:
            return f"{what}: queued"
        running = min(len(self.rounds) + 1, spec.total_rounds)
        elapsed = time.monotonic() - self.started
        return f"{what}: round {running} of {spec.total_rounds}, {elapsed:.0f} s"


class CountPool:
    """Runs counted measurements on ``jobs`` threads; results are taken by key.

    ``round_runner`` runs each round (the real one by default); ``cache_dir``,
    ``search_path``, ``count_store`` and ``module_counts`` are the
    :class:`~pytest_importcache.engine.measurer.Measurer`'s. While the pool
    is open, SIGTERM and SIGHUP raise ``RoundsInterrupted`` in the main thread
    (as during a foreground measurement) and this process adopts orphans;
    :meth:`close` ends every background round. Create and close it in the main thread.
    """

    def __init__(
        self,
        jobs: int,
        round_runner: RoundRunner | None = None,
        *,
        cache_dir: Path | None = None,
        search_path: Sequence[str] | None = None,
        count_store: CountStore | Literal[False] | None = None,
        module_counts: bool = True,
    ) -> None:
        self.jobs = jobs
        self.module_counts = module_counts
        self._cache_dir = cache_dir
        self._search_path = search_path
        self._count_store = count_store
        self._round_runner: RoundRunner = round_runner or run_round

        # Named as the runner it wraps: stored counts are keyed by the runner's name.
        @functools.wraps(self._round_runner)
        def stopping_runner(
            module: str, roots: Sequence[Path], workdir: Path, **options: Any
        ) -> RoundReport:
            return self._stop_or_run(module, roots, workdir, **options)

        self._stopping_runner = stopping_runner
        self._executor = ThreadPoolExecutor(jobs, thread_name_prefix="importcache-count")
        self._jobs: dict[Hashable, CountedJob] = {}
        self._condition = threading.Condition()
        self._running = 0
        self._pauses = 0
        self._stopping = False
        self._stack = ExitStack()
        self._stack.enter_context(adopt_orphans())
        self._stack.enter_context(signals_end_rounds())

    # -- submitting and taking ------------------------------------------------

    def submit(self, key: Hashable, spec: MeasurementSpec) -> CountedJob:
        """Start measuring ``spec`` under ``key`` (once: a key already given is kept)."""
        job = self._jobs.get(key)
        if job is None:
            job = CountedJob(spec)
            self._jobs[key] = job
            job.future = self._executor.submit(self._measure, job)
        return job

    def has(self, key: Hashable) -> bool:
        """Whether a measurement was started under ``key`` and not taken yet."""
        return key in self._jobs

    def take(
        self,
        key: Hashable,
        *,
        waiting: Callable[[CountedJob, float], None] | None = None,
        poll: float = 0.5,
    ) -> CountedJob:
        """Wait for the measurement under ``key`` and hand it over (it leaves the pool).

        ``waiting(job, seconds)`` is called every ``poll`` seconds while it
        waits. The job's future holds its result or its error.
        """
        job = self._jobs.pop(key)
        began = time.monotonic()
        while not wait([job.future], timeout=poll).done:
            if waiting is not None:
                waiting(job, time.monotonic() - began)
        return job

    def pending(self) -> list[CountedJob]:
        """The measurements started and not taken yet, running ones first."""
        jobs = [job for job in self._jobs.values() if not job.future.done()]
        return sorted(jobs, key=lambda job: job.started is None)

    # -- timed measurements ---------------------------------------------------

    @contextmanager
    def paused(self) -> Iterator[None]:
        """While the block runs, no background measurement runs (those running are waited for).

        A whole measurement, not a round, is the unit: a measurement holding a
        copy's lock is never held up by a timed one that waits for that lock.
        """
        with self._condition:
            self._pauses += 1
            while self._running:
                self._condition.wait()
        try:
            yield
        finally:
            with self._condition:
                self._pauses -= 1
                self._condition.notify_all()

    # -- the threads ----------------------------------------------------------

    def _measure(self, job: CountedJob) -> ImportResult:
        with self._condition:
            while self._pauses and not self._stopping:
                self._condition.wait()
            if self._stopping:
                raise MeasurementStopped("the run stopped before this count started")
            self._running += 1
        try:
            job.started = time.monotonic()
            if job.spec.metric == "instructions" and self._round_runner is run_round:
                find_valgrind()
            measurer = Measurer(
                cache_dir=self._cache_dir,
                search_path=self._search_path,
                observers=[job],
                round_runner=self._stopping_runner,
                count_store=self._count_store,
                module_counts=self.module_counts,
            )
            return measurer.measure(job.spec)
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify_all()

    def _stop_or_run(
        self, module: str, roots: Sequence[Path], workdir: Path, **options: Any
    ) -> RoundReport:
        """The round runner, refusing to start a round once the pool is closing.

        The options are passed on as they are, whatever the runner takes.
        """
        if self._stopping:
            raise MeasurementStopped(f"the run stopped before {options.get('description')}")
        return self._round_runner(module, roots, workdir, **options)

    def close(self) -> None:
        """Stop: queued measurements are dropped, running rounds killed, threads joined."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._executor.shutdown(wait=False, cancel_futures=True)
        # A round may start between a scan and the flag being seen: scan until all are done.
        while self._running:
            end_rounds_of_this_process()
            with self._condition:
                self._condition.wait(timeout=0.05)
        self._executor.shutdown(wait=True)
        self._stack.close()
