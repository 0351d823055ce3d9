"""``pytest-importcache startup [options] -- COMMAND...``: profile a command's start-up.

As ``pytest-importcache MODULE`` profiles an import, this profiles a command
from exec to exit, cold and warm (see :mod:`pytest_importcache.engine.startup`
for what a command may be: a console script, ``python -m MODULE``,
``python -c CODE``; or ``--code SNIPPET``): the statistics, the phases
(interpreter start-up, ``site``, the entry module's import, the run), the
peak memory beside a bare interpreter's, where the time goes in the whole
process's import tree, and a ready-to-paste ``startup_budget`` marker.
``--json`` prints the same as one document; ``--against REV`` compares with
the package at a git revision, rounds interleaved; ``--lazy-imports all``
runs it under ``-X lazy_imports=all`` (PEP 810, 3.15+).

The command comes after ``--`` (``startup -- mycli --help``), so that its own
options are not read as this command's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_importcache.model.spec import (
    DEFAULT_INSTRUCTION_ROUNDS,
    DEFAULT_METRIC,
    DEFAULT_ROUNDS,
    DEFAULT_TIMEOUT,
    LAZY_IMPORTS_MODES,
    METRICS,
    default_rounds,
    default_warmup,
)
from pytest_importcache.model.units import parse_percentage

from .common import PROG, Parser, UsageError, seconds_argument

__all__ = ["make_parser", "run"]


def _threshold_argument(text: str) -> float:
    """``"5%"`` as a fraction, as the default action's ``--fail`` reads it."""
    try:
        return parse_percentage(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``startup``."""
    parser = Parser(
        prog=f"{PROG} startup",
        usage=f"{PROG} startup [options] (-- COMMAND... | --code SNIPPET)",
        description="Measure a command from exec to exit, cold and warm, in fresh interpreters: "
        "its phases, its peak memory, the modules it loads; suggest a startup_budget.",
        epilog=f"examples:\n  {PROG} startup -- mycli --help\n"
        f"  {PROG} startup --metric instructions -- python -m mylib --version\n"
        f"  {PROG} startup --code 'import mylib; mylib.load(\"x.csv\")'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        nargs="*",
        metavar="COMMAND",
        help="after --: a console script of an installed distribution, or python -m MODULE "
        "or python -c CODE, with its arguments",
    )
    parser.add_argument("--code", metavar="SNIPPET", help="run this Python snippet instead")
    parser.add_argument(
        "--metric",
        choices=METRICS,
        default=DEFAULT_METRIC,
        help="time (seconds, default) or instructions (the whole process, under callgrind)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"counted rounds ({DEFAULT_ROUNDS}; {DEFAULT_INSTRUCTION_ROUNDS} for instructions)",
    )
    parser.add_argument("--warmup", type=int, help="warm-up rounds (1; 0 for instructions)")
    parser.add_argument(
        "--timeout",
        type=seconds_argument,
        default=DEFAULT_TIMEOUT,
        help=f"time one round may take, e.g. 60, 90s or 500ms ({DEFAULT_TIMEOUT:g} seconds)",
    )
    parser.add_argument(
        "--exit-code", type=int, default=0, help="the exit status the command must end with (0)"
    )
    parser.add_argument("--python", help="interpreter to run it under (default: this one)")
    parser.add_argument(
        "--path", action="append", default=[], metavar="DIR", help="find packages here first"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--lazy-imports",
        choices=LAZY_IMPORTS_MODES,
        help="PEP 810 (CPython 3.15+): run it under -X lazy_imports=all (every import lazy) "
        "(default: normal)",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also run it with the package at this git revision, rounds interleaved, and compare",
    )
    parser.add_argument(
        "--fail",
        metavar="PCT",
        type=_threshold_argument,
        help="with --against: exit 1 when the whole 95% interval of head/base lies above "
        "1 + PCT (e.g. 5%)",
    )
    parser.add_argument(
        "--store", metavar="DIR", help="keep instruction counts here (default: per-user cache)"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="count again instead of reusing stored counts"
    )
    parser.add_argument(
        "--progress", action="store_true", help="print a line to stderr after each round"
    )
    return parser


def _check_one_command(arguments: argparse.Namespace) -> None:
    """A command or a snippet that is not empty, not both."""
    if arguments.code is not None and not arguments.code.strip():
        raise UsageError("--code: the snippet is empty (give the Python code to run)")
    if bool(arguments.command) == bool(arguments.code):
        raise UsageError(
            "give the command after -- (startup -- mycli --help) or --code SNIPPET, and not both"
        )


def _check_arguments(arguments: argparse.Namespace) -> None:
    """One command or one snippet; sensible numbers, paths and options."""
    _check_one_command(arguments)
    if arguments.rounds is None:
        arguments.rounds = default_rounds(arguments.metric)
    if arguments.warmup is None:
        arguments.warmup = default_warmup(arguments.metric)
    if arguments.rounds < 1 or arguments.warmup < 0 or arguments.timeout <= 0:
        raise UsageError("--rounds must be >= 1, --warmup >= 0 and --timeout > 0")
    for directory in arguments.path:
        if not Path(directory).is_dir():
            raise UsageError(f"--path {directory}: not a directory")
    if arguments.store is not None and Path(arguments.store).is_file():
        raise UsageError(f"--store {arguments.store}: not a directory")
    if not 0 <= arguments.exit_code <= 255:
        raise UsageError(f"--exit-code {arguments.exit_code}: an exit status is 0 to 255")
    if arguments.fail is not None and not arguments.against:
        raise UsageError("--fail needs --against REV: it judges the comparison with a revision")


def run(arguments: argparse.Namespace) -> int:
    """Measure the command, print the report; 1 when ``--fail`` finds it slower."""
    _check_arguments(arguments)
    from .startup_run import profile_startup  # noqa: PLC0415 - not for --help or a usage error

    return profile_startup(arguments)
