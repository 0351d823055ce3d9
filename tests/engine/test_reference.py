"""Calibrated budgets: the reference import, its ini line, and budget-scale auto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (
    DURATION,
    FAKE_ROUNDS_CONFTEST,
    fake_rounds,
    first_match,
    quick_ini,
    seconds,
    write_tree,
)
from pytest_importcache.engine.reference import (
    REFERENCE_PACKAGE,
    measure_reference,
    write_reference_package,
)
from pytest_importcache.model.calibration import Calibration


def test_the_calibration_line_round_trips() -> None:
    calibration = Calibration(cold=0.05231, warm=0.01612)
    assert calibration.to_text() == "cold=52.31ms warm=16.12ms"
    parsed = Calibration.parse(" cold=52.31ms  warm=16.12ms ")
    assert parsed.cold == pytest.approx(0.05231)
    assert parsed.warm == pytest.approx(0.01612)


@pytest.mark.parametrize("text", ["", "cold=1ms", "warm=1ms cold=1ms", "cold=fast warm=1ms"])
def test_a_bad_calibration_line_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"cold=|duration"):
        Calibration.parse(text)


def test_a_calibration_file_round_trips_and_leaves_nothing_aside(tmp_path: Path) -> None:
    saved = tmp_path / "calibration.json"
    Calibration(cold=0.06, warm=0.01).write(saved)
    assert Calibration.read(saved) == Calibration(cold=0.06, warm=0.01)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["calibration.json"]


def test_long_calibrations_read_back() -> None:
    calibration = Calibration(cold=12.5, warm=0.0001234)
    assert calibration.to_text() == "cold=12500ms warm=0.1234ms"
    assert Calibration.parse(calibration.to_text()) == calibration


def test_scales_are_this_machine_over_the_recorded_one() -> None:
    here = Calibration(cold=0.06, warm=0.01)
    assert here.scales(Calibration(cold=0.03, warm=0.02)) == {"cold": 2.0, "warm": 0.5}


def test_the_reference_package_is_written_once(tmp_path: Path) -> None:
    write_reference_package(tmp_path)
    files = sorted((tmp_path / REFERENCE_PACKAGE).iterdir())
    mtimes = [path.stat().st_mtime_ns for path in files]
    write_reference_package(tmp_path)
    assert [path.stat().st_mtime_ns for path in files] == mtimes
    assert len(files) == 13


@pytest.mark.slow
def test_measuring_the_reference_gives_cold_above_warm(tmp_path: Path) -> None:
    calibration = measure_reference(tmp_path, rounds=3)
    assert calibration.cold > calibration.warm > 0


@pytest.mark.slow
def test_calibrate_prints_the_ini_lines() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "calibrate", "--rounds", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = completed.stdout.splitlines()
    assert lines[-1] == "importcache_budget_scale = auto"
    key, _, value = lines[-2].partition(" = ")
    assert key == "importcache_calibration"
    parsed = Calibration.parse(value)
    assert parsed.cold > parsed.warm
    assert f'importcache_calibration = "{value}"' in lines  # the pyproject.toml form


INI = quick_ini()

SLEEPY_TEST = """\
import pytest

@pytest.mark.import_budget("sleepy", warm="100ms")
def test_sleepy():
    pass
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose module's rounds take 0.3 s (fixed rounds), with a 100ms warm budget.

    The reference import itself is measured for real.
    """
    write_tree(pytester.path, {"sleepy.py": ""})
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"sleepy": {"seconds": 0.3}})
    pytester.makepyfile(test_sleepy=SLEEPY_TEST)
    return pytester


@pytest.mark.slow
def test_auto_scales_budgets_up_on_a_slower_machine(project: pytest.Pytester) -> None:
    # Recorded on an imaginary machine 10x faster than any real one: budgets grow
    # by this machine's reference time over 1ms, far above the 3x the test needs.
    project.makeini(INI)
    project.runpytest().assert_outcomes(failed=1)
    project.makeini(
        INI + "importcache_calibration = cold=1ms warm=0.1ms\nimportcache_budget_scale = auto\n"
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    # Only the flavour a budget was given for is scaled, and said so.
    result.stdout.re_match_lines([r"time budgets scaled by the reference import: warm x\d+$"])


@pytest.mark.slow
def test_auto_scales_budgets_down_on_a_faster_machine(project: pytest.Pytester) -> None:
    project.makeini(
        INI + "importcache_calibration = cold=100s warm=100s\nimportcache_budget_scale = auto\n"
    )
    (project.path / "test_sleepy.py").write_text(SLEEPY_TEST.replace("100ms", "10s"))
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    overspent = rf"  min ({DURATION}) > budget ({DURATION}) \(budget scaled by (0\.0+\d+)\)"
    result.stdout.re_match_lines(
        [
            overspent,
            # What to write in the marker: the unscaled budget, far above 10s.
            r'  suggested budget: warm="\d{3,}s"',
        ]
    )
    shown_min, budget, scale = first_match(result.outlines, overspent).groups()
    assert seconds(shown_min) >= 0.3  # the module sleeps 0.3 s
    assert seconds(budget) == pytest.approx(10 * float(scale), rel=0.02)  # 10s, scaled down


def test_auto_without_a_calibration_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makeini(INI + "importcache_budget_scale = auto\n")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *'auto' needs importcache_calibration*calibrate*"])
