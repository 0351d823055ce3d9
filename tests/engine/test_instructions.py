"""The instructions metric: counts parsed and shown, fenced dumps, budgets, storage, real callgrind.

The pure parts and the plugin's handling of counts run on fixed rounds; a
handful of tests count real imports under valgrind (skipped, with the reason
shown, where valgrind is not installed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import (
    FAKE_ROUNDS_CONFTEST,
    FakeRoundRunner,
    MakeTree,
    bytecode_files,
    fake_rounds,
    make_outcome,
    quick_ini,
    run_tests,
    write_tree,
)
from pytest_importcache import ImportEnv
from pytest_importcache.engine.callgrind import MarkCosts, find_valgrind, read_dump_counts
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.engine.roundcommand import child_environment
from pytest_importcache.engine.runner import _check_count as check_count
from pytest_importcache.engine.runner import run_round
from pytest_importcache.model.budget import ImportBudget
from pytest_importcache.model.errors import (
    BudgetError,
    ImportRaisedError,
    MetricUnavailableError,
    RoundCrashedError,
    RoundTimeoutError,
)
from pytest_importcache.model.spec import MeasurementSpec
from pytest_importcache.model.units import (
    format_count,
    parse_cost,
    parse_count,
    suggest_cost_budget,
)
from pytest_importcache.render.icicle import icicle_page
from pytest_importcache.render.markdown import markdown_summary
from pytest_importcache.render.summary import scale_line, summary_lines, unjudged_line

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind is not installed (apt-get install valgrind)"
)

# -- counts as users write and read them ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "count"),
    [
        (45_000_000, 45_000_000),
        ("45M", 45_000_000),
        ("1.2G", 1_200_000_000),
        ("800k", 800_000),
        ("800K", 800_000),
        (" 1200 ", 1200),
        (4.5e7, 45_000_000),
    ],
)
def test_counts_are_parsed(value: object, count: int) -> None:
    assert parse_count(value) == count


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("25ms", "'25ms' is a duration, and the instructions metric takes instruction counts"),
        ("45m", "'45m' is not an instruction count"),
        ("45 M instructions", "is not an instruction count"),
        (0, "0 is not a positive instruction count"),
        (-5, "-5 is not a positive instruction count"),
        (True, "True is not an instruction count"),
        (4.5, "4.5 is not an instruction count"),
        (float("nan"), "nan is not an instruction count"),
        ("", "'' is not an instruction count"),
        ("٣M", "is not an instruction count"),
        (None, "None is not an instruction count"),
        (10**400, "is more instructions than any import executes"),
        ("9" * 400 + "M", "is more instructions than any import executes"),
    ],
)
def test_bad_counts_say_what_to_write(value: object, message: str) -> None:
    with pytest.raises(BudgetError, match=re.escape(message)):
        parse_count(value)


def test_a_count_is_refused_as_a_time_budget() -> None:
    with pytest.raises(BudgetError, match="is an instruction count, and the time metric"):
        parse_cost("45M", "time")
    assert parse_cost("25ms", "time") == pytest.approx(0.025)
    assert parse_cost("45M", "instructions") == 45e6
    with pytest.raises(BudgetError, match="longer than any import takes: for an instruction"):
        parse_cost(45_000_000, "time")


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "0"), (950, "950"), (999.6, "1k"), (800_000, "800k"), (999_999, "1M"),
     (36_448_904, "36.4M"), (1.234e9, "1.23G"), (-2_500_000, "-2.5M")],
)  # fmt: skip
def test_counts_are_shown_with_three_digits(count: float, shown: str) -> None:
    assert format_count(count) == shown


@given(st.integers(min_value=1, max_value=10**13))
def test_a_shown_count_reads_back_within_its_last_digit(count: int) -> None:
    shown = format_count(count)
    assert parse_count(shown) == pytest.approx(count, rel=5e-3)


@given(st.integers(min_value=1, max_value=10**13))
@example(10**13 + 385)  # 13000.0000000005G: an absolute tolerance rounded it down to 13000G
@example(100)
def test_a_suggested_count_leaves_thirty_percent_and_parses(count: int) -> None:
    suggested = parse_count(suggest_cost_budget(count, "instructions"))
    assert count * 1.3 <= suggested <= count * 1.3 * 1.11 + 1


# -- fenced dumps -------------------------------------------------------------------------


def test_costs_between_marks_add_up_the_dumps_and_leave_out_exclusions() -> None:
    # Marks 1..6 all dumped; the stretch between marks 3 and 4 is start-up work.
    costs = MarkCosts([1, 2, 3, 4, 5, 6], [999, 10, 20, 500, 30, 40], excluded=[(3, 4)])
    assert costs.between(1, 6) == 10 + 20 + 30 + 40
    assert costs.between(2, 3) == 20
    assert costs.between(4, 6) == 70
    # Only the fences were dumped (a plain round): the import's total still adds up.
    plain = MarkCosts([1, 3, 4, 6], [999, 30, 500, 70], excluded=[(3, 4)])
    assert plain.between(1, 6) == 100


def test_dump_files_are_read_in_number_order(tmp_path: Path) -> None:
    for number, total in [(2, 20), (10, 100), (1, 10)]:
        (tmp_path / f"callgrind.out.77.{number}").write_text(
            f"# callgrind format\nversion: 1\ncmd: python -c {'x' * 20000}\npart: {number}\n"
            f"events: Ir\nsummary: {total}\n\nfl=(1) x\nfn=(1) y\n0 {total}\n"
        )
    (tmp_path / "callgrind.out.77").write_text("summary: 5\n")  # the final dump: not counted
    (tmp_path / "callgrind.out.78.1").write_text("summary: 5\n")  # another process
    assert read_dump_counts(tmp_path, 77) == [10, 20, 100]
    (tmp_path / "callgrind.out.77.3").write_text("events: Ir\nfn=(1) y\n0 1\n")
    with pytest.raises(RoundCrashedError, match=r"callgrind\.out\.77\.3 has no instruction total"):
        read_dump_counts(tmp_path, 77)


def test_no_valgrind_is_one_line_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MetricUnavailableError, match="valgrind, which is not on PATH: install"):
        find_valgrind()


def test_counted_rounds_get_a_fixed_hash_seed_and_no_valgrind_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VALGRIND_OPTS", "--tool=memcheck")
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "t.py::t (call)")
    counted = child_environment("token", metric="instructions", home=Path("/r/cwd"))
    assert counted["PYTHONHASHSEED"] == "0"
    assert "VALGRIND_OPTS" not in counted
    # Fixed: nothing of the caller's moves a count.
    assert (counted["HOME"], counted["PATH"]) == ("/r/cwd", os.defpath)
    assert "PYTEST_CURRENT_TEST" not in counted
    # ...but for the variables an import needs, when named.
    monkeypatch.setenv("APP_SETTINGS", "app.settings")
    monkeypatch.setenv("IMPORTCACHE_COUNTED_ENV", "APP_SETTINGS, UNSET_ONE")
    named = child_environment("token", metric="instructions", home=Path("/r/cwd"))
    assert named["APP_SETTINGS"] == "app.settings"
    assert "UNSET_ONE" not in named
    assert "IMPORTCACHE_COUNTED_ENV" not in named
    assert "PYTHONHASHSEED" not in child_environment("token")


def test_rounds_do_not_see_which_test_or_worker_runs_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # The child decodes its whole environment at start-up: a test's name would be counted.
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "test_x.py::test_a_long_name (call)")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "0123abcd")
    for metric in ("time", "instructions"):
        environment = child_environment("token", metric=metric)
        assert not {"PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID"} & set(
            environment
        ), metric


# -- the marker ------------------------------------------------------------------------------


def test_marker_budgets_follow_the_metric() -> None:
    counted = ImportBudget.from_marker(("m",), {"warm": "45M", "metric": "instructions"})
    assert (counted.warm, counted.metric) == (45e6, "instructions")
    # The run's metric applies when the marker names none; the marker's wins.
    assert ImportBudget.from_marker(("m",), {"cold": "1G"}, metric="instructions").cold == 1e9
    timed = ImportBudget.from_marker(
        ("m",), {"cold": "25ms", "metric": "time"}, metric="instructions"
    )
    assert (timed.cold, timed.metric) == (0.025, "time")


def test_a_budget_in_the_other_unit_is_measured_not_judged_under_the_run_metric() -> None:
    counted_run = ImportBudget.from_marker(("m",), {"warm": "25ms"}, metric="instructions")
    assert (counted_run.warm, counted_run.unjudged) == (None, (("warm", "warm='25ms'"),))
    assert counted_run.timed_flavours == ("warm",)
    timed_run = ImportBudget.from_marker(("m",), {"cold": "45M", "warm": "25ms"})
    assert (timed_run.cold, timed_run.warm) == (None, 0.025)
    assert timed_run.unjudged == (("cold", "cold='45M'"),)
    # A duration and a count together: the run's metric picks the one judged.
    both = {"warm": ("25ms", "45M"), "cold": ["90M", "60ms"]}
    assert ImportBudget.from_marker(("m",), both).warm == 0.025
    assert ImportBudget.from_marker(("m",), both).cold == 0.06
    counted = ImportBudget.from_marker(("m",), both, metric="instructions")
    assert (counted.warm, counted.cold, counted.unjudged) == (45e6, 90e6, ())


@pytest.mark.parametrize(
    ("kwargs", "run_metric", "message"),
    [
        ({"warm": "25ms", "metric": "instructions"}, "time", "warm='25ms' is a duration"),
        ({"cold": "45M", "metric": "time"}, "instructions", "cold='45M' is an instruction count"),
        ({"warm": ("25ms", "30ms")}, "time", r"warm=\('25ms', '30ms'\) gives two time budgets"),
        ({"warm": ("45M", "1G")}, "time", "warm=.* gives two instructions budgets"),
        ({"warm": (0.025, "45M")}, "time", "warm=.*: write both budgets with their units"),
        ({"warm": ("25ms", "45M", "1s")}, "time", "warm=.* is not a budget"),
        ({"warm": ("25ms", "-4M")}, "instructions", "warm='-4M' is not an instruction count"),
        ({"warm": ("-25ms", "45M")}, "instructions", "warm='-25ms' is not a duration"),
        ({"cold": ("25ms", "0M")}, "time", "cold=.*'0M' is not a positive instruction count"),
        ({"warm": 1, "metric": "cycles"}, "time", "metric='cycles' is not one of time"),
        ({"warm": 1, "metric": ["time"]}, "time", r"metric=\['time'\] is not one of time"),
    ],
)
def test_marker_budgets_in_the_wrong_unit_are_one_line(
    kwargs: dict[str, object], run_metric: str, message: str
) -> None:
    with pytest.raises(BudgetError, match=r"^import_budget\('m'\): " + message):
        ImportBudget.from_marker(("m",), kwargs, metric=run_metric)  # type: ignore[arg-type]


# -- the pipeline, on fixed rounds ------------------------------------------------------------


class RefusingLock:
    """A measurement lock that fails the test when taken."""

    def __enter__(self) -> None:
        raise AssertionError("instruction rounds took the measurement lock")

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.slow
def test_counted_measurements_count_modules_once_and_take_no_lock(
    make_tree: MakeTree, tmp_path: Path
) -> None:
    runner = FakeRoundRunner([0.036, 0.036, 0.036], modules=("pkg.helper",))
    measurer = Measurer(
        cache_dir=tmp_path,
        search_path=[str(make_tree({"pkg/__init__.py": ""}))],
        lock=RefusingLock,
        round_runner=runner,
    )
    spec = MeasurementSpec("pkg", rounds=3, warmup=0, metric="instructions")
    result = measurer.measure(spec)
    # Only the first counted round counts every module.
    assert runner.metrics == [("instructions", True)] + [("instructions", False)] * 2
    assert result.metric == "instructions"
    assert result.instructions == (36_000_000,) * 3
    assert result.min == result.median == 36e6
    assert result.modules["pkg"].cumulative_cost == 36e6
    assert result.modules["pkg.helper"].cumulative_cost == 18e6
    with pytest.raises(ValueError, match="the costs are instructions, not seconds"):
        _ = result.modules["pkg"].self_seconds


def test_counted_environments_default_to_one_round_without_warm_up() -> None:
    counted = ImportEnv("warm", metric="instructions")
    assert (counted.rounds, counted.warmup) == (1, 0)
    assert (ImportEnv("warm").rounds, ImportEnv("warm").warmup) == (10, 1)
    assert "metric='instructions'" in repr(counted)


# -- the plugin, on fixed rounds ---------------------------------------------------------------


@pytest.fixture
def fake_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project whose rounds are fixed: ``steady`` counts 300M instructions (300 ms timed)."""
    write_tree(pytester.path, {"steady.py": ""})
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"steady": {"seconds": 0.3, "modules": {"steady_dep": 0.1}}})
    pytester.makeini("[pytest]\npythonpath = .\naddopts = -p no:hypothesispytest\n")
    return pytester


@pytest.mark.slow
def test_an_overspent_count_fails_naming_the_modules_and_a_budget(
    fake_project: pytest.Pytester,
) -> None:
    result = run_tests(
        fake_project,
        """
        import pytest

        @pytest.mark.import_budget("steady", warm="100M", metric="instructions")
        def test_counted():
            pass
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*import budget exceeded: steady (warm instructions)",
            "*min 400M > budget 100M",
            "*  1 round: 400M",
            "*costliest modules (self instructions, cumulative instructions):",
            "*300M     400M  steady",
            "*100M     100M  steady_dep",
            '*suggested budget: warm="520M"',
        ]
    )
    result.stdout.fnmatch_lines(["steady*warm (instr)*400M*100M*-300%*FAIL"])
    assert "Traceback" not in result.stdout.str()


# The fake rounds, logging whether each counted one was asked for every module's count.
MODULE_COSTS_LOG = """

_counted_round = fake_round


def fake_round(module, roots, workdir, **options):
    if options.get("metric") == "instructions":
        with Path(__file__).with_name("module_costs.log").open("a") as log:
            log.write(f"{options.get('module_costs', True)}\\n")
    return _counted_round(module, roots, workdir, **options)
"""


@pytest.mark.slow  # builds a warm copy (compileall) unless an earlier test did
@pytest.mark.parametrize(
    ("options", "passing", "expected"),
    [
        ((), True, ["False"]),
        ((), False, ["False", "True"]),  # counted again in detail for the explanation
        (("--importcache-report=report.html",), True, ["True"]),
        (("--importcache-markdown=summary.md",), True, ["True"]),
        (("--benchmark-json=out.json",), True, ["True"]),
        (("--benchmark-json=out.json", "--benchmark-disable"), True, ["False"]),
    ],
)
def test_modules_are_counted_only_when_the_run_shows_or_keeps_them(
    fake_project: pytest.Pytester, options: tuple[str, ...], passing: bool, expected: list[str]
) -> None:
    conftest = fake_project.path / "conftest.py"
    conftest.write_text(conftest.read_text() + MODULE_COSTS_LOG)
    budget = "1G" if passing else "100M"
    result = run_tests(
        fake_project,
        f"""
        import pytest

        @pytest.mark.import_budget("steady", warm="{budget}", metric="instructions")
        def test_counted():
            pass
        """,
        *options,
    )
    result.assert_outcomes(passed=1) if passing else result.assert_outcomes(failed=1)
    assert (fake_project.path / "module_costs.log").read_text().split() == expected
    if not passing:
        result.stdout.fnmatch_lines(["*300M     400M  steady", "*100M     100M  steady_dep"])


@pytest.mark.slow
def test_the_run_metric_applies_to_every_budget_and_fixture(
    fake_project: pytest.Pytester,
) -> None:
    result = run_tests(
        fake_project,
        """
        import pytest

        @pytest.mark.import_budget("steady", cold="1G")
        def test_counted():
            pass

        def test_fixture(warm_import_env):
            result = warm_import_env.measure("steady")
            assert (result.metric, result.rounds, result.min) == ("instructions", 1, 400e6)

        @pytest.mark.import_budget("steady", warm="25ms")
        def test_timed_budget_in_a_counted_run():
            pass
        """,
        "--importcache-metric=instructions",
    )
    result.assert_outcomes(passed=3)
    # The time budget is counted and not judged: its line says what to write instead.
    result.stdout.fnmatch_lines(
        [
            "steady*warm (instr)*400M        -        -*-",
            "steady (warm instr): warm='25ms' is a time budget, not judged in instructions; "
            "write warm=('25ms', '520M')",
        ]
    )


@pytest.mark.slow
def test_a_failing_test_names_its_unjudged_budget_too(fake_project: pytest.Pytester) -> None:
    result = run_tests(
        fake_project,
        """
        import pytest

        @pytest.mark.import_budget("steady", warm="25ms", max_modules=1)
        def test_counted_run():
            pass
        """,
        "--importcache-metric=instructions",
    )
    result.assert_outcomes(failed=1)
    note = (
        "steady (warm instr): warm='25ms' is a time budget, not judged in instructions; "
        "write warm=('25ms', '520M')"
    )
    failure = result.stdout.str().split("_ test_counted_run _")[1].split("import budgets")[0]
    assert "steady loaded 2 modules > max_modules=1" in failure
    assert note in failure.splitlines()  # in the failure text, and again in the summary
    # Up to pytest's short summary, which under CI=true repeats whole failure messages.
    shown = result.stdout.str().split("short test summary info")[0].splitlines()
    assert shown.count(note) == 2


@pytest.mark.slow
def test_counts_are_stored_as_their_own_benchmark_entries(
    fake_project: pytest.Pytester,
) -> None:
    result = run_tests(
        fake_project,
        """
        import pytest

        @pytest.mark.import_budget("steady", warm="1G", metric="instructions")
        @pytest.mark.import_budget("steady", warm="1s")
        def test_both():
            pass
        """,
        "--benchmark-json=out.json",
    )
    result.assert_outcomes(passed=1)
    entries = {
        entry["name"]: entry
        for entry in json.loads((fake_project.path / "out.json").read_text())["benchmarks"]
    }
    counted = entries["test_both[steady-warm-instructions]"]
    timed = entries["test_both[steady-warm]"]
    assert counted["group"] == "import steady (instructions)"
    assert counted["extra_info"]["metric"] == "instructions"
    assert counted["extra_info"]["module_self_instructions"]["steady_dep"] == 100e6
    assert counted["stats"]["min"] == 400e6
    assert timed["extra_info"]["metric"] == "time"
    assert timed["stats"]["min"] == pytest.approx(0.4)


@pytest.mark.slow
def test_compare_fail_catches_a_grown_count(fake_project: pytest.Pytester) -> None:
    source = """
    import pytest

    @pytest.mark.import_budget("steady", warm="1G", metric="instructions")
    def test_counted():
        pass
    """
    run_tests(fake_project, source, "--benchmark-autosave").assert_outcomes(passed=1)
    fake_rounds(fake_project.path, {"steady": {"seconds": 0.306, "modules": {"steady_dep": 0.1}}})
    result = run_tests(
        fake_project,
        source,
        "--benchmark-compare",
        "--benchmark-compare-fail=min:1%",
        "--benchmark-autosave",
    )
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        ["*test_counted[[]steady-warm-instructions[]]: min 400M -> 406M (+2%)*"]
    )
    result.stdout.fnmatch_lines(["*+6M steady"])
    # The command line's compare reads the saved counts the same way.
    compared = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "compare", "--fail", "min:1%"],
        cwd=fake_project.path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert compared.returncode == 1, compared.stdout + compared.stderr
    assert "min 400M -> 406M (+2%)" in compared.stdout
    assert "slower than min:1%: test_counted[steady-warm-instructions]" in compared.stdout
    # A threshold in seconds cannot judge counts: refused, in one line.
    absolute = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "compare", "--fail", "min:0.005"],
        cwd=fake_project.path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert absolute.returncode == 2
    assert "a difference in seconds cannot judge instruction counts" in absolute.stderr


@pytest.mark.slow
def test_counts_stay_out_of_the_benchmark_table_and_are_still_saved_and_compared(
    fake_project: pytest.Pytester,
) -> None:
    source = """
        import pytest

        @pytest.mark.import_budget("steady", warm="1G", metric="instructions")
        def test_counted():
            pass

        @pytest.mark.import_budget("steady", warm="10s")
        def test_timed():
            pass
        """
    first = run_tests(fake_project, source, "--benchmark-autosave", "--benchmark-json=out.json")
    first.assert_outcomes(passed=2)
    output = first.stdout.str()
    assert "test_timed[steady-warm]" in output  # the timed entry keeps its row
    # Counts are not in pytest-benchmark's table (whose columns are seconds).
    table = output.split("instruction counts are in this table")[-1]
    assert "test_counted[steady-warm-instructions]" not in table
    assert "400,000,000" not in output
    first.stdout.fnmatch_lines(["instruction counts are in this table, not in pytest-benchmark's*"])
    saved = json.loads((fake_project.path / "out.json").read_text())
    names = {entry["name"] for entry in saved["benchmarks"]}
    assert names == {"test_counted[steady-warm-instructions]", "test_timed[steady-warm]"}
    # pytest-benchmark's own command line still reads the saved counts.
    listed = subprocess.run(
        [str(Path(sys.executable).with_name("pytest-benchmark")), "compare", "0001"],
        cwd=fake_project.path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "test_counted[steady-warm-instructions]" in listed.stdout


@pytest.mark.slow
def test_raw_rounds_of_counts_are_kept_apart_from_timed_ones(
    fake_project: pytest.Pytester,
) -> None:
    result = run_tests(
        fake_project,
        """
        import pytest

        @pytest.mark.import_budget("steady", warm="1G", metric="instructions")
        @pytest.mark.import_budget("steady", warm="1s", rounds=3)
        def test_both():
            pass
        """,
        "--importcache-raw-dir=raw",
    )
    result.assert_outcomes(passed=1)
    names = sorted(path.name for path in (fake_project.path / "raw").rglob("*.txt"))
    assert [name for name in names if "instructions" in name] == [
        "steady-warm-instructions-round-01.txt"
    ]
    assert len(names) == 1 + 1 + 3  # the counted round, then a timed warm-up and 3 timed rounds


def test_the_scale_line_leaves_counts_out() -> None:
    timed = make_outcome(budget=0.05, scale=1.3, flavour="cold")
    counted = make_outcome(budget=4e8, scale=1.0, flavour="cold", metric="instructions")
    assert scale_line([counted, timed]) == (
        "time budgets scaled by the reference import: cold x1.3"
    )
    assert scale_line([counted]) == ""


# -- real callgrind ------------------------------------------------------------------------------

PACKAGE = {
    "counted/__init__.py": "from . import heavy, light\n",
    "counted/heavy.py": "TOTAL = sum(index * index for index in range(20000))\n",
    "counted/light.py": "VALUE = 1\n",
}


@pytest.fixture
def counted_env(cache_dir: Path, make_tree: MakeTree) -> Callable[..., ImportEnv]:
    """An instructions environment over ``PACKAGE`` (or given files)."""

    def make(
        flavour: str = "warm", files: dict[str, str] | None = None, **options: object
    ) -> ImportEnv:
        tree = make_tree(files or PACKAGE)
        make.tree = tree  # type: ignore[attr-defined]
        extra = options.pop("search_path", sys.path)
        return ImportEnv(
            flavour,  # type: ignore[arg-type]
            metric="instructions",
            cache_dir=cache_dir,
            search_path=[str(tree), *extra],  # type: ignore[misc]
            **options,  # type: ignore[arg-type]
        )

    return make


@needs_valgrind
@pytest.mark.slow
def test_real_counts_repeat_exactly_and_split_by_module(
    counted_env: Callable[..., ImportEnv],
) -> None:
    # The package's tree alone on the path: nothing of this worker's sys.path (the
    # repository, the test directories: other tests may write there meanwhile, and a
    # directory's listing is counted; once, on 3.15 in CI, two rounds were 534 apart).
    cold = counted_env("cold", rounds=2, search_path=()).measure("counted")
    warm = counted_env("warm", rounds=2, search_path=()).measure("counted")
    for result in (cold, warm):
        assert result.metric == "instructions"
        assert len(set(result.instructions)) == 1, result.instructions
        heavy, light, package = (
            result.modules[name] for name in ("counted.heavy", "counted.light", "counted")
        )
        # 20,000 iterations of a generator cost far more than one assignment.
        assert heavy.self_cost > 10 * light.self_cost > 0
        assert package.cumulative_cost >= heavy.cumulative_cost + light.cumulative_cost
        assert package.cumulative_cost <= result.min
    assert cold.min > warm.min  # compiling costs instructions too
    assert bytecode_files(counted_env.tree) == []  # type: ignore[attr-defined]


@needs_valgrind
@pytest.mark.slow
def test_an_import_that_calls_the_fence_is_one_line(
    counted_env: Callable[..., ImportEnv],
) -> None:
    env = counted_env(files={"fencer.py": "import os\nPARENT = os.getppid()\n"}, rounds=1)
    with pytest.raises(RoundCrashedError) as caught:
        env.measure("fencer")
    assert "the import itself calls os.getppid() or os.getpgrp()" in str(caught.value)
    assert "\n" not in str(caught.value)


@needs_valgrind
@pytest.mark.slow
def test_a_hung_counted_round_is_killed_after_the_scaled_timeout(
    counted_env: Callable[..., ImportEnv],
) -> None:
    env = counted_env(files={"hangs.py": "import time\ntime.sleep(600)\n"}, rounds=1, timeout=0.05)
    with pytest.raises(RoundTimeoutError, match=r"within 0.05 s x 50 for valgrind"):
        env.measure("hangs")


@needs_valgrind
@pytest.mark.slow
def test_valgrind_options_from_the_environment_change_nothing(
    counted_env: Callable[..., ImportEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = counted_env(rounds=1).measure("counted").min
    monkeypatch.setenv("VALGRIND_OPTS", "--tool=memcheck --trace-children=yes")
    monkeypatch.setenv("PYTHONHASHSEED", "12345")
    assert counted_env(rounds=1).measure("counted").min == plain


@needs_valgrind
@pytest.mark.slow
def test_the_command_line_counts_and_says_so(make_tree: MakeTree) -> None:
    tree = make_tree(PACKAGE)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "counted", "--path", str(tree),
         "--metric", "instructions", "--rounds", "1", "--json", "--progress"],
        capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    # --progress: a line per round on stderr, though it is no terminal.
    assert re.search(
        r"^pytest-importcache: counted \(cold instructions\) round 1 of 1: \d+\.\d s$",
        completed.stderr,
        re.MULTILINE,
    ), completed.stderr
    assert "counted (warm instructions) round 1 of 1" in completed.stderr
    (entry,) = json.loads(completed.stdout)["modules"]
    warm = entry["flavours"]["warm"]
    assert warm["metric"] == "instructions"
    assert warm["min"] == warm["instructions"][0] > 0
    assert entry["suggested_marker"].endswith('metric="instructions")')
    assert bytecode_files(tree) == []


@pytest.mark.slow
def test_the_command_line_without_valgrind_is_one_line(make_tree: MakeTree, tmp_path: Path) -> None:
    tree = make_tree(PACKAGE)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "counted", "--path", str(tree),
         "--metric", "instructions"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PATH": str(tmp_path)},
    )  # fmt: skip
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "valgrind, which is not on PATH" in completed.stderr


def test_a_counted_budget_without_valgrind_fails_its_test_and_the_session_goes_on(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_tree(pytester.path, {"tiny.py": ""})
    pytester.makeini(quick_ini())
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run_tests(
        pytester,
        """
        import pytest

        @pytest.mark.import_budget("tiny", warm="1G", metric="instructions")
        def test_counted():
            pass

        def test_other():
            pass
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*import_budget('tiny'): the instructions metric counts with valgrind, which is not on*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_the_report_and_the_markdown_say_counts_are_instructions() -> None:
    counted = make_outcome(
        metric="instructions",
        statistic=4e8,
        budget=1e8,
        passed=False,
        values=(4e8,) * 3,
        modules=(("m", 4e8, 4e8, None),),
    )
    page = icicle_page([counted])
    assert "<b>warm instructions</b>" in page
    assert "min 400M · budget 100M" in page
    assert "counted in the first round (counts repeat)" in page
    assert "| `m` | warm instructions | 400M | 100M | -300% | **FAIL** |" in markdown_summary(
        [counted], []
    )


# -- counts that do not depend on where they are taken ------------------------------------

COLLECTION_OFF = "--collect-atstart=no"


def count_in(workdir: Path, tree: Path) -> int | None:
    """The count of importing ``counted`` from ``tree``: one plain round run in ``workdir``."""
    workdir.mkdir(exist_ok=True)
    return run_round(
        "counted", [tree], workdir, python=sys.executable, metric="instructions",
        module_costs=False,
    ).instructions  # fmt: skip


@needs_valgrind
@pytest.mark.slow
def test_valgrind_configuration_in_home_the_round_directory_and_the_environment_is_ignored(
    make_tree: MakeTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(PACKAGE)
    workdir = tmp_path / "rounds"
    count_in(workdir, tree)  # writes the bytecode: the rounds below are warm
    plain = count_in(workdir, tree)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".valgrindrc").write_text(COLLECTION_OFF + "\n")
    # valgrind reads ./.valgrindrc in the directory it starts in: the round's own.
    (workdir / "cwd" / ".valgrindrc").write_text(COLLECTION_OFF + "\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("VALGRIND_OPTS", COLLECTION_OFF)
    assert count_in(workdir, tree) == plain


@needs_valgrind
@pytest.mark.slow
def test_the_command_line_under_a_valgrindrc_that_stops_counting_still_counts(
    make_tree: MakeTree, tmp_path: Path
) -> None:
    tree = make_tree(PACKAGE)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".valgrindrc").write_text(COLLECTION_OFF + "\n")
    (tmp_path / ".valgrindrc").write_text(COLLECTION_OFF + "\n")
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "counted", "--path", str(tree),
         "--metric", "instructions", "--rounds", "1", "--json"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
        env={**os.environ, "HOME": str(home), "VALGRIND_OPTS": COLLECTION_OFF},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    (entry,) = json.loads(completed.stdout)["modules"]
    assert entry["flavours"]["warm"]["min"] > 100_000
    assert entry["flavours"]["cold"]["min"] > entry["flavours"]["warm"]["min"]


def test_a_count_no_import_could_give_is_one_line_not_a_pass() -> None:
    for count in (0, 1_000, 10**14):
        with pytest.raises(RoundCrashedError) as caught:
            check_count(MarkCosts([1, 2], [5, count]), {"import_fences": (1, 2)}, "m", " (here)")
        message = str(caught.value)
        assert f"callgrind counted {count:,} instructions for importing 'm' (here)" in message
        assert "\n" not in message
    check_count(MarkCosts([1, 2], [5, 400_000]), {"import_fences": (1, 2)}, "m", "")


@needs_valgrind
@pytest.mark.slow
def test_an_import_counts_the_same_from_the_command_line_and_from_pytest(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_tree(pytester.path, PACKAGE)
    pytester.makeini(quick_ini(rounds=1))
    # One cache of copies for both, so that both count the same files at the same paths.
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    pytester.makepyfile(
        test_counted="""
        import pytest

        @pytest.mark.import_budget("counted", cold="10G", warm="10G", metric="instructions")
        def test_counted():
            pass
        """
    )
    # A subprocess: pytest's own variables (PYTEST_CURRENT_TEST...) as in a user's run.
    # Both count afresh: a count reused from the other would make them equal by construction.
    pytester.runpytest_subprocess(
        "--benchmark-json=out.json", "--importcache-fresh"
    ).assert_outcomes(passed=1)
    stored = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    from_pytest = {entry["name"]: entry["stats"]["min"] for entry in stored}
    assert not any(entry["extra_info"].get("reused") for entry in stored)
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "counted", "--path", str(pytester.path),
         "--metric", "instructions", "--rounds", "1", "--json", "--fresh"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
        env={**os.environ, "COLUMNS": "80", "UNRELATED": "x" * 100},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    (entry,) = json.loads(completed.stdout)["modules"]
    for flavour in ("cold", "warm"):
        from_cli = entry["flavours"][flavour]["min"]
        assert entry["flavours"][flavour]["reused"] is None
        assert from_pytest[f"test_counted[counted-{flavour}-instructions]"] == from_cli, flavour


def test_counted_rounds_that_disagree_are_marked_in_the_summary() -> None:
    steady = make_outcome(metric="instructions", statistic=4e8, values=(4e8, 4e8))
    varying = make_outcome(
        module="pydantic", metric="instructions", statistic=189_707_806,
        values=(189_707_806.0, 189_708_024.0), budget=3e8, passed=True,
    )  # fmt: skip
    assert steady.noise == ""
    text = "\n".join(summary_lines([steady, varying]))
    assert "pydantic (warm (instr)): counted rounds disagree: 189,707,806 to 189,708,024" in text


@needs_valgrind
@pytest.mark.slow
def test_an_import_that_needs_a_withheld_variable_says_how_to_pass_it(
    counted_env: Callable[..., ImportEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"configured.py": "import os\nSETTINGS = os.environ['APP_SETTINGS_MODULE']\n"}
    monkeypatch.setenv("APP_SETTINGS_MODULE", "app.settings")
    with pytest.raises(ImportRaisedError) as caught:
        counted_env(files=files, rounds=1).measure("configured")
    assert caught.value.message.endswith(
        "counted rounds get a fixed environment: pass what the import needs with "
        "IMPORTCACHE_COUNTED_ENV=APP_SETTINGS_MODULE"
    )
    monkeypatch.setenv("IMPORTCACHE_COUNTED_ENV", "APP_SETTINGS_MODULE")
    assert counted_env(files=files, rounds=1).measure("configured").min > 0


def test_a_count_budget_under_the_time_metric_is_named_an_instruction_count_budget() -> None:
    assert unjudged_line("json", "warm", "warm='45M'", 0.025, "time") == (
        "json (warm): warm='45M' is an instruction-count budget, not judged in time; "
        "write warm=('45M', '33ms')"
    )
