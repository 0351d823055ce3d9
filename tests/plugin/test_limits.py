"""allow, max_memory and lazy_imports on the markers, through real pytest sessions."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from conftest import FAKE_ROUNDS_CONFTEST, fake_rounds, quick_ini, run_tests, write_tree
from pytest_importcache.model.budget import ImportBudget, StartupBudget
from pytest_importcache.pytest.markers import MeasurementKey, measurement_keys

PACKAGES = {
    "lightpkg/__init__.py": "from . import helper, net\n",
    "lightpkg/helper.py": "import decimal\n",
    "lightpkg/net.py": "import thirdparty.adapters\n",
    "thirdparty/__init__.py": "",
    "thirdparty/adapters.py": "",
    # 200 MB held at import: far above a 60MB budget, far below 1GB, on any machine.
    "hungry.py": "BLOCK = bytearray(200_000_000)\n",
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project with synthetic packages importable from its root."""
    write_tree(pytester.path, PACKAGES)
    pytester.makeini(quick_ini())
    return pytester


@pytest.mark.slow
def test_allow_fails_naming_each_module_outside_it_with_its_chain(
    project: pytest.Pytester,
) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("lightpkg", allow=["lightpkg", "lightpkg.*"])
        def test_only_itself_and_the_stdlib():
            pass

        @pytest.mark.import_budget("lightpkg", allow=["lightpkg", "lightpkg.*", "thirdparty*"])
        def test_thirdparty_allowed_too():
            pass
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "import budget exceeded: lightpkg loaded modules outside the standard library "
            "and allow=['lightpkg', 'lightpkg.*']:",
            # `import thirdparty.adapters` brought both: one chain, the other under it.
            "    thirdparty.adapters: lightpkg -> lightpkg.net -> thirdparty.adapters",
            "      and 1 more through it: thirdparty",
        ]
    )
    # decimal is the standard library's: never named.
    assert "    decimal:" not in result.stdout.str()


@pytest.mark.slow
def test_max_memory_fails_beside_a_bare_interpreter_and_peaks_are_stored(
    project: pytest.Pytester,
) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("hungry", max_memory="60MB")
        def test_hungry_is_small():
            pass

        @pytest.mark.import_budget("hungry", warm="10s", max_memory="1GB")
        def test_hungry_fits():
            pass
        """,
        "--benchmark-json=out.json",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines(
        [
            r"import budget exceeded: hungry \(warm\): peak memory 2\d\d(\.\d)?MB > "
            r"max_memory=60MB",
            r"  a bare interpreter peaks at \d+(\.\d+)?MB: this added 2\d\d(\.\d)?MB",
        ]
    )
    result.stdout.re_match_lines(
        [
            r"peak memory, highest round \(a bare interpreter: \d+(\.\d+)?MB\):",
            r"  hungry \(warm\) 2\d\dMB \(\+\d+(\.\d+)?MB\)",
        ]
    )
    benchmarks = json.loads((project.path / "out.json").read_text())["benchmarks"]
    for entry in benchmarks:
        info = entry["extra_info"]
        assert 200_000_000 < info["peak_memory"] < 400_000_000
        assert 0 < info["bare_peak_memory"] < 100_000_000


def test_max_memory_of_a_count_takes_a_timed_warm_round() -> None:
    counted = ImportBudget("mylib", warm=45e6, metric="instructions", max_memory=60_000_000)
    keys = measurement_keys(counted)
    assert keys["warm"] == MeasurementKey("mylib", "warm", False, "instructions")
    assert keys["max_memory"] == MeasurementKey("mylib", "warm", False, "time")
    timed = ImportBudget("mylib", cold=0.2, max_memory=60_000_000)
    assert measurement_keys(timed)["max_memory"] == measurement_keys(timed)["cold"]


def test_lazy_modes_and_commands_are_measured_apart() -> None:
    plain = measurement_keys(ImportBudget("mylib", warm=0.1))["warm"]
    lazy = measurement_keys(ImportBudget("mylib", warm=0.1, lazy_imports="all"))["warm"]
    startup = StartupBudget.from_marker(("mycli --help",), {"warm": "1s"})
    command = measurement_keys(startup)["warm"]
    assert len({plain, lazy, command}) == 3
    assert (lazy.lazy_imports, command.command, command.exit_code) == (
        "all",
        startup.command,
        0,
    )


@pytest.mark.slow
@pytest.mark.skipif(sys.version_info < (3, 15), reason="PEP 810 lazy imports need CPython 3.15+")
def test_a_lazy_mode_gets_its_own_benchmark_name(pytester: pytest.Pytester) -> None:
    write_tree(pytester.path, {"sleepy.py": ""})
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"sleepy": {"seconds": 0.01}})
    pytester.makeini(quick_ini())
    result = run_tests(
        pytester,
        """
        import pytest

        @pytest.mark.import_budget("sleepy", warm="1s")
        @pytest.mark.import_budget("sleepy", warm="1s", lazy_imports="all")
        def test_both_modes():
            pass
        """,
        "--benchmark-json=out.json",
    )
    result.assert_outcomes(passed=1)
    names = sorted(
        entry["name"]
        for entry in json.loads(Path(pytester.path, "out.json").read_text())["benchmarks"]
    )
    assert names == ["test_both_modes[sleepy-warm-lazy-all]", "test_both_modes[sleepy-warm]"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_max_memory_in_a_counted_run_is_judged_on_a_timed_round(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("hungry", warm="5G", max_memory="60MB")
        def test_hungry_counted():
            pass
        """,
        "--importcache-metric=instructions",
    )
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [
            r"import budget exceeded: hungry \(warm\): peak memory 2\d\d(\.\d)?MB > "
            r"max_memory=60MB",
            r"  1 round: peak 2\d\d(\.\d)?MB",
        ]
    )
    # The count is judged and passes; the memory round is a timed one, not a count under valgrind.
    result.stdout.re_match_lines([r"hungry +warm \(instr\) .* PASS", r"hungry +warm +- .* FAIL"])
