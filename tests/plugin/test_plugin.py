"""The pytest surface, through pytester: marker, fixtures, options, reports, xdist."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from conftest import (
    DURATION,
    FAKE_ROUNDS_CONFTEST,
    bytecode_files,
    fake_rounds,
    first_match,
    quick_ini,
    run_tests,
    seconds,
    write_tree,
)

PACKAGES = {
    "lightpkg/__init__.py": "from . import helper\n",
    "lightpkg/helper.py": "import decimal\n",
    # Far beyond a 30ms budget and far within a 10s one, on any machine. Its
    # import loads no module but itself (`time` is loaded at start-up).
    "sleepy.py": "import time\ntime.sleep(0.15)\n",
    "broken.py": "raise RuntimeError('configuration file missing')\n",
}

INI = quick_ini()


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project with synthetic packages importable from its root."""
    write_tree(pytester.path, PACKAGES)
    pytester.makeini(INI)
    return pytester


@pytest.fixture
def fake_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose rounds are fixed (no interpreter): ``sleepy`` "takes" 300 ms."""
    write_tree(pytester.path, {"sleepy.py": ""})
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"sleepy": {"seconds": 0.3}})
    pytester.makeini(INI)
    return pytester


@pytest.mark.slow
def test_a_budget_kept_passes_and_shows_in_the_summary(fake_project: pytest.Pytester) -> None:
    result = run_tests(
        fake_project,
        """
        import pytest

        @pytest.mark.import_budget("sleepy", cold="10s", warm="10s")
        def test_sleepy_is_within_budget():
            pass
        """,
    )
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines(
        [
            r"-+ import budgets -+",
            r"module +flavour +min +budget +headroom +modules verdict",
            r"sleepy +cold +300ms +10s +\+97% +1 PASS",
            r"sleepy +warm +300ms +10s +\+97% +1 PASS",
        ]
    )
    start = next(index for index, line in enumerate(result.outlines) if "import budgets" in line)
    section = result.outlines[start : result.outlines.index("", start)]
    # The table, then each measurement's peak memory (fed rounds: no bare interpreter beside).
    assert section[4:] == [
        "peak memory, highest round:",
        "  sleepy (cold) 20MB",
        "  sleepy (warm) 20MB",
    ]
    assert all(len(line) <= 80 for line in section)


@pytest.mark.slow
def test_an_overspent_budget_fails_with_one_readable_block(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("sleepy", warm="30ms")
        def test_sleepy_is_fast():
            raise AssertionError("the body must not matter")
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [
            r"import budget exceeded: sleepy \(warm\)",
            rf"  min {DURATION} > budget 30ms",
            rf"  2 rounds: min {DURATION}, median {DURATION}, max {DURATION}",
            r"  slowest modules \(self time, cumulative time\):",
            rf" +{DURATION} +{DURATION}  sleepy",
            rf'  suggested budget: warm="{DURATION}"',
        ]
    )
    result.stdout.re_match_lines([rf"sleepy +warm +{DURATION}~? +30ms +-\d+% +1 FAIL"])
    assert seconds(first_match(result.outlines, rf"  min ({DURATION}) >")[1]) >= 0.15  # its sleep
    assert "Traceback" not in result.stdout.str()
    assert "the body must not matter" not in result.stdout.str()


@pytest.mark.slow
def test_the_budget_scale_multiplies_time_budgets(fake_project: pytest.Pytester) -> None:
    source = """
        import pytest

        @pytest.mark.import_budget("sleepy", warm="100ms")
        def test_sleepy():
            pass
        """
    run_tests(fake_project, source).assert_outcomes(failed=1)
    scaled = run_tests(fake_project, source, "--importcache-budget-scale=50")
    scaled.assert_outcomes(passed=1)
    scaled.stdout.re_match_lines([r"sleepy +warm +300ms +5s +\+94% "])


@pytest.mark.slow
def test_forbidden_modules_fail_with_the_chain_that_loaded_them(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("lightpkg", forbid=["numpy", "deci*"])
        def test_lightpkg_stays_light():
            pass

        @pytest.mark.import_budget("lightpkg", forbid=["numpy", "pandas.*"])
        def test_lightpkg_has_no_numpy():
            pass
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "import budget exceeded: lightpkg loaded forbidden modules:",
            "    decimal: lightpkg -> lightpkg.helper -> decimal",
        ]
    )


@pytest.mark.slow
def test_max_modules_fails_with_the_heaviest_subtrees(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("lightpkg", max_modules=2)
        def test_few_modules():
            pass

        @pytest.mark.import_budget("lightpkg", max_modules=500)
        def test_not_too_many():
            pass
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines(
        [
            r"import budget exceeded: lightpkg loaded \d+ modules > max_modules=2",
            r"  heaviest subtrees \(modules each one pulled in\):",
            r" +\d+  lightpkg -> lightpkg.helper$",
        ]
    )


@pytest.mark.slow
def test_stacked_markers_measure_each_module(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("lightpkg", warm="10s")
        @pytest.mark.import_budget("sleepy", warm="10s", max_modules=5)
        def test_both():
            pass
        """,
    )
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"lightpkg +warm .* PASS", r"sleepy +warm .* PASS"])


MALFORMED = {
    "unknown_keyword": ('"lightpkg", colde="1s"', "unknown argument colde='1s'"),
    "bad_duration": ('"lightpkg", cold="fast"', "cold='fast' is not a duration"),
    "negative_budget": ('"lightpkg", warm=-1', "warm=-1 is not a positive duration"),
    "no_budget": ('"lightpkg"', "no budget given"),
    "module_not_a_string": ("42, warm='1s'", "module=42 is not a module name"),
    "no_module": ("warm='1s'", "the module to import is missing"),
    "bad_stat": ('"lightpkg", warm="1s", stat="p99"', "stat='p99' is not one of"),
    "zero_rounds": ('"lightpkg", warm="1s", rounds=0', "rounds=0 is not a whole number >= 1"),
}


def test_each_malformed_marker_fails_its_own_test_at_setup(project: pytest.Pytester) -> None:
    source = "import pytest\n\n"
    for name, (arguments, _) in MALFORMED.items():
        source += f"@pytest.mark.import_budget({arguments})\ndef test_{name}():\n    pass\n\n"
    source += "def test_the_session_goes_on():\n    pass\n"
    result = run_tests(project, source)
    result.assert_outcomes(passed=1, errors=len(MALFORMED))
    output = result.stdout.str()
    for name, (_, message) in MALFORMED.items():
        result.stdout.fnmatch_lines(
            [f"*_ ERROR at setup of test_{name} _*", f"import_budget*{message}*"]
        )
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output


def test_the_marker_is_listed_with_its_full_signature(project: pytest.Pytester) -> None:
    result = project.runpytest("--markers")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.import_budget(module, *, cold=None, warm=None, max_modules=None, "
            "forbid=(), stat=None, rounds=None, closure=False, metric=None, allow=(), "
            "max_memory=None, lazy_imports=None): fail the test when importing*",
            "@pytest.mark.startup_budget(command=None, *, code=None, cold=None, warm=None, "
            "max_modules=None, forbid=(), allow=(), max_memory=None, exit_code=0, stat=None, "
            "rounds=None, metric=None, lazy_imports=None): fail the test when running a command*",
        ]
    )


def test_a_missing_module_fails_the_test_with_one_message(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("absentpkg", warm="1s")
        def test_absent():
            pass
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["import_budget('absentpkg'): cannot find module 'absentpkg'*"])
    assert "Traceback" not in result.stdout.str()


def test_a_src_package_named_like_a_loaded_stdlib_module_fails_naming_both(
    pytester: pytest.Pytester,
) -> None:
    # `pythonpath = src` puts src/json first; pytest had imported the standard library's.
    write_tree(pytester.path, {"src/json/__init__.py": "import decimal\n"})
    pytester.makeini("[pytest]\npythonpath = src\nimportcache_rounds = 1\n")
    result = run_tests(
        pytester,
        """
        import pytest

        @pytest.mark.import_budget("json", warm="10s")
        def test_json():
            pass
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "import_budget('json'): 'json' is two modules here: this process imported the "
            f"standard library's *, but its path finds {pytester.path / 'src' / 'json'}*"
        ]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.slow
def test_an_import_that_raises_shows_the_childs_error(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("broken", warm="1s")
        def test_broken():
            pass
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "import_budget('broken'): importing 'broken' raised RuntimeError: "
            "configuration file missing (warm round 1 of 2)",
            "Traceback (most recent call last):",
            '*broken.py", line 1, in <module>',
        ]
    )


@pytest.mark.slow
def test_a_hung_import_is_killed_after_the_timeout(project: pytest.Pytester) -> None:
    write_tree(project.path, {"hangs.py": "import time\ntime.sleep(60)\n"})
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("hangs", warm="1s")
        def test_hangs():
            pass
        """,
        "--importcache-timeout=1",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["import_budget('hangs'): importing 'hangs' did not finish within 1 s*"]
    )


@pytest.mark.slow
def test_fixtures_measure_and_are_recorded(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        def test_cold_compiles(cold_import_env, warm_import_env):
            cold = cold_import_env.measure("lightpkg")
            warm = warm_import_env.measure("lightpkg", rounds=3)
            assert (cold.rounds, warm.rounds) == (2, 3)
            assert "lightpkg.helper" in warm.modules
            assert cold_import_env.path.is_dir()
            assert cold.file.startswith(str(cold_import_env.path))

        def test_factory(import_env_factory):
            env = import_env_factory("cold", closure=True, optimize=1)
            assert env.measure("lightpkg").label == "closure-cold"
        """,
    )
    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines(
        [
            r"lightpkg +cold +\S+ +- +- +\d+ -",
            r"lightpkg +warm +\S+ +- +- +\d+ -",
            r"lightpkg +closure-cold +\S+ +- +- +\d+ -",
        ]
    )


@pytest.mark.slow
def test_a_failing_fixture_measurement_shows_the_message_not_the_engine(
    project: pytest.Pytester,
) -> None:
    result = run_tests(
        project,
        """
        def test_broken(warm_import_env):
            warm_import_env.measure("broken")
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E * pytest_importcache.model.errors.ImportRaisedError: importing 'broken' raised "
            "RuntimeError: configuration file missing (warm round 1 of 2)",
            "E * Traceback (most recent call last):",
            "E *broken.py*, line 1, in <module>",
        ]
    )
    assert "runner.py" not in result.stdout.str()
    assert "environment.py" not in result.stdout.str()


@pytest.mark.slow
def test_the_html_report_holds_every_import_tree(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("lightpkg", warm="10s")
        def test_light():
            pass

        def test_fixture(cold_import_env):
            cold_import_env.measure("sleepy")
        """,
        "--importcache-report=reports/imports.html",
    )
    result.assert_outcomes(passed=2)
    report = project.path / "reports" / "imports.html"
    result.stdout.fnmatch_lines([f"import trees written to {report}"])
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<h2>test_imports.py::test_light: lightpkg</h2>" in page
    assert "<h2>test_imports.py::test_fixture: sleepy</h2>" in page
    assert '<figure class="icicle" data-label="warm">' in page
    assert '<figure class="icicle" data-label="cold">' in page
    # Boxes depth first: the helper's box before that of decimal, which it imports.
    assert page.index('data-name="lightpkg.helper"') < page.index('data-name="decimal"')
    assert '<span class="verdict pass">PASS</span>' in page


@pytest.mark.slow
def test_raw_dir_keeps_every_rounds_importtime_output(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        def test_fixture(warm_import_env):
            warm_import_env.measure("lightpkg")
        """,
        "--importcache-raw-dir=raw",
        "--importcache-warmup=1",
    )
    result.assert_outcomes(passed=1)
    (test_dir,) = (project.path / "raw").iterdir()
    assert test_dir.name.startswith("test_imports.py_test_fixture-")
    names = sorted(path.name for path in test_dir.iterdir())
    assert names == [
        "lightpkg-warm-round-01.txt",
        "lightpkg-warm-round-02.txt",
        "lightpkg-warm-warmup-1.txt",
    ]
    raw = (test_dir / "lightpkg-warm-round-01.txt").read_text()
    assert "import time: self [us] | cumulative | imported package" in raw
    assert any(line.endswith("| lightpkg") for line in raw.splitlines())


@pytest.mark.slow
def test_disable_skips_budgets_but_not_fixtures(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("sleepy", warm="1ms")
        def test_budget():
            pass

        def test_fixture(warm_import_env):
            assert warm_import_env.measure("lightpkg").rounds == 2

        @pytest.mark.import_budget("sleepy", warm="fast")
        def test_malformed():
            pass
        """,
        "--importcache-disable",
        "-rs",
    )
    # A malformed marker is still the user's mistake to hear about.
    result.assert_outcomes(passed=1, skipped=1, errors=1)
    # The skip points at the test, not at the plugin that skipped it.
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] test_imports.py:3: import measurements are disabled*"]
    )
    assert "enforcer.py" not in result.stdout.str()


@pytest.mark.slow
def test_the_marker_wins_over_the_command_line(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("lightpkg", warm="1us", rounds=3, stat="max")
        def test_marker_settings():
            pass
        """,
        "--importcache-rounds=2",
        "--importcache-stat=min",
    )
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines([r"  max \S+ > budget 1us", r"  3 rounds: "])


@pytest.mark.slow
def test_a_run_inside_an_xdist_worker_still_reports(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pytest run started from an xdist worker inherits PYTEST_XDIST_WORKER
    # but is no worker itself.
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    result = run_tests(
        project, 'def test_it(warm_import_env):\n    warm_import_env.measure("lightpkg")\n'
    )
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"lightpkg +warm "])


@pytest.mark.slow
def test_measurements_work_without_the_tmp_path_plugin(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("lightpkg", warm="10s")
        def test_budget():
            pass

        def test_plain():
            pass
        """,
        "-p",
        "no:tmpdir",
    )
    result.assert_outcomes(passed=2)


@pytest.mark.slow
def test_the_ini_file_sets_options_and_the_command_line_wins(project: pytest.Pytester) -> None:
    project.makeini(INI.replace("rounds = 2", "rounds = 3") + "importcache_stat = max\n")
    source = """
        import pytest

        @pytest.mark.import_budget("lightpkg", warm="10s")
        def test_rounds(warm_import_env):
            assert warm_import_env.rounds == 3
        """
    from_ini = run_tests(project, source)
    from_ini.assert_outcomes(passed=1)  # the body saw the ini's 3 rounds
    from_ini.stdout.re_match_lines([r"module +flavour +max +budget"])
    result = run_tests(project, source.replace("== 3", "== 4"), "--importcache-rounds=4")
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"module +flavour +max +budget"])  # the ini's stat stays


@pytest.mark.parametrize(
    ("ini_line", "args", "message"),
    [
        (
            "",
            ["--importcache-rounds=abc"],
            "--importcache-rounds on the command line: expected a whole number >= 1, got 'abc'",
        ),
        (
            "importcache_stat = p99",
            [],
            "importcache_stat in tox.ini: expected one of min, max, mean, median, got 'p99'",
        ),
        (
            "",
            ["--importcache-budget-scale=0"],
            "--importcache-budget-scale on the command line: "
            "expected a positive number or 'auto', got '0'",
        ),
        (
            "importcache_timeout = soon",
            [],
            "importcache_timeout in tox.ini: 'soon' is not a duration*",
        ),
        (
            "",
            ["--importcache-report=."],
            "--importcache-report on the command line: '.' is a directory*",
        ),
        (
            "",
            ["--importcache-raw-dir=tox.ini"],
            "--importcache-raw-dir on the command line: 'tox.ini' is a file*",
        ),
    ],
)
def test_a_bad_setting_is_a_usage_error_naming_it_and_its_source(
    project: pytest.Pytester, ini_line: str, args: list[str], message: str
) -> None:
    project.makeini(INI + ini_line + "\n")
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


@pytest.mark.slow
def test_the_source_tree_is_never_written(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    before = {path: path.stat().st_mtime_ns for path in project.path.rglob("*") if path.is_file()}
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("lightpkg", cold="10s", warm="10s", max_modules=500)
        def test_light():
            pass
        """,
    )
    result.assert_outcomes(passed=1)
    assert bytecode_files(project.path / "lightpkg") == []
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in before.items())


STAMPING_MODULE = """\
import os, time
start = time.time()
time.sleep(0.2)
with open(os.environ["IMPORTCACHE_TEST_STAMPS"], "a") as stamps:
    stamps.write(f"{start} {time.time()}\\n")
"""


@pytest.mark.slow
def test_parallel_workers_never_measure_at_the_same_time(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    stamps = project.path / "stamps.txt"
    monkeypatch.setenv("IMPORTCACHE_TEST_STAMPS", str(stamps))
    # A module per test: each measurement uses a copy of its own, so the lock a
    # copy holds while measured cannot keep them apart; only the run's lock can.
    write_tree(project.path, {f"stamping{index}.py": STAMPING_MODULE for index in range(4)})
    tests = "import pytest\n\n" + "".join(
        f'@pytest.mark.import_budget("stamping{index}", warm="10s")\n'
        f"def test_{index}():\n    pass\n\n"
        for index in range(4)
    )
    project.makepyfile(test_imports=tests)
    # A subprocess, so xdist's workers start from a clean interpreter.
    result = project.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=4)
    assert sum(1 for line in result.outlines if "stamping" in line and "PASS" in line) == 4
    intervals = sorted(tuple(map(float, line.split())) for line in stamps.read_text().splitlines())
    assert len(intervals) == 4 * 2
    for (_, end), (next_start, _) in itertools.pairwise(intervals):
        assert end <= next_start


@pytest.mark.slow
def test_without_the_tmpdir_plugin_a_run_leaves_no_directory_behind(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    pytester.makeini(quick_ini())
    pytester.makepyfile(
        tiny="VALUE = 1\n",
        test_tiny="""
        import pytest

        @pytest.mark.import_budget("tiny", warm="10s")
        def test_tiny():
            pass
        """,
    )
    # A subprocess: TMPDIR is read once per process, and -p no:tmpdir must hold at start.
    result = pytester.runpytest_subprocess("-p", "no:tmpdir", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    # Only the bounded, per-user cache of copies remains.
    assert [path.name for path in temp.iterdir()] == [f"pytest-importcache-{os.getuid()}"]


@pytest.mark.slow
def test_what_was_measured_before_a_failed_measurement_is_still_reported(
    fake_project: pytest.Pytester,
) -> None:
    result = run_tests(
        fake_project,
        """
        import pytest

        @pytest.mark.import_budget("sleepy", warm="10s")
        @pytest.mark.import_budget("nowhere_to_be_found", warm="10s")
        def test_two_modules():
            pass
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*import_budget('nowhere_to_be_found'): *"])
    # sleepy was measured first: its rounds are reported, not judged.
    result.stdout.re_match_lines([r"-+ import budgets -+", r".*", r"sleepy +warm +300ms +- .*"])
