"""Peak memory: every timed round's peak resident set, and the bare interpreter's beside it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import MakeTree
from pytest_importcache import ImportEnv
from pytest_importcache.engine.memory import bare_interpreter_peak
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.result import build_result

EnvFor = Callable[..., ImportEnv]
MB = 1 << 20


@pytest.mark.slow
def test_an_import_that_allocates_100_mb_peaks_far_above_the_bare_interpreter(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    # bytes * n writes every page, so the resident set really grows (a zeroed
    # bytearray might not touch its pages).
    tree = make_tree({"hungry.py": "DATA = b'x' * (100 * 1024 * 1024)\n", "light.py": "X = 1\n"})
    env = env_for(tree, "warm", rounds=2)
    hungry = env.measure("hungry")
    light = env.measure("light")
    bare = bare_interpreter_peak()
    assert len(hungry.peak_memory) == hungry.rounds == 2
    assert hungry.peak_memory_max is not None
    assert light.peak_memory_max is not None
    assert min(hungry.peak_memory) - bare > 80 * MB
    assert abs(light.peak_memory_max - bare) < 10 * MB
    assert bare_interpreter_peak() == bare  # cached


def _report(peak: int | None, instructions: int | None = None) -> RoundReport:
    return RoundReport(
        1000, 1000, "/x/m.py", ("m",), "3.11", (), instructions=instructions, peak_memory=peak
    )


def test_a_result_keeps_each_counted_rounds_peak_and_its_maximum() -> None:
    result = build_result("m", "warm", False, "python", [_report(5 * MB), _report(7 * MB)])
    assert result.peak_memory == (5 * MB, 7 * MB)
    assert result.peak_memory_max == 7 * MB


def test_instruction_rounds_have_no_peak_memory_valgrind_would_be_measured() -> None:
    reports = [_report(500 * MB, instructions=1_000_000)]
    result = build_result("m", "warm", False, "python", reports, metric="instructions")
    assert result.peak_memory == ()
    assert result.peak_memory_max is None


def test_a_round_report_keeps_its_peak_memory_through_json() -> None:
    report = _report(12 * MB)
    assert RoundReport.from_json(report.to_json()) == report
    older = report.to_json()
    del older["peak_memory"], older["phases"], older["command"]
    assert RoundReport.from_json(older).peak_memory is None
