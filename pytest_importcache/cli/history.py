"""``pytest-importcache history``: each import's figure over the saved runs.

It follows each import over the saved runs of the machine directory saved
last: a table per import on the terminal (run, commit, date, figure, change,
steps), and with ``--output`` an HTML page of SVG charts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_importcache.model.errors import RunError
from pytest_importcache.model.spec import DEFAULT_STATISTIC, STATISTICS
from pytest_importcache.model.units import fit
from pytest_importcache.render.history import history_lines, history_page, load_history
from pytest_importcache.render.runs import describe_storage, latest_runs, runs_beside

from .common import PROG, WIDTH, Parser, UsageError, add_storage_argument, count

__all__ = ["make_parser", "run"]


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``history``."""
    parser = Parser(
        prog=f"{PROG} history",
        description="Each import's figure over the saved runs of one machine directory.",
    )
    add_storage_argument(parser)
    parser.add_argument("--output", metavar="FILE", help="also write the charts to this HTML file")
    parser.add_argument(
        "--stat",
        default=DEFAULT_STATISTIC,
        choices=STATISTICS,
        help=f"the statistic followed (default: {DEFAULT_STATISTIC})",
    )
    return parser


def run(arguments: argparse.Namespace) -> int:
    """Print each import's history (and write the charts with ``--output``); 0."""
    storage = Path(arguments.storage)
    output = Path(arguments.output) if arguments.output else None
    if output is not None and output.is_dir():
        raise UsageError(f"--output {output}: a directory; give a file name such as history.html")
    newest = latest_runs(storage, 1)
    if not newest:
        raise UsageError(f"no saved runs: {describe_storage(storage)}")
    runs = runs_beside(newest[0])
    skipped: list[RunError] = []
    history = load_history(runs, arguments.stat, skip=skipped.append)
    for problem in skipped:
        print(f"skipped {problem}", file=sys.stderr)
    source = f"{count(len(runs) - len(skipped), 'run')} in {newest[0].parent}"
    if skipped:
        source += f" ({len(skipped)} unreadable, skipped)"
    print(f"import history: {source}")
    if not history:
        print("no import measurement in these runs")
    for line in history_lines(history):
        print(fit(line, WIDTH))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(history_page(history, source=source), encoding="utf-8")
        print(f"charts of {count(len(history), 'import')} written to {output}")
    return 0
