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
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

__all__ = [
    "ROUND_TOKEN_VARIABLE",
    "RoundsInterrupted",
    "kill_round_processes",
    "signals_end_rounds",
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
            signal.signal(number, handler)


def _pids_with_token(token: str) -> list[int]:
    """Processes whose environment holds ``ROUND_TOKEN_VARIABLE=token`` (Linux ``/proc``)."""
    marker = f"{ROUND_TOKEN_VARIABLE}={token}".encode()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry))
    return found


def kill_round_processes(process_group: int, token: str) -> None:
    """Kill the round's process group and every process that carries its token."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process_group, signal.SIGKILL)
    # Until a scan finds none: a process may fork again between a scan and its kill.
    for _ in range(_MAX_SCANS):
        carriers = _pids_with_token(token)
        if not carriers:
            return
        for pid in carriers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)
