"""The worker's role: measure what tests ask for, enforce budgets, attach outcomes to reports.

``BudgetEnforcer`` runs wherever tests run (the only process without
pytest-xdist, each worker with it). It validates a test's ``import_budget``
markers at setup (:mod:`~pytest_importcache.pytest.markers`), has them
measured and judged just before the test body
(:mod:`~pytest_importcache.pytest.judging`, counted ones started ahead by
:mod:`~pytest_importcache.pytest.lookahead`), hands the fixtures their
environments, and attaches every measurement the test made to the test's
report (:mod:`~pytest_importcache.pytest.recording`). What the controller
prints and saves is :mod:`pytest_importcache.pytest.reporter`'s job.

Loaded at every pytest start-up: the engine, filelock and pytest-benchmark
are imported by the hooks that need them, at the first test that measures.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_importcache.model.errors import BudgetError

from .markers import BUDGETS_KEY, DISABLED_REASON, IMPORT_FIXTURES, has_budget, read_budgets
from .options import Settings
from .recording import RawRounds, Recorder, attach_outcomes, raw_dir_name
from .runpaths import RunPaths

if TYPE_CHECKING:
    from pytest_importcache.engine.countstore import CountStore
    from pytest_importcache.engine.environment import ImportEnv
    from pytest_importcache.engine.measurer import MeasurementObserver, Measurer, RoundRunner
    from pytest_importcache.model.budget import ImportBudget
    from pytest_importcache.model.spec import Flavour, InvalidationMode, Metric

    from .lookahead import CountAhead
    from .scales import BudgetScales

__all__ = ["ENFORCER_KEY", "BudgetEnforcer", "ImportEnvFactory", "count_store"]

ENFORCER_KEY = pytest.StashKey["BudgetEnforcer"]()


def count_store(config: pytest.Config, settings: Settings) -> CountStore | None:
    """The store ``importcache_store`` names, or ``None`` for the per-user one, maybe fresh."""
    if settings.store is None and not settings.fresh:
        return None
    # Only a run that measures pays for the engine (pytest start-up stays cheap).
    from pytest_importcache.engine.cache import (  # noqa: PLC0415 - start-up cost
        default_cache_dir,
    )
    from pytest_importcache.engine.countstore import (  # noqa: PLC0415 - start-up cost
        CountStore,
        default_store_path,
    )

    if settings.store is None:
        return CountStore(default_store_path(default_cache_dir()), fresh=True)
    return CountStore(config.invocation_params.dir / settings.store, fresh=settings.fresh)


class ImportEnvFactory:
    """What the ``import_env_factory`` fixture returns: call it to get an ``ImportEnv``."""

    def __init__(self, enforcer: BudgetEnforcer, item: pytest.Item) -> None:
        self._enforcer = enforcer
        self._item = item

    def __call__(
        self,
        flavour: Flavour = "warm",
        *,
        python: str | None = None,
        optimize: int = 0,
        invalidation_mode: InvalidationMode = "timestamp",
        closure: bool = False,
        metric: Metric | None = None,
    ) -> ImportEnv:
        """An environment of ``flavour`` whose measurements are recorded for this test.

        ``metric`` defaults to the run's (``--importcache-metric``).
        """
        __tracebackhide__ = True
        from pytest_importcache.engine.environment import (  # noqa: PLC0415 - start-up cost
            ImportEnv,
        )

        settings = self._enforcer.settings
        chosen = metric or settings.metric
        return ImportEnv(
            flavour,
            python=python,
            optimize=optimize,
            invalidation_mode=invalidation_mode,
            closure=closure,
            rounds=settings.rounds_for(chosen),
            warmup=settings.warmup_for(chosen),
            timeout=settings.timeout,
            metric=chosen,
            measurer=self._enforcer.measurer_for(self._item),
        )


class BudgetEnforcer:
    """Measures and judges in the process that runs the tests.

    Every round runs in a real interpreter, unless a conftest or plugin
    answers :func:`~pytest_importcache.pytest.hooks.pytest_importcache_round_runner`
    (``tests/conftest.py`` feeds fixed rounds that way).
    """

    def __init__(self, config: pytest.Config, settings: Settings, paths: RunPaths) -> None:
        self.config = config
        self.settings = settings
        self.paths = paths
        self._raw_dirs_used: set[Path] = set()
        self._count_ahead: CountAhead | None = None
        self._scales: BudgetScales | None = None
        self._budgeted = False

    @functools.cached_property
    def round_runner(self) -> RoundRunner | None:
        """What runs every round: a conftest's answer to the hook, or ``None`` (the real one)."""
        runner: RoundRunner | None = self.config.hook.pytest_importcache_round_runner(
            config=self.config
        )
        return runner

    # -- measuring ------------------------------------------------------------

    def measurement_lock(self) -> Any:
        """A lock held while any process of this run times an import."""
        from filelock import FileLock  # noqa: PLC0415 - start-up cost

        return FileLock(self.paths.measurement_lock)

    @contextmanager
    def _timed_lock(self) -> Iterator[None]:
        """What a timed measurement holds: no background count runs, and the run's lock."""
        if self._count_ahead is None:
            with self.measurement_lock():
                yield
        else:
            with self._count_ahead.paused(), self.measurement_lock():
                yield

    def _observers(self, item: pytest.Item, *, recording: bool) -> list[MeasurementObserver]:
        """Who hears of ``item``'s rounds: its recorder (fixtures only) and its raw rounds."""
        observers: list[MeasurementObserver] = []
        if recording:
            observers.append(
                Recorder(item, self.settings.stat, bare_peaks=self.round_runner is None)
            )
        if self.settings.raw_dir is not None:
            observers.append(RawRounds(self._raw_dir_for(item)))
        return observers

    def measurer_for(self, item: pytest.Item, *, recording: bool = True) -> Measurer:
        """A measurer for ``item``'s measurements: the run's lock, raw rounds, and recording.

        ``recording=False`` for budgets, whose measurements are recorded once judged.
        """
        from pytest_importcache.engine.measurer import (  # noqa: PLC0415 - start-up cost
            Measurer,
        )
        from pytest_importcache.engine.runner import run_round  # noqa: PLC0415 - as above

        from .lookahead import counts_every_module  # noqa: PLC0415 - as above

        return Measurer(
            lock=self._timed_lock,
            observers=self._observers(item, recording=recording),
            round_runner=self.round_runner or run_round,
            count_store=count_store(self.config, self.settings),
            module_counts=counts_every_module(self.config, self.settings),
        )

    def counting(self) -> CountAhead:
        """The look-ahead for counted measurements, made at the first test that needs it."""
        if self._count_ahead is None:
            from .lookahead import CountAhead  # noqa: PLC0415 - start-up cost (the engine)

            self._count_ahead = CountAhead(
                self.config,
                self.settings,
                self.round_runner,
                functools.partial(count_store, self.config, self.settings),
            )
        return self._count_ahead

    def budget_scales(self) -> BudgetScales:
        """The factor time budgets are scaled by in this run, found at the first that needs it."""
        if self._scales is None:
            from .scales import BudgetScales  # noqa: PLC0415 - start-up cost (the engine)

            self._scales = BudgetScales(self.settings, self.paths, self.measurement_lock)
        return self._scales

    def _raw_dir_for(self, item: pytest.Item) -> Path:
        """The test's raw-rounds directory, emptied the first time this run uses it."""
        assert self.settings.raw_dir is not None
        directory = (
            self.config.invocation_params.dir / self.settings.raw_dir / raw_dir_name(item.nodeid)
        )
        if directory not in self._raw_dirs_used:
            self._raw_dirs_used.add(directory)
            shutil.rmtree(directory, ignore_errors=True)
        return directory

    def _check_budgets(self, item: pytest.Item, budgets: list[ImportBudget]) -> None:
        """Measure, judge and record ``budgets``; fail the test on any overspent one."""
        from .judging import BudgetCheck  # noqa: PLC0415 - start-up cost (the engine)

        observers = self._observers(item, recording=False)
        BudgetCheck(
            item,
            budgets,
            self.settings,
            self.measurer_for(item, recording=False),
            lambda spec: self.counting().take(item, spec, observers),
            self.budget_scales(),
            bare_peaks=self.round_runner is None,
        ).run()

    # -- hooks ----------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        """Let pytest-benchmark's ``--benchmark-skip``/``--benchmark-only`` see import tests.

        With measurements disabled, a test whose markers are valid gets a skip
        marker here, so the skip is reported at the test (a malformed marker
        still fails at setup).
        """
        yield
        budgeted = [item for item in items if has_budget(item)]
        self._budgeted = bool(budgeted)
        if self.settings.disable:
            for item in budgeted:
                try:
                    read_budgets(item, self.settings.metric)
                except BudgetError:
                    continue
                item.add_marker(pytest.mark.skip(reason=DISABLED_REASON))
        measuring = [
            item
            for item in items
            if has_budget(item) or IMPORT_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        ]
        if measuring:
            from .benchmark import adjust_for_skip_and_only  # noqa: PLC0415 - start-up cost

            adjust_for_skip_and_only(config, measuring)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        """Count ahead: the counted budgets of this test and the next ones start in the pool."""
        if self._budgeted and not self.settings.disable:
            self.counting().count_ahead(item)

    def pytest_sessionfinish(self) -> None:
        """End the counts still running in the background (``-x``, Ctrl-C, SIGTERM)."""
        if self._count_ahead is not None:
            self._count_ahead.close()

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Validate the test's budget markers (when disabled, valid ones skipped)."""
        if not has_budget(item):
            return
        try:
            budgets = read_budgets(item, self.settings.metric)
        except BudgetError as exc:
            problem = str(exc)
        else:
            problem = ""
        if problem:
            pytest.fail(problem, pytrace=False)
        if self.settings.disable:  # a marker added after collection
            pytest.skip(DISABLED_REASON)
        item.stash[BUDGETS_KEY] = budgets

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Measure and judge the test's budgets before its body runs."""
        budgets = item.stash.get(BUDGETS_KEY, [])
        if budgets:
            self._check_budgets(item, budgets)
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the measurements made so far to the phase's report, as outcomes."""
        report = yield
        attach_outcomes(item, report)
        return report
