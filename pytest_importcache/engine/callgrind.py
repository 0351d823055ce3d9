"""Count the instructions an import executes, under valgrind's callgrind.

Wall time moves with whatever else the machine does; the instructions an
import executes do not. callgrind counts them exactly (no hardware counters
needed), at the price of running the interpreter 50-100 times slower.

Only the import is counted. The child calls ``os.getppid()`` (C ``getppid``)
right before the import and right after it, and around the start-up lines it
runs on demand; the tracer calls ``os.getpgrp()`` (C ``getpgrp``) when each
import call starts and ends. The interpreter calls neither function by
itself. callgrind dumps its counters each time one of the functions it is
told about is entered (``--dump-before``), so every dump holds the
instructions executed since the previous one: the dumps between the fences
add up to the import, and those between an import call's marks to that
module's cumulative count. A *plain* round dumps at the fences only; a
*detailed* round also at every import mark, which costs two to three times
as long. Both execute the same instructions, so they count the same.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_importcache.model.errors import MetricUnavailableError, RoundCrashedError

__all__ = [
    "FENCE_FUNCTION",
    "IMPORT_MARK_FUNCTION",
    "VALGRIND_SLOWDOWN",
    "MarkCosts",
    "callgrind_command",
    "find_valgrind",
    "read_dump_counts",
    "read_final_count",
]

FENCE_FUNCTION = "getppid"
IMPORT_MARK_FUNCTION = "getpgrp"
# A round under callgrind runs 50-100 times slower than a plain one (README,
# "Measurement quality"): its timeout is the configured one times this.
VALGRIND_SLOWDOWN = 50
# The dumps' file names: <directory>/<prefix>.<pid>.<dump number>.
_OUT_PREFIX = "callgrind.out"


def find_valgrind() -> str:
    """The path of ``valgrind``; :class:`MetricUnavailableError` saying what to install."""
    __tracebackhide__ = True
    found = shutil.which("valgrind")
    if found is None:
        if sys.platform.startswith("linux"):
            advice = "install it (apt-get install valgrind, dnf install valgrind)"
        else:
            advice = f"valgrind does not run on {sys.platform}: count instructions on Linux"
        raise MetricUnavailableError(
            f"the instructions metric counts with valgrind, which is not on PATH: {advice}"
        )
    return found


def callgrind_command(valgrind: str, out_dir: Path, *, detailed: bool) -> list[str]:
    """The start of a round's command line that runs the interpreter under callgrind."""
    marks = [FENCE_FUNCTION, IMPORT_MARK_FUNCTION] if detailed else [FENCE_FUNCTION]
    return [
        valgrind,
        # Not ~/.valgrindrc, ./.valgrindrc or VALGRIND_OPTS: a user's
        # --collect-atstart=no there made every count 0.
        "--command-line-only=yes",
        "--tool=callgrind",
        "--quiet",
        *(f"--dump-before={function}" for function in marks),
        "--dump-line=no",
        "--dump-instr=no",
        "--trace-children=no",
        f"--callgrind-out-file={out_dir / _OUT_PREFIX}.%p",
    ]


def _summary_line(path: Path) -> int | None:
    """The total a dump file states in its header, before the per-function costs."""
    with path.open("rb") as dump:
        for line in dump:
            if line.startswith(b"summary:"):
                return int(line.split()[1])
            if line.startswith((b"fl=", b"fn=", b"ob=")):
                return None
    return None


def read_dump_counts(out_dir: Path, pid: int) -> list[int]:
    """The instructions of each numbered dump of process ``pid``, in order."""
    __tracebackhide__ = True
    counts: dict[int, int] = {}
    prefix = f"{_OUT_PREFIX}.{pid}."
    for path in out_dir.glob(f"{prefix}*"):
        number = path.name[len(prefix) :]
        if not number.isdigit():
            continue
        total = _summary_line(path)
        if total is None:
            raise RoundCrashedError(f"callgrind's dump {path} has no instruction total")
        counts[int(number)] = total
    return [counts[number] for number in sorted(counts)]


def read_final_count(out_dir: Path, pid: int) -> int | None:
    """The instructions of process ``pid``'s last dump, written at its exit (after the last
    numbered one); ``None`` when there is none (the process was killed)."""
    path = out_dir / f"{_OUT_PREFIX}.{pid}"
    try:
        return _summary_line(path)
    except OSError:
        return None


class MarkCosts:
    """Instructions between the marks the child made, from callgrind's dumps.

    ``dumped_marks`` are the numbers (1, 2, ...) of the marks at which callgrind
    dumped, in order, and ``counts`` the dumps' totals: ``counts[i]`` is what
    ran between the dump before ``dumped_marks[i]`` and that mark. Between two
    dumped marks the cost is known exactly; ``excluded`` pairs of marks fence
    work that is not the import's (start-up lines run on demand).
    """

    def __init__(
        self,
        dumped_marks: Sequence[int],
        counts: Sequence[int],
        excluded: Sequence[tuple[int, int]] = (),
    ) -> None:
        if len(dumped_marks) != len(counts):
            raise ValueError(f"{len(counts)} dumps for {len(dumped_marks)} marks")
        self._running_total: dict[int, int] = {}
        total = 0
        for mark, count in zip(dumped_marks, counts, strict=False):
            total += count
            self._running_total[mark] = total
        self._excluded = [
            (start, end)
            for start, end in excluded
            if start in self._running_total and end in self._running_total
        ]

    def _raw(self, start: int, end: int) -> int:
        return self._running_total[end] - self._running_total[start]

    def upto(self, mark: int) -> int:
        """Instructions executed from the process's start to dumped mark ``mark``."""
        return self._running_total[mark]

    def between(self, start: int, end: int) -> int:
        """Instructions executed after mark ``start`` and before mark ``end``, exclusions off."""
        cost = self._raw(start, end)
        for excluded_start, excluded_end in self._excluded:
            if start <= excluded_start and excluded_end <= end:
                cost -= self._raw(excluded_start, excluded_end)
        return max(cost, 0)
