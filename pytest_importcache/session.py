"""The per-run plugin object: budgets on tests, fixtures' environments, records, summary.

``ImportCacheSession`` is registered by ``plugin.pytest_configure``. It
measures a test's ``import_budget`` markers just before the test body runs,
attaches every measurement the test made (marker or fixture) to the test's
report as JSON, and collects records from reports. Collecting from reports is
the same path with and without pytest-xdist: under xdist, reports carry the
records from the workers to the controller, which prints the summary and
saves to pytest-benchmark storage.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .budget import MARKER_NAME, ImportBudget
from .options import Settings
from .units import BudgetError
from .xdist import is_worker, shared_temp_root

if TYPE_CHECKING:
    from .environment import ImportEnv, InvalidationMode
    from .record import MeasurementRecord
    from .result import Flavour, ImportResult
    from .runs import ImportComparison

__all__ = ["ImportCacheSession", "ImportEnvFactory"]

REPORT_ATTRIBUTE = "importcache_records"
IMPORT_FIXTURES = frozenset({"cold_import_env", "warm_import_env", "import_env_factory"})
_BUDGETS_KEY = pytest.StashKey[list[ImportBudget]]()
_PENDING_KEY = pytest.StashKey[list["MeasurementRecord"]]()


class ImportEnvFactory:
    """What the ``import_env_factory`` fixture returns: call it to get an ``ImportEnv``."""

    def __init__(self, session: ImportCacheSession, item: pytest.Item) -> None:
        self._session = session
        self._item = item

    def __call__(
        self,
        flavour: Flavour = "warm",
        *,
        python: str | None = None,
        optimize: int = 0,
        invalidation_mode: InvalidationMode = "timestamp",
        closure: bool = False,
    ) -> ImportEnv:
        """An environment of ``flavour`` whose measurements are recorded for this test."""
        __tracebackhide__ = True
        return self._session.make_env(
            flavour,
            self._item,
            python=python,
            optimize=optimize,
            invalidation_mode=invalidation_mode,
            closure=closure,
            on_result=lambda result: self._session.record_fixture_result(self._item, result),
        )


class ImportCacheSession:
    """Settings, shared directories and collected measurements of one pytest run."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.records: list[MeasurementRecord] = []
        self.tmp_path_factory: pytest.TempPathFactory | None = None
        self._work_root: Path | None = None
        self.comparisons: list[ImportComparison] = []
        self._budget_scales: dict[str, float] | None = None
        self.report_path: Path | None = None
        self.report_problem = ""
        self._raw_dirs_used: set[Path] = set()

    # -- shared directories -------------------------------------------------

    @property
    def work_root(self) -> Path:
        """The run's directory for copies and locks, shared by all xdist workers.

        Without pytest's tmp_path plugin (``-p no:tmpdir``) each process uses a
        private temporary directory instead, removed when the run ends.
        """
        if self._work_root is None:
            if self.tmp_path_factory is not None:
                basetemp = self.tmp_path_factory.getbasetemp()
                self._work_root = shared_temp_root(self.config, basetemp) / "importcache"
                self._work_root.mkdir(exist_ok=True)
            else:
                private = Path(tempfile.mkdtemp(prefix="pytest-importcache-"))
                self.config.add_cleanup(lambda: shutil.rmtree(private, ignore_errors=True))
                self._work_root = private
        return self._work_root

    @property
    def envs_dir(self) -> Path:
        """Where this run's package copies live.

        In pytest's temporary directory (which pytest prunes to the last three
        runs); without it, in the persistent per-user cache, whose bounds keep it small.
        """
        if self.tmp_path_factory is None:
            from .cache import default_cache_dir

            return default_cache_dir()
        return self.work_root / "envs"

    def measurement_lock(self) -> AbstractContextManager[object]:
        """A lock held while any process of this run times an import."""
        from filelock import FileLock

        return FileLock(self.work_root / "measure.lock")

    def make_env(
        self,
        flavour: Flavour,
        item: pytest.Item,
        *,
        python: str | None = None,
        optimize: int = 0,
        invalidation_mode: InvalidationMode = "timestamp",
        closure: bool = False,
        warmup: int | None = None,
        on_result: Callable[[ImportResult], None] | None = None,
    ) -> ImportEnv:
        """An import environment for ``item`` with this run's settings, cache and lock."""
        __tracebackhide__ = True
        from .environment import ImportEnv

        raw_dir = None
        if self.settings.raw_dir is not None:
            raw_dir = self._raw_dir_for(item)
        return ImportEnv(
            flavour,
            python=python,
            optimize=optimize,
            invalidation_mode=invalidation_mode,
            closure=closure,
            rounds=self.settings.rounds,
            warmup=self.settings.warmup if warmup is None else warmup,
            timeout=self.settings.timeout,
            cache_dir=self.envs_dir,
            measurement_lock=self.measurement_lock,
            on_result=on_result,
            raw_dir=raw_dir,
        )

    def _raw_dir_for(self, item: pytest.Item) -> Path:
        """The test's directory of raw rounds: its node id made safe, plus a short digest.

        The digest keeps node ids that differ only in unsafe characters apart; the
        directory is emptied the first time this run uses it, so old rounds never mix in.
        """
        assert self.settings.raw_dir is not None
        readable = re.sub(r"[^\w.-]+", "_", item.nodeid).strip("_")[:80]
        digest = hashlib.sha256(item.nodeid.encode()).hexdigest()[:8]
        directory = (
            self.config.invocation_params.dir / self.settings.raw_dir / f"{readable}-{digest}"
        )
        if directory not in self._raw_dirs_used:
            self._raw_dirs_used.add(directory)
            shutil.rmtree(directory, ignore_errors=True)
        return directory

    def budget_scales(self) -> dict[str, float]:
        """The factor for cold and for warm time budgets in this run.

        With ``budget-scale = auto`` the reference import is measured once per run
        (the first xdist worker to need it measures, the others read its result).
        """
        if self._budget_scales is not None:
            return self._budget_scales
        scale = self.settings.budget_scale
        if scale != "auto":
            self._budget_scales = {"cold": scale, "warm": scale}
            return self._budget_scales
        from filelock import FileLock

        from .reference import Calibration, measure_reference

        recorded = self.settings.calibration
        assert recorded is not None  # read_settings refuses auto without a calibration
        cached = self._reference_file
        with FileLock(f"{cached}.lock"):
            if cached.exists():
                here = Calibration.read(cached)
            else:
                with self.measurement_lock():
                    here = measure_reference(
                        self.envs_dir,
                        rounds=self.settings.rounds,
                        warmup=self.settings.warmup,
                    )
                here.write(cached)
        self._budget_scales = here.scales(recorded)
        return self._budget_scales

    @property
    def _reference_file(self) -> Path:
        """Where the run keeps this machine's reference measurement, for every process."""
        return self.work_root / "calibration.json"

    def _applied_scales(self) -> dict[str, float] | None:
        """The auto factors this run applied, here or in an xdist worker; else ``None``."""
        if self.settings.budget_scale != "auto" or self.settings.calibration is None:
            return None
        if self._budget_scales is None and self._reference_file.exists():
            from .reference import Calibration

            return Calibration.read(self._reference_file).scales(self.settings.calibration)
        return self._budget_scales

    def _scales_or_fail(self) -> dict[str, float]:
        """:meth:`budget_scales`, failing the test when the reference cannot be measured."""
        from .errors import ImportCacheError

        try:
            return self.budget_scales()
        except ImportCacheError as exc:
            problem = f"measuring the reference import for budget scale 'auto' failed: {exc}"
        pytest.fail(problem, pytrace=False)

    # -- records --------------------------------------------------------------

    def record_fixture_result(self, item: pytest.Item, result: ImportResult) -> None:
        """Keep a fixture's measurement for the test's report."""
        from .record import MeasurementRecord

        record = MeasurementRecord.from_result(
            result, nodeid=item.nodeid, test_name=item.name, stat=self.settings.stat
        )
        item.stash.setdefault(_PENDING_KEY, []).append(record)

    # -- hooks ------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        """Let pytest-benchmark's ``--benchmark-skip``/``--benchmark-only`` see import tests."""
        yield
        from .storage import adjust_for_skip_and_only

        measuring = [
            item
            for item in items
            if item.get_closest_marker(MARKER_NAME) is not None
            or IMPORT_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        ]
        adjust_for_skip_and_only(config, measuring)

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Validate the test's ``import_budget`` markers; skip them when disabled."""
        markers = list(item.iter_markers(MARKER_NAME))
        if not markers:
            return
        try:
            # iter_markers yields the closest marker first; budgets read top to bottom.
            budgets = [
                ImportBudget.from_marker(marker.args, marker.kwargs) for marker in reversed(markers)
            ]
        except BudgetError as exc:
            problem = str(exc)
        else:
            problem = ""
        if problem:
            pytest.fail(problem, pytrace=False)
        if self.settings.disable:
            pytest.skip("import measurements are disabled (importcache disable setting)")
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
        """Attach the measurements made so far to the phase's report."""
        report = yield
        pending = item.stash.get(_PENDING_KEY, [])
        if pending:
            setattr(report, REPORT_ATTRIBUTE, [record.to_json() for record in pending])
            pending.clear()
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect the measurements a report carries (on the controller under xdist).

        A run that pytest-rerunfailures will repeat (outcome "rerun") is left out:
        only the attempt that counts is recorded, under a stable name.
        """
        if is_worker(self.config) or str(report.outcome) == "rerun":
            return
        carried = getattr(report, REPORT_ATTRIBUTE, None)
        if carried:
            from .record import MeasurementRecord

            self.records.extend(MeasurementRecord.from_json(entry) for entry in carried)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        """Hand the run's records to pytest-benchmark before it saves and compares."""
        if self.records and not is_worker(self.config):
            from .storage import publish

            self.comparisons = publish(self.config, self.records)
            if self.settings.report is not None:
                from .report import html_report

                path = self.config.invocation_params.dir / self.settings.report
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(html_report(self.records), encoding="utf-8")
                except OSError as exc:
                    self.report_problem = f"cannot write the import report to {path}: {exc}"
                else:
                    self.report_path = path
        yield

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the "import budgets" table, then what changed in slower imports.

        First among the summaries, so it is printed even when pytest-benchmark's
        ``--benchmark-compare-fail`` then stops the run.
        """
        if not self.records:
            return
        from .report import regression_lines, summary_lines
        from .units import format_significant

        terminalreporter.write_sep("-", "import budgets")
        factors = self._applied_scales()
        if factors is not None:
            terminalreporter.write_line(
                f"time budgets scaled by the reference import: "
                f"cold x{format_significant(factors['cold'])}, "
                f"warm x{format_significant(factors['warm'])}"
            )
        for line in summary_lines(self.records):
            terminalreporter.write_line(line)
        if self.report_path is not None:
            terminalreporter.write_line(f"import trees written to {self.report_path}")
        if self.report_problem:
            terminalreporter.write_line(self.report_problem, red=True)
        # With compare-fail thresholds, what they flag; without, whatever got slower.
        slower = [
            comparison
            for comparison in self.comparisons
            if (comparison.change > 0 if comparison.regressed is None else comparison.regressed)
        ]
        if slower:
            terminalreporter.write_sep("-", f"slower imports than {slower[0].source}")
            for line in regression_lines(slower):
                terminalreporter.write_line(line)

    # -- budgets ------------------------------------------------------------------

    def _measure_for_budget(
        self,
        item: pytest.Item,
        budget: ImportBudget,
        flavour: Flavour,
        measured: dict[tuple[str, str, bool, int | None], ImportResult],
    ) -> ImportResult:
        """Measure what ``budget`` needs of ``flavour``, once per test for equal requests."""
        from .errors import ImportCacheError

        closure = budget.closure and flavour == "cold"
        # max_modules and forbid alone need a single round: module lists do not vary.
        timed = bool(budget.timed_flavours)
        rounds = budget.rounds if timed else 1
        key = (budget.module, flavour, closure, rounds)
        if key not in measured:
            env = self.make_env(flavour, item, closure=closure, warmup=None if timed else 0)
            try:
                measured[key] = env.measure(budget.module, rounds=rounds)
            except ImportCacheError as exc:
                problem = f"{MARKER_NAME}({budget.module!r}): {exc}"
            else:
                problem = ""
            if problem:
                pytest.fail(problem, pytrace=False)
        return measured[key]

    def _check_budgets(self, item: pytest.Item, budgets: list[ImportBudget]) -> None:
        """Measure, judge and record every budget; fail the test on any overspent one."""
        from .budget import judge
        from .record import MeasurementRecord
        from .report import failure_text

        measured: dict[tuple[str, str, bool, int | None], ImportResult] = {}
        verdicts = []
        for budget in budgets:
            results = {
                flavour: self._measure_for_budget(item, budget, flavour, measured)
                for flavour in budget.timed_flavours or ("warm",)
            }
            stat = budget.stat or self.settings.stat
            # Only time budgets scale: the reference is not measured for module counts.
            scale = self._scales_or_fail() if budget.timed_flavours else 1.0
            verdicts += judge(budget, results, stat=stat, scale=scale)
        pending = item.stash.setdefault(_PENDING_KEY, [])
        for result in measured.values():
            own = [verdict for verdict in verdicts if verdict.result is result]
            timed = [verdict for verdict in own if verdict.kind in ("cold", "warm")]
            tightest = min(timed, key=lambda verdict: verdict.limit) if timed else None
            pending.append(
                MeasurementRecord.from_result(
                    result,
                    nodeid=item.nodeid,
                    test_name=item.name,
                    stat=tightest.stat if tightest else self.settings.stat,
                    budget=tightest.limit if tightest else None,
                    timed=bool(timed),
                    passed=all(verdict.passed for verdict in own),
                )
            )
        failures = [verdict for verdict in verdicts if not verdict.passed]
        if failures:
            pytest.fail(failure_text(failures), pytrace=False)
