"""The pipeline from a marker to a stored figure: one measurement per import, outcomes travel."""

from __future__ import annotations

import json
import os

import pytest

from conftest import FAKE_ROUNDS_CONFTEST, fake_rounds, make_outcome, quick_ini, write_tree
from pytest_importcache.pytest.benchmark import CompareFailCheck
from pytest_importcache.pytest.storage import extra_info
from pytest_importcache.render.summary import scale_line


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose rounds are fixed (no interpreter): ``steady`` takes 20 ms."""
    write_tree(pytester.path, {"steady/__init__.py": "", "steady/extra.py": ""})
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"steady": {"seconds": 0.02, "modules": {"steady.extra": 0.01}}})
    pytester.makeini(quick_ini(3))
    return pytester


@pytest.mark.slow
def test_a_time_budget_and_a_count_budget_on_one_import_measure_it_once(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.import_budget("steady", warm="10s")
        @pytest.mark.import_budget("steady", max_modules=5, forbid=["numpy"])
        def test_steady():
            pass
        """
    )
    result = project.runpytest("--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    summary = [line for line in result.outlines if line.startswith("steady ")]
    assert len(summary) == 1, summary
    (entry,) = json.loads((project.path / "out.json").read_text())["benchmarks"]
    assert entry["stats"]["rounds"] == 3  # the timed rounds; the count budget reused them


def test_the_scale_line_comes_from_the_outcomes() -> None:
    warm = make_outcome(scale=1.5, budget=0.1)
    cold = make_outcome(flavour="cold", scale=2.0, budget=0.1)
    assert scale_line([warm]) == "time budgets scaled by the reference import: warm x1.5"
    assert scale_line([cold, warm]).endswith("cold x2, warm x1.5")
    assert scale_line([make_outcome(scale=1.5)]) == ""  # no time budget, nothing scaled


def test_extra_info_keeps_the_flavour_and_the_label_apart() -> None:
    info = extra_info(make_outcome(flavour="cold", closure=True))
    assert (info["flavour"], info["closure"], info["label"]) == ("cold", True, "closure-cold")


@pytest.mark.slow
def test_under_xdist_the_scale_line_shows_and_nothing_is_left_in_tmpdir(
    project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    pytest.importorskip("xdist")
    temp = tmp_path_factory.mktemp("run-temp")
    monkeypatch.setenv("TMPDIR", str(temp))
    project.makeini(
        quick_ini(3)
        + "importcache_calibration = cold=1ms warm=0.1ms\nimportcache_budget_scale = auto\n"
    )
    project.makepyfile(
        """
        import pytest

        @pytest.mark.import_budget("steady", warm="1s")
        def test_steady():
            pass
        """
    )
    # A subprocess: xdist workers are processes of their own.
    result = project.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"time budgets scaled by the reference import: warm x\d+"])
    # The per-user cache of copies remains; no run directory does.
    assert [path.name for path in temp.iterdir()] == [f"pytest-importcache-{os.getuid()}"]


def test_the_command_lines_fail_threshold_is_pytest_benchmarks_own() -> None:
    percent = CompareFailCheck("median:10%")
    assert (percent.stat, str(percent)) == ("median", "median:10%")
    assert percent.fails(0.100, 0.111)
    assert not percent.fails(0.100, 0.109)
    seconds = CompareFailCheck("min:0.005")
    assert seconds.fails(0.100, 0.106)
    assert not seconds.fails(0.100, 0.104)
    with pytest.raises(ValueError, match="'fast' is not a threshold"):
        CompareFailCheck("fast")
