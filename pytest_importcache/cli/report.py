"""``pytest-importcache report``: draw the icicle page of a saved run.

It draws the page from the import trees pytest-benchmark storage keeps (the
newest run by default), the same page as ``--importcache-report``;
``--against RUN`` adds the diff icicles.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_importcache.model.errors import RunError
from pytest_importcache.render.icicle import Baseline, icicle_page, same_run_baseline
from pytest_importcache.render.runs import (
    describe_storage,
    entry_tree,
    import_entries,
    latest_runs,
    load_run,
    resolve_run,
    run_outcomes,
)

from .common import PROG, Parser, UsageError, add_storage_argument, count

__all__ = ["make_parser", "run"]


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``report``."""
    parser = Parser(
        prog=f"{PROG} report",
        description="Draw the icicle report of a saved run, optionally against another run.",
    )
    parser.add_argument(
        "run", nargs="?", metavar="RUN", help="run number, name or path (default: the newest)"
    )
    parser.add_argument("--against", metavar="RUN", help="draw diff icicles against this run")
    parser.add_argument("--output", required=True, metavar="FILE", help="the HTML file to write")
    add_storage_argument(parser)
    return parser


def _draw_against(against: Path, fullnames: list[str], baselines: list[Any]) -> None:
    """Put the trees of ``against``'s entries into ``baselines`` (by ``fullnames``' order).

    An entry the run ``against`` lacks keeps its same-run diff, if any; one saved
    without a tree is a :class:`~pytest_importcache.render.runs.RunError`.
    """
    entries = import_entries(load_run(against))
    for index, fullname in enumerate(fullnames):
        entry = entries.get(fullname)
        try:
            rows = entry_tree(entry) if entry is not None else None
        except RunError as exc:
            raise RunError(f"run file {against}: {exc}") from None
        if entry is not None and rows is None:
            raise RunError(
                f"run file {against}: entry {fullname!r} has no import tree (saved "
                "before pytest-importcache stored trees): cannot draw a diff against it"
            )
        if rows is not None:
            baselines[index] = (against.name, rows)


def run(arguments: argparse.Namespace) -> int:
    """Write the icicle page of a saved run to ``--output``; 0."""
    storage, output = Path(arguments.storage), Path(arguments.output)
    if output.is_dir():
        raise UsageError(
            f"--output {output}: is a directory; give a file name such as imports.html"
        )
    try:
        if arguments.run is not None:
            run = resolve_run(arguments.run, storage)
        else:
            newest = latest_runs(storage, 1)
            if not newest:
                raise RunError(f"no saved run to report: {describe_storage(storage)}")
            run = newest[0]
        outcomes = run_outcomes(run)
        # The same order as the outcomes: the run's import entries.
        fullnames = list(import_entries(load_run(run)))
        # As in the run's own report: the diff against its same-run revision, if any.
        baselines: list[Baseline | None] = [same_run_baseline(outcome) for outcome in outcomes]
        subtitle = f"from {run.name}"
        if arguments.against is not None:
            against = resolve_run(arguments.against, storage)
            subtitle += f", against {against.name}"
            _draw_against(against, fullnames, baselines)
    except RunError as exc:
        raise UsageError(str(exc)) from None
    if not outcomes:
        raise UsageError(f"run file {run} holds no import measurement")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(icicle_page(outcomes, baselines, subtitle=subtitle), encoding="utf-8")
    print(f"import trees of {count(len(outcomes), 'measurement')} ({subtitle}) written to {output}")
    return 0
