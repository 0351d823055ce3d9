"""``--importcache-baseline=REV``: every timed budget is also measured at a git revision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepos import commit_all, git, make_repo, tree_state

from conftest import make_outcome, quick_ini, write_tree
from pytest_importcache.cli.main import main
from pytest_importcache.model.records import SameRunBaseline
from pytest_importcache.pytest.storage import extra_info
from pytest_importcache.render.markdown import markdown_summary
from pytest_importcache.render.summary import summary_lines

SLOW = "import time\ntime.sleep(0.1)\n"
TEST_FILE = """
import pytest

@pytest.mark.import_budget("{module}", warm="10s", cold="10s")
def test_budget():
    pass
"""


def baseline_project(pytester: pytest.Pytester, module: str) -> Path:
    """A git repository holding ``module`` (committed, fast) and a budget test for it."""
    pytester.makeini(quick_ini(5))  # five rounds a side: the fewest that judge a timed A/B
    write_tree(pytester.path, {f"{module}/__init__.py": "X = 1\n"})
    pytester.makepyfile(TEST_FILE.format(module=module))
    return make_repo(pytester.path, {})


@pytest.mark.slow
def test_a_slowdown_against_the_baseline_fails_the_test(pytester: pytest.Pytester) -> None:
    repo = baseline_project(pytester, "baselineslow")
    (repo / "baselineslow/__init__.py").write_text(SLOW)
    before = tree_state(repo)

    result = pytester.runpytest(
        "--importcache-baseline=HEAD", "--benchmark-json=out.json", "--importcache-report=r.html"
    )

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "import slower than baseline HEAD (*): baselineslow (cold)",
            "  median * vs * at *",
            "  ratio x* (median of pair ratios, 95% CI *-*)",
            "  the whole interval lies above x1.10 (importcache_baseline_fail 10%)",
            "*what changed most (head - base): import edges, then self time:",
            "*+* baselineslow",
            "import slower than baseline HEAD (*): baselineslow (warm)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "module *flavour *min *budget *headroom *modules *vs base verdict",
            "baselineslow *cold * 10s * x* FAIL",
            "vs base: median of pair ratios against HEAD (*), same run",
        ]
    )
    stored = json.loads((repo / "out.json").read_text())["benchmarks"]
    baseline = stored[0]["extra_info"]["baseline"]
    assert baseline["revision"] == "HEAD"
    assert baseline["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert baseline["slower"] is True
    assert baseline["low"] > 1.1
    assert len(baseline["base_values"]) == 5
    # The report draws each measurement's diff against the revision's tree.
    page = (repo / "r.html").read_text()
    assert page.count('class="icicle diff"') == 2
    assert "HEAD (same run)" in page
    (repo / "r.html").unlink()
    # The command line draws the same page, same-run diffs included, from the saved run.
    assert main(["report", str(repo / "out.json"), "--output", str(repo / "again.html")]) == 0
    again = (repo / "again.html").read_text()
    assert again.count('class="icicle diff"') == 2
    assert "HEAD (same run)" in again
    (repo / "again.html").unlink()
    (repo / "out.json").unlink()
    assert tree_state(repo)[1:] == before[1:]
    assert tree_state(repo)[0].splitlines()[0] == " M baselineslow/__init__.py"


@pytest.mark.slow
def test_an_unchanged_import_passes_with_its_ratio_shown(pytester: pytest.Pytester) -> None:
    baseline_project(pytester, "baselinesame")
    result = pytester.runpytest("--importcache-baseline=main", "--importcache-baseline-fail=200%")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["baselinesame *warm * x* PASS"])


@pytest.mark.slow
def test_an_unknown_revision_fails_the_test_in_one_line(pytester: pytest.Pytester) -> None:
    baseline_project(pytester, "baselineunknown")
    result = pytester.runpytest("-o", "importcache_baseline=v0.0.0")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*import_budget('baselineunknown'): baseline v0.0.0: unknown revision 'v0.0.0' in *"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.slow
def test_a_module_the_head_cannot_find_is_not_blamed_on_the_baseline(
    pytester: pytest.Pytester,
) -> None:
    baseline_project(pytester, "baselinefound")
    pytester.makepyfile(TEST_FILE.format(module="baselinenowhere"))
    result = pytester.runpytest("--importcache-baseline=HEAD")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*import_budget('baselinenowhere'): cannot find module *"])
    result.stdout.no_fnmatch_line("*baseline HEAD*")
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--importcache-baseline-fail=fast"], "*expected a percentage such as 10%, got 'fast'"),
        (["--importcache-baseline=-x"], "*expected a git revision such as main or HEAD~1*"),
    ],
)
def test_bad_settings_are_usage_errors(
    pytester: pytest.Pytester, arguments: list[str], message: str
) -> None:
    pytester.makeini(quick_ini())
    result = pytester.runpytest(*arguments)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def _baseline(ratio: float, noise: str = "", slower: bool = False) -> SameRunBaseline:
    return SameRunBaseline(
        revision="main",
        commit="0123456789abcdef",
        ratio=ratio,
        low=ratio * 0.99,
        high=ratio * 1.01,
        confidence=0.95,
        method="bootstrap",
        statistic="min",
        head=0.01 * ratio,
        base=0.01,
        head_values=(0.01 * ratio,),
        base_values=(0.01,),
        head_median=0.01 * ratio,
        base_median=0.01,
        threshold=0.1,
        slower=slower,
        noise=noise,
    )


def test_the_summary_marks_noisy_figures_and_undecided_ratios() -> None:
    steady = make_outcome(values=(0.010, 0.0101, 0.0102), baseline=_baseline(1.01))
    noisy = make_outcome(
        module="n",
        values=(0.010, 0.014, 0.009, 0.016),
        baseline=_baseline(1.08, noise="noisy: the 95% interval (12.0% wide) holds"),
    )
    lines = summary_lines([steady, noisy])
    assert lines[0].endswith("modules vs base verdict")
    assert lines[1].split()[-2:] == ["x1.010", "-"]
    assert lines[2].split()[2].endswith("~")
    assert lines[2].split()[-2:] == ["x1.080~", "-"]
    assert lines[3] == "vs base: median of pair ratios against main (0123456789ab), same run"
    assert lines[4].startswith("~ n (warm): noisy: rounds spread")
    assert lines[5].startswith("~ n (warm) vs base: noisy: the 95% interval")
    assert all(len(line) <= 80 for line in lines)


def test_a_budget_within_the_rounds_spread_is_called_noisy() -> None:
    outcome = make_outcome(values=(0.0100, 0.0104, 0.0108, 0.0112), statistic=0.0100, budget=0.0102)
    assert outcome.noise.startswith("noisy: rounds spread 8% >= headroom 2%")
    assert extra_info(outcome)["noise"] == outcome.noise
    assert "baseline" not in extra_info(outcome)


@pytest.mark.slow
def test_under_xdist_workers_share_the_revision_and_the_controller_stores_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = baseline_project(pytester, "baselinexdist")
    pytester.makepyfile(
        test_second="""
        import pytest

        @pytest.mark.import_budget("baselinexdist", warm="10s")
        def test_again():
            pass
        """
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second test")
    cache = pytester.path / "tmp"
    cache.mkdir()
    monkeypatch.setenv("TMPDIR", str(cache))
    # A subprocess on purpose: xdist workers must start from a clean interpreter.
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        "--importcache-baseline=HEAD",
        "--importcache-baseline-fail=200%",
        "--benchmark-json=out.json",
    )
    result.assert_outcomes(passed=2)
    stored = json.loads((repo / "out.json").read_text())["benchmarks"]
    assert {entry["extra_info"]["baseline"]["revision"] for entry in stored} == {"HEAD"}
    # One tree of the repository at HEAD, extracted once for both workers.
    revisions = list(cache.glob("pytest-importcache-*/revisions/*"))
    assert len([path for path in revisions if path.is_dir() and "." not in path.name]) == 1


def test_a_slowdown_against_the_baseline_fails_the_verdict_everywhere() -> None:
    slower = make_outcome(budget=1.0, passed=True, baseline=_baseline(1.5, slower=True))
    assert slower.verdict is False
    assert "| `m` | warm | 10ms | 1s | +99% | **FAIL** |" in markdown_summary([slower], [])
    assert "0 passed, 1 failed" in markdown_summary([slower], [])
    assert extra_info(slower)["passed"] is False


@pytest.mark.slow
def test_the_failure_names_the_import_edge_that_changed(pytester: pytest.Pytester) -> None:
    pytester.makeini(quick_ini(5))  # five rounds a side: the fewest that judge a timed A/B
    write_tree(pytester.path, {"app/__init__.py": "from . import models\n", "app/models.py": ""})
    pytester.makepyfile(TEST_FILE.format(module="app"))
    repo = make_repo(pytester.path, {})
    (repo / "app/models.py").write_text("import asyncio\n" + SLOW)

    result = pytester.runpytest("--importcache-baseline=HEAD")

    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [
            r"import slower than baseline HEAD \(.*\): app \(warm\)",
            r"  what changed most \(head - base\): import edges, then self time:",
            r"    app\.models -> asyncio \(new\): \+.* cumulative",
        ]
    )
    assert "-> asyncio." not in result.stdout.str()


@pytest.mark.slow
def test_a_working_tree_failure_is_not_blamed_on_the_baseline(pytester: pytest.Pytester) -> None:
    repo = baseline_project(pytester, "baselinewtbroken")
    (repo / "baselinewtbroken/__init__.py").write_text("import nosuch_wt\n")
    result = pytester.runpytest("--importcache-baseline=HEAD")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*import_budget('baselinewtbroken'): importing 'baselinewtbroken' raised "
            "ModuleNotFoundError: No module named 'nosuch_wt' (cold round 1 of 5)"
        ]
    )
    result.stdout.no_fnmatch_line("*baseline HEAD*")
    result.stdout.no_fnmatch_line("*at HEAD*")


@pytest.mark.slow
def test_a_baseline_failure_names_the_baseline_revision(pytester: pytest.Pytester) -> None:
    repo = baseline_project(pytester, "baselinebasebroken")
    (repo / "baselinebasebroken/__init__.py").write_text("import nosuch_base\n")
    commit_all(repo, "broken")
    (repo / "baselinebasebroken/__init__.py").write_text("X = 2\n")
    result = pytester.runpytest("--importcache-baseline=HEAD")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*import_budget('baselinebasebroken'): importing *No module named 'nosuch_base' "
            "(cold round 1 of 5, at HEAD (*))"
        ]
    )
    result.stdout.no_fnmatch_line("*HEAD*HEAD*")


@pytest.mark.slow
def test_a_start_up_failure_in_the_working_tree_is_not_blamed_on_the_baseline(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(quick_ini(5))
    write_tree(pytester.path, {"sidecli/__init__.py": "", "sidecli/__main__.py": "X = 1\n"})
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.startup_budget("python -m sidecli", warm="10s")
        def test_cli():
            pass
        """
    )
    repo = make_repo(pytester.path, {})
    (repo / "sidecli/__main__.py").write_text("raise SystemExit(3)\n")
    head_broken = pytester.runpytest("--importcache-baseline=HEAD")
    head_broken.assert_outcomes(failed=1)
    head_broken.stdout.fnmatch_lines(
        ["startup_budget('python -m sidecli'): 'python -m sidecli' exited with exit code 3, not 0*"]
    )
    head_broken.stdout.no_fnmatch_line("*HEAD*")
