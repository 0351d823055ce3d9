"""No round outlives its run: signals to pytest, to an xdist worker and to the command line.

Each test starts a real run whose import hangs, waits until the round's
interpreter is running (the import writes its pid to a file named by an
environment variable), signals the run, and checks that the round is gone
and that no round directory is left in the run's temporary directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import is_alive, quick_ini, write_tree

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")

HANGING = """\
import os, time
with open(os.environ["HANG_PID_FILE"], "w") as handle:
    handle.write(str(os.getpid()))
time.sleep(120)
"""

BUDGET_TEST = """\
import pytest

@pytest.mark.import_budget("hangs", warm="10s")
def test_hangs():
    pass
"""


def _parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])


def _wait_for_round(pid_file: Path, process: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text():
            return int(pid_file.read_text())
        if process.poll() is not None:
            pytest.fail(f"the run ended before its round started:\n{process.communicate()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail("the round never started")


def _start(command: list[str], project: Path, temp: Path) -> subprocess.Popen[str]:
    environment = {**os.environ, "HANG_PID_FILE": str(project / "round.pid"), "TMPDIR": str(temp)}
    environment.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.Popen(
        command,
        cwd=project,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a signal to this run reaches nothing else
    )


def _assert_round_ended(round_pid: int, temp: Path) -> None:
    deadline = time.monotonic() + 10
    while is_alive(round_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_alive(round_pid), "the round outlived its run"
    assert not list(temp.rglob("round-*")), "a round directory was left behind"


@pytest.fixture
def temp(tmp_path: Path) -> Path:
    """The run's TMPDIR, where its rounds keep their temporary directories."""
    directory = tmp_path / "temp"
    directory.mkdir()
    return directory


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose only test budgets an import that hangs."""
    return write_tree(
        tmp_path / "project",
        {
            "hangs.py": HANGING,
            "test_hangs.py": BUDGET_TEST,
            "pytest.ini": quick_ini(10),
        },
    )


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_to_pytest_ends_the_round(project: Path, temp: Path, signal_number: int) -> None:
    # A subprocess on purpose: the run is signalled from outside.
    run = _start(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider"], project, temp
    )
    round_pid = _wait_for_round(project / "round.pid", run)
    os.kill(run.pid, signal_number)
    output, _ = run.communicate(timeout=30)
    assert run.returncode != 0
    assert "INTERNALERROR" not in output
    _assert_round_ended(round_pid, temp)


def test_a_signal_to_an_xdist_worker_ends_its_round(project: Path, temp: Path) -> None:
    pytest.importorskip("xdist")
    run = _start(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider"], project, temp
    )
    try:
        round_pid = _wait_for_round(project / "round.pid", run)
        worker = _parent_of(round_pid)
        assert worker != run.pid
        os.kill(worker, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while is_alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_alive(worker), "the worker did not stop on SIGTERM"
        _assert_round_ended(round_pid, temp)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate()


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_to_the_command_line_ends_the_round(
    project: Path, temp: Path, signal_number: int
) -> None:
    command = [sys.executable, "-m", "pytest_importcache", "hangs", "--path", ".", "--warmup", "0"]
    run = _start(command, project, temp)
    round_pid = _wait_for_round(project / "round.pid", run)
    os.kill(run.pid, signal_number)
    output, _ = run.communicate(timeout=30)
    assert run.returncode == 128 + signal_number, output
    assert output.strip().splitlines() == [
        f"pytest-importcache: {signal.Signals(signal_number).name} received: rounds stopped"
    ]
    _assert_round_ended(round_pid, temp)
