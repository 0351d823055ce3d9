"""Counted measurements started ahead of their tests, in a pool of background threads.

Counting instructions under valgrind is slow and needs no quiet machine, so
the counted budgets of the next tests are counted while the current one runs.
Imported at the first budgeted test (the pool and the engine are not part of
pytest's start-up).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from pytest_importcache.engine.countpool import CountedJob, CountPool, available_cores
from pytest_importcache.engine.countstore import CountStore
from pytest_importcache.engine.measurer import MeasurementObserver, RoundRunner
from pytest_importcache.model.result import ImportResult
from pytest_importcache.model.spec import MeasurementSpec

from .benchmark import keeps_module_rows
from .markers import counted_specs
from .options import Settings

__all__ = ["LOOK_AHEAD", "CountAhead"]

# A wait for a count longer than this shows what is being counted (not under -q).
PROGRESS_AFTER = 3.0
PROGRESS_EVERY = 15.0
# Counts started ahead of their tests, per thread of the pool, at most.
LOOK_AHEAD = 4


def counts_every_module(config: pytest.Config, settings: Settings) -> bool:
    """Whether counted rounds count every module: only when this run shows or keeps them.

    The HTML report, the markdown, a same-run baseline's explanation, and
    pytest-benchmark's files and comparisons hold per-module counts; without
    them a counted round counts the import alone (two to three times cheaper, the same total), and a
    failing counted budget is counted again in detail for its explanation
    (:class:`~pytest_importcache.pytest.judging.BudgetCheck`).
    """
    shown = settings.report or settings.markdown or settings.baseline is not None
    return bool(shown or keeps_module_rows(config))


class CountAhead:
    """Counts the counted budgets of a test and of the tests after it, in one pool.

    The pool opens at the first count; ``take`` hands a test its count
    (counted then if it was not started), ``close`` ends what still runs.
    """

    def __init__(
        self,
        config: pytest.Config,
        settings: Settings,
        round_runner: RoundRunner | None,
        count_store: Callable[[], CountStore | None],
    ) -> None:
        self.config = config
        self.settings = settings
        self.round_runner = round_runner
        self.count_store = count_store
        self._count_pool: CountPool | None = None
        self._looked_ahead: set[str] = set()
        self._positions: dict[int, int] | None = None
        self._ahead_from = 0

    def jobs(self) -> int:
        """Counted measurements run at once in this process: the setting, or the cores' share."""
        if self.settings.jobs != "auto":
            return self.settings.jobs
        workers = int(getattr(self.config, "workerinput", {}).get("workercount", 1) or 1)
        return max(1, available_cores() // workers)

    def pool(self) -> CountPool:
        """The pool counted budgets are measured in, opened at the first one."""
        if self._count_pool is None:
            self._count_pool = CountPool(
                self.jobs(),
                self.round_runner,
                count_store=self.count_store(),
                module_counts=counts_every_module(self.config, self.settings),
            )
        return self._count_pool

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No background count runs inside (a timed measurement is being taken)."""
        if self._count_pool is None:
            yield
        else:
            with self._count_pool.paused():
                yield

    def close(self) -> None:
        """End the counts still running in the background."""
        if self._count_pool is not None:
            self._count_pool.close()
            self._count_pool = None

    def _upcoming_items(self, item: pytest.Item) -> Iterator[pytest.Item]:
        """``item`` and the items this process will run after it, as far as it knows them.

        Without pytest-xdist, the rest of the session (from where the last look
        ahead stopped: each item is looked at about once); on a worker, the
        tests already sent to it (pytest-xdist keeps them in its worker's queue).
        """
        yield item
        items = item.session.items
        if not hasattr(self.config, "workerinput"):
            if self._positions is None:
                self._positions = {id(each): index for index, each in enumerate(items)}
            start = self._positions.get(id(item))
            if start is None:
                return
            for index in range(max(start + 1, self._ahead_from), len(items)):
                self._ahead_from = index
                yield items[index]
            return
        interactor = self.config.pluginmanager.get_plugin("workerinteractor")
        queue = getattr(interactor, "torun", None)
        try:
            with queue.lock() as indices:  # type: ignore[union-attr]
                queued = [items[index] for index in indices if isinstance(index, int)]
        except (AttributeError, TypeError, IndexError):
            return
        yield from queued

    def count_ahead(self, item: pytest.Item) -> None:
        """Start counting the counted budgets of ``item`` and the tests after it, in the pool.

        At most ``LOOK_AHEAD`` counts per thread wait or run at a time, so a run
        stopped early (``-x``) wastes little.
        """
        if self.settings.disable or self.jobs() < 2:
            return
        for upcoming in self._upcoming_items(item):
            if upcoming.nodeid in self._looked_ahead:
                continue
            specs = counted_specs(upcoming, self.settings)
            if specs and len(self.pool().pending()) >= LOOK_AHEAD * self.pool().jobs:
                return
            self._looked_ahead.add(upcoming.nodeid)
            for spec in specs:
                self.pool().submit((upcoming.nodeid, spec), spec)

    def take(
        self,
        item: pytest.Item,
        spec: MeasurementSpec,
        observers: Sequence[MeasurementObserver],
    ) -> ImportResult:
        """``spec``'s count for ``item``, from the pool (counted now if it was not started).

        ``observers`` hear about its rounds and result here, in the test's own
        call, as for a measurement made in the foreground; while it waits, the
        terminal says what is being counted.
        """
        pool = self.pool()
        key = (item.nodeid, spec)
        if not pool.has(key):
            pool.submit(key, spec)
        progress = _CountProgress(self.config, item)
        job = pool.take(key, waiting=lambda job, waited: progress.waiting(job, waited, pool))
        error = job.future.exception()
        if error is not None:
            raise error
        result = job.future.result()
        for observer in observers:
            for index, report in job.rounds:
                observer.round_done(spec, index, report)
            observer.measured(spec, result)
        return result


class _CountProgress:
    """Says what a test's count is doing once the test has waited a few seconds for it.

    A line on the terminal, then one every ``PROGRESS_EVERY`` seconds; nothing
    under ``-q`` or on a pytest-xdist worker (whose terminal nobody reads).
    """

    def __init__(self, config: pytest.Config, item: pytest.Item) -> None:
        self.reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
        self.verbosity = int(config.getoption("verbose", 0) or 0)
        self.enabled = (
            self.reporter is not None and self.verbosity >= 0 and not hasattr(config, "workerinput")
        )
        self.item = item
        self.shown_at: float | None = None

    def waiting(self, job: CountedJob, waited: float, pool: CountPool) -> None:
        """Called while the test waits for ``job``; ``waited`` seconds so far."""
        if not self.enabled or waited < PROGRESS_AFTER:
            return
        if self.shown_at is not None and waited - self.shown_at < PROGRESS_EVERY:
            return
        self.shown_at = waited
        text = f"importcache: counting {job.describe()}"
        others = len(pool.pending())
        if others:
            text += f"; {others} more count{'s' if others != 1 else ''} under way in the background"
        self.reporter.write_line(text)
        if self.verbosity == 0:
            # The test's progress letter goes after its file's name again, not alone on a line.
            self.reporter.write_fspath_result(self.item.nodeid, "")
