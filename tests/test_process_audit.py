"""The fast tier stays free of processes: a test that starts one must be marked slow."""

from __future__ import annotations

import textwrap

import pytest
from process_audit import describe_start
from pytest_benchmark.utils import get_tag

# The inner project registers the audit as the suite's conftest does.
AUDITED_CONFTEST = """
import pytest
from process_audit import ProcessAudit


def pytest_configure(config):
    config.pluginmanager.register(ProcessAudit(), "process-audit")
"""
INI = "[pytest]\nmarkers =\n    slow: starts a process\naddopts = -p no:hypothesispytest\n"


def _audited_run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makeconftest(AUDITED_CONFTEST)
    pytester.makeini(INI)
    pytester.makepyfile(test_inner=textwrap.dedent(source))
    return pytester.runpytest("-p", "no:cacheprovider")


def test_an_unmarked_test_hearing_a_process_start_fails_naming_it(
    pytester: pytest.Pytester,
) -> None:
    # sys.audit raises the very events CPython raises when it starts a process,
    # without starting one: the outer test stays in the fast tier.
    result = _audited_run(
        pytester,
        """
        import sys
        import pytest

        def test_quiet():
            assert True

        def test_popen():
            sys.audit("subprocess.Popen", "git", ["git", "status"], None, None)

        def test_fork():
            sys.audit("os.fork")

        @pytest.fixture
        def shell():
            sys.audit("os.system", b"make all")

        def test_fixture_starts(shell):
            pass

        @pytest.mark.slow
        def test_marked(shell):
            sys.audit("os.posix_spawn", b"/bin/true", [b"/bin/true"], None)
        """,
    )
    result.assert_outcomes(passed=2, failed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_fixture_starts started a process in its setup (os.system: b'make all')*",
            "*test_popen started a process in its call (subprocess.Popen: git status) "
            "but is not marked slow*",
            "*test_fork started a process in its call (os.fork)*",
        ]
    )
    result.stdout.no_fnmatch_line("*test_marked started*")
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.slow
def test_real_process_starts_are_heard(pytester: pytest.Pytester) -> None:
    result = _audited_run(
        pytester,
        """
        import os
        import subprocess
        import pytest

        def test_subprocess():
            subprocess.run(["true"], check=True)

        def test_system():
            os.system("true")

        def test_fork():
            if os.fork() == 0:
                os._exit(0)
            os.wait()

        @pytest.mark.slow
        def test_marked():
            subprocess.run(["true"], check=True)
        """,
    )
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*test_subprocess started a process in its call (subprocess.Popen: true)*",
            "*test_system started a process in its call (os.system: b'true')*",
            "*test_fork started a process in its call (os.fork)*",
        ]
    )


def test_pytest_benchmarks_own_git_probe_is_not_the_tests() -> None:
    # pytest-benchmark's get_tag asks git and hg who the project is, in every session.
    assert get_tag()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("event", "args", "shown"),
    [
        (
            "subprocess.Popen",
            ("git", ["git", "status"], None, None),
            "subprocess.Popen: git status",
        ),
        ("subprocess.Popen", ("sh", "echo hi", None, None), "subprocess.Popen: echo hi"),
        ("os.system", (b"make",), "os.system: b'make'"),
        ("os.exec", (b"/bin/sh", [b"sh"], None), "os.exec: [b'sh']"),
        ("os.fork", (), "os.fork"),
    ],
)
def test_a_start_is_described_by_its_program(
    event: str, args: tuple[object, ...], shown: str
) -> None:
    assert describe_start(event, args) == shown
