"""``pytest-importcache startup -- COMMAND``: a start-up profiled from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gitrepos import make_repo

from conftest import MakeTree

MAIN_PACKAGE = {
    "startpkg/__init__.py": "",
    "startpkg/__main__.py": "import decimal\nprint('started')\n",
}


@pytest.fixture(autouse=True)
def private_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the command line's copy cache in the test's own temporary directory."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_importcache startup ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "startup", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_a_command_is_profiled_with_phases_memory_tree_and_a_marker(make_tree: MakeTree) -> None:
    tree = make_tree(MAIN_PACKAGE)
    completed = run_cli("--rounds", "2", "--path", str(tree), "--", "python", "-m", "startpkg")
    assert (completed.returncode, completed.stderr) == (0, "")
    out = completed.stdout
    assert out.startswith("python -m startpkg  (Python ")
    assert "package under test startpkg" in out
    assert "started" not in out  # the command's own output is captured, not shown
    for label in ("cold", "warm"):
        assert f"    {label:<11} start-up " in out
    assert ", site " in out
    assert ", import " in out
    assert ", run " in out
    assert "peak memory (warm): " in out
    assert "bare interpreter " in out
    assert "decimal" in out
    assert '@pytest.mark.startup_budget("python -m startpkg", cold="' in out


@pytest.mark.slow
def test_the_json_document_holds_phases_and_memory(make_tree: MakeTree) -> None:
    tree = make_tree(MAIN_PACKAGE)
    completed = run_cli(
        "--json", "--rounds", "2", "--path", str(tree), "--code", "import startpkg.__main__"
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["command"] == "code: import startpkg.__main__"
    assert document["package"] == "startpkg"
    assert document["bare_peak_memory"] > 0
    warm = document["flavours"]["warm"]
    assert list(warm["phases"]) == ["start-up", "site", "import", "run"]
    assert len(warm["peak_memory"]) == warm["rounds"] == 2
    assert warm["peak_memory_max"] == max(warm["peak_memory"])
    assert "decimal" in {row["module"] for row in document["slowest"]}
    assert document["suggested_marker"].startswith("@pytest.mark.startup_budget(code=")


@pytest.mark.slow
def test_against_a_revision_shows_the_ratio_and_fails_on_a_slowdown(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", dict(MAIN_PACKAGE))
    (repo / "startpkg/__main__.py").write_text("import time\ntime.sleep(0.15)\n")
    completed = run_cli(
        "--rounds", "5", "--path", str(repo), "--against", "HEAD", "--fail", "20%",
        "--", "python", "-m", "startpkg",
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert "against HEAD" in completed.stdout
    assert "FAIL: warm is more than 20% slower" in completed.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((), "give the command after --"),
        (("--code", "pass", "--", "python"), "and not both"),
        (("--", "no-such-tool-xyz"), "command 'no-such-tool-xyz' not found"),
        (("--code", "pass"), "imports no package"),
        (("--", "python", "-X", "dev", "-m", "json"), "runs python with -m MODULE or -c CODE"),
        (("--fail", "5%", "--", "python", "-m", "json"), "--fail needs --against"),
        (("--exit-code", "256", "--", "python", "-m", "json"), "an exit status is 0 to 255"),
        (("--exit-code", "-1", "--", "python", "-m", "json"), "an exit status is 0 to 255"),
        (("--", "python2", "-m", "json"), "not the interpreter under test"),
        (("--", "/no/such/python3.9", "-m", "json"), "not the interpreter under test"),
        (("--", ""), "a command's first word must name a program"),
        (("--", "no-such-tool-xyz", ""), "command 'no-such-tool-xyz' not found"),
        (("--code", ""), "--code: the snippet is empty"),
        (("--code", " \n"), "--code: the snippet is empty"),
        (
            ("--", "python", "-m", "nosuchpkg"),
            "; for a source tree that is not installed, add --path",
        ),
        (
            ("--path", ".", "--", "python", "-m", "nosuchpkg"),
            "; not in --path . either: give the directory that holds the package",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(arguments: tuple[str, ...], message: str) -> None:
    completed = run_cli(*arguments)
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert len(completed.stderr.splitlines()) == 1
    assert message in completed.stderr


@pytest.mark.slow
def test_a_command_that_fails_is_one_line_naming_its_stderr(make_tree: MakeTree) -> None:
    tree = make_tree(
        {"badpkg/__init__.py": "", "badpkg/__main__.py": "raise SystemExit('no config found')\n"}
    )
    completed = run_cli("--rounds", "1", "--path", str(tree), "--", "python", "-m", "badpkg")
    assert completed.returncode == 2
    assert len(completed.stderr.splitlines()) == 1
    assert "exited with exit code 1, not 0" in completed.stderr
    assert "no config found" in completed.stderr


@pytest.mark.slow
def test_the_interpreters_path_is_shown_as_python(make_tree: MakeTree) -> None:
    tree = make_tree(MAIN_PACKAGE)
    completed = run_cli(
        "--json", "--rounds", "1", "--path", str(tree), "--", sys.executable, "-m", "startpkg"
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["command"] == "python -m startpkg"
    assert document["suggested_marker"].startswith(
        '@pytest.mark.startup_budget("python -m startpkg"'
    )


@pytest.mark.slow
def test_check_reports_a_failing_command_as_a_failed_budget_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "badpkg").mkdir()
    (tmp_path / "badpkg" / "__init__.py").write_text("")
    (tmp_path / "badpkg" / "__main__.py").write_text("raise SystemExit('no config found')\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.importcache]\nbudgets = [{ command = "python -m badpkg", warm = "10s" }]\n'
    )
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "check", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 1, completed.stderr
    (budget,) = json.loads(completed.stdout)["budgets"]
    assert budget["passed"] is False
    assert len(budget["failure"].splitlines()) == 1
    assert "exited with exit code 1, not 0" in budget["failure"]
    assert "no config found" in budget["failure"]
