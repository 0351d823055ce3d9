"""Start-up rounds: a command from exec to exit, cold and warm, timed and counted, in phases."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from gitrepos import make_repo
from startupworld import SCRIPT, make_venv_with_script

from conftest import FakeRoundRunner, is_alive
from pytest_importcache.engine.against import measure_against
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.engine.processwait import Exited
from pytest_importcache.engine.startup import first_imported_package, startup_spec
from pytest_importcache.engine.startupround import (
    KEPT_OUTPUT,
    PHASES,
    _read_report,
    _timed_points,
    read_tail,
)
from pytest_importcache.model.errors import (
    CommandExitError,
    CommandNotFoundError,
    RoundTimeoutError,
    RunError,
    SpecError,
)
from pytest_importcache.model.spec import MeasurementSpec, StartupCommand


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The python of a venv where pip installed clipkg and its console script ``clipkg-run``."""
    return str(make_venv_with_script(tmp_path_factory.mktemp("startup-venv")))


@pytest.fixture
def measurer(tmp_path: Path) -> Measurer:
    return Measurer(cache_dir=tmp_path / "cache")


def _spec(
    command: str | list[str] | None = None, code: str | None = None, **fields: Any
) -> MeasurementSpec:
    fields.setdefault("rounds", 2)
    fields.setdefault("warmup", 0)
    return startup_spec(StartupCommand.parse(command, code), **fields)


# -- what a command runs, and its package (no process started) ------------------------------


@pytest.mark.parametrize(
    ("code", "package"),
    [
        ("import mylib; mylib.load('x.csv')", "mylib"),
        ("import os, sys\nfrom mylib.io import load", "mylib"),
        ("import json\njson.dumps(1)", "json"),
        ("import sys; import json", "json"),
        ("from . import x\nimport other.sub", "other"),
        ("def f():\n    import late\nimport early", "early"),
        ("pass", None),
        ("import sys", None),
    ],
)
def test_a_snippets_package_is_the_first_it_imports_outside_the_standard_library(
    code: str, package: str | None
) -> None:
    assert first_imported_package(code) == package


def test_a_snippet_that_is_not_python_is_one_line() -> None:
    with pytest.raises(SpecError, match=r"is not valid Python: .*line 1"):
        first_imported_package("import (")


def test_a_snippet_without_a_package_is_refused_with_what_to_do() -> None:
    with pytest.raises(SpecError, match=r"'code: pass' imports no package.*import it"):
        startup_spec(StartupCommand(code="pass"))


@pytest.mark.parametrize(
    "command",
    ["python -X importtime -m json", "python script.py", "python", "python -m 3x"],
)
def test_python_runs_only_a_module_or_code(command: str) -> None:
    with pytest.raises(CommandNotFoundError) as caught:
        startup_spec(StartupCommand.parse(command))
    assert len(str(caught.value).splitlines()) == 1
    assert repr(command) in str(caught.value)


# -- console scripts installed by pip -------------------------------------------------------


@pytest.mark.slow
def test_a_console_script_runs_its_entry_point_cold_and_warm_with_phases(
    venv_python: str, measurer: Measurer, capfd: pytest.CaptureFixture[str]
) -> None:
    results = {}
    for flavour in ("cold", "warm"):
        spec = _spec(f"{SCRIPT} --help", python=venv_python, flavour=flavour)
        assert spec.module == "clipkg"
        results[flavour] = measurer.measure(spec)
    warm = results["warm"]
    assert warm.command == f"{SCRIPT} --help"
    assert [name for name, _ in warm.phases] == list(PHASES)
    for index, value in enumerate(warm.values):
        assert sum(values[index] for _, values in warm.phases) == pytest.approx(value)
    # The entry module's import, and what the command imported while running.
    assert {"clipkg", "clipkg.cli", "clipkg.lazy", "decimal"} <= set(warm.modules)
    assert Path(warm.file).is_relative_to(measurer.environment_dir(spec).parent)
    assert len(warm.peak_memory) == warm.rounds
    # Output is captured, never printed.
    assert "usage: clipkg-run" not in capfd.readouterr().out


@pytest.mark.slow
def test_the_script_sees_its_own_name_as_argv0(
    venv_python: str, measurer: Measurer, tmp_path: Path
) -> None:
    # clipkg-run argv0 FILE writes its sys.argv[0] there.
    seen = tmp_path / "argv0.txt"
    measurer.measure(_spec([SCRIPT, "argv0", str(seen)], python=venv_python, rounds=1))
    argv0 = seen.read_text()
    assert os.path.basename(argv0) == SCRIPT
    # The installer wrote a wrapper: the round runs it, as the user's shell would.
    assert argv0 == str(Path(venv_python).parent / SCRIPT)


@pytest.mark.slow
def test_the_installed_wrapper_runs_and_only_its_own_imports_count(
    venv_python: str, measurer: Measurer
) -> None:
    # pip's wrapper today does not import re (older ones, pip 23 too, did): a round loads re
    # exactly when the installer's wrapper does, never on its own.
    wrapper = Path(venv_python).parent / SCRIPT
    wrapper_imports_re = "import re" in wrapper.read_text()
    plain = measurer.measure(_spec(f"{SCRIPT} --help", python=venv_python, rounds=1))
    assert ("re" in plain.modules) == wrapper_imports_re
    original = wrapper.read_text()
    try:
        wrapper.write_text(original.replace("import sys", "import sys\nimport colorsys", 1))
        edited = measurer.measure(_spec(f"{SCRIPT} --help", python=venv_python, rounds=1))
    finally:
        wrapper.write_text(original)
    assert "colorsys" in edited.modules
    assert "colorsys" not in plain.modules


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_a_cold_start_compiles_what_the_command_imports(
    venv_python: str, measurer: Measurer
) -> None:
    # Counted, not timed: the comparison does not move with the machine's load.
    fields: dict[str, Any] = {"python": venv_python, "metric": "instructions", "rounds": 1}
    cold = measurer.measure(_spec([SCRIPT, "heavy"], flavour="cold", **fields))
    warm = measurer.measure(_spec([SCRIPT, "heavy"], flavour="warm", **fields))
    assert "clipkg.heavy" in cold.modules
    # heavy.py compiles slowly and runs fast: the run phase (where it is imported) shows it.
    cold_run, warm_run = dict(cold.phases)["run"], dict(warm.phases)["run"]
    assert min(cold_run) > 2 * min(warm_run)


@pytest.mark.slow
def test_a_counted_start_up_counts_the_whole_process_the_same_twice(
    venv_python: str, tmp_path: Path
) -> None:
    # Nothing of this worker's sys.path (the repository, the test directories: other
    # tests may write there meanwhile, and a directory's listing is counted).
    measurer = Measurer(cache_dir=tmp_path / "cache", search_path=[])
    spec = _spec(f"{SCRIPT} --help", python=venv_python, metric="instructions", rounds=3)
    result = measurer.measure(spec)
    detailed, first, second = result.instructions
    # Plain rounds (the second on) count exactly the same; the first, which also counts
    # each module, may differ by a few dozen instructions in a whole process of millions.
    assert first == second
    assert abs(detailed - first) <= first * 1e-5
    phases = dict(result.phases)
    assert sum(values[1] for values in phases.values()) == first
    # Interpreter start-up alone is millions of instructions; every phase counted something.
    assert phases["start-up"][0] > 1_000_000
    assert all(values[0] > 0 for values in phases.values())
    assert result.peak_memory == ()
    assert result.modules["decimal"].cumulative_cost > 0


def test_the_final_reports_own_time_is_left_out_of_the_run(tmp_path: Path) -> None:
    # A timed round's last report ends with the point taken once its text was written.
    points = {"first": 10, "harness": 20, "site": 30, "import": 40, "prelim": 50, "end": 90}
    report_path = tmp_path / "report.json"
    report_path.write_text(repr({"points": points}) + "\n700", encoding="utf-8")
    report = _read_report(report_path, "cmd", Exited(0, None, 1000), "", "")
    assert report["points"]["report"] == 700
    phases = dict(_timed_points(report, 0, Exited(0, None, 1000)))
    # The run: the command (50 to 90) and the interpreter's exit (700 to 1000), not the report.
    assert phases["run"] == 40 + 300


# -- python -m and snippets -------------------------------------------------------------------


@pytest.mark.slow
def test_python_m_runs_the_package_main_with_its_package_under_test(
    venv_python: str, measurer: Measurer
) -> None:
    spec = _spec("python -m clipkg --help", python=venv_python)
    assert spec.module == "clipkg"
    result = measurer.measure(spec)
    # runpy runs clipkg/__main__.py as __main__, as python -m does: never as clipkg.__main__.
    assert {"clipkg", "clipkg.cli", "decimal"} <= set(result.modules)
    assert "clipkg.__main__" not in result.modules
    assert dict(result.phases)["import"][0] > 0


@pytest.mark.slow
def test_a_snippet_runs_as_python_c_with_the_first_package_it_imports(
    venv_python: str, measurer: Measurer
) -> None:
    spec = _spec(code="import clipkg.lazy; clipkg.lazy.use()", python=venv_python)
    assert spec.module == "clipkg"
    result = measurer.measure(spec)
    assert result.command == "code: import clipkg.lazy; clipkg.lazy.use()"
    assert {"clipkg", "clipkg.lazy", "decimal"} <= set(result.modules)


@pytest.mark.slow
def test_a_standard_library_module_can_be_started(measurer: Measurer) -> None:
    result = measurer.measure(_spec("python -m json.tool --help"))
    assert result.module == "json"
    assert "argparse" in result.modules


# -- bad inputs, one line each ----------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert len(text.splitlines()) == 1, text
    return text


@pytest.mark.slow
def test_an_unknown_console_script_is_one_line(venv_python: str) -> None:
    with pytest.raises(CommandNotFoundError) as caught:
        _spec("no-such-tool --help", python=venv_python)
    assert "command 'no-such-tool' not found" in _one_line(caught.value)


@pytest.mark.slow
def test_a_program_on_path_that_is_no_console_script_is_one_line(venv_python: str) -> None:
    with pytest.raises(CommandNotFoundError) as caught:
        _spec("ls -l", python=venv_python)
    assert "but no console script" in _one_line(caught.value)


@pytest.mark.slow
def test_an_unexpected_exit_names_the_command_the_status_and_the_last_stderr_lines(
    venv_python: str, measurer: Measurer
) -> None:
    with pytest.raises(CommandExitError) as caught:
        measurer.measure(_spec(f"{SCRIPT} fail", python=venv_python))
    message = _one_line(caught.value)
    assert not isinstance(caught.value, RunError)  # no saved run: the command failed
    assert f"'{SCRIPT} fail' exited with exit code 4, not 0" in message
    assert "second line | it broke badly" in message


@pytest.mark.slow
def test_an_expected_exit_code_is_met(venv_python: str, measurer: Measurer) -> None:
    result = measurer.measure(_spec(f"{SCRIPT} fail", python=venv_python, exit_code=4, rounds=1))
    assert result.rounds == 1


@pytest.mark.slow
def test_a_command_that_waits_for_input_gets_end_of_file_and_says_so(
    venv_python: str, measurer: Measurer
) -> None:
    with pytest.raises(CommandExitError) as caught:
        measurer.measure(_spec(f"{SCRIPT} ask", python=venv_python))
    message = _one_line(caught.value)
    assert "standard input, which is /dev/null" in message
    assert "EOFError" in message


@pytest.mark.slow
def test_a_command_that_hangs_is_killed_at_the_timeout(
    venv_python: str, measurer: Measurer
) -> None:
    with pytest.raises(RoundTimeoutError) as caught:
        measurer.measure(_spec(f"{SCRIPT} hang", python=venv_python, timeout=1.0))
    assert f"'{SCRIPT} hang' did not finish within 1 s" in _one_line(caught.value)


@pytest.mark.slow
def test_a_daemon_the_command_spawns_is_killed_with_the_round(
    venv_python: str, measurer: Measurer, tmp_path: Path
) -> None:
    pid_file = tmp_path / "daemon.pid"
    measurer.measure(_spec([SCRIPT, "daemon", str(pid_file)], python=venv_python, rounds=1))
    pid = int(pid_file.read_text())
    assert not is_alive(pid)


@pytest.mark.slow
def test_megabytes_of_output_are_kept_only_as_a_tail(venv_python: str, measurer: Measurer) -> None:
    result = measurer.measure(_spec([SCRIPT, "flood", "0"], python=venv_python, rounds=1))
    assert result.rounds == 1
    with pytest.raises(CommandExitError) as caught:
        measurer.measure(_spec([SCRIPT, "flood", "3"], python=venv_python, rounds=1))
    message = _one_line(caught.value)
    assert message.endswith("the last flood line")
    assert len(message) < 1000
    assert KEPT_OUTPUT < 6_000_000


# -- same-run comparison against a revision ---------------------------------------------------


@pytest.mark.slow
def test_a_command_is_compared_with_a_git_revision_of_its_package(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {"abpkg/__init__.py": "", "abpkg/__main__.py": "print('hello')\n"},
    )
    (repo / "abpkg/__main__.py").write_text("import time\ntime.sleep(1.0)\nprint('hello')\n")
    measurer = Measurer(cache_dir=tmp_path / "cache", search_path=[str(repo), *sys.path])
    spec = _spec("python -m abpkg", rounds=5)

    comparison = measure_against(measurer, spec, "HEAD")

    assert comparison.head.command == comparison.base.command == "python -m abpkg"
    # The base runs the revision's __main__ (no sleep): the head, a second more, is far slower.
    assert comparison.slower(0.5)
    assert min(comparison.head.values) > min(comparison.base.values) + 0.5
    assert os.path.realpath(comparison.base.file) != os.path.realpath(comparison.head.file)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("at_revision", "missing"),
    [
        ({}, "entry point abcli.cli:main: no module abcli.cli"),
        ({"abcli/cli.py": "def other():\n    return 0\n"}, "abcli.cli:main: no attribute main"),
    ],
)
def test_an_entry_point_missing_at_the_revision_is_one_line(
    tmp_path: Path, at_revision: dict[str, str], missing: str
) -> None:
    repo = make_repo(tmp_path / "repo", {"abcli/__init__.py": "", **at_revision})
    (repo / "abcli" / "cli.py").write_text("def main():\n    return 0\n")
    info = tmp_path / "site" / "abcli_dist-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: abcli-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[console_scripts]\nabcli-run = abcli.cli:main\n")
    search_path = [str(repo), str(tmp_path / "site"), *sys.path]
    measurer = Measurer(cache_dir=tmp_path / "cache", search_path=search_path)
    spec = _spec("abcli-run", rounds=1, import_path=tuple(search_path))
    assert measurer.measure(spec).rounds == 1  # the working tree has it
    with pytest.raises(CommandNotFoundError) as caught:
        measure_against(measurer, spec, "HEAD")
    message = _one_line(caught.value)
    assert missing in message
    assert "at HEAD (" in message
    assert "come from the installed distribution" in message


def test_a_command_spec_reaches_the_round_runner_and_its_phases_the_result(
    tmp_path: Path,
) -> None:
    runner = FakeRoundRunner([0.040])
    measurer = Measurer(cache_dir=tmp_path / "cache", round_runner=runner)
    # Cold: a warm copy would start compileall.
    result = measurer.measure(_spec("python -m json.tool --help", rounds=3, flavour="cold"))
    assert result.command == "python -m json.tool --help"
    assert [name for name, _ in result.phases] == list(PHASES)
    assert dict(result.phases)["run"] == (0.010,) * 3
    assert result.peak_memory == (20_000_000,) * 3
    # An import spec does not pass the command's arguments: import-only runners keep working.
    import_spec = MeasurementSpec("json", flavour="cold", rounds=1, warmup=0)
    assert measurer.measure(import_spec).command is None


@pytest.mark.slow
def test_a_counted_start_up_is_reused_until_its_package_changes(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "storedpkg").mkdir(parents=True)
    (tree / "storedpkg/__init__.py").write_text("")
    main = tree / "storedpkg/__main__.py"
    main.write_text("import decimal\n")
    measurer = Measurer(cache_dir=tmp_path / "cache", search_path=[str(tree), *sys.path])
    spec = _spec("python -m storedpkg", metric="instructions", rounds=1)

    first = measurer.measure(spec)
    again = measurer.measure(spec)
    main.write_text("import decimal, fractions\n")
    changed = measurer.measure(spec)

    assert first.reused is None
    assert again.reused is not None
    assert again.instructions == first.instructions
    assert again.phases == first.phases
    assert changed.reused is None
    assert changed.instructions[0] > first.instructions[0]


@pytest.mark.slow
def test_a_counted_console_script_is_counted_again_when_its_wrapper_changes(
    venv_python: str, tmp_path: Path
) -> None:
    measurer = Measurer(cache_dir=tmp_path / "cache")
    spec = _spec(f"{SCRIPT} --help", python=venv_python, metric="instructions", rounds=1)
    wrapper = Path(venv_python).parent / SCRIPT
    original = wrapper.read_text()
    first = measurer.measure(spec)
    try:
        wrapper.write_text(original.replace("import sys", "import sys\nimport colorsys", 1))
        changed = measurer.measure(spec)
    finally:
        wrapper.write_text(original)
    assert first.reused is None
    assert changed.reused is None
    assert "colorsys" in changed.modules


def test_only_the_tail_of_a_commands_output_is_read(tmp_path: Path) -> None:
    output = tmp_path / "stderr.txt"
    output.write_text("".join(f"line {number}\n" for number in range(200_000)))
    tail = read_tail(output, limit=1000)
    assert len(tail) <= 1000
    assert tail.startswith("line ")  # cut at a line's start, not inside one
    assert tail.endswith("line 199999\n")
    assert read_tail(tmp_path / "missing.txt") == ""


@pytest.mark.slow
def test_a_command_runs_where_the_measurement_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    (tree / "wherepkg").mkdir(parents=True)
    (tree / "wherepkg/__init__.py").write_text("")
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    monkeypatch.chdir(project)
    measurer = Measurer(cache_dir=tmp_path / "cache", search_path=[str(tree), *sys.path])
    code = "import os, sys, wherepkg\nsys.exit(0 if os.path.isdir('src') else 9)"
    measurer.measure(_spec(code=code, rounds=1))  # exit 9 would raise CommandExitError
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CommandExitError, match="exit code 9"):
        measurer.measure(_spec(code=code, rounds=1))
