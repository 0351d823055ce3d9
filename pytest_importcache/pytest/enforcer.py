"""The worker's role: measure what tests ask for, enforce budgets, attach outcomes to reports.

``BudgetEnforcer`` runs wherever tests run (the only process without
pytest-xdist, each worker with it). It validates a test's ``import_budget``
markers at setup, measures and judges them just before the test body, hands
the fixtures their environments, and attaches every measurement the test made
(marker or fixture, through one observer) to the test's report as
:class:`~pytest_importcache.model.outcome.MeasurementOutcome` JSON. What the
controller prints and saves is :mod:`pytest_importcache.pytest.reporter`'s job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_importcache.model.budget import MARKER_NAME, ImportBudget
from pytest_importcache.model.units import BudgetError

from .options import Settings
from .runpaths import RunPaths

if TYPE_CHECKING:
    from pytest_importcache.engine.countpool import CountedJob, CountPool
    from pytest_importcache.engine.countstore import CountStore
    from pytest_importcache.engine.environment import ImportEnv
    from pytest_importcache.engine.measurer import MeasurementObserver, Measurer, RoundRunner
    from pytest_importcache.model.budget import Verdict
    from pytest_importcache.model.comparison import Comparison
    from pytest_importcache.model.records import RoundReport
    from pytest_importcache.model.result import ImportResult
    from pytest_importcache.model.spec import Flavour, InvalidationMode, MeasurementSpec, Metric
    from pytest_importcache.render.report import BaselineLookup

__all__ = ["ENFORCER_KEY", "REPORT_ATTRIBUTE", "BudgetEnforcer", "ImportEnvFactory"]

REPORT_ATTRIBUTE = "importcache_outcomes"
IMPORT_FIXTURES = frozenset({"cold_import_env", "warm_import_env", "import_env_factory"})
# Why a budgeted test is skipped under ``--importcache-disable``.
DISABLED_REASON = "import measurements are disabled (importcache disable setting)"
ENFORCER_KEY = pytest.StashKey["BudgetEnforcer"]()
_BUDGETS_KEY = pytest.StashKey[list[ImportBudget]]()
_PENDING_KEY = pytest.StashKey[list["PendingMeasurement"]]()
# A wait for a count longer than this shows what is being counted (not under -q).
PROGRESS_AFTER = 3.0
PROGRESS_EVERY = 15.0
# Counts started ahead of their tests, per thread of the pool, at most.
LOOK_AHEAD = 4


@dataclass
class PendingMeasurement:
    """A measurement a test made, and how its budgets judged it (until its report is made)."""

    result: ImportResult
    stat: str
    timed: bool = True
    budget: float | None = None
    passed: bool | None = None
    scale: float = 1.0
    baseline: dict[str, Any] | None = None
    unjudged: str = ""


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
        from pytest_importcache.engine.environment import ImportEnv

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


def _raw_dir_name(nodeid: str) -> str:
    """A test's directory of raw rounds: its node id made safe, plus a short digest.

    The digest keeps node ids that differ only in unsafe characters apart.
    """
    readable = re.sub(r"[^\w.-]+", "_", nodeid).strip("_")[:80]
    return f"{readable}-{hashlib.sha256(nodeid.encode()).hexdigest()[:8]}"


MeasurementKey = tuple[str, str, bool, "Metric"]


def _measurement_keys(budget: ImportBudget) -> dict[Flavour, MeasurementKey]:
    """The (module, flavour, closure, metric) measurements ``budget`` needs, by flavour.

    Cold and warm budgets need their flavours in the budget's metric;
    ``max_modules`` and ``forbid`` alone, a warm one, timed (the cheaper).
    """
    if not budget.timed_flavours:
        return {"warm": (budget.module, "warm", False, "time")}
    return {
        flavour: (budget.module, flavour, budget.closure and flavour == "cold", budget.metric)
        for flavour in budget.timed_flavours
    }


def _unjudged_by_result(
    budgets: list[ImportBudget], measured: dict[MeasurementKey, ImportResult]
) -> dict[int, str]:
    """By result id, the budget written only in the other unit (``"warm='25ms'"``) it stood for.

    Such a measurement has its full rounds and is stored, but not judged.
    """
    unjudged: dict[int, str] = {}
    for budget in budgets:
        keys = _measurement_keys(budget)
        for flavour, text in budget.unjudged:
            unjudged.setdefault(id(measured[keys[flavour]]), text)  # type: ignore[index]
    return unjudged


def _unjudged_lines(pending: list[PendingMeasurement]) -> list[str]:
    """For a failure text: what to write for budgets measured in the other unit, not judged."""
    from pytest_importcache.model.spec import metric_label
    from pytest_importcache.render.report import unjudged_line

    lines = []
    for entry in pending:
        if entry.unjudged:
            result = entry.result
            label = metric_label(result.label, result.metric).replace("instructions", "instr")
            statistic = result.statistic(entry.stat)
            lines.append(
                unjudged_line(result.module, label, entry.unjudged, statistic, result.metric)
            )
    return lines


class BudgetEnforcer:
    """Measures and judges in the process that runs the tests.

    ``round_runner`` runs every round (``None``: a real interpreter per round);
    a test suite may set it from a conftest's ``pytest_configure`` to feed fixed
    rounds (see ``tests/conftest.py``), so reports are tested without interpreters.
    """

    def __init__(self, config: pytest.Config, settings: Settings, paths: RunPaths) -> None:
        self.config = config
        self.settings = settings
        self.paths = paths
        self.round_runner: RoundRunner | None = None
        self._budget_scales: dict[str, float] | None = None
        self._raw_dirs_used: set[Path] = set()
        self._count_pool: CountPool | None = None
        self._looked_ahead: set[str] = set()
        self._positions: dict[int, int] | None = None
        self._ahead_from = 0

    # -- measuring ------------------------------------------------------------

    def measurement_lock(self) -> Any:
        """A lock held while any process of this run times an import."""
        from filelock import FileLock

        return FileLock(self.paths.measurement_lock)

    @contextmanager
    def _timed_lock(self) -> Iterator[None]:
        """What a timed measurement holds: no background count runs, and the run's lock."""
        with self._pool_paused(), self.measurement_lock():
            yield

    @contextmanager
    def _pool_paused(self) -> Iterator[None]:
        if self._count_pool is None:
            yield
        else:
            with self._count_pool.paused():
                yield

    def measurer_for(self, item: pytest.Item) -> Measurer:
        """A measurer for ``item``'s measurements: the run's lock, recording, raw rounds."""
        from pytest_importcache.engine.measurer import Measurer

        observers: list[MeasurementObserver] = [_Recorder(item, self.settings.stat)]
        if self.settings.raw_dir is not None:
            observers.append(_RawRounds(self._raw_dir_for(item)))
        if self.round_runner is None:
            return Measurer(
                lock=self._timed_lock,
                observers=observers,
                count_store=self.count_store(),
                module_counts=self.module_counts(),
            )
        return Measurer(
            lock=self._timed_lock,
            observers=observers,
            round_runner=self.round_runner,
            count_store=self.count_store(),
            module_counts=self.module_counts(),
        )

    def module_counts(self) -> bool:
        """Whether counted rounds count every module: only when this run shows or keeps them.

        The HTML report, the markdown, and pytest-benchmark's files and
        comparisons hold per-module counts; without them a counted round counts
        the import alone (two to three times cheaper, the same total), and a
        failing counted budget is counted again in detail for its explanation.
        """
        from .storage import user_disabled

        settings = self.settings
        stored = any(
            self.config.getoption(name, None)
            for name in (
                "benchmark_json",
                "benchmark_autosave",
                "benchmark_save",
                "benchmark_compare",
            )
        )
        return bool(
            settings.report or settings.markdown or (stored and not user_disabled(self.config))
        )

    def count_store(self) -> CountStore | None:
        """The store ``importcache_store`` names, or ``None`` for the per-user one, maybe fresh."""
        from pytest_importcache.engine.countstore import CountStore

        if self.settings.store is None and not self.settings.fresh:
            return None
        if self.settings.store is None:
            from pytest_importcache.engine.cache import default_cache_dir
            from pytest_importcache.engine.countstore import default_store_path

            return CountStore(default_store_path(default_cache_dir()), fresh=True)
        return CountStore(
            self.config.invocation_params.dir / self.settings.store, fresh=self.settings.fresh
        )

    # -- counting in the background -------------------------------------------

    def count_jobs(self) -> int:
        """Counted measurements run at once in this process: the setting, or the cores' share."""
        if self.settings.jobs != "auto":
            return self.settings.jobs
        from pytest_importcache.engine.countpool import available_cores

        workers = int(getattr(self.config, "workerinput", {}).get("workercount", 1) or 1)
        return max(1, available_cores() // workers)

    def _pool(self) -> CountPool:
        """The pool counted budgets are measured in, opened at the first one."""
        if self._count_pool is None:
            from pytest_importcache.engine.countpool import CountPool

            self._count_pool = CountPool(
                self.count_jobs(),
                self.round_runner,
                count_store=self.count_store(),
                module_counts=self.module_counts(),
            )
        return self._count_pool

    def _counted_specs(self, item: pytest.Item) -> list[MeasurementSpec]:
        """The counted measurements ``item``'s budgets will ask for, if they can be known now.

        None for a test that may be skipped (a skip or skipif marker), whose
        markers are malformed (its setup says so), or that compares with a
        baseline revision (measured with it, rounds interleaved).
        """
        markers = list(item.iter_markers(MARKER_NAME))
        if not markers or self.settings.baseline is not None:
            return []
        if item.get_closest_marker("skip") or item.get_closest_marker("skipif"):
            return []
        try:
            budgets = self._budgets_of(item)
        except BudgetError:
            return []
        return [spec for spec in self._specs_for(budgets).values() if spec.metric != "time"]

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

    def _count_ahead(self, item: pytest.Item) -> None:
        """Start counting the counted budgets of ``item`` and the tests after it, in the pool.

        At most ``LOOK_AHEAD`` counts per thread wait or run at a time, so a run
        stopped early (``-x``) wastes little.
        """
        if self.settings.disable or self.count_jobs() < 2:
            return
        for upcoming in self._upcoming_items(item):
            if upcoming.nodeid in self._looked_ahead:
                continue
            specs = self._counted_specs(upcoming)
            if specs and len(self._pool().pending()) >= LOOK_AHEAD * self._pool().jobs:
                return
            self._looked_ahead.add(upcoming.nodeid)
            for spec in specs:
                self._pool().submit((upcoming.nodeid, spec), spec)

    def _take_count(self, item: pytest.Item, spec: MeasurementSpec) -> ImportResult:
        """``spec``'s count for ``item``, from the pool (counted now if it was not started).

        Observers hear about its rounds and result here, in the test's own
        call, as for a measurement made in the foreground; while it waits, the
        terminal says what is being counted.
        """
        pool = self._pool()
        key = (item.nodeid, spec)
        if not pool.has(key):
            pool.submit(key, spec)
        progress = _CountProgress(self.config, item)
        job = pool.take(key, waiting=lambda job, waited: progress.waiting(job, waited, pool))
        error = job.future.exception()
        if error is not None:
            raise error
        result = job.future.result()
        for observer in self.measurer_for(item).observers:
            for index, report in job.rounds:
                observer.round_done(spec, index, report)
            observer.measured(spec, result)
        return result

    def _raw_dir_for(self, item: pytest.Item) -> Path:
        """The test's raw-rounds directory, emptied the first time this run uses it."""
        assert self.settings.raw_dir is not None
        directory = (
            self.config.invocation_params.dir / self.settings.raw_dir / _raw_dir_name(item.nodeid)
        )
        if directory not in self._raw_dirs_used:
            self._raw_dirs_used.add(directory)
            shutil.rmtree(directory, ignore_errors=True)
        return directory

    def budget_scales(self) -> dict[str, float]:
        """The factor for cold and for warm time budgets in this run.

        With ``budget-scale = auto`` the reference import is measured once per run
        (the first process to need it measures, the others read its result).
        """
        if self._budget_scales is not None:
            return self._budget_scales
        scale = self.settings.budget_scale
        if scale != "auto":
            self._budget_scales = {"cold": scale, "warm": scale}
            return self._budget_scales
        from filelock import FileLock

        from pytest_importcache.engine.cache import default_cache_dir
        from pytest_importcache.engine.reference import Calibration, measure_reference

        recorded = self.settings.calibration
        assert recorded is not None  # read_settings refuses auto without a calibration
        cached = self.paths.reference_file
        with FileLock(f"{cached}.lock"):
            if cached.exists():
                here = Calibration.read(cached)
            else:
                with self.measurement_lock():
                    here = measure_reference(
                        default_cache_dir(),
                        rounds=self.settings.rounds_for("time"),
                        warmup=self.settings.warmup_for("time"),
                    )
                here.write(cached)
        self._budget_scales = here.scales(recorded)
        return self._budget_scales

    def _scales_or_fail(self) -> dict[str, float]:
        """:meth:`budget_scales`, failing the test when the reference cannot be measured."""
        from pytest_importcache.model.errors import ImportCacheError

        try:
            return self.budget_scales()
        except ImportCacheError as exc:
            problem = f"measuring the reference import for budget scale 'auto' failed: {exc}"
        pytest.fail(problem, pytrace=False)

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
        if self.settings.disable:
            for item in items:
                if item.get_closest_marker(MARKER_NAME) is None:
                    continue
                try:
                    self._budgets_of(item)
                except BudgetError:
                    continue
                item.add_marker(pytest.mark.skip(reason=DISABLED_REASON))
        from .storage import adjust_for_skip_and_only

        measuring = [
            item
            for item in items
            if item.get_closest_marker(MARKER_NAME) is not None
            or IMPORT_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        ]
        adjust_for_skip_and_only(config, measuring)

    def _budgets_of(self, item: pytest.Item) -> list[ImportBudget]:
        """The test's ``import_budget`` markers, top to bottom; ``BudgetError`` for a bad one."""
        # iter_markers yields the closest marker first; budgets read top to bottom.
        return [
            ImportBudget.from_marker(marker.args, marker.kwargs, metric=self.settings.metric)
            for marker in reversed(list(item.iter_markers(MARKER_NAME)))
        ]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        """Count ahead: the counted budgets of this test and the next ones start in the pool."""
        self._count_ahead(item)

    def pytest_sessionfinish(self) -> None:
        """End the counts still running in the background (``-x``, Ctrl-C, SIGTERM)."""
        if self._count_pool is not None:
            self._count_pool.close()
            self._count_pool = None

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Validate the test's ``import_budget`` markers (when disabled, valid ones skipped)."""
        if item.get_closest_marker(MARKER_NAME) is None:
            return
        try:
            budgets = self._budgets_of(item)
        except BudgetError as exc:
            problem = str(exc)
        else:
            problem = ""
        if problem:
            pytest.fail(problem, pytrace=False)
        if self.settings.disable:  # a marker added after collection
            pytest.skip(DISABLED_REASON)
        item.stash[_BUDGETS_KEY] = budgets

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Measure and judge the test's budgets before its body runs."""
        budgets = item.stash.get(_BUDGETS_KEY, [])
        if budgets:
            self._check_budgets(item, budgets)
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the measurements made so far to the phase's report, as outcomes."""
        report = yield
        pending = item.stash.get(_PENDING_KEY, [])
        if pending:
            from pytest_importcache.model.outcome import MeasurementOutcome

            outcomes = [
                MeasurementOutcome.from_result(
                    entry.result,
                    nodeid=item.nodeid,
                    test_name=item.name,
                    stat=entry.stat,
                    budget=entry.budget,
                    passed=entry.passed,
                    timed=entry.timed,
                    scale=entry.scale,
                    baseline=entry.baseline,
                    unjudged=entry.unjudged,
                ).to_json()
                for entry in pending
            ]
            setattr(report, REPORT_ATTRIBUTE, outcomes)
            pending.clear()
        return report

    # -- budgets --------------------------------------------------------------

    def _specs_for(self, budgets: list[ImportBudget]) -> dict[MeasurementKey, MeasurementSpec]:
        """One spec per (module, flavour, closure, metric) the budgets need, most rounds asked.

        ``max_modules`` and ``forbid`` alone need a single warm round (module
        lists do not vary); with a timed budget on the same import they use its rounds.
        """
        from pytest_importcache.model.spec import MeasurementSpec

        needs: dict[MeasurementKey, tuple[int, bool]] = {}
        for budget in budgets:
            for flavour, key in _measurement_keys(budget).items():
                timed = flavour in budget.timed_flavours
                rounds = (budget.rounds or self.settings.rounds_for(key[3])) if timed else 1
                before_rounds, before_timed = needs.get(key, (0, False))
                needs[key] = (max(before_rounds, rounds), before_timed or timed)
        return {
            key: MeasurementSpec(
                key[0],
                flavour=key[1],  # type: ignore[arg-type]
                closure=key[2],
                rounds=rounds,
                warmup=self.settings.warmup_for(key[3]) if timed else 0,
                timeout=self.settings.timeout,
                metric=key[3],
            )
            for key, (rounds, timed) in needs.items()
        }

    def _measure(self, item: pytest.Item, spec: MeasurementSpec) -> ImportResult:
        """Measure ``spec`` for ``item``; a failed measurement fails the test in one line."""
        from pytest_importcache.model.errors import ImportCacheError

        try:
            if spec.metric == "instructions":
                return self._take_count(item, spec)
            return self.measurer_for(item).measure(spec)
        except ImportCacheError as exc:
            problem = f"{MARKER_NAME}({spec.module!r}): {exc}"
        pytest.fail(problem, pytrace=False)

    def _compare(self, item: pytest.Item, spec: MeasurementSpec) -> Comparison:
        """Measure ``spec`` against the baseline revision; a failure fails the test in one line."""
        from pytest_importcache.engine.against import measure_against
        from pytest_importcache.model.errors import ImportCacheError, LocateError

        assert self.settings.baseline is not None
        try:
            return measure_against(self.measurer_for(item), spec, self.settings.baseline)
        except LocateError as exc:
            # The working tree's module is not found: no fault of the baseline's.
            problem = f"{MARKER_NAME}({spec.module!r}): {str(exc).splitlines()[0]}"
        except ImportCacheError as exc:
            problem = (
                f"{MARKER_NAME}({spec.module!r}): baseline {self.settings.baseline}: "
                f"{str(exc).splitlines()[0]}"
            )
        pytest.fail(problem, pytrace=False)

    def _measure_budgets(
        self, item: pytest.Item, budgets: list[ImportBudget]
    ) -> tuple[dict[MeasurementKey, ImportResult], list[Comparison]]:
        """Every measurement the budgets need; timed ones against the baseline, if set."""
        timed_keys = {
            key
            for budget in budgets
            for flavour, key in _measurement_keys(budget).items()
            if flavour in budget.timed_flavours
        }
        measured: dict[MeasurementKey, ImportResult] = {}
        comparisons: list[Comparison] = []
        for key, spec in self._specs_for(budgets).items():
            if self.settings.baseline is not None and key in timed_keys:
                comparisons.append(self._compare(item, spec))
                measured[key] = comparisons[-1].head
            else:
                measured[key] = self._measure(item, spec)
        return measured, comparisons

    def _check_budgets(self, item: pytest.Item, budgets: list[ImportBudget]) -> None:
        """Measure, judge and record every budget; fail the test on any overspent one.

        With ``importcache_baseline``, every timed measurement is taken against
        the revision too (rounds interleaved), and a slowdown past
        ``importcache_baseline_fail`` fails the test as well.
        """
        from pytest_importcache.model.budget import judge
        from pytest_importcache.model.outcome import baseline_record
        from pytest_importcache.render.report import baseline_failure_text, failure_text

        measured, comparisons = self._measure_budgets(item, budgets)
        verdicts = []
        for budget in budgets:
            results = {flavour: measured[key] for flavour, key in _measurement_keys(budget).items()}
            stat = budget.stat or self.settings.stat
            # Only time budgets scale: module and instruction counts do not vary by machine.
            scaled = bool(budget.timed_flavours) and budget.metric == "time"
            scale = self._scales_or_fail() if scaled else 1.0
            verdicts += judge(budget, results, stat=stat, scale=scale)
        unjudged = _unjudged_by_result(budgets, measured)
        for entry in item.stash.get(_PENDING_KEY, []):
            entry.unjudged = unjudged.get(id(entry.result), "")
            own = [verdict for verdict in verdicts if verdict.result is entry.result]
            if not own:
                continue
            timed = [verdict for verdict in own if verdict.kind in ("cold", "warm")]
            tightest = min(timed, key=lambda verdict: verdict.limit) if timed else None
            entry.timed = bool(timed) or bool(entry.unjudged)
            entry.passed = all(verdict.passed for verdict in own)
            if tightest is not None:
                entry.stat, entry.budget, entry.scale = (
                    tightest.stat,
                    tightest.limit,
                    tightest.scale,
                )
        threshold = self.settings.baseline_fail
        for entry in item.stash.get(_PENDING_KEY, []):
            for comparison in comparisons:
                if comparison.head is entry.result:
                    entry.baseline = baseline_record(comparison, threshold)
        failures = [self._in_detail(item, verdict) for verdict in verdicts if not verdict.passed]
        slower = [comparison for comparison in comparisons if comparison.slower(threshold)]
        if failures or slower:
            blocks = [failure_text(failures, self._baseline_for(item))] if failures else []
            blocks += [baseline_failure_text(comparison, threshold) for comparison in slower]
            blocks += _unjudged_lines(item.stash.get(_PENDING_KEY, []))
            pytest.fail("\n\n".join(blocks), pytrace=False)

    def _in_detail(self, item: pytest.Item, verdict: Verdict) -> Verdict:
        """``verdict`` with its count's modules counted, for the failure's explanation.

        A counted round without per-module counts (:meth:`module_counts`) is
        counted again in detail; its total is the same.
        """
        result = verdict.result
        if result.metric != "instructions" or self.module_counts():
            return verdict
        from pytest_importcache.engine.measurer import Measurer
        from pytest_importcache.model.errors import ImportCacheError
        from pytest_importcache.model.spec import MeasurementSpec

        spec = MeasurementSpec(
            result.module,
            flavour=result.flavour,
            closure=result.closure,
            rounds=1,
            warmup=0,
            timeout=self.settings.timeout,
            metric="instructions",
        )
        measurer = Measurer(count_store=self.count_store())
        if self.round_runner is not None:
            measurer.round_runner = self.round_runner
        try:
            return dataclasses.replace(verdict, result=measurer.measure(spec))
        except ImportCacheError:
            return verdict

    def _baseline_for(self, item: pytest.Item) -> BaselineLookup:
        """Find a result's tree in the ``--benchmark-compare`` baseline by its full name."""
        from pytest_importcache.model.spec import measurement_suffix

        from .storage import baseline_tree

        def lookup(
            result: ImportResult,
        ) -> tuple[str, Sequence[tuple[str, float, float, str | None]]] | None:
            suffix = measurement_suffix(result.module, result.label, result.metric)
            return baseline_tree(self.config, f"{item.nodeid}[{suffix}]")

        return lookup


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


class _Recorder:
    """Keeps every measurement of a test (marker or fixture) for the test's report."""

    def __init__(self, item: pytest.Item, stat: str) -> None:
        self.item = item
        self.stat = stat

    def round_done(self, spec: MeasurementSpec, index: int, report: RoundReport) -> None:
        """Nothing to keep per round."""

    def measured(self, spec: MeasurementSpec, result: ImportResult) -> None:
        """Keep ``result`` until the test's report is made."""
        self.item.stash.setdefault(_PENDING_KEY, []).append(
            PendingMeasurement(result, stat=self.stat)
        )


class _RawRounds:
    """Keeps each round's stderr (raw ``-X importtime`` rows) as ``MODULE-FLAVOUR-ROUND.txt``.

    Counted rounds are ``MODULE-FLAVOUR-instructions-ROUND.txt`` (their stderr
    has no ``-X importtime`` rows). A name too long for the file system is cut
    and given a digest.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def round_done(self, spec: MeasurementSpec, index: int, report: RoundReport) -> None:
        """Write round ``index``'s stderr into the test's raw directory."""
        from pytest_importcache.engine.copying import fit_file_name

        if index < spec.warmup:
            tag = f"warmup-{index + 1}"
        else:
            tag = f"round-{index - spec.warmup + 1:02d}"
        self.directory.mkdir(parents=True, exist_ok=True)
        metric = "" if spec.metric == "time" else f"-{spec.metric}"
        name = f"{spec.module}-{spec.label}{metric}-{tag}.txt"
        path = self.directory / fit_file_name(name, 200)
        path.write_text(report.stderr, encoding="utf-8")

    def measured(self, spec: MeasurementSpec, result: ImportResult) -> None:
        """Nothing to keep per result."""
