"""``pytest-importcache compare``: compare the imports of two saved runs.

It reads pytest-benchmark storage (``.benchmarks`` by default; also a single
machine directory such as ``.benchmarks/Linux-CPython-3.11-64bit``) and
compares the import measurements of two runs (the latest two of the machine
directory saved last by default; ``0001``, ``0001_name`` or a path, as
pytest-benchmark accepts), with the modules whose self time changed most.
``--fail`` exits with 1 when a measurement got slower than the threshold
(pytest-benchmark's own CLI cannot).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_importcache.model.errors import RunError
from pytest_importcache.model.spec import DEFAULT_STATISTIC
from pytest_importcache.model.units import fit
from pytest_importcache.render.changes import regression_lines
from pytest_importcache.render.runs import (
    compare_runs,
    describe_storage,
    latest_runs,
    load_run,
    machine_directories,
    resolve_run,
    runs_beside,
)

from .common import PROG, WIDTH, Parser, UsageError, add_storage_argument

if TYPE_CHECKING:
    from pytest_importcache.pytest.benchmark import CompareFailCheck

__all__ = ["make_parser", "run"]


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``compare``."""
    parser = Parser(
        prog=f"{PROG} compare",
        description="Compare the import measurements of two saved pytest-benchmark runs.",
    )
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run number, name or path")
    add_storage_argument(parser)
    parser.add_argument("--fail", metavar="STAT:N%", help="exit 1 on a slowdown past this")
    return parser


def run(arguments: argparse.Namespace) -> int:
    """Print the comparison of two runs; 1 when ``--fail`` finds an import slower, else 0."""
    storage = Path(arguments.storage)
    try:
        threshold = _fail_check(arguments.fail) if arguments.fail else None
    except ValueError as exc:
        raise UsageError(f"--fail: {exc}") from None
    if len(arguments.runs) > 2:
        raise UsageError("compare takes at most two runs")
    stat = threshold.stat if threshold else DEFAULT_STATISTIC
    try:
        before_path, after_path = _runs_to_compare(arguments.runs, storage)
        before, after = load_run(before_path), load_run(after_path)
        comparisons = compare_runs(
            before,
            after,
            before_path.name,
            stat,
            before_name=f"run file {before_path}",
            after_name=f"run file {after_path}",
        )
    except RunError as exc:
        raise UsageError(str(exc)) from None
    print(f"{before_path.name} -> {after_path.name} ({stat})")
    if not comparisons:
        print("no import measurement is in both runs")
        return 0
    for line in regression_lines(comparisons):
        print(fit(line, WIDTH))
    if threshold is None:
        return 0
    if not threshold.relative and any(item.metric != "time" for item in comparisons):
        raise UsageError(
            f"--fail {threshold}: a difference in seconds cannot judge instruction counts; "
            f"give a percentage such as {threshold.stat}:1%"
        )
    regressed = [item.name for item in comparisons if threshold.fails(item.before, item.after)]
    if regressed:
        print(f"slower than {threshold}: {', '.join(regressed)}")
        return 1
    print(f"no import slower than {threshold}")
    return 0


def _fail_check(text: str) -> CompareFailCheck:
    """``--fail``'s threshold, in pytest-benchmark's syntax (``median:10%``, ``min:0.001``)."""
    # The storage adapter parses it as pytest-benchmark does, and loads pytest to do so.
    from pytest_importcache.pytest.benchmark import CompareFailCheck  # noqa: PLC0415 - loads pytest (~190 modules): only with --fail

    return CompareFailCheck(text)


def _runs_to_compare(runs: Sequence[str], storage: Path) -> list[Path]:
    """The two run files ``compare`` reads: those named, the named one and the newest
    beside it, or the latest two (:class:`~pytest_importcache.render.runs.RunError` otherwise)."""
    paths = [resolve_run(spec, storage) for spec in runs]
    if len(paths) == 1:
        beside = runs_beside(paths[0])
        if not beside:
            raise RunError(
                f"no numbered run (NNNN_*.json) is beside {paths[0].name} in "
                f"{paths[0].parent}: name the run to compare it with"
            )
        paths.append(beside[-1])
        if paths[0] == paths[1]:
            raise RunError(
                f"{paths[0].name} is the newest run in {paths[0].parent}: "
                "name the run to compare it with"
            )
    return paths or _latest_pair(storage)


def _latest_pair(storage: Path) -> list[Path]:
    """The two newest runs of the machine directory that saved last.

    Otherwise a ``RunError`` saying where runs were looked for and what each
    directory holds.
    """
    found = machine_directories(storage)
    if not found:
        raise RunError(f"no saved runs to compare: {describe_storage(storage)}")
    paths = latest_runs(storage)
    if len(paths) < 2:
        directory = paths[0].parent
        others = [other for other, runs in found.items() if len(runs) >= 2]
        hint = f"; to compare the runs of {others[0]}, pass --storage {others[0]}" if others else ""
        raise RunError(
            f"need two saved runs in one machine directory, and {directory} (saved last) holds "
            f"one ({describe_storage(storage)}){hint}"
        )
    return paths
