"""Measuring a test's budgets and judging them, before the test body runs.

Each measurement the budgets need is taken once (counted ones from the
look-ahead pool, timed ones against the baseline revision when one is set),
every budget is judged, and each measurement is recorded with its verdict
and same-run baseline as it is made. An overspent budget, or a slowdown
past ``importcache_baseline_fail``, fails the test with one readable text.
Imported at the first budgeted test (the engine is not part of pytest's start-up).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pytest

from pytest_importcache.engine.against import measure_against
from pytest_importcache.engine.interpreter import stdlib_module_names
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.model.budget import MARKER_NAME, STARTUP_MARKER_NAME, ImportBudget
from pytest_importcache.model.comparison import Comparison
from pytest_importcache.model.errors import ImportCacheError, RevisionError
from pytest_importcache.model.outcome import baseline_record
from pytest_importcache.model.records import TreeRow
from pytest_importcache.model.result import ImportResult
from pytest_importcache.model.spec import MeasurementSpec, measurement_suffix, metric_label
from pytest_importcache.model.verdict import Verdict, judge
from pytest_importcache.render.failure import BaselineLookup, baseline_failure_text, failure_text
from pytest_importcache.render.summary import unjudged_line

from .benchmark import baseline_tree
from .markers import MeasurementKey, measurement_keys, specs_for, timed_keys
from .options import Settings
from .recording import DEFERRED_FAILURE_KEY, RecordedMeasurement, bare_memory, record
from .scales import BudgetScales

__all__ = ["BudgetCheck", "judge_budgets", "records_for"]


@dataclass
class BudgetCheck:
    """One test's budgets: measured, judged, recorded; the test fails on an overspent one.

    ``measurer`` takes the timed measurements (its observers do not record:
    this check records each measurement with its verdict); ``count`` hands a
    counted one over from the look-ahead pool. ``bare_peaks`` false (rounds
    fed by a conftest's runner) leaves the bare interpreter's peak out.
    """

    item: pytest.Item
    budgets: list[ImportBudget]
    settings: Settings
    measurer: Measurer
    count: Callable[[MeasurementSpec], ImportResult]
    scales: BudgetScales
    bare_peaks: bool = True

    def run(self) -> None:
        """Measure, judge and record every budget; fail the test on any overspent one.

        With ``importcache_baseline``, every timed measurement is taken against
        the revision too (rounds interleaved), and a slowdown past
        ``importcache_baseline_fail`` fails the test as well.
        """
        measured: dict[MeasurementKey, ImportResult] = {}
        comparisons: dict[MeasurementKey, Comparison] = {}
        try:
            self._specs  # noqa: B018 - a command that cannot be resolved fails here, in one line
        except ImportCacheError as exc:
            problem = str(exc)
        else:
            problem = ""
        if problem:
            pytest.fail(problem, pytrace=False)
        try:
            self._measure_budgets(measured, comparisons)
            verdicts = self._judge(measured)
        except BaseException:
            # What was measured before the failure is still reported, unjudged.
            for result in measured.values():
                record(self.item, RecordedMeasurement(result, stat=self.settings.stat))
            raise
        recorded = self._records(measured, comparisons, verdicts)
        for entry in recorded:
            record(self.item, entry)
        threshold = self.settings.baseline_fail
        failures = [
            self._in_detail(key, verdict) for key, verdict in verdicts if not verdict.passed
        ]
        slower = [each for each in comparisons.values() if each.slower(threshold)]
        if failures or slower:
            blocks = [failure_text(failures, self._baseline_lookup())] if failures else []
            blocks += [baseline_failure_text(comparison, threshold) for comparison in slower]
            blocks += _unjudged_lines(recorded)
            if getattr(self.item, "defers_budget_failure", False):
                # The item's body fails with it, beside what else it checks.
                self.item.stash[DEFERRED_FAILURE_KEY] = "\n\n".join(blocks)
                return
            pytest.fail("\n\n".join(blocks), pytrace=False)

    @functools.cached_property
    def _specs(self) -> dict[MeasurementKey, MeasurementSpec]:
        """The measurements the budgets need, one spec each."""
        return specs_for(self.budgets, self.settings)

    def _measure_budgets(
        self,
        measured: dict[MeasurementKey, ImportResult],
        comparisons: dict[MeasurementKey, Comparison],
    ) -> None:
        """Every measurement the budgets need; timed ones against the baseline, if set."""
        timed = timed_keys(self.budgets)
        for key, spec in self._specs.items():
            if self.settings.baseline is not None and key in timed:
                comparisons[key] = self._compare(spec)
                measured[key] = comparisons[key].head
            else:
                measured[key] = self._measure(spec)

    def _measure(self, spec: MeasurementSpec) -> ImportResult:
        """Measure ``spec``; a failed measurement fails the test in one line."""
        try:
            if spec.metric == "instructions":
                return self.count(spec)
            return self.measurer.measure(spec)
        except ImportCacheError as exc:
            problem = f"{_marker_label(spec)}: {exc}"
        pytest.fail(problem, pytrace=False)

    def _compare(self, spec: MeasurementSpec) -> Comparison:
        """Measure ``spec`` against the baseline revision; a failure fails the test in one line."""
        assert self.settings.baseline is not None
        try:
            return measure_against(
                self.measurer, spec, self.settings.baseline, self.item.config.rootpath
            )
        except RevisionError as exc:
            problem = (
                f"{_marker_label(spec)}: baseline {self.settings.baseline}: "
                f"{str(exc).splitlines()[0]}"
            )
        except ImportCacheError as exc:
            # A base round's error names its side ("at HEAD~1 (362ed16...)"); the
            # working tree's reads as it would without a baseline.
            problem = f"{_marker_label(spec)}: {str(exc).splitlines()[0]}"
        pytest.fail(problem, pytrace=False)

    def _judge(
        self, measured: dict[MeasurementKey, ImportResult]
    ) -> list[tuple[MeasurementKey, Verdict]]:
        """Every budget's verdicts, in order, each with the measurement it was judged on."""

        def scale_for(budget: ImportBudget) -> float | Mapping[str, float]:
            # Only time budgets scale: module and instruction counts do not vary by machine.
            scaled = bool(budget.timed_flavours) and budget.metric == "time"
            return self.scales.get_or_fail() if scaled else 1.0

        try:
            return judge_budgets(
                self.budgets,
                measured,
                stat=self.settings.stat,
                scale_for=scale_for,
                bare_memory_of=self._bare_memory,
            )
        except ImportCacheError as exc:  # the standard library of the interpreter, for allow
            problem = f"allow: {str(exc).splitlines()[0]}"
        pytest.fail(problem, pytrace=False)

    def _records(
        self,
        measured: dict[MeasurementKey, ImportResult],
        comparisons: dict[MeasurementKey, Comparison],
        verdicts: list[tuple[MeasurementKey, Verdict]],
    ) -> list[RecordedMeasurement]:
        """One record per measurement, with its tightest timed verdict and same-run baseline."""
        return records_for(
            self.budgets,
            measured,
            verdicts,
            stat=self.settings.stat,
            comparisons=comparisons,
            threshold=self.settings.baseline_fail,
            bare_memory_of=self._bare_memory,
        )

    def _bare_memory(self, result: ImportResult) -> int | None:
        """A bare interpreter's peak beside ``result``'s; none beside fed rounds."""
        return bare_memory(result) if self.bare_peaks else None

    def _in_detail(self, key: MeasurementKey, verdict: Verdict) -> Verdict:
        """``verdict`` with its count's modules counted, for the failure's explanation.

        A counted round that counted the import alone (the run shows and keeps
        no per-module counts) is counted again, one round in detail; its total
        is the same. Should that count fail, the explanation goes without.
        """
        if verdict.result.metric != "instructions" or self.measurer.module_counts:
            return verdict
        spec = dataclasses.replace(self._specs[key], rounds=1, warmup=0)
        detailed = Measurer(
            round_runner=self.measurer.round_runner, count_store=self.measurer.count_store
        )
        try:
            return dataclasses.replace(verdict, result=detailed.measure(spec))
        except ImportCacheError:
            return verdict

    def _baseline_lookup(self) -> BaselineLookup:
        """Find a result's tree in the ``--benchmark-compare`` baseline by its full name."""
        config, nodeid = self.item.config, self.item.nodeid

        def lookup(
            result: ImportResult,
        ) -> tuple[str, Sequence[TreeRow]] | None:
            # The lazy mode is the spec's, not the result's: find the spec it was measured by.
            lazy_imports = next(
                (
                    spec.lazy_imports
                    for spec in self._specs.values()
                    if (spec.module, spec.label, spec.metric)
                    == (result.module, result.label, result.metric)
                    and (None if spec.command is None else spec.command.key) == result.command
                ),
                None,
            )
            suffix = measurement_suffix(
                result.module,
                result.label,
                result.metric,
                command=result.command,
                lazy_imports=lazy_imports,
            )
            return baseline_tree(config, f"{nodeid}[{suffix}]")

        return lookup


def judge_budgets(
    budgets: Sequence[ImportBudget],
    measured: Mapping[MeasurementKey, ImportResult],
    *,
    stat: str,
    scale_for: Callable[[ImportBudget], float | Mapping[str, float]] = lambda budget: 1.0,
    bare_memory_of: Callable[[ImportResult], int | None] = bare_memory,
) -> list[tuple[MeasurementKey, Verdict]]:
    """Every budget's verdicts, in order, each with the key of the measurement it was judged on.

    ``measured`` holds what :func:`~pytest_importcache.pytest.markers.specs_for`
    asked for; ``stat`` is the run's statistic (a budget's own wins);
    ``scale_for`` gives a budget's time scale. No pytest here:
    ``pytest-importcache check`` judges with it too. ``ImportCacheError`` when
    the standard library of the interpreter (for ``allow``) cannot be read.
    """
    verdicts: list[tuple[MeasurementKey, Verdict]] = []
    for budget in budgets:
        keys = measurement_keys(budget)
        results: dict[Literal["cold", "warm"], ImportResult] = {
            flavour: measured[key]  # type: ignore[misc]
            for flavour, key in keys.items()
            if flavour in ("cold", "warm")
        }
        # judge() takes max_modules and forbid from the warm measurement when there is one.
        untimed = keys.get("warm") or keys["cold"]
        untimed_result = measured[untimed]
        stdlib = stdlib_module_names(untimed_result.python) if budget.allow else frozenset()
        memory = measured[keys["max_memory"]] if "max_memory" in keys else None
        verdicts += [
            (keys.get(verdict.kind, untimed), verdict)
            for verdict in judge(
                budget,
                results,
                stat=budget.stat or stat,
                scale=scale_for(budget),
                stdlib=stdlib,
                memory=memory,
                bare_memory=None if memory is None else bare_memory_of(memory),
            )
        ]
    return verdicts


def records_for(
    budgets: Sequence[ImportBudget],
    measured: Mapping[MeasurementKey, ImportResult],
    verdicts: Sequence[tuple[MeasurementKey, Verdict]],
    *,
    stat: str,
    comparisons: Mapping[MeasurementKey, Comparison] | None = None,
    threshold: float = 0.0,
    bare_memory_of: Callable[[ImportResult], int | None] = bare_memory,
) -> list[RecordedMeasurement]:
    """One record per measurement, with its tightest timed verdict and same-run baseline.

    ``threshold`` is the slowdown against the baseline that fails (with ``comparisons``);
    ``bare_memory_of`` gives the bare interpreter's peak beside a result's.
    """
    unjudged: dict[MeasurementKey, str] = {}
    for budget in budgets:
        keys = measurement_keys(budget)
        for flavour, text in budget.unjudged:
            unjudged.setdefault(keys[flavour], text)
    recorded = []
    for key, result in measured.items():
        own = [verdict for judged, verdict in verdicts if judged == key]
        timed = [verdict for verdict in own if verdict.kind in ("cold", "warm")]
        tightest = min(timed, key=lambda verdict: verdict.limit) if timed else None
        comparison = (comparisons or {}).get(key)
        recorded.append(
            RecordedMeasurement(
                result,
                stat=stat if tightest is None else tightest.stat,
                timed=bool(timed) or bool(unjudged.get(key)) if own else True,
                budget=None if tightest is None else tightest.limit,
                passed=all(verdict.passed for verdict in own) if own else None,
                scale=1.0 if tightest is None else tightest.scale,
                baseline=(None if comparison is None else baseline_record(comparison, threshold)),
                unjudged=unjudged.get(key, ""),
                lazy_imports=key.lazy_imports,
                bare_peak_memory=bare_memory_of(result),
            )
        )
    return recorded


def _marker_label(spec: MeasurementSpec) -> str:
    """The marker a measurement is for, as messages name it: ``import_budget('mylib')``."""
    if spec.command is not None:
        return f"{STARTUP_MARKER_NAME}({spec.command.label!r})"
    return f"{MARKER_NAME}({spec.module!r})"


def _unjudged_lines(recorded: list[RecordedMeasurement]) -> list[str]:
    """For a failure text: what to write for budgets measured in the other unit, not judged."""
    lines = []
    for entry in recorded:
        if entry.unjudged:
            result = entry.result
            label = metric_label(result.label, result.metric).replace("instructions", "instr")
            statistic = result.statistic(entry.stat)
            measured = result.module if result.command is None else result.command
            lines.append(unjudged_line(measured, label, entry.unjudged, statistic, result.metric))
    return lines
