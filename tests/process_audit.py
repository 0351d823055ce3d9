"""Keep the fast tier honest: a test that starts a process must be marked ``slow``.

An audit hook (:pep:`578`) hears every process this interpreter starts
(``subprocess.Popen``, ``os.posix_spawn``, ``os.fork``, ``os.exec*``,
``os.system``, ...). While the setup or the call of a test not marked
``slow`` runs, those starts are recorded, and the test then fails naming
them, so ``pytest -m "not slow"`` stays free of processes. xdist starts its
workers outside any test, and a pytester in-process run that starts no
process stays fast. Teardown is not watched: a session fixture's teardown
runs in whichever test happens to be last.

One kind of start is pytest's own, not the test's: pytest-benchmark asks git
and hg which project and commit the directory is (``pytest_benchmark.utils``,
from its ``pytest_addoption`` and at each save), in every session it loads
into, pytester's in-process runs too. Those starts are not counted.

The hook is installed once per interpreter (audit hooks cannot be removed);
a pytester run that registers :class:`ProcessAudit` again nests its watch
inside the outer one, and only the innermost running test hears a start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest

# The audit events by which CPython starts or replaces a process.
PROCESS_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.posix_spawn",
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.spawn",
        "os.system",
        "os.startfile",
        "pty.spawn",
    }
)

# The watches of the tests running now, innermost last (a pytester in-process
# run nests one inside the outer test's). Each is the list of starts it heard.
_WATCHES: list[list[str]] = []
_INSTALLED: list[bool] = []


def describe_start(event: str, args: tuple[Any, ...]) -> str:
    """One line naming a process start: the event and the program it runs, when known."""
    if event == "subprocess.Popen" and len(args) >= 2:
        program = args[1]
        if isinstance(program, (list, tuple)):
            return f"{event}: {' '.join(str(part) for part in program)[:200]}"
        return f"{event}: {str(program)[:200]}"
    if event in ("os.exec", "os.posix_spawn", "os.system") and args:
        shown = args[0] if event == "os.system" else args[1] if len(args) > 1 else args[0]
        return f"{event}: {str(shown)[:200]}"
    return event


# The module whose git and hg probes every pytest session with pytest-benchmark runs.
_SESSION_PROBES = os.path.join("pytest_benchmark", "utils.py")


def started_by_session_probe() -> bool:
    """Whether the process starting now is pytest-benchmark's project and commit probe."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.endswith(_SESSION_PROBES):
            return True
        frame = frame.f_back
    return False


def _hear(event: str, args: tuple[Any, ...]) -> None:
    if _WATCHES and event in PROCESS_EVENTS and not started_by_session_probe():
        _WATCHES[-1].append(describe_start(event, args))


def install() -> None:
    """Add the audit hook to this interpreter, once."""
    if not _INSTALLED:
        sys.addaudithook(_hear)
        _INSTALLED.append(True)


@contextmanager
def watching(item: pytest.Item, phase: str) -> Iterator[None]:
    """Fail ``item`` when a process starts inside the block and the test is not slow."""
    heard: list[str] = []  # a slow test's too: what it starts is its own, not an outer test's
    _WATCHES.append(heard)
    try:
        yield
    finally:
        # By identity: two watches that heard nothing are equal lists.
        del _WATCHES[next(i for i, watch in enumerate(_WATCHES) if watch is heard)]
    # Only after a block that ended well: a test's own failure is not replaced by this one.
    if heard and item.get_closest_marker("slow") is None:
        started = "; ".join(dict.fromkeys(heard))
        pytest.fail(
            f"{item.nodeid} started a process in its {phase} ({started}) but is not "
            "marked slow: mark it @pytest.mark.slow (the fast tier, -m 'not slow', "
            "starts none)",
            pytrace=False,
        )


class ProcessAudit:
    """The pytest plugin that watches the setup and the call of every test."""

    def __init__(self) -> None:
        install()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        """Watch the test's fixtures being set up."""
        with watching(item, "setup"):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        """Watch the test itself."""
        with watching(item, "call"):
            return (yield)
