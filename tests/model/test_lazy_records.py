"""PEP 810's lazy imports in the records, as pure functions: on every Python version.

The child notes what ``sys.lazy_modules`` gained and where importlib was asked
for a pending lazy name; these functions make the report's ``pending_lazy``
and ``reified`` from that, and the records carry them through JSON, the
summary, the failure texts and pytest-benchmark's ``extra_info``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from conftest import make_outcome
from pytest_importcache.model.budget import ImportBudget
from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.model.records import (
    RoundReport,
    TracedImport,
    pending_lazy_imports,
    reified_lazy_imports,
)
from pytest_importcache.model.result import build_result
from pytest_importcache.model.verdict import judge
from pytest_importcache.pytest.storage import extra_info
from pytest_importcache.render.failure import failure_text
from pytest_importcache.render.lazynotes import lazy_import_lines
from pytest_importcache.render.runs import outcome_from_entry
from pytest_importcache.render.summary import summary_lines


def through_json(data: object) -> Any:
    return json.loads(json.dumps(data))


@pytest.mark.parametrize(
    ("names", "loaded", "pending"),
    [
        # `lazy import decimal`, never used.
        (["decimal"], [], ("decimal",)),
        # `lazy from fractions import Fraction`: the package says it.
        (["fractions", "fractions.Fraction"], [], ("fractions",)),
        # `lazy import a.b.c`: the top package says it.
        (["a", "a.b", "a.b.c"], [], ("a",)),
        # The package loaded by another, eager import: its names are no longer pending.
        (["heapq", "heapq.nlargest"], ["heapq"], ()),
        # Sorted, whatever order the set gave.
        (["zlib", "copy", "copy.copy"], [], ("copy", "zlib")),
        ([], ["json"], ()),
    ],
)
def test_pending_lazy_imports_are_the_packages_still_pending(
    names: list[str], loaded: list[str], pending: tuple[str, ...]
) -> None:
    assert pending_lazy_imports(names, loaded) == pending


def test_a_use_reified_a_lazy_import_an_import_statement_or_a_call_did_not() -> None:
    noted = [
        # LOAD_NAME: `X = decimal.Decimal(1)` at module level.
        ["decimal", "mylib/core.py:12", "LOAD_NAME"],
        # Another module's eager `import json` while json was pending here.
        ["json", "mylib/other.py:1", "IMPORT_NAME"],
        # importlib.import_module or __import__ called with a pending name.
        ["copy", "mylib/other.py:3", "CALL"],
        ["heapq", "mylib/other.py:4", "CALL_KW"],
        # LOAD_GLOBAL in a function the import called; LOAD_ATTR on a module.
        ["fractions", "mylib/util.py:7", "LOAD_GLOBAL"],
        ["zlib", "mylib/util.py:9", "LOAD_ATTR"],
    ]
    assert reified_lazy_imports(noted) == (
        ("decimal", "mylib/core.py:12"),
        ("fractions", "mylib/util.py:7"),
        ("zlib", "mylib/util.py:9"),
    )


def test_of_the_packages_reified_at_one_place_the_deepest_is_kept() -> None:
    # `lazy import a.b.c` used at line 5 imports a.b.c, whose parents come on the way.
    noted = [
        ["a.b.c", "m.py:5", "LOAD_NAME"],
        ["a.b", "m.py:5", "LOAD_NAME"],
        ["a", "m.py:5", "LOAD_NAME"],
        ["a", "m.py:9", "LOAD_NAME"],
        ["a.b.c", "m.py:5", "LOAD_NAME"],
    ]
    assert reified_lazy_imports(noted) == (("a.b.c", "m.py:5"), ("a", "m.py:9"))


def round_report(**changes: Any) -> RoundReport:
    fields: dict[str, Any] = {
        "wall_ns": 12_000_000,
        "cpu_ns": 11_000_000,
        "origin": "/env/mylib/__init__.py",
        "loaded": ("mylib",),
        "python_version": "3.15.2",
        "traced": (TracedImport(1, 0, "mylib", True, 12_000),),
        "pending_lazy": ("decimal",),
        "reified": (("fractions", "mylib/__init__.py:3"),),
    }
    fields.update(changes)
    return RoundReport(**fields)


def test_a_round_report_carries_its_lazy_imports_through_json() -> None:
    report = round_report()
    data = through_json(report.to_json())
    assert data["pending_lazy"] == ["decimal"]
    assert data["reified"] == [["fractions", "mylib/__init__.py:3"]]
    assert RoundReport.from_json(data) == report


def test_a_round_report_stored_before_pep_810_reads_with_none() -> None:
    data = through_json(round_report().to_json())
    del data["pending_lazy"], data["reified"]
    again = RoundReport.from_json(data)
    assert (again.pending_lazy, again.reified) == ((), ())


def test_a_pending_lazy_import_is_not_counted_by_max_modules_or_forbid() -> None:
    result = build_result("mylib", "warm", False, "python3.15", [round_report()])
    assert result.pending_lazy == ("decimal",)
    assert result.reified == (("fractions", "mylib/__init__.py:3"),)
    assert "decimal" not in result.modules
    budget = ImportBudget("mylib", max_modules=1, forbid=("decimal",))
    verdicts = judge(budget, {"warm": result}, stat="min")
    assert [verdict.passed for verdict in verdicts] == [True, True]


def test_a_failure_text_shows_what_was_left_pending_and_what_was_reified() -> None:
    result = build_result("mylib", "warm", False, "python3.15", [round_report()])
    budget = ImportBudget("mylib", max_modules=0)
    text = failure_text(judge(budget, {"warm": result}, stat="min"))
    assert text.splitlines()[-2:] == [
        "  lazy imports pending (not executed, not counted): decimal",
        "  mylib/__init__.py:3 reified lazy import fractions during the import",
    ]


def test_the_summary_notes_each_module_s_lazy_imports_once() -> None:
    changes = {
        "module": "mylib",
        "pending_lazy": ("decimal", "fractions"),
        "reified": (("json", "mylib/core.py:12"),),
    }
    outcomes = [make_outcome(**changes), make_outcome(flavour="cold", **changes)]
    lines = summary_lines(outcomes)
    assert lines[-2:] == [
        "mylib: lazy imports pending (not executed, not counted): decimal, fractions",
        "mylib: mylib/core.py:12 reified lazy import json during the import",
    ]
    assert "lazy" not in "\n".join(summary_lines([make_outcome()]))


def test_a_long_pending_list_is_cut_with_a_count() -> None:
    pending = tuple(f"m{index:02}" for index in range(11))
    (line,) = lazy_import_lines(pending, ())
    assert line.endswith("m06, m07 and 3 more")


def test_many_reified_lazy_imports_are_cut_with_a_count() -> None:
    reified = tuple((f"m{index:02}", f"pkg/core.py:{index}") for index in range(13))
    lines = lazy_import_lines((), reified, "pkg")
    assert len(lines) == 11
    assert lines[9] == "pkg: pkg/core.py:9 reified lazy import m09 during the import"
    assert lines[10] == "pkg: and 3 more lazy imports reified during the import"


def test_outcomes_and_extra_info_keep_the_lazy_imports() -> None:
    outcome = make_outcome(
        pending_lazy=("decimal",), reified=(("json", "mylib/core.py:12"),), module="mylib"
    )
    assert MeasurementOutcome.from_json(through_json(outcome.to_json())) == outcome
    info = through_json(extra_info(outcome))
    assert info["pending_lazy"] == ["decimal"]
    assert info["reified"] == [{"module": "json", "where": "mylib/core.py:12"}]
    entry = {
        "name": "t[mylib-warm]",
        "fullname": "t.py::t[mylib-warm]",
        "stats": {"min": 0.01, "median": 0.01, "data": [0.01]},
        "extra_info": info,
    }
    again = outcome_from_entry(entry, "run 0001")
    assert (again.pending_lazy, again.reified) == (outcome.pending_lazy, outcome.reified)
    older = dataclasses.replace(outcome, pending_lazy=(), reified=())
    assert (
        MeasurementOutcome.from_json(
            {
                key: value
                for key, value in through_json(older.to_json()).items()
                if key not in ("pending_lazy", "reified")
            }
        )
        == older
    )


def test_a_start_ups_first_use_reifications_survive_every_record_and_get_one_line() -> None:
    in_run = (("decimal", "mylib/__init__.py:6"),)
    result = build_result(
        "mylib", "warm", False, "python3.15", [round_report(reified=(), reified_in_run=in_run)]
    )
    assert result.reified_in_run == in_run
    outcome = MeasurementOutcome.from_result(result, nodeid="t.py::t", test_name="t", stat="median")
    assert outcome.reified_in_run == in_run
    assert MeasurementOutcome.from_json(through_json(outcome.to_json())) == outcome
    info = through_json(extra_info(outcome))
    assert info["reified_in_run"] == [{"module": "decimal", "where": "mylib/__init__.py:6"}]
    entry = {
        "name": "t[mylib-warm]",
        "fullname": "t.py::t[mylib-warm]",
        "stats": {"min": 0.01, "median": 0.01, "data": [0.01]},
        "extra_info": info,
    }
    assert outcome_from_entry(entry, "run 0001").reified_in_run == in_run
    assert summary_lines([outcome])[-1] == (
        "mylib: first use reified lazy imports (run phase): decimal (mylib/__init__.py:6)"
    )
