"""``pytest-importcache MODULE [MODULE...]``: profile imports, the command's default action.

Profiling measures cold and warm (and closure-cold with ``--closure``) with the
plugin's engine and defaults (10 rounds after 1 warm-up round), then prints per
module the statistics, the modules loaded, where the time goes and a marker
line with suggested budgets (see :mod:`pytest_importcache.cli.profile_output`);
``--json`` prints the same data as one JSON document.

``--against REV`` also measures the package as it was at git revision
``REV`` (see :mod:`pytest_importcache.engine.against`), rounds interleaved with the
working tree's, and adds the ratio head/base per flavour with its 95%
interval and the modules whose self time changed most. ``--fail PCT`` exits
with 1 when, for any flavour, the whole interval lies above ``1 + PCT``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_importcache.model.spec import (
    DEFAULT_INSTRUCTION_ROUNDS,
    DEFAULT_INSTRUCTION_WARMUP,
    DEFAULT_METRIC,
    DEFAULT_ROUNDS,
    DEFAULT_TIMEOUT,
    DEFAULT_WARMUP,
    METRICS,
    default_rounds,
    default_warmup,
)
from pytest_importcache.model.units import parse_percentage

from .common import PROG, Parser, UsageError, seconds_argument

__all__ = ["LAZY_IMPORTS_CHOICES", "make_parser", "run"]

#: ``--lazy-imports``: PEP 810's modes, and both side by side.
LAZY_IMPORTS_CHOICES = ("normal", "all", "compare")

_PROFILE_EPILOG = f"""\
subcommands (must be the first argument; each has --help):
  {PROG} compare     compare the imports of two saved runs
  {PROG} calibrate   measure this machine for budget scale auto
  {PROG} cache       list or clear the cache of package copies
  {PROG} report      draw the icicle page of a saved run
  {PROG} history     each import's figure over the saved runs
  {PROG} startup     profile a command's start-up, exec to exit
  {PROG} check       the pyproject.toml budgets and their lock
Any other first argument is a module to measure. To measure a module named
like a subcommand, put -- before it: '{PROG} -- compare'.
"""


def make_parser() -> argparse.ArgumentParser:
    """The parser of the default action, measuring the modules named."""
    parser = Parser(
        prog=PROG,
        description="Measure cold and warm imports in fresh interpreters and suggest budgets.",
        epilog=_PROFILE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("modules", nargs="+", metavar="MODULE", help="dotted module names")
    parser.add_argument(
        "--metric",
        choices=METRICS,
        default=DEFAULT_METRIC,
        help="time (seconds, default) or instructions (counted under valgrind's callgrind)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"counted rounds ({DEFAULT_ROUNDS}; {DEFAULT_INSTRUCTION_ROUNDS} for instructions)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        help=f"warm-up rounds ({DEFAULT_WARMUP}; {DEFAULT_INSTRUCTION_WARMUP} for instructions)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds_argument,
        default=DEFAULT_TIMEOUT,
        help=f"time one round may take, e.g. 60, 90s or 500ms ({DEFAULT_TIMEOUT:g} seconds)",
    )
    parser.add_argument("--closure", action="store_true", help="also measure closure-cold")
    parser.add_argument("--python", help="interpreter to measure under (default: this one)")
    parser.add_argument(
        "--path", action="append", default=[], metavar="DIR", help="find modules here first"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--progress",
        action="store_true",
        help="print a line to stderr after each round (module, flavour, round, seconds), "
        "also when stderr is not a terminal (a CI log)",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also measure the package at this git revision, rounds interleaved, and compare",
    )
    parser.add_argument(
        "--store",
        metavar="DIR",
        help="keep instruction counts here and reuse those whose inputs are unchanged "
        "(default: the per-user cache)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="count instructions again instead of reusing stored counts",
    )
    parser.add_argument(
        "--lazy-imports",
        choices=LAZY_IMPORTS_CHOICES,
        help="PEP 810 (CPython 3.15+): measure under -X lazy_imports=all (every import lazy), "
        "or 'compare': normal and all side by side, the saving all would bring "
        "(default: normal)",
    )
    parser.add_argument(
        "--fail",
        metavar="PCT",
        type=_threshold_argument,
        help="with --against: exit 1 when the whole 95% interval of head/base lies above "
        "1 + PCT (e.g. 5%)",
    )
    return parser


def _threshold_argument(text: str) -> float:
    """``"5%"``, ``"5"`` or ``"0.5%"`` as a fraction (0.05); argparse reports a bad one."""
    try:
        return parse_percentage(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check_profile_arguments(arguments: argparse.Namespace) -> None:
    """Fill in the metric's default rounds; refuse impossible numbers, paths and options."""
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
    if arguments.lazy_imports == "compare" and arguments.against:
        raise UsageError("--lazy-imports compare and --against compare two different things")
    if arguments.fail is not None and not arguments.against:
        raise UsageError("--fail needs --against REV: it judges the comparison with a revision")


def run(arguments: argparse.Namespace) -> int:
    """Measure, print the report; 1 when ``--fail`` finds a flavour slower than the revision."""
    _check_profile_arguments(arguments)
    # The engine and the renderers (~100 modules) load once the command line is known to be good.
    from .profile_run import profile  # noqa: PLC0415 - not for --help or a usage error

    return profile(arguments)
