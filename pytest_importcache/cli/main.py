"""``pytest-importcache`` / ``python -m pytest_importcache``: profile imports, compare runs.

Usage::

    pytest-importcache MODULE [MODULE...] [--rounds N] [--closure] [--python PATH]
                       [--path DIR] [--json] [--against REV [--fail PCT]]
    pytest-importcache compare [RUN_A] [RUN_B] [--storage DIR] [--fail median:10%]
    pytest-importcache calibrate [--rounds N] [--python PATH]
    pytest-importcache cache [--dir DIR] [--clear] [--json]
    pytest-importcache report [RUN] [--against RUN] --output FILE [--storage DIR]
    pytest-importcache history [--storage DIR] [--output FILE] [--stat STAT]

The first argument picks the action: ``compare``, ``calibrate`` and ``cache``
are subcommands; anything else starts the default action, measuring the
modules named. A module named like a subcommand is measured after ``--``:
``pytest-importcache -- compare`` measures the module ``compare`` (and
``pytest-importcache profile`` measures the standard library's ``profile``).

Profiling measures cold and warm (and closure-cold with ``--closure``) with the
plugin's engine and defaults (10 rounds after 1 warm-up round), then prints per
module the statistics, how many modules the import loaded on top of those the
interpreter loaded at start-up, the modules it created lazily but never
executed (``importlib.util.LazyLoader``), where the time goes (the warm
import's module tree, pruned to the modules that matter), and a marker line
with suggested budgets: the fastest round (the budgets' default statistic)
plus 30%, rounded up. ``--json`` prints the same data as one JSON document
(see :func:`profile_json`).

``--against REV`` also measures the package as it was at git revision
``REV`` (see :mod:`pytest_importcache.engine.against`), rounds interleaved with the
working tree's, and adds the ratio head/base per flavour with its 95%
interval and the modules whose self time changed most. ``--fail PCT`` exits
with 1 when, for any flavour, the whole interval lies above ``1 + PCT``.

``compare`` reads pytest-benchmark storage (``.benchmarks`` by default; also a
single machine directory such as ``.benchmarks/Linux-CPython-3.11-64bit``) and
compares the import measurements of two runs (the latest two of the machine
directory saved last by default; ``0001``, ``0001_name`` or a path, as
pytest-benchmark accepts), with the modules whose self time changed most.
``--fail`` exits with 1 when a measurement got slower than the threshold
(pytest-benchmark's own CLI cannot).

``report`` draws the icicle page of a saved run (the newest by default) from
the import trees pytest-benchmark storage keeps, the same page as
``--importcache-report``; ``--against RUN`` adds the diff icicles.

``history`` follows each import over the saved runs of the machine directory
saved last: a table per import on the terminal (run, commit, date, figure,
change, steps), and with ``--output`` an HTML page of SVG charts.

``calibrate`` measures the reference import (see :mod:`pytest_importcache.engine.reference`)
and prints the ini lines that make ``importcache_budget_scale = auto`` scale
time budgets by this machine's speed.

``cache`` lists the persistent cache of package copies (see
:mod:`pytest_importcache.engine.cache`): its directory, its bounds, one line per copy
(package, environment, size, last use) and the total; ``--clear`` removes
every copy no process is using. ``--json`` prints ``{"schema": 1, "cache_dir",
"max_age_days", "max_copies_per_package", "copies": [{"path", "package",
"environment", "size_bytes", "last_used"}], "total_bytes"}`` (``last_used`` in
epoch seconds), ``"revisions"`` (git revisions extracted for ``--against`` and
``--importcache-baseline``), plus ``"removed"``, ``"freed_bytes"``, ``"kept"``
and ``"revisions_removed"`` with ``--clear``.

Errors (a bad module, option or run file) print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from pytest_importcache.engine.locate import ImportLocationWarning
from pytest_importcache.model.errors import ImportCacheError, LocateError
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.result import ImportResult, ModuleTiming, importer_tree
from pytest_importcache.model.spec import (
    DEFAULT_INSTRUCTION_ROUNDS,
    DEFAULT_INSTRUCTION_WARMUP,
    DEFAULT_METRIC,
    DEFAULT_ROUNDS,
    DEFAULT_SLOWDOWN_THRESHOLD,
    DEFAULT_STATISTIC,
    DEFAULT_TIMEOUT,
    DEFAULT_WARMUP,
    METRICS,
    Flavour,
    MeasurementSpec,
    default_rounds,
    default_warmup,
    metric_label,
)
from pytest_importcache.model.units import (
    BudgetError,
    fit,
    format_cost,
    format_duration,
    parse_duration,
    parse_percentage,
    suggest_cost_budget,
)

if TYPE_CHECKING:
    from pytest_importcache.engine.countstore import CountStore
    from pytest_importcache.model.comparison import Comparison

__all__ = ["main", "profile_json"]

PROG = "pytest-importcache"
JSON_SCHEMA_VERSION = 1
TREE_LINES = 25
# A module is shown in the tree when its cumulative time is at least this share of the import.
TREE_SHARE = 0.02
WIDTH = 80
# How locate's error for a module found nowhere begins.
NOT_FOUND = "cannot find module "


class UsageError(Exception):
    """A bad command line, module or run file: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit 2).

    Help texts are given as plain text ("95% interval"): argparse %-formats
    them, so :meth:`add_argument` escapes them once, here.
    """

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """``ArgumentParser.add_argument``, with a ``help`` text that may hold ``%``."""
        if isinstance(kwargs.get("help"), str):
            kwargs["help"] = kwargs["help"].replace("%", "%%")
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


_PROFILE_EPILOG = f"""\
subcommands (must be the first argument; each has --help):
  {PROG} compare     compare the imports of two saved runs
  {PROG} calibrate   measure this machine for budget scale auto
  {PROG} cache       list or clear the cache of package copies
  {PROG} report      draw the icicle page of a saved run
  {PROG} history     each import's figure over the saved runs
Any other first argument is a module to measure. To measure a module named
like a subcommand, put -- before it: '{PROG} -- compare'.
"""


def _profile_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        type=_seconds_argument,
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


def _seconds_argument(text: str) -> float:
    """``"60"``, ``"90s"`` or ``"500ms"`` in seconds, as ``importcache_timeout`` takes them."""
    try:
        return parse_duration(text)
    except BudgetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _compare_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} compare",
        description="Compare the import measurements of two saved pytest-benchmark runs.",
    )
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run number, name or path")
    _add_storage_argument(parser)
    parser.add_argument("--fail", metavar="STAT:N%", help="exit 1 on a slowdown past this")
    return parser


def _add_storage_argument(parser: argparse.ArgumentParser) -> None:
    """``--storage``, where ``compare``, ``report`` and ``history`` read saved runs."""
    parser.add_argument(
        "--storage",
        default=".benchmarks",
        help="pytest-benchmark storage, or one machine directory in it (default: .benchmarks)",
    )


def _report_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} report",
        description="Draw the icicle report of a saved run, optionally against another run.",
    )
    parser.add_argument(
        "run", nargs="?", metavar="RUN", help="run number, name or path (default: the newest)"
    )
    parser.add_argument("--against", metavar="RUN", help="draw diff icicles against this run")
    parser.add_argument("--output", required=True, metavar="FILE", help="the HTML file to write")
    _add_storage_argument(parser)
    return parser


def _history_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} history",
        description="Each import's figure over the saved runs of one machine directory.",
    )
    _add_storage_argument(parser)
    parser.add_argument("--output", metavar="FILE", help="also write the charts to this HTML file")
    parser.add_argument(
        "--stat",
        default=DEFAULT_STATISTIC,
        choices=("min", "max", "mean", "median"),
        help=f"the statistic followed (default: {DEFAULT_STATISTIC})",
    )
    return parser


def _calibrate_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} calibrate",
        description="Measure the reference import and print the ini lines for "
        "importcache_budget_scale = auto.",
    )
    parser.add_argument(
        "--rounds", type=int, default=DEFAULT_ROUNDS, help=f"counted rounds ({DEFAULT_ROUNDS})"
    )
    parser.add_argument("--python", help="interpreter to measure under (default: this one)")
    return parser


def _cache_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} cache",
        description="List the persistent cache of package copies and stored counts, or clear it.",
    )
    parser.add_argument(
        "--dir", metavar="DIR", help="the cache directory (default: the per-user cache)"
    )
    parser.add_argument(
        "--store",
        metavar="DIR",
        help="the instruction count store (default: 'counts' in the cache directory)",
    )
    parser.add_argument(
        "--clear", action="store_true", help="remove every copy not in use and every stored count"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


# -- profiling ------------------------------------------------------------------


class _Progress:
    """A one-line progress bar on a terminal's stderr; silent elsewhere.

    With ``lines`` (``--progress``), a line per round instead, terminal or not.
    """

    def __init__(self, stream: IO[str], *, lines: bool = False) -> None:
        self.stream = stream
        self.lines = lines
        self.enabled = stream.isatty() and not lines
        self._since = time.monotonic()

    def round_done(self, spec: MeasurementSpec, index: int, report: RoundReport) -> None:
        """Redraw the bar for ``spec`` after round ``index`` (or print its line)."""
        if self.lines:
            now = time.monotonic()
            label = metric_label(spec.label, spec.metric)
            if index < spec.warmup:
                phase = f"warm-up round {index + 1} of {spec.warmup}"
            else:
                phase = f"round {index - spec.warmup + 1} of {spec.rounds}"
            self.stream.write(
                f"{PROG}: {spec.module} ({label}) {phase}: {now - self._since:.1f} s\n"
            )
            self.stream.flush()
            self._since = now
        if self.enabled:
            done, total = index + 1, spec.total_rounds
            label = f"{spec.module} ({spec.label})"
            filled = round(20 * done / total)
            bar = "#" * filled + "." * (20 - filled)
            self.stream.write(f"\r{label[:45]:<45} [{bar}] {done}/{total}")
            self.stream.flush()

    def measured(self, spec: MeasurementSpec, result: ImportResult) -> None:
        """Nothing to show per result; the next round's time starts now."""
        self._since = time.monotonic()

    def clear(self) -> None:
        """Erase the bar."""
        if self.enabled:
            self.stream.write("\r" + " " * (WIDTH - 1) + "\r")
            self.stream.flush()


def _tree_lines(result: ImportResult) -> list[str]:
    """The import tree, biggest cumulative first, pruned to the modules that matter."""
    children = importer_tree(result.module, result.modules.values())
    total = max((timing.cumulative_cost for timing in result.modules.values()), default=0.0)
    lines: list[str] = []

    def visit(timing: ModuleTiming, depth: int) -> None:
        if len(lines) >= TREE_LINES or timing.cumulative_cost < TREE_SHARE * total:
            return
        self_time = format_cost(timing.self_cost, result.metric)
        cumulative = format_cost(timing.cumulative_cost, result.metric)
        line = f"    {self_time:>8} {cumulative:>8}  {'  ' * depth}{timing.name}"
        lines.append(fit(line, WIDTH))
        for child in children.get(timing.name, []):
            visit(child, depth + 1)

    for root in children.get(None, []):
        visit(root, 0)
    return lines


def suggested_marker(module: str, results: dict[str, ImportResult]) -> str:
    """A ready-to-paste ``import_budget`` marker with budgets 30% above the budget statistic.

    The statistic is the one budgets are compared with by default (the fastest
    round), so a failure's suggestion and this one follow the same rule.
    """
    arguments = [json.dumps(module)]
    metric = next(iter(results.values())).metric
    cold = results.get("closure-cold") or results.get("cold")
    if cold is not None:
        suggestion = suggest_cost_budget(cold.statistic(DEFAULT_STATISTIC), metric)
        arguments.append(f'cold="{suggestion}"')
    if "warm" in results:
        warm = results["warm"].statistic(DEFAULT_STATISTIC)
        arguments.append(f'warm="{suggest_cost_budget(warm, metric)}"')
    if "closure-cold" in results:
        arguments.append("closure=True")
    if metric != DEFAULT_METRIC:
        arguments.append(f'metric="{metric}"')
    return f"@pytest.mark.import_budget({', '.join(arguments)})"


def _count(number: int, noun: str = "module", plural: str | None = None) -> str:
    """``1 module``, ``2 modules``; ``plural`` for a noun that does not just take an s."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def _text_report(module: str, results: dict[str, ImportResult]) -> list[str]:
    any_result = next(iter(results.values()))
    lines = [
        f"{module}  (Python {any_result.python_version}, {_count(len(any_result.modules))} "
        f"loaded, plus {any_result.startup_modules} at start-up)"
    ]
    if any_result.lazy_modules:
        lines += textwrap.wrap(
            "created lazily, never executed: " + ", ".join(any_result.lazy_modules),
            WIDTH,
            initial_indent="  ",
            subsequent_indent="    ",
            break_on_hyphens=False,
        )
    metric = any_result.metric
    unit = " (instructions)" if metric == "instructions" else ""
    lines.append(f"  {'':<13} {'median':>8} {'min':>8} {'max':>8} {'rounds':>7}{unit}")
    for label, result in results.items():
        lines.append(
            f"  {label:<13} {format_cost(result.median, metric):>8} "
            f"{format_cost(result.min, metric):>8} {format_cost(result.max, metric):>8} "
            f"{result.rounds:>7}"
            + (f"  reused, counted {result.reused.counted_at}" if result.reused else "")
        )
    tree_source = results.get("warm") or any_result
    where = "the instructions go" if metric == "instructions" else "the time goes"
    lines.append(f"  where {where} ({tree_source.label}; self, cumulative):")
    lines += _tree_lines(tree_source)
    lines.append("  suggested budget:")
    lines.append(f"    {suggested_marker(module, results)}")
    lines += _noise_lines(results)
    return lines


def _noise_lines(results: dict[str, ImportResult]) -> list[str]:
    """A warning per flavour whose rounds are too noisy for the suggestion above.

    Instruction counts that differ between rounds are not exact: that is said too.
    """
    from pytest_importcache.model.noise import count_disagreement, suggestion_caveat

    return [
        f"    ({label}: {caveat})"
        for label, result in results.items()
        if (
            caveat := suggestion_caveat(result.values)
            or (count_disagreement(result.values) if result.metric == "instructions" else "")
        )
    ]


def profile_json(results_by_module: dict[str, dict[str, ImportResult]]) -> dict[str, Any]:
    """The ``--json`` document.

    ``{"schema": 1, "modules": [{"module", "python", "python_version",
    "modules_loaded", "startup_modules", "lazy_modules", "flavours": {label:
    {"metric", "rounds", "min", "max", "mean", "median", "stddev", "iqr",
    "wall", "cpu", "instructions", "file", "reused"}}, "slowest": [{"module",
    "self", "cumulative", "parent"}], "suggested_marker"}]}``. ``metric`` is ``time``
    or ``instructions``: the statistics and the module costs are seconds, or
    instruction counts; ``instructions`` lists each round's count (empty for
    time); ``wall`` and ``cpu`` are each round's seconds (under callgrind, its
    slowed-down ones). ``modules_loaded`` counts the
    modules the import loaded; ``startup_modules`` those the interpreter had
    loaded before it (its start-up); ``lazy_modules`` names the modules the
    import created lazily but never executed (not counted in ``modules_loaded``).
    ``startup_modules``, ``lazy_modules``, ``metric`` and ``instructions``
    were added within schema 1.
    """
    modules = []
    for module, results in results_by_module.items():
        any_result = next(iter(results.values()))
        tree_source = results.get("warm") or any_result
        modules.append(
            {
                "module": module,
                "python": any_result.python,
                "python_version": any_result.python_version,
                "modules_loaded": len(any_result.modules),
                "startup_modules": any_result.startup_modules,
                "lazy_modules": list(any_result.lazy_modules),
                "flavours": {
                    label: {
                        "metric": result.metric,
                        "rounds": result.rounds,
                        "min": result.min,
                        "max": result.max,
                        "mean": result.mean,
                        "median": result.median,
                        "stddev": result.stddev,
                        "iqr": result.iqr,
                        "wall": list(result.wall),
                        "cpu": list(result.cpu),
                        "instructions": list(result.instructions),
                        "file": result.file,
                        "reused": result.reused.to_json() if result.reused else None,
                    }
                    for label, result in results.items()
                },
                "slowest": [
                    {
                        "module": timing.name,
                        "self": timing.self_cost,
                        "cumulative": timing.cumulative_cost,
                        "parent": timing.parent,
                    }
                    for timing in tree_source.slowest(20)
                ],
                "suggested_marker": suggested_marker(module, results),
            }
        )
    return {"schema": JSON_SCHEMA_VERSION, "modules": modules}


def _measure_all(
    arguments: argparse.Namespace,
    flavours: list[tuple[Flavour, bool]],
    search_path: list[str] | None,
    progress: _Progress,
    comparisons: dict[str, dict[str, Comparison]] | None = None,
) -> dict[str, dict[str, ImportResult]]:
    """Every flavour of every module on the command line, measured.

    With ``--against``, each is measured against the revision too (rounds
    interleaved), and the comparisons go into ``comparisons``.
    """
    from pytest_importcache.engine.against import measure_against
    from pytest_importcache.engine.measurer import Measurer

    measurer = Measurer(
        search_path=search_path, observers=[progress], count_store=_count_store(arguments)
    )
    results_by_module: dict[str, dict[str, ImportResult]] = {}
    try:
        for module in arguments.modules:
            results: dict[str, ImportResult] = {}
            for flavour, closure in flavours:
                spec = MeasurementSpec(
                    module,
                    flavour=flavour,
                    closure=closure,
                    python=arguments.python,
                    rounds=arguments.rounds,
                    warmup=arguments.warmup,
                    timeout=arguments.timeout,
                    metric=arguments.metric,
                )
                if comparisons is not None and arguments.against:
                    comparison = measure_against(measurer, spec, arguments.against)
                    comparisons.setdefault(module, {})[spec.label] = comparison
                    results[spec.label] = comparison.head
                else:
                    results[spec.label] = measurer.measure(spec)
            results_by_module[module] = results
    except (ImportCacheError, ValueError) as exc:
        message = str(exc).splitlines()[0]
        if isinstance(exc, LocateError) and message.startswith(NOT_FOUND):
            message += f"; {_path_hint(arguments)}"
        raise UsageError(message) from None
    finally:
        progress.clear()
    return results_by_module


def _path_hint(arguments: argparse.Namespace) -> str:
    """What to try when a module is found nowhere: ``--path``, pointed at the right directory."""
    for directory in arguments.path:
        given = Path(directory)
        if any(module.split(".")[0] == given.resolve().name for module in arguments.modules):
            holder = os.path.normpath(os.path.join(directory, os.pardir))
            return (
                f"--path {directory} names the package itself: give the directory that "
                f"holds it (--path {holder})"
            )
    if arguments.path:
        searched = " ".join(f"--path {directory}" for directory in arguments.path)
        return f"not in {searched} either: give the directory that holds the package"
    return "for a source tree that is not installed, add --path DIR (the directory holding it)"


def _store_warning(message: str) -> None:
    print(f"{PROG}: warning: {message.removeprefix('importcache: ')}", file=sys.stderr)


def _count_store(arguments: argparse.Namespace) -> CountStore:
    """The count store ``--store`` names (default: the per-user one), fresh with ``--fresh``."""
    from pytest_importcache.engine.countstore import CountStore, default_store_path

    if arguments.store is not None:
        directory = Path(arguments.store)
    else:
        directory = default_store_path(_cache_dir_argument(None))
    return CountStore(directory, fresh=arguments.fresh, warn=_store_warning)


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
    if arguments.fail is not None and not arguments.against:
        raise UsageError("--fail needs --against REV: it judges the comparison with a revision")


def _search_path_without_own_entry() -> list[str]:
    """``sys.path`` without the entry Python added for this command itself.

    That first entry is the script's directory (``pytest-importcache``) or the
    current directory (``python -m pytest_importcache``): where the command
    was started from, not where the user's modules are. Without it, both forms
    measure the same import (``--path`` names a source tree).
    """
    own_entry = not getattr(sys.flags, "safe_path", False)
    return sys.path[1:] if own_entry else list(sys.path)


def _profile(arguments: argparse.Namespace) -> int:
    _check_profile_arguments(arguments)
    comparisons: dict[str, dict[str, Comparison]] = {}
    search_path = [*map(str, arguments.path), *_search_path_without_own_entry()]
    flavours: list[tuple[Flavour, bool]] = [("cold", False), ("warm", False)]
    if arguments.closure:
        flavours.append(("cold", True))
    progress = _Progress(sys.stderr, lines=arguments.progress)
    # Which file is measured, when this process imported another one, is a note.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImportLocationWarning)
        results_by_module = _measure_all(arguments, flavours, search_path, progress, comparisons)
    served = [
        comparison.served_note
        for by_label in comparisons.values()
        for comparison in by_label.values()
        if comparison.served
    ]
    for message in dict.fromkeys([*(str(warning.message) for warning in caught), *served]):
        print(f"{PROG}: note: {message}", file=sys.stderr)
    threshold = DEFAULT_SLOWDOWN_THRESHOLD if arguments.fail is None else arguments.fail
    if arguments.json:
        document = profile_json(results_by_module)
        if comparisons:
            add_comparisons_json(document, comparisons, threshold)
        print(json.dumps(document, indent=2))
    else:
        blocks = [
            _text_report(module, results)
            + comparison_lines(comparisons.get(module, {}), threshold, arguments.fail is not None)
            for module, results in results_by_module.items()
        ]
        print("\n\n".join("\n".join(block) for block in blocks))
    slower = any(
        comparison.slower(threshold)
        for by_label in comparisons.values()
        for comparison in by_label.values()
    )
    return 1 if arguments.fail is not None and slower else 0


CHANGED_MODULES = 8


def comparison_lines(
    comparisons: dict[str, Comparison], threshold: float, failing: bool
) -> list[str]:
    """The ``--against`` block: head and base per flavour, the ratio, what changed.

    Empty without comparisons. ``failing`` says ``--fail`` was given (the
    verdict lines then say FAIL rather than "slower").
    """
    from pytest_importcache.render.report import explanation_heading, explanation_lines, tree_rows

    if not comparisons:
        return []
    first = next(iter(comparisons.values()))
    lines = [
        f"  against {first.revision}, in the same run, rounds interleaved:",
        f"  {'':<13} {first.statistic:>8} {first.statistic:>8}",
        f"  {'':<13} {'head':>8} {'base':>8} {'ratio':>7}  95% interval ({first.interval.label})",
    ]
    metric = first.head.metric
    for label, comparison in comparisons.items():
        interval = comparison.interval
        shown = interval.bounds
        lines.append(
            f"  {label:<13} {format_cost(comparison.figures[0], metric):>8} "
            f"{format_cost(comparison.figures[1], metric):>8} x{interval.ratio:<6.3f}  {shown}"
        )
    source_label = "warm" if "warm" in comparisons else next(iter(comparisons))
    source = comparisons[source_label]
    explained = explanation_lines(
        tree_rows(source.base),
        tree_rows(source.head),
        source.head.module,
        metric,
        modules=CHANGED_MODULES,
    )
    if explained:
        lines.append(f"  {explanation_heading(metric, source_label)}:")
        lines += [fit(f"    {line}", WIDTH) for line in explained]
    for label, comparison in comparisons.items():
        if comparison.slower(threshold):
            verdict = "FAIL" if failing else "slower"
            lines.append(
                f"  {verdict}: {label} is more than {threshold:.0%} slower than "
                f"{comparison.revision.short} (whole interval above x{1 + threshold:.2f})"
            )
        elif noise := comparison.noise(threshold):
            lines.append(f"  {label}: {noise}")
    return lines


def add_comparisons_json(
    document: dict[str, Any], comparisons: dict[str, dict[str, Comparison]], threshold: float
) -> None:
    """Add ``"against"`` to each module of a ``--json`` document.

    ``{"against": {label: {"revision", "commit", "ratio", "low", "high",
    "confidence", "method", "estimator", "statistic", "head", "base",
    "head_values", "base_values", "head_median", "base_median", "served",
    "threshold", "slower", "noise", "changed": [{"module",
    "delta", "tag"}], "edges": [{"importer", "module", "status", "delta",
    "was"}]}}}``; times in seconds. ``edges`` are the import edges new, gone or
    moved (``was`` is the former importer of a moved module, else ``""``).
    """
    from dataclasses import asdict

    from pytest_importcache.model.comparison import self_time_deltas
    from pytest_importcache.render.edges import edge_changes
    from pytest_importcache.render.report import tree_rows

    for entry in document["modules"]:
        by_label = comparisons.get(entry["module"], {})
        if not by_label:
            continue
        entry["against"] = {
            label: {
                **comparison.to_json(),
                "threshold": threshold,
                "slower": comparison.slower(threshold),
                "noise": comparison.noise(threshold),
                "changed": [
                    {"module": name, "delta": delta, "tag": tag}
                    for name, delta, tag in self_time_deltas(comparison.head, comparison.base)[
                        :CHANGED_MODULES
                    ]
                ],
                "edges": [
                    asdict(change)
                    for change in edge_changes(
                        tree_rows(comparison.base),
                        tree_rows(comparison.head),
                        comparison.head.module,
                    )
                ],
            }
            for label, comparison in by_label.items()
        }


def _calibrate(arguments: argparse.Namespace) -> int:
    from pytest_importcache.engine.cache import default_cache_dir
    from pytest_importcache.engine.reference import REFERENCE_PACKAGE, measure_reference

    if arguments.rounds < 1:
        raise UsageError("--rounds must be >= 1")
    try:
        calibration = measure_reference(
            default_cache_dir(), python=arguments.python, rounds=arguments.rounds
        )
    except (ImportCacheError, ValueError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    print(
        f"reference import ({REFERENCE_PACKAGE}): cold {format_duration(calibration.cold)}, "
        f"warm {format_duration(calibration.warm)}"
    )
    print("\nin pyproject.toml, under [tool.pytest.ini_options]:")
    print(f'importcache_calibration = "{calibration.to_text()}"')
    print('importcache_budget_scale = "auto"')
    print("\nin pytest.ini, tox.ini or setup.cfg, under [pytest] (or [tool:pytest]):")
    print(f"importcache_calibration = {calibration.to_text()}")
    print("importcache_budget_scale = auto")
    return 0


# -- comparing ---------------------------------------------------------------------


def _compare(arguments: argparse.Namespace) -> int:
    from pytest_importcache.pytest.storage import CompareFailCheck
    from pytest_importcache.render.report import regression_lines
    from pytest_importcache.render.runs import RunError, compare_runs, load_run

    storage = Path(arguments.storage)
    try:
        threshold = CompareFailCheck(arguments.fail) if arguments.fail else None
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


def _draw_against(against: Path, fullnames: list[str], baselines: list[Any]) -> None:
    """Put the trees of ``against``'s entries into ``baselines`` (by ``fullnames``' order).

    An entry the run ``against`` lacks keeps its same-run diff, if any; one saved
    without a tree is a :class:`~pytest_importcache.render.runs.RunError`.
    """
    from pytest_importcache.render.runs import RunError, entry_tree, import_entries, load_run

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


def _report(arguments: argparse.Namespace) -> int:
    from pytest_importcache.render.icicle import Baseline, icicle_page, same_run_baseline
    from pytest_importcache.render.runs import (
        RunError,
        describe_storage,
        import_entries,
        latest_runs,
        load_run,
        resolve_run,
        run_outcomes,
    )

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
    print(
        f"import trees of {_count(len(outcomes), 'measurement')} ({subtitle}) written to {output}"
    )
    return 0


def _history(arguments: argparse.Namespace) -> int:
    from pytest_importcache.render.history import history_lines, history_page, load_history
    from pytest_importcache.render.runs import RunError, describe_storage, latest_runs, runs_beside

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
    source = f"{_count(len(runs) - len(skipped), 'run')} in {newest[0].parent}"
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
        print(f"charts of {_count(len(history), 'import')} written to {output}")
    return 0


def _runs_to_compare(runs: Sequence[str], storage: Path) -> list[Path]:
    """The two run files ``compare`` reads: those named, the named one and the newest
    beside it, or the latest two (:class:`~pytest_importcache.render.runs.RunError` otherwise)."""
    from pytest_importcache.render.runs import RunError, resolve_run, runs_beside

    paths = [resolve_run(spec, storage) for spec in runs]
    if len(paths) == 1:
        paths.append(runs_beside(paths[0])[-1])
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
    from pytest_importcache.render.runs import (
        RunError,
        describe_storage,
        latest_runs,
        machine_directories,
    )

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


# -- the cache -----------------------------------------------------------------------


def format_bytes(size: int) -> str:
    """A size for humans: ``512 B``, ``12.3 kB``, ``4.5 MB``, ``1.2 GB`` (powers of 1000)."""
    if size < 1000:
        return f"{size} B"
    amount, units = size / 1000, ["kB", "MB", "GB"]
    while round(amount, 1) >= 1000 and len(units) > 1:
        amount, units = amount / 1000, units[1:]
    return f"{amount:.1f} {units[0]}"


def format_age(seconds: float) -> str:
    """How long ago, coarsely: ``just now``, ``5 min``, ``3 h``, ``2 days``."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h"
    days = seconds // 86400
    return f"{days:.0f} day{'s' if days != 1 else ''}"


def _cache_dir_argument(directory: str | None) -> Path:
    """The cache ``--dir`` names (a directory, if it exists), or the per-user one."""
    from pytest_importcache.engine.cache import default_cache_dir

    if directory is not None:
        cache_dir = Path(directory)
        if cache_dir.exists() and not cache_dir.is_dir():
            raise UsageError(f"--dir {cache_dir}: not a directory")
        return cache_dir
    try:
        return default_cache_dir()
    except (ImportCacheError, OSError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None


def _store_report(store: CountStore, *, clear: bool) -> tuple[dict[str, Any], str]:
    """The store's entries (cleared with ``clear``), as JSON and as lines of text for ``cache``."""
    from pytest_importcache.engine.cache import MAX_AGE_DAYS
    from pytest_importcache.engine.countstore import MAX_ENTRIES

    counts = store.entries()
    removed = store.clear() if clear else 0
    directory = store.directory
    document: dict[str, Any] = {
        "store": str(directory),
        "entries": len(counts),
        "total_bytes": sum(count.size_bytes for count in counts),
        "max_entries": MAX_ENTRIES,
    }
    if clear:
        document["removed"] = removed
    lines = []
    if counts:
        lines.append(
            f"{_count(len(counts), 'stored instruction count')}, "
            f"{format_bytes(sum(count.size_bytes for count in counts))}, in {directory} "
            f"(at most {MAX_ENTRIES}, unused ones removed after {MAX_AGE_DAYS} days)"
        )
    if removed:
        lines.append(f"removed {_count(removed, 'stored instruction count')}")
    return document, "".join(f"{line}\n" for line in lines)


def _cache(arguments: argparse.Namespace) -> int:
    from pytest_importcache.engine.cache import (
        MAX_AGE_DAYS,
        MAX_COPIES_PER_PACKAGE,
        cached_copies,
        clear_cache,
    )
    from pytest_importcache.engine.countstore import CountStore, default_store_path
    from pytest_importcache.engine.revision import clear_revisions, revision_trees

    cache_dir = _cache_dir_argument(arguments.dir)
    store = CountStore(arguments.store or default_store_path(cache_dir))
    try:
        counts_json, counts_text = _store_report(store, clear=arguments.clear)
        copies = cached_copies(cache_dir)
        revisions = len(revision_trees(cache_dir))
        removed = kept = freed = revisions_removed = 0
        if arguments.clear:
            revisions_removed = clear_revisions(cache_dir)
            removed = clear_cache(cache_dir)
            remaining = {copy.path for copy in cached_copies(cache_dir)}
            freed = sum(copy.size_bytes for copy in copies if copy.path not in remaining)
            kept = len(remaining)
    except OSError as exc:
        raise UsageError(f"cannot read the cache {cache_dir}: {exc}") from None
    bounds = (
        f"copies unused for {MAX_AGE_DAYS} days are removed; "
        f"at most {MAX_COPIES_PER_PACKAGE} per package and environment"
    )
    if arguments.json:
        document: dict[str, Any] = {
            "schema": JSON_SCHEMA_VERSION,
            "cache_dir": str(cache_dir),
            "max_age_days": MAX_AGE_DAYS,
            "max_copies_per_package": MAX_COPIES_PER_PACKAGE,
            "copies": [
                {
                    "path": str(copy.path),
                    "package": copy.package,
                    "environment": copy.environment,
                    "size_bytes": copy.size_bytes,
                    "last_used": copy.last_used,
                }
                for copy in copies
            ],
            "total_bytes": sum(copy.size_bytes for copy in copies),
            "revisions": revisions,
            "counts": counts_json,
        }
        if arguments.clear:
            document.update(
                removed=removed, freed_bytes=freed, kept=kept, revisions_removed=revisions_removed
            )
        print(json.dumps(document, indent=2))
        return 0
    print(f"cache: {cache_dir}{'' if cache_dir.is_dir() or copies else ' (does not exist)'}")
    print(bounds)
    if copies:
        now = time.time()
        package_width = min(max(len("package"), *(len(copy.package) for copy in copies)), 24)
        print(f"  {'package':<{package_width}} {'size':>9} {'last used':>10}  environment")
        for copy in copies:
            age = format_age(max(now - copy.last_used, 0.0))
            line = (
                f"  {copy.package:<{package_width}} {format_bytes(copy.size_bytes):>9} "
                f"{age:>10}  {copy.environment}"
            )
            print(fit(line, WIDTH))
        total = sum(copy.size_bytes for copy in copies)
        print(f"{_count(len(copies), 'copy', 'copies')}, {format_bytes(total)}")
    else:
        print("no copies")
    if revisions:
        print(f"{_count(revisions, 'git revision')} extracted for same-run comparisons")
    sys.stdout.write(counts_text)
    if arguments.clear:
        print(
            f"removed {_count(removed, 'copy', 'copies')}, freed {format_bytes(freed)}"
            + (f"; kept {kept} in use" if kept else "")
        )
        if revisions_removed:
            print(f"removed {_count(revisions_removed, 'git revision')}")
    return 0


SUBCOMMANDS: dict[
    str, tuple[Callable[[], argparse.ArgumentParser], Callable[[argparse.Namespace], int]]
] = {
    "cache": (_cache_parser, _cache),
    "calibrate": (_calibrate_parser, _calibrate),
    "compare": (_compare_parser, _compare),
    "history": (_history_parser, _history),
    "report": (_report_parser, _report),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    A first argument that names a subcommand (``compare``, ``calibrate``,
    ``cache``) runs it; anything else measures the modules named, so
    ``pytest-importcache profile`` measures the module ``profile`` and
    ``pytest-importcache -- compare`` the module ``compare``.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments and arguments[0] in SUBCOMMANDS:
            make_parser, run = SUBCOMMANDS[arguments[0]]
            arguments = arguments[1:]
        else:
            make_parser, run = _profile_parser, _profile
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
    except BrokenPipeError:
        # The reader went away (`| head`): leave quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A file system that refuses (a full disk, a name too long): one line.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"{PROG}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
