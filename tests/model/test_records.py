"""The model's records: their JSON goes out and comes back the same; bad JSON is one error."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from conftest import make_outcome
from pytest_importcache.model.errors import ImportCacheError, RecordError
from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.model.records import RoundReport, SameRunBaseline, TracedImport, TreeRow
from pytest_importcache.model.result import ModuleTiming, ReusedCount
from pytest_importcache.model.spec import METRICS, as_metric
from pytest_importcache.model.stats import STATISTICS, as_statistic

ROWS = (TreeRow("m.core", 0.002, 0.002, "m"), TreeRow("m", 0.001, 0.003, None))
BASELINE = SameRunBaseline(
    revision="main",
    commit="0123456789abcdef0123",
    ratio=1.2,
    low=1.1,
    high=1.3,
    confidence=0.95,
    method="bootstrap",
    statistic="min",
    head=0.012,
    base=0.01,
    head_values=(0.012, 0.013),
    base_values=(0.01, 0.011),
    head_median=0.0125,
    base_median=0.0105,
    threshold=0.1,
    slower=True,
    noise="",
    changed=(("m.core", 0.002, "new"),),
    base_modules=ROWS,
    estimator="min",
    served=("m/_version.py",),
)


def through_json(data: object) -> Any:
    """``data`` as another process reads it: dumped to text and loaded again."""
    return json.loads(json.dumps(data))


def test_a_tree_row_is_a_list_of_four_and_comes_back() -> None:
    row = TreeRow("m.core", 0.002, 0.003, "m")
    assert through_json(row.to_json()) == ["m.core", 0.002, 0.003, "m"]
    assert TreeRow.from_json(through_json(row.to_json())) == row
    root = TreeRow("m", 1.0, 2.0, None)
    assert TreeRow.from_json(through_json(root.to_json())) == root


def test_a_module_timing_and_its_tree_row_are_one_module() -> None:
    timing = ModuleTiming("m.core", 0.002, 0.003, "m", metric="instructions")
    assert timing.row == TreeRow("m.core", 0.002, 0.003, "m")
    assert ModuleTiming.from_row(timing.row, "instructions") == timing


def test_a_same_run_baseline_comes_back_whole() -> None:
    again = SameRunBaseline.from_json(through_json(BASELINE.to_json()))
    assert again == BASELINE
    assert again.base_modules == ROWS


def test_a_baseline_saved_before_estimators_served_files_and_trees_reads_with_defaults() -> None:
    data = BASELINE.to_json()
    for key in ("estimator", "served", "changed", "base_modules"):
        del data[key]
    again = SameRunBaseline.from_json(data)
    assert (again.estimator, again.served, again.changed, again.base_modules) == (
        "pairs",
        (),
        (),
        (),
    )


def test_a_round_report_comes_back_without_its_inputs() -> None:
    report = RoundReport(
        wall_ns=12_000_000,
        cpu_ns=11_000_000,
        origin="/env/m/__init__.py",
        loaded=("m.core", "m"),
        python_version="3.11.7",
        traced=(TracedImport(1, 0, "m", True, 12_000, 345), TracedImport(2, 1, "m.core", True, 5)),
        stderr="import time: ...",
        lazy=("m.lazy",),
        startup_modules=30,
        instructions=45_000_000,
        inputs=(("/env/m/__init__.py", ""),),
    )
    again = RoundReport.from_json(through_json(report.to_json()))
    assert again == dataclasses.replace(report, inputs=())


def test_an_outcome_carries_its_tree_and_baseline_through_json() -> None:
    reused = ReusedCount("2026-12-05T06:00:00+00:00", "host", "/store")
    outcome = make_outcome(modules=ROWS, baseline=BASELINE, lazy_modules=("m.lazy",), reused=reused)
    data = through_json(outcome.to_json())
    assert data["modules"] == [row.to_json() for row in ROWS]
    assert data["reused"] == {
        "reused": True,
        "counted_at": "2026-12-05T06:00:00+00:00",
        "counted_on": "host",
        "store": "/store",
    }
    assert data["baseline"] == BASELINE.to_json()
    assert MeasurementOutcome.from_json(data) == outcome
    assert MeasurementOutcome.from_json(through_json(make_outcome().to_json())) == make_outcome()


@pytest.mark.parametrize(
    ("read", "data", "message"),
    [
        (TreeRow.from_json, [1, 2], r"^tree row: \[1, 2\] is not a tree row$"),
        (TreeRow.from_json, ["m", -1, 0, None], r"^tree row: self cost of 'm' is -1, not a non"),
        (TreeRow.from_json, ["m", 1, 1, 5], r"^tree row: the importer of 'm' is not a module"),
        (TreeRow.from_json, ["m", 10**400, 1, None], r"^tree row: self cost of 'm' is 1000"),
        (
            SameRunBaseline.from_json,
            {**BASELINE.to_json(), "ratio": 10**400},
            r"^baseline\.ratio is 1000\d+, not a number$",
        ),
        (SameRunBaseline.from_json, {"revision": "main"}, r"^baseline has no 'commit'$"),
        (SameRunBaseline.from_json, [], r"^baseline is \[\], not an object$"),
        (
            SameRunBaseline.from_json,
            {**BASELINE.to_json(), "ratio": "fast"},
            r'^baseline\.ratio is "fast", not a number$',
        ),
        (
            SameRunBaseline.from_json,
            {**BASELINE.to_json(), "base_modules": [[1, 2]]},
            r"^baseline\.base_modules: \[1, 2\] is not a tree row$",
        ),
        (RoundReport.from_json, {"instructions": None}, r"^round report has no 'wall_ns'$"),
        (RoundReport.from_json, "{not json", r"^round report is str$"),
    ],
)
def test_malformed_json_is_one_readable_record_error(read: Any, data: object, message: str) -> None:
    with pytest.raises(RecordError, match=message) as caught:
        read(data)
    assert "\n" not in str(caught.value)
    # Callers that caught ValueError, or the package's base, still catch it.
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ImportCacheError)


def test_a_malformed_outcome_names_the_test() -> None:
    data = make_outcome(nodeid="t.py::t").to_json()
    data["modules"] = [["m", "slow", 0.1, None]]
    with pytest.raises(RecordError, match=r"^outcome of 't.py::t': modules: self cost of 'm'"):
        MeasurementOutcome.from_json(data)


@pytest.mark.parametrize("name", STATISTICS)
def test_every_statistic_is_one(name: str) -> None:
    assert as_statistic(name) == name


@pytest.mark.parametrize("value", ["mode", "MIN", " min", "", None, 3, ("min",)])
def test_anything_else_is_no_statistic(value: object) -> None:
    assert as_statistic(value) is None


def test_metrics_are_time_and_instructions_only() -> None:
    assert [as_metric(metric) for metric in METRICS] == ["time", "instructions"]
    assert as_metric("Time") is None
    assert as_metric(None) is None
