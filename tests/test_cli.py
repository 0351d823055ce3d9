"""The command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MakeTree, quick_ini, write_tree

PACKAGE = {
    "clipkg/__init__.py": "from . import heavy, light\n",
    "clipkg/heavy.py": "import time\ntime.sleep(0.1)\nimport decimal\n",
    "clipkg/light.py": "VALUE = 1\n",
}


@pytest.fixture(autouse=True)
def private_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the command line's copy cache in the test's own temporary directory."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def cli_command(*args: str) -> list[str]:
    """The command line ``python -m pytest_importcache ARGS``."""
    return [sys.executable, "-m", "pytest_importcache", *args]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_importcache ARGS`` with stderr not a terminal."""
    return subprocess.run(
        cli_command(*args),
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


@pytest.fixture
def package_dir(make_tree: MakeTree) -> Path:
    """A source tree holding ``clipkg``, not installed."""
    return make_tree(PACKAGE)


def test_profiling_prints_stats_tree_and_a_marker(package_dir: Path) -> None:
    completed = run_cli("clipkg", "--path", str(package_dir), "--rounds", "3")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("clipkg  (Python ")
    assert lines[1].split() == ["median", "min", "max", "rounds"]
    assert lines[2].split()[0] == "cold"
    assert lines[3].split()[0] == "warm"
    assert lines[3].split()[-1] == "3"
    tree = lines[lines.index("  where the time goes (warm; self, cumulative):") + 1 :]
    assert tree[0].split()[-1] == "clipkg"
    assert tree[1].split()[-1] == "clipkg.heavy"
    assert tree[1].index("clipkg.heavy") > tree[0].index("clipkg")
    assert "clipkg.light" not in completed.stdout  # under 2% of the import: pruned
    assert lines[-1].startswith('    @pytest.mark.import_budget("clipkg", cold="1')
    assert all(len(line) <= 80 for line in lines)
    assert completed.stderr == ""


def test_a_terminal_gets_a_progress_bar(package_dir: Path) -> None:
    controller, terminal = pty.openpty()
    try:
        completed = subprocess.run(
            cli_command("clipkg", "--path", str(package_dir), "--rounds", "2"),
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            check=False,
        )
        os.close(terminal)
        shown = b""
        with contextlib.suppress(OSError):  # reading past the end of a pty raises EIO
            while chunk := os.read(controller, 4096):
                shown += chunk
    finally:
        os.close(controller)
    assert completed.returncode == 0
    assert b"clipkg (cold)" in shown
    assert b"[####################] 3/3" in shown
    assert shown.endswith(b"\r")  # the bar is cleared at the end
    assert "[#" not in completed.stdout


def test_json_output_follows_the_documented_schema(package_dir: Path) -> None:
    completed = run_cli(
        "clipkg", "--path", str(package_dir), "--rounds", "2", "--closure", "--json"
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["schema"] == 1
    (entry,) = document["modules"]
    assert entry["module"] == "clipkg"
    assert set(entry["flavours"]) == {"cold", "warm", "closure-cold"}
    warm = entry["flavours"]["warm"]
    assert set(warm) == {
        "rounds",
        "min",
        "max",
        "mean",
        "median",
        "stddev",
        "iqr",
        "wall",
        "cpu",
        "file",
    }
    assert warm["rounds"] == len(warm["wall"]) == 2
    assert warm["median"] >= 0.1
    assert entry["modules_loaded"] > 3
    slowest = entry["slowest"][0]
    assert (slowest["module"], slowest["parent"]) == ("clipkg.heavy", "clipkg")
    assert slowest["cumulative"] >= slowest["self"] >= 0.1
    assert entry["suggested_marker"].endswith("closure=True)")


def test_a_missing_module_is_one_line_and_exit_2() -> None:
    completed = run_cli("no_such_module_here")
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith(
        "pytest-importcache: error: cannot find module 'no_such_module_here'"
    )


@pytest.mark.parametrize(
    "args", [["--rounds", "x", "json"], ["--rounds", "0", "json"], ["--bogus", "json"], []]
)
def test_a_bad_option_is_one_line_and_exit_2(args: list[str]) -> None:
    completed = run_cli(*args)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith("pytest-importcache: error: ")


def test_the_installed_script_measures_a_stdlib_module() -> None:
    script = Path(sys.executable).with_name("pytest-importcache")
    if not script.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    completed = subprocess.run(
        [str(script), "json", "--rounds", "2"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("json  (Python ")


def test_another_interpreter_can_be_measured(package_dir: Path) -> None:
    others = [
        path
        for version in ("3.12", "3.10", "3.13", "3.11")
        for path in Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}")
        if not sys.version.startswith(version)
    ]
    if not others:
        pytest.skip("no second CPython under ~/.pyenv")
    completed = run_cli(
        "clipkg", "--path", str(package_dir), "--rounds", "1", "--python", str(others[0]), "--json"
    )
    assert completed.returncode == 0, completed.stderr
    (entry,) = json.loads(completed.stdout)["modules"]
    assert entry["python"] == str(others[0])
    assert entry["python_version"] != sys.version.split()[0]


# -- compare ----------------------------------------------------------------------------

STEADY = "import time\ntime.sleep(0.2)\n"
SLOWED = "import time\nfrom . import extra\ntime.sleep(0.2)\n"
EXTRA = "import time\ntime.sleep(0.4)\n"


@pytest.fixture
def saved_runs(pytester: pytest.Pytester) -> Path:
    """A project with two saved runs: 0001 (baseline) and 0002 (an import 0.4 s slower)."""
    write_tree(pytester.path, {"steady/__init__.py": STEADY, "steady/extra.py": EXTRA})
    pytester.makeini(quick_ini(3))
    pytester.makepyfile(
        test_steady="""
        import pytest

        @pytest.mark.import_budget("steady", warm="10s")
        def test_steady():
            pass
        """
    )
    pytester.runpytest("--benchmark-autosave").assert_outcomes(passed=1)
    write_tree(pytester.path, {"steady/__init__.py": SLOWED})
    pytester.runpytest("--benchmark-autosave").assert_outcomes(passed=1)
    return pytester.path


def test_compare_shows_the_change_and_the_modules_behind_it(saved_runs: Path) -> None:
    completed = run_cli("compare", cwd=saved_runs)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("0001_")
    assert "-> 0002_" in lines[0]
    assert lines[1].startswith("test_steady[steady-warm]: median 2")
    assert lines[2].startswith("    +4")
    assert lines[2].endswith("ms steady.extra (new)")


def test_compare_fail_exits_1_on_a_regression_and_0_without(saved_runs: Path) -> None:
    regressed = run_cli("compare", "0001", "0002", "--fail=median:10%", cwd=saved_runs)
    assert regressed.returncode == 1
    assert regressed.stdout.splitlines()[-1] == "slower than median:10%: test_steady[steady-warm]"
    same = run_cli("compare", "0002", "0002", "--fail=median:10%", cwd=saved_runs)
    assert same.returncode == 0
    assert same.stdout.splitlines()[-1] == "no import slower than median:10%"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "0009"], "no saved run matches '0009'"),
        (["compare", "--fail=fast"], "--fail: 'fast' is not a threshold"),
        (["compare", "--storage", "nowhere"], "need two saved runs in nowhere, found 0"),
        (["compare", "0002"], "is the newest run in"),
        (["json", "--path", "/no/such/dir"], "--path /no/such/dir: not a directory"),
    ],
)
def test_errors_are_one_line_and_exit_2(saved_runs: Path, args: list[str], message: str) -> None:
    completed = run_cli(*args, cwd=saved_runs)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert message in completed.stderr


def test_compare_stays_within_one_machine_directory(saved_runs: Path) -> None:
    # Runs of another interpreter, saved later, in a directory of their own.
    storage = saved_runs / ".benchmarks"
    (mine,) = [path for path in storage.iterdir() if path.is_dir()]
    other = storage / "Linux-CPython-3.99-64bit"
    other.mkdir()
    first, second = sorted(mine.iterdir())
    (other / "0001_b.json").write_text(first.read_text())
    (other / "0002_b.json").write_text(second.read_text())
    completed = run_cli("compare", cwd=saved_runs)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[0] == "0001_b.json -> 0002_b.json (median)"
    ambiguous = run_cli("compare", "0001", cwd=saved_runs)
    assert ambiguous.returncode == 2
    assert "matches several runs" in ambiguous.stderr


def test_a_closed_pipe_ends_quietly(package_dir: Path) -> None:
    command = cli_command("clipkg", "--path", str(package_dir), "--rounds", "1")
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        errors = process.stderr.read()
    assert process.returncode == 0
    assert b"Traceback" not in errors


def test_a_corrupt_run_file_is_named(saved_runs: Path) -> None:
    (run,) = (saved_runs / ".benchmarks").glob("*/0002_*.json")
    run.write_text('{"benchmarks": [')
    completed = run_cli("compare", cwd=saved_runs)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert f"run file {run.relative_to(saved_runs)} is not valid JSON" in completed.stderr
