"""``pytest-importcache startup`` once its arguments are good: measure, then print.

Loaded by :func:`pytest_importcache.cli.startup.run` only, so that ``--help``
and a usage error do not load the engine. The command runs cold and warm (10
rounds after 1 warm-up round, or as asked), with the package under test's
copy; with ``--against REV``, the package at that revision is measured too,
rounds interleaved.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from pytest_importcache.engine.against import measure_against
from pytest_importcache.engine.measurer import Measurer, round_import_path
from pytest_importcache.engine.memory import bare_interpreter_peak
from pytest_importcache.engine.startup import startup_spec
from pytest_importcache.model.comparison import Comparison
from pytest_importcache.model.errors import ImportCacheError, LocateError, SpecError
from pytest_importcache.model.result import ImportResult
from pytest_importcache.model.spec import (
    DEFAULT_METRIC,
    DEFAULT_SLOWDOWN_THRESHOLD,
    DEFAULT_STATISTIC,
    Flavour,
    StartupCommand,
)
from pytest_importcache.model.stats import median
from pytest_importcache.model.units import format_cost, suggest_cost_budget
from pytest_importcache.render.lazynotes import lazy_import_lines

from .common import JSON_SCHEMA_VERSION, UsageError, count
from .profile_output import _tree_lines, comparison_lines
from .profile_run import (
    NOT_FOUND,
    Progress,
    _count_store,
    _search_path_without_own_entry,
    path_hint,
)

__all__ = ["profile_startup", "startup_json", "startup_text", "suggested_startup_marker"]

FLAVOURS: tuple[Flavour, ...] = ("cold", "warm")


def _megabytes(size: float) -> str:
    """Bytes as ``13.5 MB`` (MB: 2**20 bytes, as resident set sizes are usually read)."""
    return f"{size / 2**20:.1f} MB"


def suggested_startup_marker(
    command: StartupCommand, results: dict[str, ImportResult], lazy_imports: str | None = None
) -> str:
    """A ready-to-paste ``startup_budget`` marker, 30% above the budget statistic."""
    if command.code is not None:
        arguments = [f"code={json.dumps(command.code)}"]
    else:
        arguments = [json.dumps(command.label)]
    metric = next(iter(results.values())).metric
    for label, result in results.items():
        suggestion = suggest_cost_budget(result.statistic(DEFAULT_STATISTIC), metric)
        arguments.append(f'{label}="{suggestion}"')
    if metric != DEFAULT_METRIC:
        arguments.append(f'metric="{metric}"')
    if lazy_imports == "all":
        arguments.append('lazy_imports="all"')
    return f"@pytest.mark.startup_budget({', '.join(arguments)})"


def startup_text(
    command: StartupCommand,
    results: dict[str, ImportResult],
    bare_peak: int | None,
    lazy_imports: str | None = None,
) -> list[str]:
    """The text report: statistics, phases, peak memory, PEP 810, the import tree, a marker.

    Under PEP 810 (3.15+), the lazy imports still pending at exit, those the
    entry module's import reified, and those the run reified at first use.
    """
    any_result = next(iter(results.values()))
    metric = any_result.metric
    lines = [
        f"{command.label}  (Python {any_result.python_version}, package under test "
        f"{any_result.module}, {count(len(any_result.modules))} loaded, plus "
        f"{any_result.startup_modules} at start-up)"
    ]
    unit = " (instructions)" if metric == "instructions" else ""
    lines.append(f"  {'':<13} {'median':>8} {'min':>8} {'max':>8} {'rounds':>7}{unit}")
    for label, result in results.items():
        lines.append(
            f"  {label:<13} {format_cost(result.median, metric):>8} "
            f"{format_cost(result.min, metric):>8} {format_cost(result.max, metric):>8} "
            f"{result.rounds:>7}"
            + (f"  reused, counted {result.reused.counted_at}" if result.reused else "")
        )
    lines.append("  phases (median):")
    for label, result in results.items():
        shown = ", ".join(
            f"{name} {format_cost(median(values), metric)}" for name, values in result.phases
        )
        lines.append(f"    {label:<11} {shown}")
    for label, result in results.items():
        peak = result.peak_memory_max
        if peak is None:
            continue
        beside = (
            f", bare interpreter {_megabytes(bare_peak)} (+{_megabytes(peak - bare_peak)})"
            if bare_peak is not None
            else ""
        )
        lines.append(f"  peak memory ({label}): {_megabytes(peak)}{beside}")
    lines += [
        f"  {line}"
        for line in lazy_import_lines(
            any_result.pending_lazy, any_result.reified, in_run=any_result.reified_in_run
        )
    ]
    tree_source = results.get("warm") or any_result
    where = "the instructions go" if metric == "instructions" else "the time goes"
    lines.append(f"  where {where} ({tree_source.label}; self, cumulative):")
    lines += _tree_lines(tree_source)
    lines.append("  suggested budget:")
    lines.append(f"    {suggested_startup_marker(command, results, lazy_imports)}")
    return lines


def startup_json(
    command: StartupCommand,
    results: dict[str, ImportResult],
    bare_peak: int | None,
    lazy_imports: str | None = None,
) -> dict[str, Any]:
    """The ``--json`` document.

    ``{"schema": 1, "command", "package", "python", "python_version",
    "modules_loaded", "startup_modules", "bare_peak_memory", "flavours":
    {label: {"metric", "rounds", "min", "max", "mean", "median", "stddev",
    "iqr", "values", "phases": {name: [per round]}, "peak_memory": [bytes per
    round], "peak_memory_max", "file", "reused"}}, "slowest": [{"module",
    "self", "cumulative", "parent"}], "suggested_marker", "lazy_imports",
    "pending_lazy": [name], "reified": [{"module", "where"}], "reified_in_run":
    [{"module", "where"}]}``; figures in seconds or instructions as ``metric``
    says, memory in bytes. ``reified_in_run``: the lazy imports the run
    reified at first use (PEP 810, 3.15+), expected.
    """
    any_result = next(iter(results.values()))
    tree_source = results.get("warm") or any_result
    return {
        "schema": JSON_SCHEMA_VERSION,
        "command": command.label,
        "package": any_result.module,
        "python": any_result.python,
        "python_version": any_result.python_version,
        "modules_loaded": len(any_result.modules),
        "startup_modules": any_result.startup_modules,
        "bare_peak_memory": bare_peak,
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
                "values": list(result.values),
                "phases": {name: list(values) for name, values in result.phases},
                "peak_memory": list(result.peak_memory),
                "peak_memory_max": result.peak_memory_max,
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
        "suggested_marker": suggested_startup_marker(command, results, lazy_imports),
        "lazy_imports": lazy_imports,
        "pending_lazy": list(any_result.pending_lazy),
        "reified": [{"module": name, "where": where} for name, where in any_result.reified],
        "reified_in_run": [
            {"module": name, "where": where} for name, where in any_result.reified_in_run
        ],
    }


def _measure(
    arguments: argparse.Namespace, command: StartupCommand, comparisons: dict[str, Comparison]
) -> tuple[StartupCommand, dict[str, ImportResult]]:
    """Each flavour measured (against the revision too, with ``--against``).

    With the command as shown: a path to the interpreter under test as ``python``.
    """
    search_path = [*map(str, arguments.path), *_search_path_without_own_entry()]
    progress = Progress(sys.stderr, lines=arguments.progress)
    measurer = Measurer(
        search_path=search_path, observers=[progress], count_store=_count_store(arguments)
    )
    results: dict[str, ImportResult] = {}
    try:
        for flavour in FLAVOURS:
            spec = startup_spec(
                command,
                flavour=flavour,
                python=arguments.python,
                rounds=arguments.rounds,
                warmup=arguments.warmup,
                timeout=arguments.timeout,
                metric=arguments.metric,
                exit_code=arguments.exit_code,
                lazy_imports=arguments.lazy_imports,
                # What the measurer's rounds search: console scripts are looked up there too.
                import_path=round_import_path(search_path),
            )
            command = spec.command or command
            if arguments.against:
                comparison = measure_against(measurer, spec, arguments.against)
                comparisons[spec.label] = comparison
                results[spec.label] = comparison.head
            else:
                results[spec.label] = measurer.measure(spec)
    except (ImportCacheError, ValueError) as exc:
        message = str(exc).splitlines()[0]
        missing = re.match(rf"{NOT_FOUND}'([^']+)'", message)
        if isinstance(exc, LocateError) and missing:
            message += f"; {path_hint(arguments.path, [missing[1]])}"
        raise UsageError(message) from None
    finally:
        progress.clear()
    return command, results


def profile_startup(arguments: argparse.Namespace) -> int:
    """Measure ``arguments``' command and print the report; 1 when ``--fail`` finds it slower."""
    try:
        command = StartupCommand.parse(arguments.command or None, arguments.code)
    except SpecError as exc:  # an empty program name, shell syntax: the user's words
        raise UsageError(str(exc)) from None
    comparisons: dict[str, Comparison] = {}
    command, results = _measure(arguments, command, comparisons)
    bare_peak = None
    if arguments.metric == "time":
        try:
            bare_peak = bare_interpreter_peak(arguments.python)
        except ImportCacheError:
            bare_peak = None
    threshold = DEFAULT_SLOWDOWN_THRESHOLD if arguments.fail is None else arguments.fail
    if arguments.json:
        document = startup_json(command, results, bare_peak, arguments.lazy_imports)
        if comparisons:
            document["against"] = {
                label: {
                    **comparison.to_json(),
                    "threshold": threshold,
                    "slower": comparison.slower(threshold),
                    "noise": comparison.noise(threshold),
                }
                for label, comparison in comparisons.items()
            }
        print(json.dumps(document, indent=2))
    else:
        lines = startup_text(command, results, bare_peak, arguments.lazy_imports)
        lines += comparison_lines(comparisons, threshold, arguments.fail is not None)
        print("\n".join(lines))
    slower = any(comparison.slower(threshold) for comparison in comparisons.values())
    return 1 if arguments.fail is not None and slower else 0
