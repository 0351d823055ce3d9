"""The run directory: made when a process of the run first needs it, never for a session without.

Each run is a subprocess with its own ``TMPDIR``, where run directories are
made, so a test body can look for them while the session runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FAKE_ROUNDS_CONFTEST, fake_rounds, quick_ini

RUN_DIRS = """
import glob
import os
import tempfile

import pytest


def run_dirs():
    return glob.glob(os.path.join(tempfile.gettempdir(), "pytest-importcache-run-*"))

"""

# Four tests, so that both workers of -n 2 run some.
WITHOUT_BUDGETS = RUN_DIRS + "".join(
    f"\ndef test_{index}():\n    assert run_dirs() == []\n\n" for index in range(4)
)

WITH_BUDGETS = RUN_DIRS + "".join(
    f'\n@pytest.mark.import_budget("tiny", warm="10s")\n'
    f"def test_{index}():\n    assert len(run_dirs()) == 1\n\n"
    for index in range(4)
)

XDIST = [pytest.param((), id="one-process"), pytest.param(("-n", "2"), id="xdist")]


@pytest.fixture
def private_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``TMPDIR`` of the test's own, where the runs make their run directories."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    return temp


@pytest.mark.slow
@pytest.mark.parametrize("xdist", XDIST)
def test_a_session_without_budgets_makes_no_run_directory(
    pytester: pytest.Pytester, private_temp: Path, xdist: tuple[str, ...]
) -> None:
    if xdist:
        pytest.importorskip("xdist")
    pytester.makeini(quick_ini())
    pytester.makepyfile(test_plain=WITHOUT_BUDGETS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", *xdist)
    result.assert_outcomes(passed=4)
    assert list(private_temp.glob("pytest-importcache-run-*")) == []


@pytest.mark.slow
@pytest.mark.parametrize("xdist", XDIST)
def test_budgets_share_one_run_directory_made_on_demand_and_removed(
    pytester: pytest.Pytester, private_temp: Path, xdist: tuple[str, ...]
) -> None:
    if xdist:
        pytest.importorskip("xdist")
    pytester.makeini(quick_ini())
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    pytester.makepyfile(tiny="")
    fake_rounds(pytester.path, {"tiny": {"seconds": 0.3}})
    pytester.makepyfile(test_budgeted=WITH_BUDGETS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", *xdist)
    result.assert_outcomes(passed=4)
    # The conftest's rounds (300 ms) were measured, in the workers too.
    result.stdout.re_match_lines([r"tiny +warm +300ms +10s"])
    assert list(private_temp.glob("pytest-importcache-run-*")) == []


@pytest.mark.slow
def test_a_session_without_budgets_loads_no_engine(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            engine = sorted(m for m in sys.modules if m.startswith("pytest_importcache.engine"))
            session.config.rootpath.joinpath("engine.txt").write_text(" ".join(engine))
        """
    )
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert (pytester.path / "engine.txt").read_text() == ""
