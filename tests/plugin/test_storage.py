"""Import measurements in pytest-benchmark storage: save, reload, compare, fail, xdist.

The projects here take their rounds from fixed fake figures (``FAKE_ROUNDS_CONFTEST``):
no interpreter starts, and every round of ``steady`` takes exactly 200 ms, so the
reports are checked against exact numbers. pytest-benchmark itself is real: its
storage, its compare and its command line. One test measures a real interpreter.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from conftest import FAKE_ROUNDS_CONFTEST, fake_rounds, quick_ini, write_tree
from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.model.records import TreeRow
from pytest_importcache.pytest.storage import benchmark_names
from pytest_importcache.render.changes import self_time_changes
from pytest_importcache.render.runs import run_outcomes

# Hypothesis' plugin is of no use to these projects; left on, it would be imported
# (and its asserts rewritten) afresh in every run of theirs, a second each.
INI = quick_ini(3)

BUDGET_TEST = """\
import pytest

@pytest.mark.import_budget("steady", warm="10s")
def test_steady():
    pass

def test_fixture(cold_import_env):
    cold_import_env.measure("steady")
"""

# Every round of the baseline takes 200 ms; the slowed version also imports a new
# submodule taking 400 ms of its own: far beyond a 10% threshold.
STEADY: dict[str, dict[str, object]] = {"steady": {"seconds": 0.2}}
SLOWED: dict[str, dict[str, object]] = {
    "steady": {"seconds": 0.2, "modules": {"steady.slowpart": 0.4}}
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with one budgeted module and one fixture measurement, on fake rounds."""
    write_tree(pytester.path, {"steady/__init__.py": "", "steady/slowpart.py": ""})
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, STEADY)
    pytester.makeini(INI)
    pytester.makepyfile(test_imports=BUDGET_TEST)
    return pytester


def saved_runs(project: pytest.Pytester) -> list[Path]:
    """The run files pytest-benchmark saved, oldest first."""
    return sorted((project.path / ".benchmarks").glob("*/*.json"))


def entries(path: Path) -> dict[str, dict[str, Any]]:
    """A saved run's benchmark entries by full name."""
    return {entry["fullname"]: entry for entry in json.loads(path.read_text())["benchmarks"]}


@pytest.mark.slow
def test_autosave_writes_an_entry_per_measurement(project: pytest.Pytester) -> None:
    project.runpytest("--benchmark-autosave").assert_outcomes(passed=2)
    (run,) = saved_runs(project)
    assert run.name.startswith("0001_")
    saved = entries(run)
    assert sorted(saved) == [
        "test_imports.py::test_fixture[steady-cold]",
        "test_imports.py::test_steady[steady-warm]",
    ]
    warm = saved["test_imports.py::test_steady[steady-warm]"]
    assert warm["name"] == "test_steady[steady-warm]"
    assert warm["group"] == "import steady"
    for field in (
        "min",
        "max",
        "mean",
        "stddev",
        "median",
        "iqr",
        "q1",
        "q3",
        "ld15iqr",
        "hd15iqr",
        "outliers",
        "iqr_outliers",
        "stddev_outliers",
        "rounds",
        "iterations",
        "ops",
        "total",
    ):
        assert field in warm["stats"], field
    stats = warm["stats"]
    assert stats["rounds"] == 3
    assert (stats["min"], stats["median"], stats["max"]) == pytest.approx((0.2, 0.2, 0.2))
    assert stats["stddev"] == 0
    info = warm["extra_info"]
    assert (info["module"], info["flavour"], info["closure"], info["stat"]) == (
        "steady",
        "warm",
        False,
        "min",
    )
    assert info["budget"] == 10.0
    assert info["modules_loaded"] == 1
    assert info["slowest_modules"] == [
        {"module": "steady", "self": pytest.approx(0.2), "cumulative": pytest.approx(0.2)}
    ]
    assert info["module_self_seconds"] == {"steady": pytest.approx(0.2)}
    assert info["python_version"] == "3.11.7"  # the fake rounds' interpreter
    # The whole tree, to rebuild reports later: (name, self, cumulative, importer).
    assert info["import_tree"] == [["steady", pytest.approx(0.2), pytest.approx(0.2), None]]
    assert info["passed"] is True
    assert info["values"] == pytest.approx([0.2, 0.2, 0.2])
    assert saved["test_imports.py::test_fixture[steady-cold]"]["extra_info"]["budget"] is None


@pytest.mark.slow
def test_a_real_import_is_saved_as_measured(pytester: pytest.Pytester) -> None:
    # End to end: real interpreters time an import that sleeps, and the rounds land
    # in pytest-benchmark's storage as measured.
    write_tree(pytester.path, {"steady/__init__.py": "import time\ntime.sleep(0.05)\n"})
    pytester.makeini(INI)
    pytester.makepyfile(test_imports=BUDGET_TEST.partition("def test_fixture")[0])
    pytester.runpytest("--benchmark-autosave").assert_outcomes(passed=1)
    (run,) = saved_runs(pytester)
    (warm,) = entries(run).values()
    assert warm["fullname"] == "test_imports.py::test_steady[steady-warm]"
    assert warm["stats"]["rounds"] == 3
    assert warm["stats"]["min"] >= 0.05  # every round slept
    info = warm["extra_info"]
    assert info["python_version"] == sys.version.split()[0]
    assert info["modules_loaded"] == 1
    assert info["slowest_modules"][0]["module"] == "steady"
    assert info["module_self_seconds"]["steady"] >= 0.05


@pytest.mark.slow
def test_save_and_json_write_the_same_entries(project: pytest.Pytester) -> None:
    project.runpytest("--benchmark-save=named", "--benchmark-json=out.json").assert_outcomes(
        passed=2
    )
    (run,) = saved_runs(project)
    assert run.name == "0001_named.json"
    from_json = entries(project.path / "out.json")
    assert sorted(from_json) == sorted(entries(run))
    assert all(len(entry["stats"]["data"]) == 3 for entry in from_json.values())


@pytest.mark.slow
def test_compare_fail_catches_a_slower_import_and_names_what_changed(
    project: pytest.Pytester,
) -> None:
    project.runpytest("--benchmark-autosave").assert_outcomes(passed=2)
    unchanged = project.runpytest(
        "--benchmark-autosave", "--benchmark-compare", "--benchmark-compare-fail=median:10%"
    )
    assert unchanged.ret == pytest.ExitCode.OK
    assert "Performance has regressed" not in unchanged.stdout.str()

    fake_rounds(project.path, SLOWED)
    slowed = project.runpytest("--benchmark-compare=0002", "--benchmark-compare-fail=median:10%")
    assert slowed.ret != pytest.ExitCode.OK
    slowed.stdout.re_match_lines(
        [
            r"-+ slower imports than 0002_.*\.json -+",
            # 200 ms before; 200 ms + the new module's 400 ms after.
            r"test_steady\[steady-warm\]: median 200ms -> 600ms \(\+200%\)$",
            # The edge that caused it first, then the modules whose self time changed.
            r"    steady -> steady\.slowpart \(new\): \+400ms cumulative$",
            r"    \+400ms steady\.slowpart \(new\)$",
        ]
    )
    output = slowed.stdout.str() + slowed.stderr.str()
    assert "Performance has regressed" in output
    assert "test_steady[steady-warm]" in output


@pytest.mark.slow
def test_pytest_benchmarks_own_cli_reads_the_runs(project: pytest.Pytester) -> None:
    project.runpytest("--benchmark-autosave").assert_outcomes(passed=2)
    project.runpytest("--benchmark-autosave").assert_outcomes(passed=2)
    cli = [sys.executable, "-m", "pytest_benchmark"]
    listed = subprocess.run(
        [*cli, "list"], cwd=project.path, capture_output=True, text=True, check=True
    )
    assert len(listed.stdout.strip().splitlines()) == 2
    compared = subprocess.run(
        [*cli, "compare", "0001", "0002", "--histogram", "hist"],
        cwd=project.path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "test_steady[steady-warm]" in compared.stdout
    assert "import steady" in compared.stdout
    assert list(project.path.glob("hist*.svg"))


@pytest.mark.slow
def test_under_xdist_the_controller_saves_each_measurement_once(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_more=textwrap.dedent(
            """
            import pytest

            @pytest.mark.import_budget("steady", cold="10s")
            def test_other_worker():
                pass
            """
        )
    )
    # A subprocess, so xdist's workers start from a clean interpreter.
    result = project.runpytest_subprocess(
        "-n", "2", "--benchmark-json=out.json", "--benchmark-autosave"
    )
    result.assert_outcomes(passed=3)
    from_json = entries(project.path / "out.json")
    assert sorted(from_json) == [
        "test_imports.py::test_fixture[steady-cold]",
        "test_imports.py::test_steady[steady-warm]",
        "test_more.py::test_other_worker[steady-cold]",
    ]
    assert len(json.loads((project.path / "out.json").read_text())["benchmarks"]) == 3
    # The workers measured with the fake rounds too.
    assert all(entry["stats"]["min"] == pytest.approx(0.2) for entry in from_json.values())
    assert len(saved_runs(project)) == 1


# Forces the race between two runs saving at once (added to the fake rounds'
# conftest). Both runs wait for each other just before saving (outside any lock a
# save takes), then each picks its NNNN number and sleeps before writing: without
# a lock around the save, both pick 0001.
RACING_CONFTEST = """\
import os
import time
from pathlib import Path

import pytest
from pytest_benchmark.storage.file import FileStorage

ARRIVALS = Path(__file__).parent / "arrivals"

picked = FileStorage._next_num


def next_num_then_wait(self):
    number = picked.fget(self)
    time.sleep(0.5)
    return number


FileStorage._next_num = property(next_num_then_wait)


@pytest.hookimpl(trylast=True)
def pytest_benchmark_update_json(config, benchmarks, output_json):
    ARRIVALS.mkdir(exist_ok=True)
    (ARRIVALS / str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(list(ARRIVALS.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
"""


@pytest.mark.slow
def test_two_runs_saving_at_once_both_land(project: pytest.Pytester) -> None:
    project.makeconftest(FAKE_ROUNDS_CONFTEST + RACING_CONFTEST)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--benchmark-autosave"]
    runs = [
        subprocess.Popen(
            command, cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate()[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(outputs)
    assert len(list((project.path / "arrivals").iterdir())) == 2  # both reached the save
    first, second = saved_runs(project)
    assert (first.name[:5], second.name[:5]) == ("0001_", "0002_")
    assert len(entries(first)) == len(entries(second)) == 2


@pytest.mark.slow
def test_benchmark_disable_keeps_budgets_but_saves_nothing(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_overspent=textwrap.dedent(
            """
            import pytest

            @pytest.mark.import_budget("steady", warm="1ms")
            def test_too_slow():
                pass
            """
        )
    )
    result = project.runpytest("--benchmark-disable", "--benchmark-autosave")
    result.assert_outcomes(passed=2, failed=1)
    assert saved_runs(project) == []


@pytest.mark.slow
def test_benchmark_skip_and_only_treat_import_tests_as_benchmarks(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process under an xdist worker, pytest-benchmark would take the inner run
    # for a worker too (by this variable) and switch itself off.
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    project.makepyfile(test_plain="def test_plain():\n    pass\n")
    project.runpytest("--benchmark-skip").assert_outcomes(passed=1, skipped=2)
    project.runpytest("--benchmark-only").assert_outcomes(passed=2, skipped=1)


@pytest.mark.slow
def test_ordinary_benchmarks_keep_working_in_the_same_run(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # as above
    project.makepyfile(test_plain="def test_sum(benchmark):\n    benchmark(sum, range(100))\n")
    # The sum is timed for real, for a short while.
    project.runpytest("--benchmark-json=out.json", "--benchmark-max-time=0.01").assert_outcomes(
        passed=3
    )
    names = sorted(
        entry["name"] for entry in json.loads((project.path / "out.json").read_text())["benchmarks"]
    )
    assert names == ["test_fixture[steady-cold]", "test_steady[steady-warm]", "test_sum"]


def record(nodeid: str, module: str, flavour: str = "warm") -> MeasurementOutcome:
    """A minimal record."""
    return MeasurementOutcome(
        nodeid=nodeid,
        test_name=nodeid.rpartition("::")[2],
        module=module,
        flavour=flavour,
        closure=False,
        stat="min",
        statistic=0.1,
        budget=None,
        passed=None,
        values=(0.1,),
        python_version="3.11.7",
        file="/x.py",
        modules=(TreeRow(module, 0.1, 0.1, None),),
    )


def test_full_names_are_stable_and_unique() -> None:
    names = benchmark_names(
        [
            record("t.py::test_a", "json"),
            record("t.py::test_a", "json"),
            record("t.py::test_a", "json", "cold"),
            record("t.py::test_b[x]", "json"),
        ]
    )
    assert names == [
        ("test_a[json-warm]", "t.py::test_a[json-warm]"),
        ("test_a[json-warm-2]", "t.py::test_a[json-warm-2]"),
        ("test_a[json-cold]", "t.py::test_a[json-cold]"),
        ("test_b[x][json-warm]", "t.py::test_b[x][json-warm]"),
    ]


def test_self_time_changes_rank_by_size_and_tag_new_and_gone() -> None:
    current = {"pkg": 0.001, "pkg.heavy": 0.0124, "pkg.core": 0.003}
    baseline = {"pkg": 0.001, "pkg.core": 0.002, "pkg.old": 0.0005}
    assert self_time_changes(current, baseline) == [
        "+12.4ms pkg.heavy (new)",
        "+1ms pkg.core",
        "-500us pkg.old (gone)",
    ]


@pytest.mark.slow
def test_module_count_only_measurements_are_not_stored(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_count=textwrap.dedent(
            """
            import pytest

            @pytest.mark.import_budget("steady", max_modules=5, forbid=["numpy"])
            def test_count():
                pass
            """
        )
    )
    result = project.runpytest("--benchmark-json=out.json")
    result.assert_outcomes(passed=3)
    result.stdout.re_match_lines([r"steady +warm +- +- +- +1 PASS"])
    assert not any("test_count" in name for name in entries(project.path / "out.json"))


@pytest.mark.slow
def test_a_rerun_test_is_stored_once(project: pytest.Pytester) -> None:
    flaky = project.path / "flaky.txt"
    project.makepyfile(
        test_flaky=textwrap.dedent(
            f"""
            from pathlib import Path

            def test_flaky(warm_import_env):
                warm_import_env.measure("steady")
                flag = Path({str(flaky)!r})
                if not flag.exists():
                    flag.touch()
                    raise AssertionError("first attempt fails")
            """
        )
    )
    result = project.runpytest("--reruns=1", "--benchmark-json=out.json", "test_flaky.py")
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1}
    assert list(entries(project.path / "out.json")) == ["test_flaky.py::test_flaky[steady-warm]"]


@pytest.mark.parametrize("xdist", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.slow
def test_a_failure_names_the_import_edge_new_since_the_baseline(
    project: pytest.Pytester, xdist: list[str]
) -> None:
    project.makepyfile(
        test_imports="""
        import pytest

        @pytest.mark.import_budget("steady", warm="300ms")
        def test_steady():
            pass
        """
    )
    project.runpytest("--benchmark-autosave").assert_outcomes(passed=1)
    fake_rounds(project.path, SLOWED)
    # Under xdist the worker finds the baseline: pytest-benchmark loads it in every process.
    failed = project.runpytest("--benchmark-compare=0001", *xdist)
    failed.assert_outcomes(failed=1)
    failed.stdout.re_match_lines(
        [
            r"import budget exceeded: steady \(warm\)",
            r"  min 600ms > budget 300ms",
            r"  3 rounds: .*",
            r"  import edges new, gone or moved since 0001_.*\.json:",
            r"    steady -> steady\.slowpart \(new\): \+400ms cumulative",
            r"  slowest modules .*",
        ]
    )
    # Without a baseline, no such section.
    alone = project.runpytest()
    alone.assert_outcomes(failed=1)
    assert "import edges" not in alone.stdout.str()


@pytest.mark.slow
def test_a_saved_run_gives_back_its_outcomes(project: pytest.Pytester) -> None:
    fake_rounds(project.path, SLOWED)
    project.runpytest("--benchmark-autosave").assert_outcomes(passed=2)
    (run,) = saved_runs(project)
    outcomes = {outcome.label: outcome for outcome in run_outcomes(run)}
    warm = outcomes["warm"]
    assert (warm.nodeid, warm.test_name, warm.module) == (
        "test_imports.py::test_steady",
        "test_steady",
        "steady",
    )
    assert (warm.stat, warm.budget, warm.passed) == ("min", 10.0, True)
    assert warm.statistic == pytest.approx(0.6)
    assert warm.values == pytest.approx((0.6, 0.6, 0.6))
    assert [row.name for row in warm.modules] == ["steady.slowpart", "steady"]
    assert warm.modules[0].importer == "steady"
    assert outcomes["cold"].budget is None
    assert outcomes["cold"].passed is None


@pytest.mark.parametrize(
    ("storage", "reason"),
    [
        # /proc takes no new file, even for root.
        ("/proc/importcache-storage", "cannot create files in /proc: *"),
        ("a_file", "*/a_file is a file, not a directory"),
        ("a_file/runs", "*/a_file is a file, not a directory"),
    ],
    ids=["under /proc", "a regular file", "under a regular file"],
)
@pytest.mark.slow
def test_a_storage_that_cannot_be_created_is_one_line_and_the_run_is_still_shown(
    project: pytest.Pytester, storage: str, reason: str
) -> None:
    (project.path / "a_file").write_text("not a directory\n")
    result = project.runpytest(f"--benchmark-storage={storage}", "--benchmark-autosave")
    result.assert_outcomes(passed=2)
    # Nothing was saved, so the run fails; what it measured is still shown.
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*- import budgets -*",
            "steady * warm * 200ms *",
            f"--benchmark-storage *{storage.rpartition('/')[2]}: cannot save the run: {reason}",
            "*benchmark 'import steady': 2 tests*",
            "test_steady[[]steady-warm[]] * 200.0000 *",
        ]
    )
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    assert (project.path / "a_file").read_text() == "not a directory\n"


def corrupt_first_entry(run: Path, change: Any) -> str:
    """Apply ``change`` to the warm entry of the saved ``run``; return that entry's full name."""
    data = json.loads(run.read_text())
    (entry,) = [entry for entry in data["benchmarks"] if entry["fullname"].endswith("-warm]")]
    change(entry)
    run.write_text(json.dumps(data))
    return str(entry["fullname"])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda entry: entry["stats"].update(median="fast"),
            'stats.median is "fast", not a number',
        ),
        (lambda entry: entry["stats"].update(min=None), "stats.min is null, not a number"),
        (lambda entry: entry["stats"].pop("median"), "has no stats.median"),
        (lambda entry: entry["stats"].update(ops="many"), 'stats.ops is "many", not a number'),
        (
            lambda entry: entry["extra_info"].update(import_tree=5),
            ": import_tree is not a list: not explained",
        ),
    ],
    ids=["median is text", "min is null", "median missing", "ops is text", "tree not a list"],
)
@pytest.mark.parametrize("compare_fail", [[], ["--benchmark-compare-fail=min:10%"]])
@pytest.mark.slow
def test_a_baseline_entry_that_is_not_numbers_is_one_line_and_the_run_is_kept(
    project: pytest.Pytester, change: Any, reason: str, compare_fail: list[str]
) -> None:
    project.runpytest("--benchmark-autosave").assert_outcomes(passed=2)
    (baseline,) = saved_runs(project)
    fullname = corrupt_first_entry(baseline, change)
    result = project.runpytest("--benchmark-compare=0001", "--benchmark-autosave", *compare_fail)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.re_match_lines(
        [
            r".*- import budgets -.*",
            re.escape(f"--benchmark-compare: run file {baseline}: entry {fullname!r}")
            + f".*{re.escape(reason)}",
            r".*benchmark 'import steady'.*",
        ]
    )
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    # The run's own results are saved as ever.
    assert len(entries(saved_runs(project)[1])) == 2


@pytest.mark.slow
def test_a_report_that_cannot_be_written_at_the_end_is_one_line_and_fails_the_run(
    project: pytest.Pytester,
) -> None:
    # Writable when the run starts; a directory by the time the report is written.
    project.makepyfile(
        test_takes_the_path="""
        from pathlib import Path

        def test_takes_the_report_path():
            Path("imports.html").mkdir()
        """
    )
    result = project.runpytest("--importcache-report=imports.html", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*- import budgets -*",
            "steady * warm * 200ms *",
            "cannot write the import report to */imports.html: *Is a directory*",
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.slow
def test_a_newest_run_that_cannot_be_loaded_is_named_when_comparing_with_the_latest(
    project: pytest.Pytester,
) -> None:
    project.runpytest("--benchmark-autosave").assert_outcomes(passed=2)
    project.runpytest("--benchmark-autosave").assert_outcomes(passed=2)
    older, newest = saved_runs(project)
    newest.write_text("[]")
    # pytest-benchmark quietly falls back on the older run; the line says why.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pytest-benchmark's own warning while it configures
        result = project.runpytest("--benchmark-compare")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"--benchmark-compare: run file {newest} has no 'benchmarks' list: "
            "not a pytest-benchmark run: not compared"
        ]
    )
    assert older.name not in result.stdout.str().split("import budgets")[1].split("benchmark '")[0]
