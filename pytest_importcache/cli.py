"""``pytest-importcache`` / ``python -m pytest_importcache``: profile imports, compare runs.

Usage::

    pytest-importcache MODULE [MODULE...] [--rounds N] [--closure] [--python PATH]
                       [--path DIR] [--json]
    pytest-importcache compare [RUN_A] [RUN_B] [--storage DIR] [--fail median:10%]
    pytest-importcache calibrate [--rounds N] [--python PATH]

Profiling measures cold and warm (and closure-cold with ``--closure``) with the
plugin's engine and defaults (10 rounds after 1 warm-up round), then prints per
module the statistics, where the time goes (the warm import's module tree,
pruned to the modules that matter), and a marker line with suggested budgets:
the measured median plus 30%, rounded up. ``--json`` prints the same data as
one JSON document (see :func:`profile_json`).

``compare`` reads pytest-benchmark storage (``.benchmarks`` by default) and
compares the import measurements of two runs (the latest two by default;
``0001``, ``0001_name`` or a path, as pytest-benchmark accepts), with the
modules whose self time changed most. ``--fail`` exits with 1 when a
measurement got slower than the threshold (pytest-benchmark's own CLI cannot).

``calibrate`` measures the reference import (see :mod:`pytest_importcache.reference`)
and prints the ini lines that make ``importcache_budget_scale = auto`` scale
time budgets by this machine's speed.

Errors (a bad module, option or run file) print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

from .budget import format_duration, suggest_budget
from .errors import ImportCacheError
from .result import ImportResult, ModuleTiming, flavour_label, importer_tree

__all__ = ["main", "profile_json"]

PROG = "pytest-importcache"
JSON_SCHEMA_VERSION = 1
TREE_LINES = 25
# A module is shown in the tree when its cumulative time is at least this share of the import.
TREE_SHARE = 0.02
WIDTH = 80


class UsageError(Exception):
    """A bad command line, module or run file: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _profile_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Measure cold and warm imports in fresh interpreters and suggest budgets. "
        f"Also: '{PROG} compare --help'.",
    )
    parser.add_argument("modules", nargs="+", metavar="MODULE", help="dotted module names")
    parser.add_argument("--rounds", type=int, default=10, help="counted rounds (default: 10)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up rounds (default: 1)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per round (60)")
    parser.add_argument("--closure", action="store_true", help="also measure closure-cold")
    parser.add_argument("--python", help="interpreter to measure under (default: this one)")
    parser.add_argument(
        "--path", action="append", default=[], metavar="DIR", help="find modules here first"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def _compare_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} compare",
        description="Compare the import measurements of two saved pytest-benchmark runs.",
    )
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run number, name or path")
    parser.add_argument(
        "--storage", default=".benchmarks", help="pytest-benchmark storage (.benchmarks)"
    )
    parser.add_argument("--fail", metavar="STAT:N%", help="exit 1 on a slowdown past this")
    return parser


def _calibrate_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} calibrate",
        description="Measure the reference import and print the ini lines for "
        "importcache_budget_scale = auto.",
    )
    parser.add_argument("--rounds", type=int, default=10, help="counted rounds (default: 10)")
    parser.add_argument("--python", help="interpreter to measure under (default: this one)")
    return parser


# -- profiling ------------------------------------------------------------------


class _Progress:
    """A one-line progress bar on a terminal's stderr; silent elsewhere."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.enabled = stream.isatty()

    def callback(self, label: str) -> Callable[[int, int], None]:
        def show(done: int, total: int) -> None:
            if self.enabled:
                filled = round(20 * done / total)
                bar = "#" * filled + "." * (20 - filled)
                self.stream.write(f"\r{label[:45]:<45} [{bar}] {done}/{total}")
                self.stream.flush()

        return show

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (WIDTH - 1) + "\r")
            self.stream.flush()


def _tree_lines(result: ImportResult) -> list[str]:
    """The import tree, biggest cumulative first, pruned to the modules that matter."""
    children = importer_tree(result.module, result.modules.values())
    total = max((timing.cumulative_seconds for timing in result.modules.values()), default=0.0)
    lines: list[str] = []

    def visit(timing: ModuleTiming, depth: int) -> None:
        if len(lines) >= TREE_LINES or timing.cumulative_seconds < TREE_SHARE * total:
            return
        self_time = format_duration(timing.self_seconds)
        cumulative = format_duration(timing.cumulative_seconds)
        line = f"    {self_time:>8} {cumulative:>8}  {'  ' * depth}{timing.name}"
        lines.append(line if len(line) <= WIDTH else line[: WIDTH - 1] + "…")
        for child in children.get(timing.name, []):
            visit(child, depth + 1)

    for root in children.get(None, []):
        visit(root, 0)
    return lines


def suggested_marker(module: str, results: dict[str, ImportResult]) -> str:
    """A ready-to-paste ``import_budget`` marker with budgets 30% above the medians."""
    arguments = [json.dumps(module)]
    cold = results.get("closure-cold") or results.get("cold")
    if cold is not None:
        arguments.append(f'cold="{suggest_budget(cold.median)}"')
    if "warm" in results:
        arguments.append(f'warm="{suggest_budget(results["warm"].median)}"')
    if "closure-cold" in results:
        arguments.append("closure=True")
    return f"@pytest.mark.import_budget({', '.join(arguments)})"


def _text_report(module: str, results: dict[str, ImportResult]) -> list[str]:
    any_result = next(iter(results.values()))
    lines = [
        f"{module}  (Python {any_result.python_version}, {len(any_result.modules)} modules loaded)",
        f"  {'':<13} {'median':>8} {'min':>8} {'max':>8} {'rounds':>7}",
    ]
    for label, result in results.items():
        lines.append(
            f"  {label:<13} {format_duration(result.median):>8} {format_duration(result.min):>8} "
            f"{format_duration(result.max):>8} {result.rounds:>7}"
        )
    tree_source = results.get("warm") or any_result
    lines.append(f"  where the time goes ({tree_source.label}; self, cumulative):")
    lines += _tree_lines(tree_source)
    lines.append("  suggested budget:")
    lines.append(f"    {suggested_marker(module, results)}")
    return lines


def profile_json(results_by_module: dict[str, dict[str, ImportResult]]) -> dict[str, Any]:
    """The ``--json`` document.

    ``{"schema": 1, "modules": [{"module", "python", "python_version",
    "modules_loaded", "flavours": {label: {"rounds", "min", "max", "mean",
    "median", "stddev", "iqr", "wall", "cpu", "file"}}, "slowest": [{"module",
    "self", "cumulative", "parent"}], "suggested_marker"}]}``; times in seconds.
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
                "flavours": {
                    label: {
                        "rounds": result.rounds,
                        "min": result.min,
                        "max": result.max,
                        "mean": result.mean,
                        "median": result.median,
                        "stddev": result.stddev,
                        "iqr": result.iqr,
                        "wall": list(result.wall),
                        "cpu": list(result.cpu),
                        "file": result.file,
                    }
                    for label, result in results.items()
                },
                "slowest": [
                    {
                        "module": timing.name,
                        "self": timing.self_seconds,
                        "cumulative": timing.cumulative_seconds,
                        "parent": timing.parent,
                    }
                    for timing in tree_source.slowest(20)
                ],
                "suggested_marker": suggested_marker(module, results),
            }
        )
    return {"schema": JSON_SCHEMA_VERSION, "modules": modules}


def _profile(arguments: argparse.Namespace) -> int:
    from .environment import ImportEnv

    if arguments.rounds < 1 or arguments.warmup < 0 or arguments.timeout <= 0:
        raise UsageError("--rounds must be >= 1, --warmup >= 0 and --timeout > 0")
    for directory in arguments.path:
        if not Path(directory).is_dir():
            raise UsageError(f"--path {directory}: not a directory")
    search_path = [*map(str, arguments.path), *sys.path] if arguments.path else None
    flavours: list[tuple[str, bool]] = [("cold", False), ("warm", False)]
    if arguments.closure:
        flavours.append(("cold", True))
    progress = _Progress(sys.stderr)
    results_by_module: dict[str, dict[str, ImportResult]] = {}
    try:
        for module in arguments.modules:
            results: dict[str, ImportResult] = {}
            for flavour, closure in flavours:
                label = flavour_label(flavour, closure)
                env = ImportEnv(
                    flavour,  # type: ignore[arg-type]
                    closure=closure,
                    python=arguments.python,
                    rounds=arguments.rounds,
                    warmup=arguments.warmup,
                    timeout=arguments.timeout,
                    search_path=search_path,
                    on_round=progress.callback(f"{module} ({label})"),
                )
                results[label] = env.measure(module)
            results_by_module[module] = results
    except (ImportCacheError, ValueError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    finally:
        progress.clear()
    if arguments.json:
        print(json.dumps(profile_json(results_by_module), indent=2))
    else:
        blocks = [_text_report(module, results) for module, results in results_by_module.items()]
        print("\n\n".join("\n".join(block) for block in blocks))
    return 0


def _calibrate(arguments: argparse.Namespace) -> int:
    from .environment import default_cache_dir
    from .reference import REFERENCE_PACKAGE, measure_reference

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
    from .report import regression_lines
    from .runs import (
        FailThreshold,
        RunError,
        compare_runs,
        find_runs,
        latest_runs,
        load_run,
        resolve_run,
        runs_beside,
    )

    storage = Path(arguments.storage)
    try:
        threshold = FailThreshold.parse(arguments.fail) if arguments.fail else None
    except ValueError as exc:
        raise UsageError(f"--fail: {exc}") from None
    if len(arguments.runs) > 2:
        raise UsageError("compare takes at most two runs")
    stat = threshold.stat if threshold else "median"
    try:
        paths = [resolve_run(spec, storage) for spec in arguments.runs]
        if len(paths) == 1:
            # The named run against the newest run saved beside it.
            paths.append(runs_beside(paths[0])[-1])
            if paths[0] == paths[1]:
                raise RunError(
                    f"{paths[0].name} is the newest run in {paths[0].parent}: "
                    "name the run to compare it with"
                )
        elif not paths:
            paths = latest_runs(storage)
        if len(paths) < 2:
            raise RunError(f"need two saved runs in {storage}, found {len(find_runs(storage))}")
        before_path, after_path = paths
        before, after = load_run(before_path), load_run(after_path)
        comparisons = compare_runs(before, after, before_path.name, stat)
    except RunError as exc:
        raise UsageError(str(exc)) from None
    print(f"{before_path.name} -> {after_path.name} ({stat})")
    if not comparisons:
        print("no import measurement is in both runs")
        return 0
    for line in regression_lines(comparisons):
        print(line if len(line) <= WIDTH else line[: WIDTH - 1] + "…")
    if threshold is None:
        return 0
    regressed = [item.name for item in comparisons if threshold.fails(item.before, item.after)]
    if regressed:
        print(f"slower than {threshold}: {', '.join(regressed)}")
        return 1
    print(f"no import slower than {threshold}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        subcommands = {
            "calibrate": (_calibrate_parser, _calibrate),
            "compare": (_compare_parser, _compare),
            "profile": (_profile_parser, _profile),
        }
        # A first word that is no subcommand is a module: profiling is the default.
        make_parser, run = subcommands.get(
            arguments[0] if arguments else "", subcommands["profile"]
        )
        if arguments and arguments[0] in subcommands:
            arguments = arguments[1:]
        return run(make_parser().parse_args(arguments))
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): leave quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
