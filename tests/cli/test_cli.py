"""The command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from conftest import (
    DURATION,
    FAKE_ROUNDS_CONFTEST,
    MakeTree,
    fake_rounds,
    quick_ini,
    seconds,
    write_tree,
)
from pytest_importcache.cli.cache import format_age, format_bytes
from pytest_importcache.cli.main import SUBCOMMANDS
from pytest_importcache.cli.profile import make_parser as _profile_parser
from pytest_importcache.model.errors import RunError
from pytest_importcache.render.runs import (
    compare_runs,
    describe_storage,
    machine_directories,
)

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


@pytest.mark.slow
def test_profiling_prints_stats_tree_and_a_marker(package_dir: Path) -> None:
    completed = run_cli("clipkg", "--path", str(package_dir), "--rounds", "3")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    # 3.15 (PEP 810): the standard library's own pending lazy imports are listed first.
    header = next(line for line in lines if line.split() == ["median", "min", "max", "rounds"])
    lines = [lines[0], *lines[lines.index(header) :]]
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
    # The marker, then (on a loaded machine) a note that it comes from noisy rounds.
    marker_line = next(line for line in lines if line.startswith("    @pytest.mark.import_budget("))
    assert all("noisy" in line for line in lines[lines.index(marker_line) + 1 :])
    marker = re.fullmatch(
        rf'    @pytest\.mark\.import_budget\("clipkg", cold="({DURATION})", warm="({DURATION})"\)',
        marker_line,
    )
    assert marker is not None, marker_line
    for suggested, row in zip(marker.groups(), lines[2:4], strict=True):
        shown_min = seconds(row.split()[2])
        assert shown_min >= 0.1  # clipkg.heavy sleeps 0.1 s
        # 30% above the minimum, rounded up to two significant digits (shown with three).
        assert 1.3 * shown_min * 0.99 <= seconds(suggested) <= 1.3 * shown_min * 1.11
    assert all(len(line) <= 80 for line in lines)
    assert completed.stderr == ""


@pytest.mark.slow
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


@pytest.mark.slow
def test_progress_prints_a_line_per_round_without_a_terminal(package_dir: Path) -> None:
    completed = run_cli(
        "clipkg", "--path", str(package_dir), "--rounds", "2", "--warmup", "1", "--progress"
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stderr.splitlines()
    assert [re.sub(r"\d+\.\d s$", "N s", line) for line in lines] == [
        f"pytest-importcache: clipkg ({flavour}) {phase}: N s"
        for flavour in ("cold", "warm")
        for phase in ("warm-up round 1 of 1", "round 1 of 2", "round 2 of 2")
    ]
    # Without --progress, a log gets nothing on stderr (tested above: stderr == "").


@pytest.mark.slow
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
        "metric",
        "instructions",
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
        "reused",
    }
    assert warm["rounds"] == len(warm["wall"]) == 2
    assert (warm["metric"], warm["instructions"]) == ("time", [])
    assert warm["median"] >= 0.1
    assert entry["modules_loaded"] > 3
    assert entry["startup_modules"] > 0  # sys, builtins, the importers at least
    assert entry["lazy_modules"] == []
    slowest = entry["slowest"][0]
    assert (slowest["module"], slowest["parent"]) == ("clipkg.heavy", "clipkg")
    assert slowest["cumulative"] >= slowest["self"] >= 0.1
    assert entry["suggested_marker"].endswith("closure=True)")


@pytest.mark.slow
def test_a_missing_module_is_one_line_and_exit_2() -> None:
    completed = run_cli("no_such_module_here")
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith(
        "pytest-importcache: error: cannot find module 'no_such_module_here'"
    )
    # A package that is not installed is the usual cause: say how to measure it.
    assert completed.stderr.endswith(
        "; for a source tree that is not installed, add --path DIR (the directory holding it)\n"
    )


@pytest.mark.slow
def test_a_module_not_in_the_given_path_does_not_hint_at_adding_one(tmp_path: Path) -> None:
    completed = run_cli("no_such_module_here", "--path", str(tmp_path))
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "add --path" not in completed.stderr
    assert completed.stderr.endswith(
        f"; not in --path {tmp_path} either: give the directory that holds the package\n"
    )


@pytest.mark.parametrize("timeout", ["500ms", "90s", "60"])
def test_the_timeout_takes_units_as_the_ini_key_does(timeout: str) -> None:
    parsed = _profile_parser().parse_args(["json", "--timeout", timeout])
    assert parsed.timeout == {"500ms": 0.5, "90s": 90.0, "60": 60.0}[timeout]


@pytest.mark.slow
def test_a_malformed_timeout_is_one_line() -> None:
    completed = run_cli("json", "--timeout", "soon")
    assert completed.returncode == 2
    assert completed.stderr.splitlines()[-1].startswith(
        "pytest-importcache: error: argument --timeout: 'soon' is not a duration"
    )


@pytest.mark.slow
def test_a_path_that_names_the_package_itself_is_pointed_at_its_parent(
    package_dir: Path,
) -> None:
    given = f"{package_dir.name}/clipkg"
    completed = run_cli("clipkg", "--path", given, cwd=package_dir.parent)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.endswith(
        f"; --path {given} names the package itself: give the directory that holds it "
        f"(--path {package_dir.name})\n"
    )


@pytest.mark.parametrize("subcommand", ["", *SUBCOMMANDS])
@pytest.mark.slow
def test_every_help_surface_exits_0(subcommand: str) -> None:
    """``--help`` of the command line and of each subcommand (as the dispatcher knows them)."""
    completed = run_cli(*filter(None, [subcommand]), "--help")
    assert (completed.returncode, completed.stderr) == (0, "")
    prog = " ".join(filter(None, ["pytest-importcache", subcommand]))
    assert completed.stdout.startswith(f"usage: {prog} ")
    if not subcommand:
        # The epilog names every subcommand, and help texts keep their % signs single.
        for name in SUBCOMMANDS:
            assert f"pytest-importcache {name} " in completed.stdout
        assert "95% interval" in completed.stdout
    assert "%%" not in completed.stdout


# Runs the command line's main() in a fresh interpreter, then names every module loaded on stderr.
LIST_MODULES = """\
import sys
from pytest_importcache.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write("\\n".join(sys.modules))
"""


def modules_imported(*args: str) -> set[str]:
    """The modules loaded once ``pytest-importcache ARGS`` has run, in a fresh interpreter."""
    completed = subprocess.run(
        [sys.executable, "-c", LIST_MODULES, *args], capture_output=True, text=True, check=False
    )
    return set(completed.stderr.splitlines())


@pytest.mark.slow
@pytest.mark.parametrize("subcommand", ["", *SUBCOMMANDS])
def test_help_loads_its_own_action_and_neither_the_engine_nor_pytest(subcommand: str) -> None:
    """The dispatcher imports the chosen action's module only; ``--help`` stays light."""
    imported = modules_imported(*filter(None, [subcommand]), "--help")
    own = f"pytest_importcache.cli.{SUBCOMMANDS.get(subcommand, 'profile')}"
    actions = {
        f"pytest_importcache.cli.{name}"
        for name in [*SUBCOMMANDS.values(), "profile", "profile_run", "profile_output"]
    }
    assert imported & actions == {own}
    assert "pytest" not in imported
    if not subcommand:
        assert "pytest_importcache.engine.measurer" not in imported
        # Nor does a usage error of the default action.
        assert "pytest_importcache.engine.measurer" not in modules_imported("--rounds", "0", "json")


@pytest.mark.slow
def test_compare_loads_pytest_only_to_read_a_fail_threshold(tmp_path: Path) -> None:
    """``--fail`` is pytest-benchmark's syntax, read with pytest; a plain compare skips pytest."""
    storage = str(tmp_path / "nothing saved")
    assert "pytest" not in modules_imported("compare", "--storage", storage)
    assert "pytest" in modules_imported("compare", "--storage", storage, "--fail", "median:10%")


@pytest.mark.parametrize(
    "args", [["--rounds", "x", "json"], ["--rounds", "0", "json"], ["--bogus", "json"], []]
)
@pytest.mark.slow
def test_a_bad_option_is_one_line_and_exit_2(args: list[str]) -> None:
    completed = run_cli(*args)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith("pytest-importcache: error: ")


@pytest.mark.slow
def test_the_installed_script_measures_a_stdlib_module() -> None:
    script = Path(sys.executable).with_name("pytest-importcache")
    if not script.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    completed = subprocess.run(
        [str(script), "json", "--rounds", "2"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("json  (Python ")


@pytest.mark.slow
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

# Fixed fake rounds (no interpreter): every round of steady takes 200 ms; in the
# second run it also imports a new submodule taking 400 ms of its own.
STEADY: dict[str, dict[str, object]] = {"steady": {"seconds": 0.2}}
SLOWED: dict[str, dict[str, object]] = {
    "steady": {"seconds": 0.2, "modules": {"steady.extra": 0.4}}
}


SAVED_RUNS_PROJECT = {
    "steady/__init__.py": "",
    "steady/extra.py": "",
    "conftest.py": FAKE_ROUNDS_CONFTEST,
    # Hypothesis' plugin is of no use here; left on, each run would import it afresh.
    "pytest.ini": quick_ini(3),
    "test_steady.py": """\
        import pytest

        @pytest.mark.import_budget("steady", warm="10s")
        def test_steady():
            pass
        """,
}


@pytest.fixture(scope="module")
def saved_runs_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project of ``saved_runs``, built once: two runs of pytest, as a user runs it."""
    project = write_tree(tmp_path_factory.mktemp("saved-runs"), SAVED_RUNS_PROJECT)
    for table in (STEADY, SLOWED):
        fake_rounds(project, table)
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--benchmark-autosave"],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
    return project


@pytest.fixture
def saved_runs(saved_runs_once: Path, tmp_path: Path) -> Path:
    """A project with two saved runs: 0001 (baseline) and 0002 (an import 400 ms slower).

    A fresh copy for each test (copied with the files' times), which may change it.
    """
    return Path(shutil.copytree(saved_runs_once, tmp_path / "project"))


@pytest.mark.slow
def test_compare_shows_the_change_and_the_modules_behind_it(saved_runs: Path) -> None:
    completed = run_cli("compare", cwd=saved_runs)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert re.fullmatch(r"0001_\S+\.json -> 0002_\S+\.json \(min\)", lines[0]), lines[0]
    # 200 ms before; 200 ms + the new module's 400 ms after.
    assert lines[1:4] == [
        "test_steady[steady-warm]: min 200ms -> 600ms (+200%)",
        "    steady -> steady.extra (new): +400ms cumulative",
        "    +400ms steady.extra (new)",
    ]


@pytest.mark.slow
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
        (["compare", "--storage", "nowhere"], "no saved runs to compare: nowhere does not exist"),
        (["compare", "0002"], "is the newest run in"),
        (["json", "--path", "/no/such/dir"], "--path /no/such/dir: not a directory"),
    ],
)
@pytest.mark.slow
def test_errors_are_one_line_and_exit_2(saved_runs: Path, args: list[str], message: str) -> None:
    completed = run_cli(*args, cwd=saved_runs)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert message in completed.stderr


@pytest.mark.slow
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
    assert completed.stdout.splitlines()[0] == "0001_b.json -> 0002_b.json (min)"
    ambiguous = run_cli("compare", "0001", cwd=saved_runs)
    assert ambiguous.returncode == 2
    assert "matches several runs" in ambiguous.stderr


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(package_dir: Path) -> None:
    command = cli_command("clipkg", "--path", str(package_dir), "--rounds", "1")
    # Buffered, as stdout on a pipe is unless PYTHONUNBUFFERED is set: the report
    # reaches the pipe when the command flushes it.
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        errors = process.stderr.read()
    assert process.returncode == 0
    assert b"Traceback" not in errors


@pytest.mark.slow
def test_a_corrupt_run_file_is_named(saved_runs: Path) -> None:
    (run,) = (saved_runs / ".benchmarks").glob("*/0002_*.json")
    run.write_text('{"benchmarks": [')
    completed = run_cli("compare", cwd=saved_runs)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert f"run file {run.relative_to(saved_runs)} is not valid JSON" in completed.stderr


# -- the first argument: a subcommand or a module ----------------------------------------

LAZY_PACKAGE = {
    "lazypkg/__init__.py": """\
        import importlib.util
        import sys

        def lazy(name):
            spec = importlib.util.find_spec(name)
            loader = importlib.util.LazyLoader(spec.loader)
            spec.loader = loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            loader.exec_module(module)
            return module

        decimal = lazy("decimal")
        """,
}


@pytest.mark.slow
def test_lazily_created_modules_and_start_up_are_reported(make_tree: MakeTree) -> None:
    tree = make_tree(LAZY_PACKAGE)
    common = ["lazypkg", "--path", str(tree), "--rounds", "1", "--warmup", "0"]
    text = run_cli(*common)
    assert text.returncode == 0, text.stderr
    header, lazy_line = text.stdout.splitlines()[:2]
    assert header.startswith("lazypkg  (Python ")
    assert " at start-up)" in header
    assert lazy_line == "  created lazily, never executed: decimal"
    as_json = run_cli(*common, "--json")
    assert as_json.returncode == 0, as_json.stderr
    (entry,) = json.loads(as_json.stdout)["modules"]
    assert entry["lazy_modules"] == ["decimal"]
    assert entry["startup_modules"] > 0
    assert f"{entry['startup_modules']} at start-up" in header


@pytest.mark.slow
def test_a_stdlib_module_named_profile_is_measured() -> None:
    completed = run_cli("profile", "--rounds", "1", "--warmup", "0", "--json")
    assert completed.returncode == 0, completed.stderr
    assert [entry["module"] for entry in json.loads(completed.stdout)["modules"]] == ["profile"]


@pytest.mark.slow
def test_a_module_named_like_a_subcommand_is_measured_after_a_double_dash(
    make_tree: MakeTree,
) -> None:
    tree = make_tree({"compare.py": "VALUE = 1\n"})
    completed = run_cli("--path", str(tree), "--rounds", "1", "--json", "--", "compare")
    assert completed.returncode == 0, completed.stderr
    (entry,) = json.loads(completed.stdout)["modules"]
    assert (entry["module"], entry["flavours"]["warm"]["file"].endswith("compare.py")) == (
        "compare",
        True,
    )


@pytest.mark.slow
def test_help_lists_the_subcommands_and_the_double_dash() -> None:
    completed = run_cli("--help")
    assert completed.returncode == 0
    for subcommand in ("compare", "calibrate", "cache", "report", "history", "check"):
        assert f"pytest-importcache {subcommand}" in completed.stdout
    assert "'pytest-importcache -- compare'" in completed.stdout
    assert all(len(line) <= 80 for line in completed.stdout.splitlines())


# -- compare on hand-written runs -----------------------------------------------------------

FULLNAME = "test_a.py::test_a[mylib-warm]"


def fake_run(minimum: object = 0.009, self_seconds: object = 0.004) -> dict[str, Any]:
    """A pytest-benchmark run holding one import entry, as pytest-importcache writes it."""
    return {
        "benchmarks": [
            {
                "name": "test_a[mylib-warm]",
                "fullname": FULLNAME,
                "stats": {"min": minimum, "median": 0.01, "max": 0.02},
                "extra_info": {"module_self_seconds": {"mylib": self_seconds}},
            }
        ]
    }


def save_runs(directory: Path, *runs: dict[str, Any]) -> list[Path]:
    """Write ``runs`` as 0001_x.json, 0002_x.json... into ``directory``, a second apart."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, run in enumerate(runs, start=1):
        path = directory / f"{number:04d}_x.json"
        path.write_text(json.dumps(run))
        stamp = time.time() - 100 + number
        os.utime(path, (stamp, stamp))
        paths.append(path)
    return paths


@pytest.mark.parametrize(
    ("minimum", "shown"), [("fast", '"fast"'), (None, "null"), (True, "true"), (-1, "-1")]
)
@pytest.mark.slow
def test_a_statistic_that_is_not_a_number_names_the_file_and_the_entry(
    tmp_path: Path, minimum: object, shown: str
) -> None:
    # compare reads the budgets' statistic (min) unless --fail names another.
    _, bad = save_runs(tmp_path / ".benchmarks" / "Linux-X", fake_run(), fake_run(minimum))
    completed = run_cli("compare", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr == (
        f"pytest-importcache: error: run file {bad.relative_to(tmp_path)}: entry {FULLNAME!r}: "
        f"stats.min is {shown}, not a non-negative number\n"
    )


def test_a_module_time_that_is_not_a_number_names_the_module() -> None:
    with pytest.raises(RunError) as caught:
        compare_runs(fake_run(), fake_run(self_seconds="x"), "0001", after_name="run file b.json")
    assert str(caught.value) == (
        f"run file b.json: entry {FULLNAME!r}: module_self_seconds['mylib'] is \"x\", "
        "not a non-negative number"
    )


def test_a_missing_statistic_and_a_nameless_entry_name_the_run() -> None:
    no_minimum = fake_run()
    del no_minimum["benchmarks"][0]["stats"]["min"]
    with pytest.raises(
        RunError, match=rf"^the first run: entry {re.escape(repr(FULLNAME))} has no 'min'"
    ):
        compare_runs(no_minimum, fake_run(), "0001")
    nameless = fake_run()
    del nameless["benchmarks"][0]["fullname"]
    with pytest.raises(RunError, match=r"^the second run: import entry 0 \(benchmarks\[0\]\)"):
        compare_runs(fake_run(), nameless, "0001")


@pytest.mark.slow
def test_a_machine_directory_is_accepted_as_storage(tmp_path: Path) -> None:
    machine = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    save_runs(machine, fake_run(0.01), fake_run(0.02))
    completed = run_cli("compare", "--storage", str(machine), "--fail", "min:10%")
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout.splitlines()[0] == "0001_x.json -> 0002_x.json (min)"
    named = run_cli("compare", "0001", "0002", "--storage", str(machine))
    assert named.returncode == 0, named.stderr


@pytest.mark.slow
def test_too_few_runs_names_every_directory_searched(tmp_path: Path) -> None:
    storage = tmp_path / ".benchmarks"
    older = storage / "Linux-CPython-3.11-64bit"
    newer = storage / "Linux-CPython-3.12-64bit"
    save_runs(older, fake_run(), fake_run(), fake_run())
    (newest,) = save_runs(newer, fake_run())
    stamp = time.time()
    os.utime(newest, (stamp, stamp))
    completed = run_cli("compare", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr == (
        "pytest-importcache: error: need two saved runs in one machine directory, and "
        ".benchmarks/Linux-CPython-3.12-64bit (saved last) holds one (found "
        ".benchmarks/Linux-CPython-3.11-64bit: 3 runs, .benchmarks/Linux-CPython-3.12-64bit: "
        "1 run); to compare the runs of .benchmarks/Linux-CPython-3.11-64bit, pass --storage "
        ".benchmarks/Linux-CPython-3.11-64bit\n"
    )


def test_storage_is_described_by_what_each_directory_holds(tmp_path: Path) -> None:
    assert describe_storage(tmp_path / "nowhere") == f"{tmp_path / 'nowhere'} does not exist"
    assert describe_storage(tmp_path) == (
        f"no run file (NNNN_*.json) in {tmp_path} or in its subdirectories"
    )
    (tmp_path / "Linux-A").mkdir()  # no runs: left out
    (run,) = save_runs(tmp_path / "Linux-B", fake_run())
    (tmp_path / "0001_note.txt").write_text("")  # not a run
    assert machine_directories(tmp_path) == {tmp_path / "Linux-B": [run]}
    assert machine_directories(tmp_path / "Linux-B") == {tmp_path / "Linux-B": [run]}
    assert describe_storage(tmp_path) == f"found {tmp_path / 'Linux-B'}: 1 run"


@pytest.mark.slow
def test_no_run_matching_says_what_the_storage_holds(tmp_path: Path) -> None:
    save_runs(tmp_path / ".benchmarks" / "Linux-X", fake_run(), fake_run())
    completed = run_cli("compare", "0007", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "no saved run matches '0007' in .benchmarks (found .benchmarks/Linux-X: 2 runs)" in (
        completed.stderr
    )


# -- the cache subcommand -------------------------------------------------------------------

DAY = 86400.0


def fake_copy(cache: Path, environment: str, name: str, size: int, age: float) -> Path:
    """A package copy laid out as the cache lays it out: <cache>/<environment>/<package>-<hash>/."""
    copy = cache / environment / name
    copy.mkdir(parents=True)
    (copy / "__init__.py").write_bytes(b"#" * size)
    Path(f"{copy}.complete").touch()
    stamp = time.time() - age
    os.utime(copy, (stamp, stamp))
    return copy


@pytest.fixture
def fake_cache(tmp_path: Path) -> Path:
    """Two copies of mylib (one three days old) and one of other, plus things that are no copy."""
    cache = tmp_path / "copies"
    fake_copy(cache, "warm-0123456789abO0-timestamp", "mylib-1a2b3c4d5e6f7a8b", 1500, 3 * DAY)
    fake_copy(cache, "cold-0123456789ab", "mylib-1a2b3c4d5e6f7a8b", 500, 0)
    fake_copy(cache, "cold-0123456789ab", "other-8b7a6f5e4d3c2b1a", 2_500_000, 2 * 3600)
    (cache / "cold-0123456789ab" / "mylib-0000.staging").mkdir()  # being built: no copy
    (cache / "notes").mkdir()  # no environment
    (cache / "warm-x" / "y").mkdir(parents=True)  # a directory the cache did not build
    (cache / "warm-x" / "y" / "file.py").write_text("KEEP = 1\n")
    return cache


@pytest.mark.slow
def test_cache_lists_copies_newest_first_with_bounds_and_total(fake_cache: Path) -> None:
    completed = run_cli("cache", "--dir", str(fake_cache))
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == f"cache: {fake_cache}"
    assert lines[1] == (
        "copies unused for 14 days are removed; at most 3 per package and environment"
    )
    assert lines[2].split() == ["package", "size", "last", "used", "environment"]
    assert [line.split() for line in lines[3:6]] == [
        ["mylib", "500", "B", "just", "now", "cold-0123456789ab"],
        ["other", "2.5", "MB", "2", "h", "cold-0123456789ab"],
        ["mylib", "1.5", "kB", "3", "days", "warm-0123456789abO0-timestamp"],
    ]
    assert lines[6:] == ["3 copies, 2.5 MB"]
    assert all(len(line) <= 80 for line in lines[1:])  # the first holds a path


@pytest.mark.slow
def test_cache_json_lists_every_copy(fake_cache: Path) -> None:
    completed = run_cli("cache", "--dir", str(fake_cache), "--json")
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert (document["schema"], document["cache_dir"]) == (1, str(fake_cache))
    assert (document["max_age_days"], document["max_copies_per_package"]) == (14, 3)
    copies = document["copies"]
    assert [(copy["package"], copy["size_bytes"]) for copy in copies] == [
        ("mylib", 500),
        ("other", 2_500_000),
        ("mylib", 1500),
    ]
    assert copies[2]["environment"] == "warm-0123456789abO0-timestamp"
    assert copies[2]["path"] == str(
        fake_cache / copies[2]["environment"] / "mylib-1a2b3c4d5e6f7a8b"
    )
    assert time.time() - copies[2]["last_used"] == pytest.approx(3 * DAY, abs=3600)
    assert document["total_bytes"] == 2_502_000
    assert "removed" not in document


@pytest.mark.slow
def test_cache_clear_removes_copies_not_in_use(fake_cache: Path) -> None:
    in_use = fake_cache / "cold-0123456789ab" / "other-8b7a6f5e4d3c2b1a"
    with FileLock(f"{in_use}.measure.lock"):
        completed = run_cli("cache", "--dir", str(fake_cache), "--clear")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[-1] == "removed 2 copies, freed 2.0 kB; kept 1 in use"
    assert in_use.is_dir()
    assert not (fake_cache / "cold-0123456789ab" / "mylib-1a2b3c4d5e6f7a8b").exists()
    after = run_cli("cache", "--dir", str(fake_cache), "--clear", "--json")
    document = json.loads(after.stdout)
    assert (document["removed"], document["freed_bytes"], document["kept"]) == (1, 2_500_000, 0)
    assert run_cli("cache", "--dir", str(fake_cache)).stdout.splitlines()[-1] == "no copies"
    # What the cache did not build stays, whatever its folder is named.
    assert (fake_cache / "warm-x" / "y" / "file.py").read_text() == "KEEP = 1\n"
    assert sorted(path.name for path in (fake_cache / "warm-x").iterdir()) == ["y"]


@pytest.mark.slow
def test_cache_of_a_missing_directory_says_so(tmp_path: Path) -> None:
    completed = run_cli("cache", "--dir", str(tmp_path / "none"))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        f"cache: {tmp_path / 'none'} (does not exist)",
        "copies unused for 14 days are removed; at most 3 per package and environment",
        "no copies",
    ]


@pytest.mark.slow
def test_cache_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    completed = run_cli("cache", "--dir", str(tmp_path / "file"))
    assert completed.returncode == 2
    assert (
        completed.stderr
        == f"pytest-importcache: error: --dir {tmp_path / 'file'}: not a directory\n"
    )


@pytest.mark.slow
def test_cache_store_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    completed = run_cli(
        "cache", "--dir", str(tmp_path / "cache"), "--store", str(tmp_path / "file")
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert (
        completed.stderr
        == f"pytest-importcache: error: --store {tmp_path / 'file'}: not a directory\n"
    )


@pytest.mark.slow
def test_the_default_cache_is_the_per_user_one(tmp_path: Path) -> None:
    # TMPDIR points at tmp_path (see private_temp_dir), so the per-user cache is there.
    completed = run_cli("cache", "--json")
    assert completed.returncode == 0, completed.stderr
    assert Path(json.loads(completed.stdout)["cache_dir"]).parent == tmp_path


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (999_950, "1.0 MB"), (12_345_678, "12.3 MB")],
)
def test_sizes_read_in_powers_of_1000(size: int, text: str) -> None:
    assert format_bytes(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "just now"), (120, "2 min"), (7200, "2 h"), (DAY, "1 day"), (15 * DAY, "15 days")],
)
def test_ages_read_coarsely(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


# -- report: the icicle page from saved runs ---------------------------------------------


@pytest.mark.slow
def test_report_draws_the_newest_run_from_storage(saved_runs: Path) -> None:
    completed = run_cli("report", "--output", "out/imports.html", cwd=saved_runs)
    assert completed.returncode == 0, completed.stderr
    assert re.fullmatch(
        r"import trees of 1 measurement \(from 0002_\S+\.json\) written to out/imports\.html\n",
        completed.stdout,
    )
    page = (saved_runs / "out" / "imports.html").read_text(encoding="utf-8")
    assert "<h2>test_steady.py::test_steady: steady</h2>" in page
    assert 'data-name="steady.extra"' in page
    assert "min 600ms · budget 10s · headroom +94% · 3 rounds · 2 modules" in page
    assert "icicle diff" not in page


@pytest.mark.slow
def test_report_against_a_run_draws_the_diff(saved_runs: Path) -> None:
    completed = run_cli("report", "0002", "--against", "0001", "--output", "d.html", cwd=saved_runs)
    assert completed.returncode == 0, completed.stderr
    page = (saved_runs / "d.html").read_text(encoding="utf-8")
    assert re.search(r"warm: change since 0001_\S+\.json", page)
    assert re.search(r'<svg class="box new"[^>]*data-name="steady.extra"', page)


def _strip_trees(run: Path) -> None:
    data = json.loads(run.read_text())
    for entry in data["benchmarks"]:
        entry["extra_info"].pop("import_tree", None)
    run.write_text(json.dumps(data))


@pytest.mark.slow
def test_report_of_a_run_saved_before_trees_is_one_line(saved_runs: Path) -> None:
    (old,) = (saved_runs / ".benchmarks").glob("*/0001_*.json")
    _strip_trees(old)
    for args in (["0001"], ["0002", "--against", "0001"]):
        completed = run_cli("report", *args, "--output", "x.html", cwd=saved_runs)
        assert completed.returncode == 2
        assert completed.stderr.count("\n") == 1, completed.stderr
        assert f"run file {old.relative_to(saved_runs)}: entry " in completed.stderr
        assert "test_steady.py::test_steady[steady-warm]" in completed.stderr
        assert "has no import tree (saved before pytest-importcache stored trees)" in (
            completed.stderr
        )
    assert not (saved_runs / "x.html").exists()
    # compare still reads it, without the edges.
    assert run_cli("compare", cwd=saved_runs).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["0009", "--output", "x.html"], "no saved run matches '0009' in .benchmarks"),
        (["--output", "x.html", "--storage", "nowhere"], "no saved run to report: nowhere"),
        (["--output", "."], "--output .: is a directory"),
        ([], "the following arguments are required: --output"),
    ],
)
@pytest.mark.slow
def test_report_errors_are_one_line(saved_runs: Path, args: list[str], message: str) -> None:
    completed = run_cli("report", *args, cwd=saved_runs)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert message in completed.stderr


@pytest.mark.slow
def test_report_of_a_corrupt_tree_names_the_module(saved_runs: Path) -> None:
    (run,) = (saved_runs / ".benchmarks").glob("*/0002_*.json")
    data = json.loads(run.read_text())
    data["benchmarks"][0]["extra_info"]["import_tree"][0][2] = "slow"
    run.write_text(json.dumps(data))
    completed = run_cli("report", "--output", "x.html", cwd=saved_runs)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert "import_tree: cumulative cost of 'steady.extra' is \"slow\"" in completed.stderr


# -- history: each import over the saved runs --------------------------------------------


@pytest.mark.slow
def test_history_prints_a_table_and_writes_the_charts(saved_runs: Path) -> None:
    completed = run_cli("history", "--output", "h/history.html", cwd=saved_runs)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert re.fullmatch(r"import history: 2 runs in \.benchmarks/\S+", lines[0]), lines[0]
    assert lines[1] == "test_steady[steady-warm] (min)"
    assert lines[3].startswith("  0001 ")
    assert lines[3].endswith(" 200ms")
    assert lines[4].startswith("  0002 ")
    assert lines[4].endswith(" 600ms   +200%  step up")
    assert lines[-1] == "charts of 1 import written to h/history.html"
    page = (saved_runs / "h" / "history.html").read_text(encoding="utf-8")
    assert page.count('<svg class="history"') == 1
    assert 'class="point up"' in page


@pytest.mark.slow
def test_history_of_no_runs_is_one_line(saved_runs: Path, tmp_path: Path) -> None:
    empty = run_cli("history", "--storage", str(tmp_path / "none"), cwd=saved_runs)
    assert empty.returncode == 2
    assert empty.stderr.count("\n") == 1
    assert "no saved runs: " in empty.stderr


@pytest.mark.slow
def test_history_skips_a_corrupt_run_in_one_line_and_shows_the_rest(saved_runs: Path) -> None:
    (run,) = (saved_runs / ".benchmarks").glob("*/0001_*.json")
    run.write_text("not json{")
    corrupt = run_cli("history", "--output", "h.html", cwd=saved_runs)
    assert corrupt.returncode == 0, corrupt.stderr
    assert corrupt.stderr.count("\n") == 1, corrupt.stderr
    assert f"skipped run file {run.relative_to(saved_runs)} is not valid JSON" in corrupt.stderr
    lines = corrupt.stdout.splitlines()
    assert re.fullmatch(r"import history: 1 run in \S+ \(1 unreadable, skipped\)", lines[0])
    assert lines[1] == "test_steady[steady-warm] (min)"
    assert [line.split()[0] for line in lines[3:-1]] == ["0002"]
    assert "1 unreadable, skipped" in (saved_runs / "h.html").read_text(encoding="utf-8")
    # Naming that run is still one line (exit 2).
    for arguments in (("compare", "0001"), ("report", "0001", "--output", "r.html")):
        named = run_cli(*arguments, cwd=saved_runs)
        assert named.returncode == 2, arguments
        assert named.stderr.count("\n") == 1, named.stderr
        assert run.name in named.stderr, arguments


@pytest.mark.slow
@pytest.mark.parametrize(("budget", "status"), [("max_modules = 0", 1), ('warm = "100s"', 0)])
def test_a_reader_that_goes_away_keeps_the_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: str, status: int
) -> None:
    # `pytest-importcache check | head`: a failing check must not exit 0 when head leaves.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    (tmp_path / "pipepkg").mkdir()
    (tmp_path / "pipepkg/__init__.py").write_text("from . import core\n")
    (tmp_path / "pipepkg/core.py").write_text("VALUE = 1\n")
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.importcache]\nbudgets = [{{ module = "pipepkg", rounds = 1, {budget} }}]\n'
    )
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "pytest_importcache", "check"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            check=False,
        )
    finally:
        os.close(write_end)
    assert completed.returncode == status
    assert completed.stderr == ""


@pytest.mark.slow
def test_compare_one_run_file_with_no_numbered_run_beside_it_is_one_line(tmp_path: Path) -> None:
    # As `pytest --benchmark-json=out.json` leaves it: one run, not numbered, alone.
    (tmp_path / "out.json").write_text(json.dumps(fake_run()))
    completed = run_cli("compare", str(tmp_path / "out.json"), cwd=tmp_path)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert f"no numbered run (NNNN_*.json) is beside out.json in {tmp_path}: name the run" in (
        completed.stderr
    )
