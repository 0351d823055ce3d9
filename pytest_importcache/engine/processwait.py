"""Wait for a round's process: its exit status, its peak memory, the moment it ended.

``subprocess.Popen.wait`` reaps the process and throws its resource usage
away. :func:`wait_for_exit` reaps it with ``os.wait4`` instead, which gives
the process's peak resident set (``ru_maxrss``: KiB on Linux, bytes on
macOS). On Linux that figure is at least the measuring process's own resident
set when it spawned the round (the kernel carries it across exec), so rounds
report their own ``VmHWM`` and this one is the fallback. It notices the exit
at once, without polling, through a pidfd (Linux 5.3+), so the moment it
reads the clock is the moment the process ended (a start-up round's figure
ends there); elsewhere it polls.

:func:`run_to_exit` is the one way a round's process is started, waited for
and ended with everything it started (import rounds, start-up rounds, the
bare interpreter's round).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_importcache.model.errors import ImportCacheError

from .lifecycle import ROUND_SPAWN_LOCK, clock_ticks_now, kill_round_processes, round_running

__all__ = [
    "OWN_PROCESS_GROUP",
    "Exited",
    "ProcessStartError",
    "RoundProcess",
    "exit_description",
    "run_to_exit",
    "wait_for_exit",
]

# A process group of its own, so the round and what it spawns can be killed together;
# not a session of its own, so an import may still call os.setpgrp() as under a shell.
OWN_PROCESS_GROUP: dict[str, Any] = (
    {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
)

# ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def exit_description(returncode: int) -> str:
    """``exit code 3``, or ``signal SIGSEGV`` for a process killed by a signal."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


@dataclass(frozen=True)
class Exited:
    """How a process ended: its exit code (negative: the signal), peak memory, end time.

    ``peak_memory`` is in bytes (``None`` where ``os.wait4`` is missing);
    ``ended_ns`` is :func:`time.perf_counter_ns` when the exit was seen.
    """

    returncode: int
    peak_memory: int | None
    ended_ns: int


def _reap(process: subprocess.Popen[bytes], flags: int) -> Exited | None:
    """``os.wait4`` the process (``None`` while it runs, with ``WNOHANG``)."""
    pid, status, usage = os.wait4(process.pid, flags)
    if pid == 0:
        return None
    ended = time.perf_counter_ns()
    returncode = os.waitstatus_to_exitcode(status)
    # Reaped here: Popen must not wait for it again.
    process.returncode = returncode
    return Exited(returncode, usage.ru_maxrss * _MAXRSS_UNIT, ended)


def wait_for_exit(process: subprocess.Popen[bytes], timeout: float) -> Exited:
    """Wait up to ``timeout`` seconds for ``process`` to end and reap it.

    Raises :class:`subprocess.TimeoutExpired` when it is still running then
    (the caller kills it). A signal handler that raises (the rounds' SIGTERM
    handler) interrupts the wait.
    """
    if not hasattr(os, "wait4"):  # pragma: no cover - Windows
        returncode = process.wait(timeout=timeout)
        return Exited(returncode, None, time.perf_counter_ns())
    deadline = time.monotonic() + timeout
    pidfd = -1
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(process.pid)
        except OSError:
            pidfd = -1
    try:
        delay = 0.0005
        while True:
            exited = _reap(process, os.WNOHANG)
            if exited is not None:
                return exited
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(process.args, timeout)
            if pidfd >= 0:
                # Readable once the process has ended.
                select.select([pidfd], [], [], left)
            else:
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.05)
    finally:
        if pidfd >= 0:
            os.close(pidfd)


@dataclass(frozen=True)
class RoundProcess:
    """A round's process that has ended: its pid, how it ended, when it was started.

    ``started_ns`` is :func:`time.perf_counter_ns` just before it was started.
    """

    pid: int
    exited: Exited
    started_ns: int


class ProcessStartError(ImportCacheError, OSError):
    """A round's process could not be started (the interpreter is missing, not executable)."""


def _end_round(process: subprocess.Popen[bytes], token: str, ticks: int) -> None:
    kill_round_processes(process.pid, token, ticks)
    if process.returncode is None:
        process.wait()


def run_to_exit(
    argv: Sequence[str],
    *,
    cwd: Path,
    environment: Mapping[str, str],
    token: str,
    timeout: float,
    stdout: IO[bytes] | int = subprocess.DEVNULL,
    stderr: IO[bytes] | int = subprocess.DEVNULL,
) -> RoundProcess:
    """Run ``argv`` as a round: its own process group, stdin ``/dev/null``, to its exit.

    ``token`` is the round's token, which ``environment`` carries: whatever the
    process started (daemons, a server, a grandchild that outlived it) is
    found by it and killed afterwards, also when the wait ends by a timeout
    (:class:`subprocess.TimeoutExpired`) or a signal. :class:`ProcessStartError`
    when the process cannot be started.
    """
    ticks = clock_ticks_now()
    with contextlib.ExitStack() as round_scope:
        with ROUND_SPAWN_LOCK:  # see kill_round_processes: no orphan scan sees it unregistered
            started_ns = time.perf_counter_ns()
            try:
                process = subprocess.Popen(
                    list(argv),
                    cwd=cwd,
                    env=dict(environment),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    **OWN_PROCESS_GROUP,
                )
            except OSError as exc:
                raise ProcessStartError(exc.errno, exc.strerror, exc.filename) from exc
            # Last out: whatever the round started (also on a timeout or a signal) is killed.
            round_scope.callback(_end_round, process, token, ticks)
            round_scope.enter_context(round_running(process.pid, token, ticks))
        exited = wait_for_exit(process, timeout)
    return RoundProcess(process.pid, exited, started_ns)
