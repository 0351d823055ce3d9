"""PEP 810 in start-up rounds: pending at exit, reified by the entry module's import, at first use.

The rounds need CPython 3.15 (``lazy import`` is a syntax error before it)
and skip elsewhere; how a round's report maps onto the result is checked on
every version.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import MakeTree
from pytest_importcache.engine.measurer import Measurer, round_import_path
from pytest_importcache.engine.processwait import Exited
from pytest_importcache.engine.startup import startup_spec
from pytest_importcache.engine.startupround import _round_report
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.result import ImportResult
from pytest_importcache.model.spec import StartupCommand
from pytest_importcache.render.lazynotes import lazy_import_lines

needs_pep_810 = pytest.mark.skipif(
    sys.version_info < (3, 15), reason="PEP 810 lazy imports (lazy import) need CPython 3.15+"
)

PACKAGES = {
    # fractions is used at import time (line 4): reified by the import. decimal is
    # used by use() (line 7): reified at first use, in the run. json: never used.
    "lazycli/__init__.py": (
        "lazy import decimal\nlazy import fractions\nlazy import json\n"
        "HALF = fractions.Fraction(1, 2)\n\ndef use():\n    return decimal.Decimal(1)\n"
    ),
    "lazycli/__main__.py": "import lazycli\nlazycli.use()\n",
    # An eager import nothing uses: -X lazy_imports=all defers it past the exit.
    "eagercli/__init__.py": "import decimal\nVALUE = 1\n",
}


def _measure(tree: Path, command: StartupCommand, **fields: Any) -> ImportResult:
    search_path = [str(tree), *sys.path]
    measurer = Measurer(cache_dir=tree.parent / "cache", search_path=search_path)
    spec = startup_spec(
        command,
        flavour="warm",
        rounds=1,
        warmup=0,
        import_path=round_import_path(search_path),
        **fields,
    )
    return measurer.measure(spec)


def test_a_start_up_rounds_report_keeps_its_lazy_imports_apart_by_phase() -> None:
    child_report = {
        "origin": "/env/lazycli/__init__.py",
        "loaded": ["lazycli", "fractions", "decimal"],
        "lazy": [],
        "startup_modules": 30,
        "traced": [],
        "python_version": "3.15.2",
        "pending_lazy": ["json", "decimal"],
        "reified": [["fractions", "lazycli/__init__.py:4", "LOAD_ATTR"]],
        "reified_in_run": [
            ["decimal", "lazycli/__init__.py:7", "LOAD_GLOBAL"],
            ["re", "<string>:1", "IMPORT_NAME"],  # an import statement: no reification
        ],
    }
    report = _round_report(
        child_report,
        [("start-up", 1), ("site", 1), ("import", 1), ("run", 1)],
        None,
        stderr="",
        label="python -m lazycli",
        exited=Exited(0, None, 10),
        metric="time",
        wall_ns=4,
    )
    assert report.pending_lazy == ("json",)  # decimal was loaded: not pending
    assert report.reified == (("fractions", "lazycli/__init__.py:4"),)
    assert report.reified_in_run == (("decimal", "lazycli/__init__.py:7"),)
    assert RoundReport.from_json(report.to_json()) == report


def test_first_use_reifications_get_one_line_apart_from_the_imports_own() -> None:
    lines = lazy_import_lines(
        ["json"],
        [("fractions", "lazycli/__init__.py:4")],
        "lazycli",
        in_run=[(f"m{index}", f"lazycli/run.py:{index}") for index in range(12)],
    )
    assert lines[:2] == [
        "lazycli: lazy imports pending (not executed, not counted): json",
        "lazycli: lazycli/__init__.py:4 reified lazy import fractions during the import",
    ]
    assert lines[2].startswith(
        "lazycli: first use reified lazy imports (run phase): m0 (lazycli/run.py:0), "
    )
    assert lines[2].endswith("m9 (lazycli/run.py:9) and 2 more")
    assert len(lines) == 3
    assert lazy_import_lines([], [], in_run=[]) == []


@needs_pep_810
@pytest.mark.slow
def test_a_module_run_reports_import_reifications_first_uses_and_pending_apart(
    make_tree: MakeTree,
) -> None:
    result = _measure(make_tree(PACKAGES), StartupCommand.parse("python -m lazycli", None))
    assert result.reified == (("fractions", "lazycli/__init__.py:4"),)
    assert result.reified_in_run == (("decimal", "lazycli/__init__.py:7"),)
    assert "json" in result.pending_lazy
    assert {"fractions", "decimal"} <= set(result.modules)
    assert "json" not in result.modules


@needs_pep_810
@pytest.mark.slow
def test_a_first_use_snippet_loads_the_deferred_module_in_its_run(make_tree: MakeTree) -> None:
    result = _measure(make_tree(PACKAGES), StartupCommand(code="import lazycli; lazycli.use()"))
    assert "decimal" in result.modules
    # A snippet has no import phase of its own: all of it is the run.
    assert ("decimal", "lazycli/__init__.py:7") in result.reified_in_run
    assert result.reified == ()
    assert "decimal" not in result.pending_lazy


@needs_pep_810
@pytest.mark.slow
def test_lazy_imports_all_defers_a_commands_unused_import_past_its_exit(
    make_tree: MakeTree,
) -> None:
    tree = make_tree(PACKAGES)
    # Under "all" the snippet's own import is lazy too: eagercli.VALUE reifies it.
    command = StartupCommand(code="import eagercli; eagercli.VALUE")
    normal = _measure(tree, command)
    every = _measure(tree, command, lazy_imports="all")
    assert "decimal" in normal.modules
    assert "decimal" not in every.modules
    assert "decimal" in every.pending_lazy
    assert "eagercli" in every.modules
