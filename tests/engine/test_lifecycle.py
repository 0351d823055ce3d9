"""No round outlives its run: signals to pytest, to an xdist worker and to the command line.

Each test starts a real run whose import hangs, waits until the round's
interpreter is running (the import writes its pid to a file named by an
environment variable), signals the run, and checks that the round is gone
and that no round directory is left in the run's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import is_alive, quick_ini, write_tree
from pytest_importcache.engine.callgrind import find_valgrind

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc"),
]

# The pid is written whole and renamed into place: a reader never sees part of it.
HANGING = """\
import os, time
with open(os.environ["HANG_PID_FILE"] + ".part", "w") as handle:
    handle.write(str(os.getpid()))
os.replace(os.environ["HANG_PID_FILE"] + ".part", os.environ["HANG_PID_FILE"])
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
        if pid_file.exists():
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


# Each import writes its pid atomically (a whole file renamed into place), so a
# reader never sees a half-written pid, then sleeps far past the test's bound.
HANGING_NAMED = """\
import os, time
directory = os.environ["HANG_PID_DIR"]
temporary = os.path.join(directory, f".{__name__}.{os.getpid()}")
with open(temporary, "w") as handle:
    handle.write(str(os.getpid()))
os.replace(temporary, os.path.join(directory, f"{__name__}.pid"))
time.sleep(60)
"""

# Counted rounds take no measurement lock, so both workers are in a round at once; with
# fewer than two tests per worker, xdist deals the tests round robin: one each.
TWO_BUDGETS_TEST = """\
import pytest

@pytest.mark.import_budget("hangs_a", warm="1G", metric="instructions")
def test_a():
    pass

@pytest.mark.import_budget("hangs_b", warm="1G", metric="instructions")
def test_b():
    pass
"""


def _wait_for_rounds(pid_dir: Path, names: list[str], process: subprocess.Popen[str]) -> list[int]:
    """The pids of the rounds importing ``names``, once every one of them is running."""
    pid_files = [pid_dir / f"{name}.pid" for name in names]
    deadline = time.monotonic() + 120
    while not all(pid_file.exists() for pid_file in pid_files):
        if process.poll() is not None:
            pytest.fail(f"the run ended before its rounds started:\n{process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the rounds never started")
        time.sleep(0.05)
    return [int(pid_file.read_text()) for pid_file in pid_files]


def _assert_gone_within(pids: list[int], seconds: float, what: str, since: float) -> None:
    deadline = since + seconds
    while any(is_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [pid for pid in pids if is_alive(pid)]
    assert not survivors, f"{what} {survivors} outlived the run by more than {seconds} s"


def _workers_of(controller: int) -> list[int]:
    """The processes whose parent is ``controller`` (its xdist workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _parent_of(int(entry.name)) == controller:
                    children.append(int(entry.name))
            except (OSError, StopIteration):
                continue
    return children


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGKILL])
def test_rounds_end_with_the_xdist_controller(
    tmp_path: Path, temp: Path, signal_number: int
) -> None:
    pytest.importorskip("xdist")

    try:
        find_valgrind()
    except Exception as exc:
        pytest.skip(f"counted rounds need valgrind: {exc}")
    project = write_tree(
        tmp_path / "project",
        {
            "hangs_a.py": HANGING_NAMED,
            "hangs_b.py": HANGING_NAMED,
            "test_hangs.py": TWO_BUDGETS_TEST,
            "pytest.ini": quick_ini(1) + "importcache_timeout = 300\n",
        },
    )
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    environment = {**os.environ, "HANG_PID_DIR": str(pid_dir), "TMPDIR": str(temp)}
    # Counted rounds get a fixed environment: name what the hanging import reads.
    environment["IMPORTCACHE_COUNTED_ENV"] = "HANG_PID_DIR"
    environment.pop("PYTEST_XDIST_WORKER", None)
    # A subprocess on purpose: the controller is signalled from outside.
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider"],
        cwd=project,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a signal to this run reaches nothing else
    )
    rounds: list[int] = []
    try:
        rounds = _wait_for_rounds(pid_dir, ["hangs_a", "hangs_b"], run)
        workers = _workers_of(run.pid)
        os.kill(run.pid, signal_number)
        killed = time.monotonic()
        _assert_gone_within(rounds, 5, "the rounds", since=killed)
        _assert_gone_within(workers, 10, "the workers", since=killed)
        output, _ = run.communicate(timeout=30)
        # Workers left without their controller end quietly: nothing in its terminal.
        assert "Warning" not in output, output
        assert "Traceback" not in output, output
    finally:
        for pid in [run.pid, *rounds]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if run.returncode is None:
            run.communicate()


@pytest.mark.parametrize("runner", ["pytest", "command line"])
def test_sigkill_to_the_process_running_the_rounds_ends_its_round(
    project: Path, temp: Path, runner: str
) -> None:
    if runner == "pytest":
        command = [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider"]
    else:
        command = [sys.executable, "-m", "pytest_importcache", "hangs", "--path", "."]
        command += ["--warmup", "0"]
    run = _start(command, project, temp)
    round_pid = 0
    try:
        round_pid = _wait_for_round(project / "round.pid", run)
        os.kill(run.pid, signal.SIGKILL)
        _assert_gone_within([round_pid], 5, "the round", since=time.monotonic())
    finally:
        for pid in (run.pid, round_pid):
            with contextlib.suppress(ProcessLookupError):
                if pid:
                    os.killpg(pid, signal.SIGKILL)
        run.communicate()


# A process that forks a long-lived helper (no exec), starts a round, and dies by SIGKILL.
_FORKS_THEN_DIES = """
import os, signal, subprocess, sys, time
from pytest_importcache.engine.lifecycle import clock_ticks_now, round_running, start_guardian

start_guardian()
helper = os.fork()
if helper == 0:
    time.sleep(60)
    os._exit(0)
started = clock_ticks_now()
round_process = subprocess.Popen(["sleep", "100"], start_new_session=True)
print(round_process.pid, helper, flush=True)
with round_running(round_process.pid, "forked0123456789", started):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_forked_helper_does_not_keep_the_guardian_from_ending_the_round(tmp_path: Path) -> None:
    run = subprocess.Popen(
        [sys.executable, "-c", _FORKS_THEN_DIES], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert run.stdout is not None
    round_pid, helper_pid = map(int, run.stdout.readline().split())
    try:
        run.wait(timeout=30)
        _assert_gone_within([round_pid], 5, "the round", since=time.monotonic())
    finally:
        for pid in (round_pid, helper_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        run.stdout.close()
