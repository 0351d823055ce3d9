"""The bare interpreter's peak memory: what a round's peak is read against.

A round's peak resident set (``RoundReport.peak_memory``: the child's
``VmHWM``, else ``os.wait4``'s ``ru_maxrss``) includes the
interpreter itself, its clean start-up and the harness: some 10 MB before
anything is imported. :func:`bare_interpreter_peak` measures that floor: a
round started exactly as timed rounds are (same interpreter, flags, harness
and start-up) whose "import" is of ``sys``, already loaded, so it imports
nothing. Reported beside a measurement's peak, it shows what the import or
command itself added.
"""

from __future__ import annotations

import ast
import functools
import secrets
import statistics
import subprocess
import tempfile
from pathlib import Path

from pytest_importcache.model.errors import RoundCrashedError

from .measurer import resolve_python
from .processwait import ProcessStartError, run_to_exit
from .roundcommand import REPORT_NAME, child_command, child_environment

__all__ = ["bare_interpreter_peak"]

# Three rounds, the median: one slow page-in does not move the floor.
_BARE_ROUNDS = 3
_BARE_TIMEOUT = 60.0


def _bare_round(python: str, workdir: Path) -> int:
    """One bare round's peak resident set, bytes."""
    token = secrets.token_hex(8)
    argv = child_command(python, "sys", (), workdir / REPORT_NAME)
    try:
        exited = run_to_exit(
            argv,
            cwd=workdir,
            environment=child_environment(token, home=workdir),
            token=token,
            timeout=_BARE_TIMEOUT,
        ).exited
    except ProcessStartError as exc:
        raise RoundCrashedError(f"cannot start interpreter {python!r}: {exc}") from None
    except subprocess.TimeoutExpired:
        raise RoundCrashedError(
            f"the bare interpreter {python!r} did not exit within {_BARE_TIMEOUT:g} s"
        ) from None
    try:
        reported = ast.literal_eval((workdir / REPORT_NAME).read_text(encoding="utf-8"))
        peak = reported.get("peak_memory") or exited.peak_memory
    except (OSError, ValueError, SyntaxError):
        raise RoundCrashedError(
            f"the bare interpreter {python!r} ended with exit code {exited.returncode} "
            "before reporting"
        ) from None
    if peak is None:
        raise RoundCrashedError("this platform does not report a process's peak memory")
    return int(peak)


@functools.lru_cache(maxsize=16)
def _bare_peak(python: str) -> int:
    with tempfile.TemporaryDirectory(prefix="importcache-bare-") as directory:
        peaks = [_bare_round(python, Path(directory)) for _ in range(_BARE_ROUNDS)]
    return int(statistics.median(peaks))


def bare_interpreter_peak(python: str | None = None) -> int:
    """The peak resident set (bytes) of a round that imports nothing, under ``python``.

    ``python`` defaults to the running interpreter. Measured once per
    interpreter and process (the median of three rounds), then cached.
    """
    return _bare_peak(resolve_python(python))
