"""``pytest-importcache`` / ``python -m pytest_importcache``: profile imports, compare runs.

Usage::

    pytest-importcache MODULE [MODULE...] [--rounds N] [--closure] [--python PATH]
                       [--path DIR] [--json] [--against REV [--fail PCT]]
    pytest-importcache compare [RUN_A] [RUN_B] [--storage DIR] [--fail median:10%]
    pytest-importcache calibrate [--rounds N] [--python PATH]
    pytest-importcache cache [--dir DIR] [--clear] [--json]
    pytest-importcache report [RUN] [--against RUN] --output FILE [--storage DIR]
    pytest-importcache history [--storage DIR] [--output FILE] [--stat STAT]
    pytest-importcache startup [--metric M] [--json] [--against REV] -- COMMAND...
    pytest-importcache check [--update] [--pyproject PATH] [--json]

The first argument picks the action: ``compare``, ``calibrate``, ``cache``,
``report``, ``history``, ``startup`` and ``check`` are subcommands; anything else starts
the default action, measuring the modules named. A module named like a subcommand is
measured after ``--``: ``pytest-importcache -- compare`` measures the module
``compare`` (and ``pytest-importcache profile`` measures the standard
library's ``profile``).

Each action is a module of this package (``profile`` for the default one),
with a ``make_parser()`` and a ``run(arguments)``; only the chosen one is
imported, so ``--help`` loads no more than its own action needs.

Errors (a bad module, option or run file) print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TextIO, cast

from .common import PROG, UsageError

__all__ = ["SUBCOMMANDS", "main"]

# The subcommands, by the module of this package that holds each.
SUBCOMMANDS: dict[str, str] = {
    "cache": "cache",
    "calibrate": "calibrate",
    "check": "check",
    "compare": "compare",
    "history": "history",
    "report": "report",
    "startup": "startup",
}
# The module of the default action: measuring the modules named.
PROFILE = "profile"


def _action(
    name: str,
) -> tuple[Callable[[], argparse.ArgumentParser], Callable[[argparse.Namespace], int]]:
    """The parser and the runner of the action module ``name``, imported now."""
    module = importlib.import_module(f"{__package__}.{name}")
    return module.make_parser, module.run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    A first argument that names a subcommand (``compare``, ``calibrate``,
    ``cache``, ``report``, ``history``, ``startup``) runs it; anything else measures the
    modules named, so ``pytest-importcache profile`` measures the module
    ``profile`` and ``pytest-importcache -- compare`` the module ``compare``.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    stdout = sys.stdout
    # The verdict outlives the reader: `check | head` exits as check decided.
    sys.stdout = cast(TextIO, _ReaderGoneStdout(stdout))
    try:
        if arguments and arguments[0] in SUBCOMMANDS:
            make_parser, run = _action(SUBCOMMANDS[arguments[0]])
            arguments = arguments[1:]
        else:
            make_parser, run = _action(PROFILE)
        status = run(make_parser().parse_args(arguments))
        sys.stdout.flush()  # a closed pipe shows here, not at exit (when stdout is buffered)
        return status
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # SIGTERM and SIGHUP arrive as RoundsInterrupted; the rounds are already ended.
        number = getattr(exc, "signal_number", signal.SIGINT)
        print(f"{PROG}: {signal.Signals(number).name} received: rounds stopped", file=sys.stderr)
        return 128 + number
    except OSError as exc:
        # A file system that refuses (a full disk, a name too long): one line.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"{PROG}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


class _ReaderGoneStdout:
    """``stream`` whose writes, once its reader went away (``| head``), go to /dev/null.

    The command then finishes and exits with its own status, without a
    ``BrokenPipeError`` (stdout's descriptor is pointed at /dev/null, as
    Python's documentation of SIGPIPE advises, so the flush at exit is quiet too).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text``; dropped once the reader is gone."""
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        """Flush the stream; its pending text is dropped once the reader is gone."""
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
