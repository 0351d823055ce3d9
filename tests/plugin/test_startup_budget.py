"""The ``startup_budget`` marker through real pytest sessions: python -m, code=, exit codes."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gitrepos import make_repo
from startupworld import SCRIPT, build_wheel

from conftest import quick_ini, run_tests, write_tree
from pytest_importcache.cli.main import main

PACKAGES = {
    # Far above a 20ms budget, far below 10s, on any machine: the run after the import sleeps.
    "hello/__init__.py": "",
    "hello/__main__.py": (
        "import sys\nimport time\n\ntime.sleep(0.15)\nprint('hello')\n"
        "if len(sys.argv) > 1:\n"
        "    sys.stderr.write('first line\\nbad argument ' + sys.argv[1] + '\\n')\n"
        "    sys.exit(int(sys.argv[1]))\n"
    ),
    "lightpkg/__init__.py": "from . import helper\n",
    "lightpkg/helper.py": "import decimal\n",
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project with a ``python -m`` package and a light package, from its root."""
    write_tree(pytester.path, PACKAGES)
    pytester.makeini(quick_ini())
    return pytester


@pytest.mark.slow
def test_a_command_is_timed_from_exec_to_exit_with_its_phases(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.startup_budget("python -m hello", warm="20ms")
        def test_hello_is_fast():
            pass

        @pytest.mark.startup_budget(["python", "-m", "hello"], cold="10s", warm="10s")
        def test_hello_is_not_slow():
            pass
        """,
        "--benchmark-json=out.json",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines(
        [
            r"start-up budget exceeded: python -m hello \(warm\)",
            r"  min \d+(\.\d+)?ms > budget 20ms",
            r"  phases \(median of each\): start-up \S+, site \S+, import \S+, run \S+",
        ]
    )
    result.stdout.re_match_lines(
        [
            r"python -m hello +warm +\S+ms~? +20ms .* FAIL",
            r"python -m hello +cold +\S+ms~? +10s .* PASS",
            r"python -m hello +warm +\S+ms~? +10s .* PASS",
        ]
    )
    entries = json.loads((project.path / "out.json").read_text())["benchmarks"]
    names = {entry["name"]: entry for entry in entries}
    assert set(names) == {
        "test_hello_is_fast[python_-m_hello-warm]",
        "test_hello_is_not_slow[python_-m_hello-cold]",
        "test_hello_is_not_slow[python_-m_hello-warm]",
    }
    warm = names["test_hello_is_fast[python_-m_hello-warm]"]
    assert warm["group"] == "startup python -m hello"
    info = warm["extra_info"]
    assert (info["command"], info["module"]) == ("python -m hello", "hello")
    assert list(info["phases"]) == ["start-up", "site", "import", "run"]
    assert min(info["phases"]["run"]) > 0.1
    assert info["peak_memory"] > 0
    assert info["bare_peak_memory"] > 0


@pytest.mark.slow
def test_an_unexpected_exit_status_fails_with_the_last_stderr_lines(
    project: pytest.Pytester,
) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.startup_budget("python -m hello 3", warm="10s")
        def test_exits_badly():
            pass

        @pytest.mark.startup_budget("python -m hello 3", warm="10s", exit_code=3)
        def test_exits_as_told():
            pass
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["startup_budget('python -m hello 3'): *exit code 3, not 0*bad argument 3*"]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.slow
def test_a_snippet_counts_every_module_the_process_loaded(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.startup_budget(code="import lightpkg", forbid=["decimal"])
        def test_no_decimal():
            pass

        @pytest.mark.startup_budget(code="import lightpkg", allow=["lightpkg*"], max_memory="1GB")
        def test_only_the_standard_library():
            pass
        """,
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "start-up budget exceeded: code: import lightpkg loaded forbidden modules:",
            "    decimal: lightpkg -> lightpkg.helper -> decimal",
        ]
    )


@pytest.mark.slow
def test_stacked_import_and_startup_markers_each_measure(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("lightpkg", warm="10s")
        @pytest.mark.startup_budget(code="import lightpkg", warm="10s")
        @pytest.mark.startup_budget("python -m hello", max_modules=1000)
        def test_all_three():
            pass
        """,
    )
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines(
        [
            r"lightpkg +warm .* PASS",
            r"code: import lightpkg +warm .* PASS",
            r"python -m hello +warm +- .* PASS",
        ]
    )


@pytest.mark.slow
def test_an_unknown_command_fails_its_test_in_one_line(project: pytest.Pytester) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.startup_budget("no-such-cli --help", warm="1s")
        def test_unknown():
            pass

        @pytest.mark.startup_budget(code="x = 1", warm="1s")
        def test_no_package():
            pass

        def test_the_session_goes_on():
            pass
        """,
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "startup_budget('no-such-cli --help'): command 'no-such-cli' not found*",
            "startup_budget('code: x = 1'): *imports no package*",
        ]
    )
    output = result.stdout.str()
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output


@pytest.mark.slow
def test_a_saved_start_up_run_is_read_by_pytest_benchmark_compare(
    project: pytest.Pytester,
) -> None:
    source = """
        import pytest

        @pytest.mark.startup_budget("python -m hello", warm="10s")
        def test_hello():
            pass
        """
    run_tests(project, source, "--benchmark-autosave").assert_outcomes(passed=1)
    run_tests(project, source, "--benchmark-autosave").assert_outcomes(passed=1)
    compared = project.run("pytest-benchmark", "compare", "0001", "0002")
    assert compared.ret == 0
    compared.stdout.fnmatch_lines(["*test_hello[[]python_-m_hello-warm[]] (0001*"])
    compared.stdout.fnmatch_lines(["*test_hello[[]python_-m_hello-warm[]] (0002*"])
    # pytest-importcache's own report reads the saved run back, command and all.
    (saved,) = sorted(Path(project.path, ".benchmarks").glob("*/0002_*.json"))
    assert main(["report", str(saved), "--output", str(project.path / "r.html")]) == 0
    assert "python -m hello" in (project.path / "r.html").read_text()


@pytest.mark.slow
def test_a_command_is_compared_with_a_git_revision_in_the_same_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(quick_ini(5))  # five rounds a side: the fewest that judge a timed A/B
    write_tree(pytester.path, {"abcli/__init__.py": "", "abcli/__main__.py": "X = 1\n"})
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.startup_budget("python -m abcli", warm="10s")
        def test_cli():
            pass
        """
    )
    repo = make_repo(pytester.path, {})
    (repo / "abcli/__main__.py").write_text("import time\ntime.sleep(0.2)\n")
    result = pytester.runpytest("--importcache-baseline=HEAD")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "start-up slower than baseline HEAD (*): python -m abcli (warm)",
            "  ratio x* (median of pair ratios, 95% CI *-*)",
        ]
    )
    result.stdout.fnmatch_lines(["python -m abcli *warm * 10s * x* FAIL"])


@pytest.mark.slow
def test_under_xdist_start_ups_travel_to_the_controller_and_are_stored_once(
    project: pytest.Pytester,
) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.startup_budget("python -m hello", warm="10s", max_memory="1GB")
        def test_hello():
            pass

        @pytest.mark.startup_budget(code="import lightpkg", warm="10s")
        def test_snippet():
            pass
        """,
        "-n",
        "2",
        "--benchmark-json=out.json",
    )
    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines([r"peak memory, highest round \(a bare interpreter: .*\):"])
    entries = json.loads((project.path / "out.json").read_text())["benchmarks"]
    assert sorted(entry["name"] for entry in entries) == [
        "test_hello[python_-m_hello-warm]",
        "test_snippet[code:_import_lightpkg-warm]",
    ]
    for entry in entries:
        assert list(entry["extra_info"]["phases"]) == ["start-up", "site", "import", "run"]
        assert entry["extra_info"]["peak_memory"] > 0


def test_disabled_measurements_skip_start_up_budgets_but_not_malformed_ones(
    project: pytest.Pytester,
) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.startup_budget("python -m hello", warm="10s")
        def test_hello():
            pass

        @pytest.mark.startup_budget("python -m hello", warm="fast")
        def test_malformed():
            pass
        """,
        "--importcache-disable",
    )
    result.assert_outcomes(skipped=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*startup_budget('python -m hello'): warm='fast' is not a duration*"]
    )


@pytest.mark.slow
def test_a_pip_installed_console_script_is_run_through_its_entry_point(
    pytester: pytest.Pytester,
) -> None:
    # pip installs the script's distribution into a folder on the project's pythonpath.
    site = pytester.path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(build_wheel(pytester.mkdir("wheel"))),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    pytester.makeini(quick_ini().replace("pythonpath = .", "pythonpath = . site"))
    result = run_tests(
        pytester,
        f"""
        import pytest

        @pytest.mark.startup_budget("{SCRIPT} --help", warm="10s", allow=["clipkg", "clipkg.*"])
        def test_help():
            pass

        @pytest.mark.startup_budget("{SCRIPT} --help", max_modules=1, forbid=["decimal"])
        def test_help_is_tiny():
            pass

        @pytest.mark.startup_budget("{SCRIPT} fail", warm="10s")
        def test_fails():
            pass
        """,
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            f"start-up budget exceeded: {SCRIPT} --help loaded * modules > max_modules=1",
            "*",
            f"start-up budget exceeded: {SCRIPT} --help loaded forbidden modules:",
            # Imported while the command ran, after the entry module's import.
            "    decimal: *clipkg.lazy -> decimal",
        ]
    )
    result.stdout.fnmatch_lines([f"startup_budget('{SCRIPT} fail'): *exit code 4*it broke badly*"])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_a_counted_start_up_is_judged_in_instructions_and_named_apart(
    project: pytest.Pytester,
) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.startup_budget(code="import lightpkg", warm="1M", metric="instructions")
        def test_counted():
            pass
        """,
        "--benchmark-json=out.json",
    )
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [
            r"start-up budget exceeded: code: import lightpkg \(warm instructions\)",
            r"  min \d+(\.\d+)?M > budget 1M",
            r"  phases \(median of each\): start-up \S+, site \S+, import \S+, run \S+",
        ]
    )
    (entry,) = json.loads((project.path / "out.json").read_text())["benchmarks"]
    assert entry["name"] == "test_counted[code:_import_lightpkg-warm-instructions]"
    assert entry["extra_info"]["peak_memory"] is None  # a count has no peak of its own


def test_the_look_ahead_resolves_only_counted_start_up_budgets(
    pytester: pytest.Pytester,
) -> None:
    """Timed budgets are measured in the test's own call: resolving them ahead is waste."""
    from pytest_importcache.engine.startup import resolve_target  # noqa: PLC0415
    from pytest_importcache.pytest.markers import counted_specs  # noqa: PLC0415
    from pytest_importcache.pytest.options import Settings  # noqa: PLC0415

    item = pytester.getitem(
        """
        import pytest

        @pytest.mark.startup_budget("python -m json.tool --lookahead-timed", warm="10s")
        @pytest.mark.startup_budget(
            "python -m json.tool --lookahead-counted", warm="1G", metric="instructions"
        )
        def test_func():
            pass
        """
    )
    resolve_target.cache_clear()
    specs = counted_specs(item, Settings())
    assert [(spec.metric, spec.command.argv[-1]) for spec in specs if spec.command] == [
        ("instructions", "--lookahead-counted")
    ]
    assert resolve_target.cache_info().currsize == 1  # the counted one only


@pytest.mark.slow
def test_snippets_that_begin_alike_get_names_of_their_own(project: pytest.Pytester) -> None:
    shared = "import lightpkg; x = [" + "1, " * 20
    result = run_tests(
        project,
        f"""
        import pytest

        @pytest.mark.startup_budget(code="{shared}2]", warm="10s")
        @pytest.mark.startup_budget(code="{shared}3]", warm="10s")
        @pytest.mark.startup_budget(code="import lightpkg", warm="10s")
        def test_alike():
            pass
        """,
        "--benchmark-json=out.json",
    )
    result.assert_outcomes(passed=1)
    names = sorted(
        entry["name"] for entry in json.loads((project.path / "out.json").read_text())["benchmarks"]
    )
    assert "test_alike[code:_import_lightpkg-warm]" in names  # a short snippet's name as before
    # Each long one is named by its own snippet, not by its place (pytest-benchmark's "-2").
    for last in "23":
        digest = hashlib.sha256(f"{shared}{last}]".strip().encode()).hexdigest()[:8]
        assert any(name.endswith(f"..._{digest}-warm]") for name in names), names
