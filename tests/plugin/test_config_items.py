"""pyproject.toml budgets as pytest items: collected, named, judged, selected, locked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAKE_ROUNDS_CONFTEST, fake_rounds, quick_ini, write_tree
from pytest_importcache.model.config import read_budgets
from pytest_importcache.model.result import ImportResult, ModuleTiming
from pytest_importcache.model.stats import compute_stats
from pytest_importcache.pytest.configitems import lock_place

BUDGETS = """\
[tool.importcache]
budgets = [
  { module = "steady", warm = "10s" },
  { module = "heavy", warm = "100ms" },
]
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Fixed rounds: ``steady`` "takes" 20 ms, ``heavy`` 300 ms; two budgets in pyproject.toml."""
    write_tree(
        pytester.path,
        {"steady/__init__.py": "", "heavy/__init__.py": "", "pyproject.toml": BUDGETS},
    )
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"steady": {"seconds": 0.02}, "heavy": {"seconds": 0.3}})
    pytester.makeini(quick_ini())
    return pytester


def _failure_block(output: str, header: str) -> list[str]:
    """The lines of one failure section, below its ``___ header ___`` line."""
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if header in line and "___" in line)
    block = []
    for line in lines[start + 1 :]:
        if line.startswith(("___", "---", "===")):
            break
        block.append(line)
    return block


@pytest.mark.slow
def test_each_budget_is_an_item_failing_as_a_marked_test_fails(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.import_budget("heavy", warm="100ms")
        def test_heavy():
            pass
        """
    )
    result = project.runpytest("-v", "--benchmark-json=bench.json")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "pyproject.toml::importcache[[]steady[]] PASSED*",
            "pyproject.toml::importcache[[]heavy[]] FAILED*",
        ]
    )
    output = result.stdout.str()
    from_config = _failure_block(output, "budgets[1] (module 'heavy')")
    from_marker = _failure_block(output, "test_heavy")
    assert from_config[0] == "import budget exceeded: heavy (warm)"
    assert from_config == from_marker
    summary = output.split("import budgets", 1)[1].splitlines()
    assert [line.split()[0] for line in summary[2:5]] == ["steady", "heavy", "heavy"]
    names = {
        entry["fullname"] for entry in json.loads(Path("bench.json").read_text())["benchmarks"]
    }
    assert "pyproject.toml::importcache[steady][steady-warm]" in names
    assert "test_marked.py::test_heavy[heavy-warm]" in names


@pytest.mark.slow
def test_k_and_lf_select_budgets_by_name(project: pytest.Pytester) -> None:
    project.runpytest("-k", "steady").assert_outcomes(passed=1, deselected=1)
    project.runpytest().assert_outcomes(passed=1, failed=1)
    rerun = project.runpytest("--lf", "-v")
    rerun.assert_outcomes(failed=1)
    rerun.stdout.fnmatch_lines(["pyproject.toml::importcache[[]heavy[]] FAILED*"])
    # Only the budgets: the file as a path, or one budget by node id.
    project.runpytest("pyproject.toml::importcache[steady]").assert_outcomes(passed=1)


@pytest.mark.slow
def test_budgets_run_under_xdist_and_report_once(project: pytest.Pytester) -> None:
    # A subprocess: xdist workers start their own interpreters anyway.
    result = project.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    assert result.stdout.str().count("import budgets ---") == 1
    result.stdout.fnmatch_lines(["*FAILED pyproject.toml::importcache[[]heavy[]]*"])


MALFORMED = """\
[tool.importcache]
budgets = [
  { module = "steady", warm = "10s" },
  { module = "steady", cold = "10s" },
  { module = "heavy", colt = "1s" },
  { module = "other", rounds = "3", warm = "1s" },
  "steady",
  { module = "nosuch", warm = "1s" },
]
"""


@pytest.mark.slow
def test_a_malformed_entry_is_one_line_and_the_others_still_run(
    project: pytest.Pytester,
) -> None:
    (project.path / "pyproject.toml").write_text(MALFORMED)
    result = project.runpytest()
    result.assert_outcomes(passed=1, failed=1, errors=4)
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    for line in [
        "pyproject.toml budgets[1] (module 'steady'): duplicate budget: budgets[0] budgets "
        "'steady' already (merge the two entries)",
        "pyproject.toml budgets[2] (module 'heavy'): unknown key 'colt' (an import budget takes "
        "module, cold, warm, max_modules, forbid, stat, rounds, closure, metric, allow, "
        "max_memory, lazy_imports)",
        "pyproject.toml budgets[3] (module 'other'): rounds='3' is not a whole number >= 1",
        "pyproject.toml budgets[4]: 'steady' is not a table (write "
        '{ module = "mylib", warm = "25ms" })',
    ]:
        assert line in output.splitlines()
    assert any(
        line.startswith(
            "pyproject.toml budgets[5] (module 'nosuch'): import_budget('nosuch'): "
            "cannot find module 'nosuch'"
        )
        for line in output.splitlines()
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "[tool.importcache]\nbudgets = 3\n",
            "pyproject.toml: [[]tool.importcache[]] budgets = 3 is not an array of tables*",
        ),
        (
            '[tool.importcache]\nbudgts = [{ module = "steady", warm = "10s" }]\n',
            "pyproject.toml: [[]tool.importcache[]]: unknown key 'budgts' (expected budgets)",
        ),
        ("[tool]\nimportcache = 3\n", "pyproject.toml: tool.importcache = 3 is not a table"),
    ],
    # Not TOML at all: pytest itself stops at reading the rootdir's pyproject.toml.
    ids=["not an array", "typo", "not a table"],
)
def test_an_unusable_table_is_one_item_erring_and_the_session_goes_on(
    project: pytest.Pytester, text: str, line: str
) -> None:
    (project.path / "pyproject.toml").write_text(text)
    project.makepyfile(test_other="def test_other():\n    pass\n")
    result = project.runpytest("-v")
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["pyproject.toml::importcache[[]tool.importcache[]] ERROR*", line])
    assert "Traceback" not in result.stdout.str()
    assert "Interrupted" not in result.stdout.str()


@pytest.mark.slow
def test_the_lock_is_written_a_new_import_fails_until_it_is_updated(
    project: pytest.Pytester,
) -> None:
    lock = project.path / "importcache.lock"
    project.runpytest("-k", "steady").assert_outcomes(passed=1, deselected=1)
    assert not lock.exists()  # no lock: nothing to check
    project.runpytest("-k", "steady", "--importcache-update-lock").assert_outcomes(
        passed=1, deselected=1
    )
    assert lock.read_text().splitlines()[-4:] == [
        "[steady]",
        f"python = 3.11-{sys.platform}",
        'suggested = warm="26ms"',
        "  steady",
    ]
    fake_rounds(
        project.path,
        {"steady": {"seconds": 0.02, "modules": {"sneaky": 0.001}}, "heavy": {"seconds": 0.3}},
    )
    result = project.runpytest("-k", "steady")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            f"steady loads other modules than importcache.lock says (Python 3.11-{sys.platform}):",
            "    new: sneaky: steady -> sneaky",
            "  if that is intended, update the lock: pytest-importcache check --update*",
        ]
    )
    # Its budget held, yet the item failed: its summary row says so, as check's does.
    result.stdout.re_match_lines([r"steady +warm .* FAIL$"])
    project.runpytest("-k", "steady", "--importcache-update-lock").assert_outcomes(
        passed=1, deselected=1
    )
    assert "  sneaky" in lock.read_text().splitlines()
    project.runpytest("-k", "steady").assert_outcomes(passed=1, deselected=1)
    # Budgets and lines are both checked: a corrupt lock is one line naming the line.
    lock.write_text(lock.read_text().replace(f"python = 3.11-{sys.platform}", "python = eleven"))
    result = project.runpytest("-k", "steady")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.re_match_lines([r"steady +warm .* PASS$"])  # held; the lock was not read
    assert any(
        line.endswith(
            "importcache.lock:6: python = 'eleven': expected Python builds such as 3.11-linux "
            "3.12-linux"
        )
        for line in result.stdout.str().splitlines()
    )


@pytest.mark.slow
def test_budgets_are_skipped_when_measurements_are_disabled(project: pytest.Pytester) -> None:
    project.runpytest("--importcache-disable").assert_outcomes(skipped=2)


@pytest.mark.slow
def test_testpaths_name_the_file_to_collect_budgets(project: pytest.Pytester) -> None:
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    project.makeini(quick_ini() + "testpaths = tests\n")
    project.runpytest().assert_outcomes(passed=1)
    project.makeini(quick_ini() + "testpaths = tests pyproject.toml\n")
    project.runpytest().assert_outcomes(passed=2, failed=1)


@pytest.mark.slow
def test_only_the_rootdir_pyproject_holds_budgets(project: pytest.Pytester) -> None:
    write_tree(project.path, {"sub/pyproject.toml": BUDGETS})
    project.runpytest().assert_outcomes(passed=1, failed=1)


@pytest.mark.slow
def test_start_up_budgets_are_items_too(pytester: pytest.Pytester) -> None:
    """``command =`` and ``code =`` entries are ``startup_budget`` markers (real rounds)."""
    write_tree(
        pytester.path,
        {
            "clipkg/__init__.py": "from . import core\n",
            "clipkg/core.py": "VALUE = 1\n",
            "clipkg/__main__.py": "import clipkg\n",
            "pyproject.toml": """\
                [tool.importcache]
                budgets = [
                  { code = "import clipkg", warm = "10s" },
                  { command = "python -m clipkg", warm = "10s", forbid = ["clipkg.core"] },
                  { command = ["python", "-m", "clipkg"], cold = "10s" },
                ]
                """,
        },
    )
    pytester.makeini(quick_ini())
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pyproject.toml::importcache[[]code: import clipkg[]] PASSED*",
            "pyproject.toml::importcache[[]python -m clipkg[]] FAILED*",
            "pyproject.toml::importcache[[]budgets[[]2[]][]] ERROR*",
            "*start-up budget exceeded: python -m clipkg loaded forbidden modules:",
            "    clipkg.core: clipkg -> clipkg.core",
        ]
    )
    assert (
        "pyproject.toml budgets[2] (command 'python -m clipkg'): duplicate budget: budgets[1] "
        "budgets 'python -m clipkg' already (merge the two entries)" in result.stdout.str()
    )


@pytest.mark.slow
def test_xdist_workers_write_one_lock_together(pytester: pytest.Pytester) -> None:
    names = [f"pkg{index}" for index in range(6)]
    entries = "".join(f'  {{ module = "{name}", warm = "10s" }},\n' for name in names)
    write_tree(
        pytester.path,
        {
            **{f"{name}/__init__.py": "" for name in names},
            "pyproject.toml": f"[tool.importcache]\nbudgets = [\n{entries}]\n",
        },
    )
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {name: {"seconds": 0.01} for name in names})
    pytester.makeini(quick_ini())
    # A subprocess: xdist workers start their own interpreters anyway.
    result = pytester.runpytest_subprocess("-n", "2", "--importcache-update-lock")
    result.assert_outcomes(passed=6)
    text = (pytester.path / "importcache.lock").read_text()
    assert [line for line in text.splitlines() if line.startswith("[")] == [
        f"[{name}]" for name in names
    ]
    pytester.runpytest_subprocess("-n", "2").assert_outcomes(passed=6)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr")
def test_a_lock_that_cannot_be_written_is_one_line_naming_it(project: pytest.Pytester) -> None:
    """An immutable project directory (root writes anywhere else): the update fails in one line."""
    if subprocess.run(["chattr", "+i", str(project.path)], check=False).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        result = project.runpytest(
            "-k", "steady", "--importcache-update-lock", "-p", "no:cacheprovider"
        )
    finally:
        subprocess.run(["chattr", "-i", str(project.path)], check=True)
    result.assert_outcomes(failed=1, deselected=1)
    output = result.stdout.str()
    assert "Traceback" not in output
    assert f"{project.path / 'importcache.lock'}: cannot write: Operation not permitted" in output


def _result(label: str) -> ImportResult:
    """A result of ``mylib`` under this interpreter, loading ``mylib`` and ``json``."""
    modules = {
        "json": ModuleTiming("json", 0.001, 0.001, "mylib"),
        "mylib": ModuleTiming("mylib", 0.001, 0.002, None),
    }
    return ImportResult(
        module="mylib",
        flavour=label,  # type: ignore[arg-type]
        closure=False,
        python=sys.executable,
        python_version="3.15.0",
        file="/env/mylib/__init__.py",
        wall=(0.01, 0.02),
        cpu=(0.01, 0.02),
        stats=compute_stats((0.01, 0.02)),
        modules=modules,
    )


def test_the_lock_place_is_the_budget_and_the_build_lazy_all_apart() -> None:
    (plain, lazy, closure) = read_budgets(
        {
            "budgets": [
                {"module": "mylib", "warm": "1s"},
                {"module": "mylib", "warm": "1s", "lazy_imports": "all"},
                {"module": "mylib", "cold": "1s", "closure": True},
            ]
        }
    )
    results = [_result("cold"), _result("warm")]
    build = f"3.15-{sys.platform}"
    assert lock_place(plain, results) == ("mylib", build)
    assert lock_place(plain, results, "normal") == ("mylib", build)
    # The run's --importcache-lazy-imports=all, or the budget's own.
    assert lock_place(plain, results, "all") == ("mylib lazy_imports=all", build)
    assert lock_place(lazy, results) == ("mylib lazy_imports=all", build)
    assert lock_place(closure, results, "all") == ("mylib closure lazy_imports=all", build)


@pytest.mark.skipif(sys.version_info < (3, 15), reason="lazy_imports=all needs PEP 810 (3.15+)")
@pytest.mark.slow
def test_a_lazy_all_run_is_locked_in_sections_apart(project: pytest.Pytester) -> None:
    """``--importcache-lazy-imports=all`` loads another set: it neither fails nor overwrites."""
    lock = project.path / "importcache.lock"
    project.runpytest("-k", "steady", "--importcache-update-lock").assert_outcomes(
        passed=1, deselected=1
    )
    lazy = ("-k", "steady", "--importcache-lazy-imports=all")
    result = project.runpytest(*lazy)
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*has no [[]steady lazy_imports=all[]] section for Python*"])
    project.runpytest(*lazy, "--importcache-update-lock").assert_outcomes(passed=1, deselected=1)
    headers = [line for line in lock.read_text().splitlines() if line.startswith("[")]
    assert headers == ["[steady]", "[steady lazy_imports=all]"]
    project.runpytest(*lazy).assert_outcomes(passed=1, deselected=1)
    project.runpytest("-k", "steady").assert_outcomes(passed=1, deselected=1)


@pytest.mark.slow
def test_an_overspent_budget_is_locked_and_its_lock_failure_shown_too(
    project: pytest.Pytester,
) -> None:
    """As ``check`` does: both failures reported, and the lock written for every measured budget."""
    lock = project.path / "importcache.lock"
    project.runpytest("--importcache-update-lock").assert_outcomes(passed=1, failed=1)
    headers = [line for line in lock.read_text().splitlines() if line.startswith("[")]
    assert headers == ["[heavy]", "[steady]"]  # heavy is over budget, and locked all the same
    fake_rounds(
        project.path,
        {"steady": {"seconds": 0.02}, "heavy": {"seconds": 0.3, "modules": {"sneaky": 0.001}}},
    )
    result = project.runpytest("-k", "heavy")
    result.assert_outcomes(failed=1, deselected=1)
    block = _failure_block(result.stdout.str(), "budgets[1] (module 'heavy')")
    assert block[0] == "import budget exceeded: heavy (warm)"
    assert (
        f"heavy loads other modules than importcache.lock says (Python 3.11-{sys.platform}):"
        in block
    )
    assert "    new: sneaky: heavy -> sneaky" in block
