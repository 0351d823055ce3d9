"""The markdown summary: a pinned file for fixed rounds, GITHUB_STEP_SUMMARY, hostile names."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FAKE_ROUNDS_CONFTEST, fake_rounds, make_outcome, quick_ini, tree, write_tree
from pytest_importcache.render.markdown import MAX_ROWS, code, escape, markdown_summary
from pytest_importcache.render.runs import ImportComparison

EXPECTED = Path(__file__).parent.parent / "data" / "markdown_expected.md"

TESTS = """\
import pytest

@pytest.mark.import_budget("steady", warm="10s")
def test_steady():
    pass

@pytest.mark.import_budget("light", cold="5ms", warm="50ms")
def test_light():
    pass

@pytest.mark.import_budget("light", max_modules=5)
def test_count():
    pass

def test_fixture(cold_import_env):
    cold_import_env.measure("steady")
"""

BASELINE: dict[str, dict[str, object]] = {
    "steady": {"seconds": 0.2},
    "light": {"seconds": 0.01},
}
# steady now imports a new submodule of 400 ms; light is unchanged (and overspends).
SLOWED: dict[str, dict[str, object]] = {
    "steady": {"seconds": 0.2, "modules": {"steady.slowpart": 0.4}},
    "light": {"seconds": 0.01},
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Two packages on fake rounds, a passing, a failing, a count-only and a fixture test."""
    write_tree(
        pytester.path,
        {"steady/__init__.py": "", "steady/slowpart.py": "", "light/__init__.py": ""},
    )
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, BASELINE)
    pytester.makeini(quick_ini(3))
    pytester.makepyfile(test_imports=TESTS)
    return pytester


@pytest.mark.slow
def test_the_markdown_of_a_compared_run_matches_the_pinned_file(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    project.runpytest("--benchmark-save=base").assert_outcomes(passed=3, failed=1)
    fake_rounds(project.path, SLOWED)
    step_summary = project.path / "step_summary.md"
    step_summary.write_text("## an earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result = project.runpytest("--benchmark-compare=0001", "--importcache-markdown=out/budgets.md")
    result.assert_outcomes(passed=3, failed=1)
    written = (project.path / "out" / "budgets.md").read_text(encoding="utf-8")
    assert written == EXPECTED.read_text(encoding="utf-8")
    # Appended after what earlier steps wrote, not in its place.
    assert step_summary.read_text(encoding="utf-8") == "## an earlier step\n" + written
    result.stdout.fnmatch_lines([f"import budgets' markdown written to {step_summary}"])


@pytest.mark.slow
def test_under_xdist_the_controller_writes_the_markdown_once(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = project.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result = project.runpytest("-n", "2")
    result.assert_outcomes(passed=3, failed=1)
    text = step_summary.read_text(encoding="utf-8")
    assert text.count("### Import budgets") == 1
    assert "5 measurements: 3 passed, 1 failed, 1 without a budget." in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == 5
    assert rows[0] == "| `light` | cold | 10ms | 5ms | -100% | **FAIL** | 20MB |"


@pytest.mark.slow
def test_without_either_target_nothing_is_written(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = project.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    assert "markdown" not in result.stdout.str()
    assert not list(project.path.glob("**/budgets*.md"))
    assert not list(project.path.glob("*.md"))


@pytest.mark.slow
def test_an_unwritable_step_summary_is_one_line_and_the_run_goes_on(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / "missing" / "summary.md"))
    result = project.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["cannot write the import budgets' markdown to */missing/summary.md*"]
    )


def test_a_markdown_path_that_is_a_directory_is_a_usage_error(project: pytest.Pytester) -> None:
    (project.path / "out").mkdir()
    result = project.runpytest("--importcache-markdown=out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--importcache-markdown on the command line: 'out' is a directory*"]
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a|b", "a\\|b"),
        ("<script>", "\\<script\\>"),
        ("x & y", "x &amp; y"),
        ("`code`", "\\`code\\`"),
        ("two\nlines", "two lines"),
        ("under_score*star", "under\\_score\\*star"),
        ("a-b (c) #d", "a-b (c) #d"),
    ],
)
def test_cells_are_escaped(text: str, shown: str) -> None:
    assert escape(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("mylib.cli", "`mylib.cli`"),
        ("t.py::test[a|b]", "`t.py::test[a\\|b]`"),
        ("odd`name", "odd\\`name"),
        ("two\nlines", "`two lines`"),
    ],
)
def test_names_are_code_spans(text: str, shown: str) -> None:
    assert code(text) == shown


def test_a_long_run_is_cut_with_failures_kept() -> None:
    outcomes = [make_outcome(module=f"m{index}", budget=1.0, passed=True) for index in range(50)]
    outcomes.append(make_outcome(module="late|failure", budget=0.001, passed=False))
    text = markdown_summary(outcomes)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + MAX_ROWS  # header and rule
    assert rows[2].startswith("| `late\\|failure` | warm | 10ms | 1ms | ")
    assert rows[2].endswith(" | **FAIL** |")
    assert f"...and {51 - MAX_ROWS} more measurements." in text
    assert "51 measurements: 50 passed, 1 failed, 0 without a budget." in text


def test_the_figure_formatter_is_a_parameter() -> None:
    text = markdown_summary([make_outcome(budget=0.02, passed=True)], figure=lambda v: f"{v:.3f}")
    assert "| `m` | warm | 0.010 | 0.020 | +50% | PASS |" in text


def test_a_moved_import_is_named_with_its_former_importer() -> None:
    moved = ImportComparison(
        name="test_m[m-warm]",
        source="0001_base.json",
        stat="min",
        before=0.01,
        after=0.02,
        before_self_costs={},
        after_self_costs={},
        module="m",
        before_modules=tree(
            ("json", 0.001, 0.001, "m.a"),
            ("m.a", 0.0, 0.001, "m"),
            ("m.b", 0.0, 0.0, "m"),
            ("m", 0.009, 0.01, None),
        ),
        after_modules=tree(
            ("json", 0.002, 0.002, "m.b"),
            ("m.a", 0.0, 0.0, "m"),
            ("m.b", 0.0, 0.002, "m"),
            ("m", 0.018, 0.02, None),
        ),
    )
    text = markdown_summary([make_outcome()], [moved])
    assert "- `test_m[m-warm]`: `m.b -> json` (moved, was via `m.a`): +1ms cumulative" in text
    assert "(gone)" not in text
