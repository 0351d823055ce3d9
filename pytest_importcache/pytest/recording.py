"""What a test measured, kept until its report is made, then attached to it as outcomes.

Every measurement a test makes (its markers' or its fixtures') becomes one
:class:`RecordedMeasurement`, made once with all it needs (a marker's with
its verdict, budget, scale and same-run baseline); the test's report then
carries them as :class:`~pytest_importcache.model.outcome.MeasurementOutcome`
JSON under ``REPORT_ATTRIBUTE``, the same path with and without pytest-xdist.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_importcache.model.outcome import MeasurementOutcome
    from pytest_importcache.model.records import RoundReport, SameRunBaseline
    from pytest_importcache.model.result import ImportResult
    from pytest_importcache.model.spec import MeasurementSpec

__all__ = [
    "DEFERRED_FAILURE_KEY",
    "REPORT_ATTRIBUTE",
    "RawRounds",
    "RecordedMeasurement",
    "Recorder",
    "attach_outcomes",
    "bare_memory",
    "fail_recorded",
    "outcome_of",
    "raw_dir_name",
    "record",
    "recorded",
]

REPORT_ATTRIBUTE = "importcache_outcomes"
#: An overspent budget's failure, kept for the body of an item that says
#: ``defers_budget_failure`` (a pyproject.toml budget fails with its lock's failure beside it).
DEFERRED_FAILURE_KEY = pytest.StashKey[str]()
_RECORDED_KEY = pytest.StashKey[list["RecordedMeasurement"]]()


@dataclass(frozen=True)
class RecordedMeasurement:
    """A measurement a test made, and how its budgets judged it (until its report is made).

    A fixture's measurement carries only the run's statistic; a marker's, its
    tightest timed verdict (statistic, scaled budget, scale), whether every
    verdict passed, and its same-run ``baseline`` when one was measured.
    """

    result: ImportResult
    stat: str
    timed: bool = True
    budget: float | None = None
    passed: bool | None = None
    scale: float = 1.0
    baseline: SameRunBaseline | None = None
    unjudged: str = ""
    lazy_imports: str | None = None
    bare_peak_memory: int | None = None


def record(item: pytest.Item, measurement: RecordedMeasurement) -> None:
    """Keep ``measurement`` for ``item``'s next report."""
    item.stash.setdefault(_RECORDED_KEY, []).append(measurement)


def recorded(item: pytest.Item) -> list[RecordedMeasurement]:
    """What ``item`` measured since its last report (its budgets' measurements, in its call)."""
    measurements: list[RecordedMeasurement] = item.stash.get(_RECORDED_KEY, [])
    return list(measurements)


def fail_recorded(item: pytest.Item) -> None:
    """Judge ``item``'s measurements failed: their budgets held, yet the test failed on them.

    A pyproject.toml budget whose modules differ from ``importcache.lock`` fails
    with every budget held; its rows in the summary say FAIL, as ``check``'s do.
    """
    measurements = item.stash.get(_RECORDED_KEY, [])
    measurements[:] = [
        dataclasses.replace(entry, passed=False) if entry.passed else entry
        for entry in measurements
    ]


def outcome_of(entry: RecordedMeasurement, nodeid: str, test_name: str) -> MeasurementOutcome:
    """The outcome of a recorded measurement of the test ``nodeid``, as reports carry it."""
    # Only a test that measured pays for the model's outcome (pytest start-up stays cheap).
    from pytest_importcache.model.outcome import MeasurementOutcome  # noqa: PLC0415 - start-up cost

    return MeasurementOutcome.from_result(
        entry.result,
        nodeid=nodeid,
        test_name=test_name,
        stat=entry.stat,
        budget=entry.budget,
        passed=entry.passed,
        timed=entry.timed,
        scale=entry.scale,
        baseline=entry.baseline,
        unjudged=entry.unjudged,
        lazy_imports=entry.lazy_imports,
        bare_peak_memory=entry.bare_peak_memory,
    )


def attach_outcomes(item: pytest.Item, report: pytest.TestReport) -> None:
    """Attach the measurements kept so far to ``report``, as outcomes, and forget them."""
    recorded = item.stash.get(_RECORDED_KEY, [])
    if not recorded:
        return
    outcomes = [outcome_of(entry, item.nodeid, item.name).to_json() for entry in recorded]
    setattr(report, REPORT_ATTRIBUTE, outcomes)
    recorded.clear()


class Recorder:
    """Keeps every measurement a test's fixtures make for the test's report.

    ``bare_peaks`` false (rounds fed by a conftest's runner) leaves out the
    bare interpreter's peak: it would be a real process's beside fed figures.
    """

    def __init__(self, item: pytest.Item, stat: str, *, bare_peaks: bool = True) -> None:
        self.item = item
        self.stat = stat
        self.bare_peaks = bare_peaks

    def round_done(self, spec: MeasurementSpec, index: int, report: RoundReport) -> None:
        """Nothing to keep per round."""

    def measured(self, spec: MeasurementSpec, result: ImportResult) -> None:
        """Keep ``result`` until the test's report is made."""
        record(
            self.item,
            RecordedMeasurement(
                result,
                stat=self.stat,
                lazy_imports=spec.lazy_imports,
                bare_peak_memory=bare_memory(result) if self.bare_peaks else None,
            ),
        )


def bare_memory(result: ImportResult) -> int | None:
    """A bare interpreter's peak memory beside ``result``'s (same interpreter), when it has one.

    ``None`` for a result without peak memory (a count), or when the bare
    round cannot be made: the figure is context, never a reason to fail.
    """
    if result.peak_memory_max is None:
        return None
    # Only a measurement with peak memory pays for the engine's bare round.
    from pytest_importcache.engine.memory import bare_interpreter_peak  # noqa: PLC0415 - start-up cost
    from pytest_importcache.model.errors import ImportCacheError  # noqa: PLC0415 - start-up cost

    try:
        return bare_interpreter_peak(result.python)
    except ImportCacheError:
        return None


def raw_dir_name(nodeid: str) -> str:
    """A test's directory of raw rounds: its node id made safe, plus a short digest.

    The digest keeps node ids that differ only in unsafe characters apart.
    """
    readable = re.sub(r"[^\w.-]+", "_", nodeid).strip("_")[:80]
    return f"{readable}-{hashlib.sha256(nodeid.encode()).hexdigest()[:8]}"


class RawRounds:
    """Keeps each round's stderr (raw ``-X importtime`` rows) as ``MODULE-FLAVOUR-ROUND.txt``.

    Counted rounds are ``MODULE-FLAVOUR-instructions-ROUND.txt`` (their stderr
    has no ``-X importtime`` rows). A name too long for the file system is cut
    and given a digest.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def round_done(self, spec: MeasurementSpec, index: int, report: RoundReport) -> None:
        """Write round ``index``'s stderr into the test's raw directory."""
        # Only with --importcache-raw-dir: the engine stays out of pytest's start-up.
        from pytest_importcache.engine.copying import fit_file_name  # noqa: PLC0415 - start-up cost

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
