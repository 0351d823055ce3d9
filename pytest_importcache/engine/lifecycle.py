"""No round outlives its run: signals end the rounds, and rounds end what they started.

A round's interpreter starts a process group of its own, so its timeout can
kill it with everything it spawned. Two things escape a process group:

- **A signal to the caller.** SIGTERM or SIGHUP kills pytest (or the command
  line) at once by default, and the round, in another process group, runs on
  with parent pid 1. While rounds run, :func:`signals_end_rounds` turns those
  signals into :class:`RoundsInterrupted`, a ``KeyboardInterrupt``: the round
  in progress is killed in its ``finally``, its temporary files are removed as
  the stack unwinds, and the caller stops as on Ctrl-C (which already works
  that way).
- **A daemon.** An import that double-forks and calls ``setsid`` leaves both
  the group and the session. Every round's environment carries a variable
  with a token of its own (:data:`ROUND_TOKEN_VARIABLE`), which children
  inherit; after the round, :func:`kill_round_processes` kills the group and,
  where ``/proc`` exists (Linux), every process whose environment holds the
  token.
- **A daemon that also drops its environment** (``exec`` with a new one).
  While rounds run, :func:`adopt_orphans` makes this process a child
  subreaper (Linux ``prctl``): whatever a round leaves behind is re-parented
  here instead of to init, and :func:`kill_round_processes` kills and reaps
  the children of this process that started since the round began outside
  this process's group and carry no other round's token. A subprocess that
  another thread of this process starts in a new session while a round runs
  would be taken for one too; one started as usual (in this process's group)
  is left alone.
- **The death of the process this one serves.** An xdist worker's rounds
  are its own, but the run is its controller's: SIGTERM or SIGKILL to the
  controller reaches no worker. :func:`end_rounds_when_parent_exits` watches
  for the parent to go; then every running round (each one registered by
  :func:`round_running`) is killed at once, and this process exits: nothing
  it could still do would reach its parent.
- **SIGKILL to the process running the rounds.** Nothing in it can act.
  Its guardian can: a small process (:func:`start_guardian`) told of each
  round as it starts and ends, which kills the rounds still running once the
  pipe from its parent closes.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = [
    "ROUND_SPAWN_LOCK",
    "ROUND_TOKEN_VARIABLE",
    "RoundsInterrupted",
    "adopt_orphans",
    "clock_ticks_now",
    "end_rounds_of_this_process",
    "end_rounds_when_parent_exits",
    "kill_round_processes",
    "round_running",
    "signals_end_rounds",
    "start_guardian",
]

ROUND_TOKEN_VARIABLE = "PYTEST_IMPORTCACHE_ROUND"
_MAX_SCANS = 200
_ENDING_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class RoundsInterrupted(KeyboardInterrupt):
    """A signal stopped the run while rounds were measured; the rounds were ended."""

    def __init__(self, signal_number: int) -> None:
        self.signal_number = signal_number
        super().__init__(f"{signal.Signals(signal_number).name} received: rounds stopped")


def _raise_interrupted(signal_number: int, frame: FrameType | None) -> None:
    raise RoundsInterrupted(signal_number)


@contextlib.contextmanager
def signals_end_rounds() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise :class:`RoundsInterrupted`.

    Outside the main thread (where Python cannot install handlers) the block
    runs as it is; the rounds still end with their process group on a normal
    exit. Handlers that were installed before are put back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in _ENDING_SIGNALS}
    for number in _ENDING_SIGNALS:
        signal.signal(number, _raise_interrupted)
    try:
        yield
    finally:
        for number, handler in previous.items():
            # None: a handler installed from C, which Python cannot put back; the default.
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def _read_each_process(name: str) -> Iterator[tuple[int, bytes]]:
    """(pid, content of ``/proc/PID/NAME``) for every process this one may read (Linux)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/{name}", "rb") as handle:
                    yield int(entry), handle.read()
            except OSError:
                continue


def _pids_with_token(token: str) -> list[int]:
    """Processes whose environment holds ``ROUND_TOKEN_VARIABLE=token``."""
    marker = f"{ROUND_TOKEN_VARIABLE}={token}".encode()
    return [pid for pid, environ in _read_each_process("environ") if marker in environ.split(b"\0")]


_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def _prctl() -> Any:
    """libc's ``prctl``, or ``None`` where there is none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # noqa: PLC0415 - Linux only, and pytest's start-up loads this module

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def adopt_orphans() -> Iterator[None]:
    """While the block runs, orphans of this process's descendants become its children.

    Does nothing where ``prctl`` is missing; puts the previous setting back.
    """
    prctl = _prctl()
    if prctl is None:
        yield
        return
    import ctypes  # noqa: PLC0415 - Linux only, and pytest's start-up loads this module

    previous = ctypes.c_int(0)
    prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0)
    prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield
    finally:
        prctl(_PR_SET_CHILD_SUBREAPER, previous.value, 0, 0, 0)


def clock_ticks_now() -> int:
    """The time since boot in clock ticks, the unit of a process's start time in ``/proc``."""
    try:
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return int(uptime * os.sysconf("SC_CLK_TCK"))


def _adopted_since(ticks: int, round_pid: int, token: str) -> list[int]:
    """Children of this process that a round left behind, started at or after ``ticks``.

    A child this process started itself (another thread's subprocess) stays in
    this process's group, and another round carries its own token and is
    registered by :func:`round_running`: neither is taken. What a round leaves
    after leaving its group (``setsid``, a new group) has neither, however its
    environment was changed.
    """
    me, my_group = os.getpid(), os.getpgrp()
    guardians = [guardian.pid for guardian in _GUARDIANS.values()]
    # Another thread's round, also once it has exited and waits to be reaped by that
    # thread (a zombie's environment reads empty: it would pass for an orphan).
    guardians += [group for group, _ in list(_RUNNING_ROUNDS.values())]
    other_round = f"{ROUND_TOKEN_VARIABLE}=".encode()
    own_round = f"{ROUND_TOKEN_VARIABLE}={token}".encode()
    found = []
    for pid, stat in _read_each_process("stat"):
        # After the command: state, ppid, pgrp, ..., starttime (index 19 here).
        fields = stat.rpartition(b")")[2].split()
        if (
            pid in (round_pid, *guardians)
            or len(fields) <= 19
            or int(fields[1]) != me
            or int(fields[2]) == my_group
            or int(fields[19]) < ticks
        ):
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
        except OSError:
            environ = []
        if any(item.startswith(other_round) and item != own_round for item in environ):
            continue
        found.append(pid)
    return found


def _kill_and_reap(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)


def kill_round_processes(process_group: int, token: str, started: int = 0) -> None:
    """Kill the round's process group, every process carrying its token, and its orphans.

    Orphans are this process's children (adopted under :func:`adopt_orphans`)
    that started at or after ``started`` clock ticks, outside this process's
    group, and carry no other round's token (see :func:`_adopted_since`).
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process_group, signal.SIGKILL)
    # Until a scan finds none: a process may fork again between a scan and its kill.
    for _ in range(_MAX_SCANS):
        carriers = _pids_with_token(token)
        if not carriers:
            break
        for pid in carriers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)
    if not started:
        return
    for _ in range(_MAX_SCANS):
        # Not while another thread starts a round: between its fork and its exec, that
        # round's process has this process's environment, no token, and would pass for
        # an orphan (reaped here, its own thread's wait would find no child).
        with ROUND_SPAWN_LOCK:
            orphans = _adopted_since(started, process_group, token)
            for pid in orphans:
                _kill_and_reap(pid)
        if not orphans:
            return


# Held while a round's process is started and registered (fork, exec, round_running),
# and while orphans are looked for: no scan sees a round that is not registered yet.
ROUND_SPAWN_LOCK = threading.RLock()  # re-entered by a signal handler ending rounds
# The rounds running in this process, by token: (process group, start in clock ticks).
_RUNNING_ROUNDS: dict[str, tuple[int, int]] = {}
# The parent watch of this process (by pid: a forked child has none running).
_PARENT_WATCHERS: dict[int, threading.Thread] = {}


# This process's guardian (by pid: a forked child needs its own).
_GUARDIANS: dict[int, subprocess.Popen[bytes]] = {}


def start_guardian() -> int | None:
    """Start this process's guardian, once; its pid, or ``None`` if it cannot start.

    The guardian (this module run as a script, :func:`guard_rounds`) is told
    of every round as it starts and ends (:func:`round_running`). When this
    process dies, however it dies (SIGKILL included), the guardian's standard
    input closes, and it kills the rounds still running. It runs in a session
    of its own and ignores the signals that end a run, so a signal to this
    process's group leaves it to do that. Started before the rounds, so that
    its start-up does not overlap a measured one.
    """
    if os.getpid() in _GUARDIANS:
        return _GUARDIANS[os.getpid()].pid
    try:
        guardian = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return None
    _GUARDIANS[os.getpid()] = guardian
    if len(_GUARDIANS) == 1:
        atexit.register(_dismiss_guardian)
        os.register_at_fork(after_in_child=_let_go_of_inherited_guardians)
    return guardian.pid


def _let_go_of_inherited_guardians() -> None:
    """In a forked child: close the input of the guardians it inherited.

    A child forked without exec (a multiprocessing pool, a fixture that forks)
    holds its parent's end of the guardian's input: while it lived, the
    guardian would never see its process die. The objects stay in
    ``_GUARDIANS`` under their own process's pid, never used here.
    """
    for pid, guardian in _GUARDIANS.items():
        if pid != os.getpid() and guardian.stdin is not None:
            with contextlib.suppress(OSError):
                guardian.stdin.close()


def _dismiss_guardian() -> None:
    """At a normal exit: close the guardian's input (no round runs) and wait for it to go."""
    guardian = _GUARDIANS.pop(os.getpid(), None)
    if guardian is not None and guardian.stdin is not None:
        with contextlib.suppress(OSError):
            guardian.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            guardian.wait(timeout=5)


def _tell_guardian(line: str) -> None:
    """Send ``line`` to this process's guardian, starting it if need be."""
    start_guardian()
    guardian = _GUARDIANS.get(os.getpid())
    if guardian is not None and guardian.stdin is not None:
        # One write of one short line, past the buffer: whole, whatever other threads write.
        with contextlib.suppress(OSError, ValueError):
            os.write(guardian.stdin.fileno(), line.encode())


@contextlib.contextmanager
def round_running(process_group: int, token: str, started: int) -> Iterator[None]:
    """While the block runs, the round is ended if this process or its parent dies.

    If this process dies, its guardian kills the round (see
    :func:`start_guardian`); if its parent does,
    :func:`end_rounds_when_parent_exits` does.
    """
    _RUNNING_ROUNDS[token] = (process_group, started)
    _tell_guardian(f"+ {token} {process_group}\n")
    try:
        yield
    finally:
        _RUNNING_ROUNDS.pop(token, None)
        _tell_guardian(f"- {token} {process_group}\n")


def guard_rounds() -> None:
    """The guardian's loop: keep the rounds its standard input names; kill them at its end.

    Lines are ``+ TOKEN GROUP`` (a round started) and ``- TOKEN GROUP`` (it
    ended). The end of input means the process that started the rounds is gone.
    """
    for number in (*_ENDING_SIGNALS, signal.SIGINT):
        signal.signal(number, signal.SIG_IGN)
    running: dict[str, int] = {}
    for line in sys.stdin:
        verb, token, group = line.split()
        if verb == "+":
            running[token] = int(group)
        else:
            running.pop(token, None)
    for token, group in running.items():
        kill_round_processes(group, token)


def end_rounds_when_parent_exits(poll_seconds: float = 0.1) -> threading.Thread:
    """Watch, in a daemon thread, for this process's parent to exit; then end every round.

    For a process that only works for its parent (an xdist worker for its
    controller): once the parent is gone (this process is re-parented), every
    running round is killed with whatever it started, and this process exits at
    once (status 143, as on SIGTERM): nothing it could still do would reach its
    parent. A process whose parent is already gone (pid 1) is not watched.
    Started once per process; returns the thread.
    """
    if os.getpid() in _PARENT_WATCHERS:
        return _PARENT_WATCHERS[os.getpid()]
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        for token, (process_group, started) in list(_RUNNING_ROUNDS.items()):
            kill_round_processes(process_group, token, started)
        # Nothing of this process's can reach its parent any more: an unwind
        # (pytest-xdist failing to report to the gone controller) only printed a
        # warning into the terminal the run had already left. Its guardian sees
        # it go and ends whatever round is left.
        os._exit(128 + signal.SIGTERM)

    watcher = threading.Thread(target=watch, name="importcache-parent-watch", daemon=True)
    if parent != 1:
        watcher.start()
    _PARENT_WATCHERS[os.getpid()] = watcher
    return watcher


def end_rounds_of_this_process() -> int:
    """Kill the process group of every round this process is running (:func:`round_running`).

    For rounds running on other threads (background counts) when the run
    stops: the thread waiting for a round then sees it end and cleans up
    after it as usual. Returns how many rounds were ended.
    """
    ended = 0
    for process_group, _started in list(_RUNNING_ROUNDS.values()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process_group, signal.SIGKILL)
            ended += 1
    return ended


if __name__ == "__main__":
    guard_rounds()
