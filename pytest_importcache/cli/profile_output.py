"""What ``pytest-importcache MODULE`` prints: per module the text report or the JSON document.

Per module: the statistics, how many modules the import loaded on top of those
the interpreter loaded at start-up, the modules it created lazily but never
executed (``importlib.util.LazyLoader``), where the time goes (the warm
import's module tree, pruned to the modules that matter), and a marker line
with suggested budgets: the fastest round (the budgets' default statistic)
plus 30%, rounded up. ``--json`` prints the same data as one JSON document
(see :func:`profile_json`). With ``--against``, the comparison with the
revision follows (:func:`comparison_lines`, :func:`add_comparisons_json`).
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict
from typing import Any

from pytest_importcache.model.comparison import Comparison, self_time_deltas
from pytest_importcache.model.noise import count_disagreement, suggestion_caveat
from pytest_importcache.model.result import ImportResult, ModuleTiming, importer_tree
from pytest_importcache.model.spec import DEFAULT_METRIC, DEFAULT_STATISTIC
from pytest_importcache.model.units import fit, format_cost, suggest_cost_budget
from pytest_importcache.render.changes import explanation_heading, explanation_lines
from pytest_importcache.render.edges import edge_changes
from pytest_importcache.render.lazynotes import lazy_import_lines

from .common import JSON_SCHEMA_VERSION, WIDTH, count

__all__ = [
    "ALL_SUFFIX",
    "add_comparisons_json",
    "comparison_lines",
    "lazy_saving",
    "lazy_saving_lines",
    "profile_json",
    "suggested_marker",
    "text_report",
]

TREE_LINES = 25
# A module is shown in the tree when its cumulative time is at least this share of the import.
TREE_SHARE = 0.02
CHANGED_MODULES = 8
# After a flavour's label for its measurement under -X lazy_imports=all (--lazy-imports compare).
ALL_SUFFIX = " all"


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


def suggested_marker(
    module: str, results: dict[str, ImportResult], lazy_imports: str | None = None
) -> str:
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
    if lazy_imports == "all":
        arguments.append('lazy_imports="all"')
    return f"@pytest.mark.import_budget({', '.join(arguments)})"


def text_report(
    module: str, results: dict[str, ImportResult], lazy_imports: str | None = None
) -> list[str]:
    """The text block of one module: statistics, tree, suggested marker, noise warnings.

    ``lazy_imports`` is the PEP 810 mode the rounds ran under (``--lazy-imports``);
    measurements labelled ``"cold all"``... (``compare``) are shown beside the
    others, and the saving below them (:func:`lazy_saving_lines`).
    """
    normal = {label: result for label, result in results.items() if not label.endswith(ALL_SUFFIX)}
    any_result = next(iter(normal.values()))
    mode = "; -X lazy_imports=all" if lazy_imports == "all" else ""
    lines = [
        f"{module}  (Python {any_result.python_version}, {count(len(any_result.modules))} "
        f"loaded, plus {any_result.startup_modules} at start-up{mode})"
    ]
    if any_result.lazy_modules:
        lines += textwrap.wrap(
            "created lazily, never executed: " + ", ".join(any_result.lazy_modules),
            WIDTH,
            initial_indent="  ",
            subsequent_indent="    ",
            break_on_hyphens=False,
        )
    for line in lazy_import_lines(any_result.pending_lazy, any_result.reified):
        lines += textwrap.wrap(
            line, WIDTH, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False
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
    lines.append(f"    {suggested_marker(module, normal, lazy_imports)}")
    lines += _noise_lines(results)
    return lines + lazy_saving_lines(results)


def lazy_saving(results: dict[str, ImportResult]) -> dict[str, dict[str, float]]:
    """Per flavour measured both ways (``--lazy-imports compare``): normal and all, side by side.

    ``{"cold": {"normal": median, "all": median, "saving": fraction,
    "modules_normal": n, "modules_all": n}}``: what ``-X lazy_imports=all``
    takes off the import, the most a package can hope for from PEP 810.
    """
    saving = {}
    for label, result in results.items():
        every = results.get(label + ALL_SUFFIX)
        if label.endswith(ALL_SUFFIX) or every is None:
            continue
        before, after = result.median, every.median
        saving[label] = {
            "normal": before,
            "all": after,
            "saving": (before - after) / before if before > 0 else 0.0,
            "modules_normal": len(result.modules),
            "modules_all": len(every.modules),
        }
    return saving


def lazy_saving_lines(results: dict[str, ImportResult]) -> list[str]:
    """The ``--lazy-imports compare`` table: each flavour's median normal and all, the saving."""
    saving = lazy_saving(results)
    if not saving:
        return []
    metric = next(iter(results.values())).metric
    lines = [
        "  -X lazy_imports=all (PEP 810), medians:",
        f"    {'':<13} {'normal':>8} {'all':>8} {'saving':>7} {'modules':>9}",
    ]
    for label, row in saving.items():
        lines.append(
            f"    {label:<13} {format_cost(row['normal'], metric):>8} "
            f"{format_cost(row['all'], metric):>8} {row['saving']:>7.0%} "
            f"{int(row['modules_normal']):>4} -> {int(row['modules_all'])}"
        )
    return lines


def _noise_lines(results: dict[str, ImportResult]) -> list[str]:
    """A warning per flavour whose rounds are too noisy for the suggestion above.

    Instruction counts that differ between rounds are not exact: that is said too.
    """
    return [
        f"    ({label}: {caveat})"
        for label, result in results.items()
        if (
            caveat := suggestion_caveat(result.values)
            or (count_disagreement(result.values) if result.metric == "instructions" else "")
        )
    ]


def profile_json(
    results_by_module: dict[str, dict[str, ImportResult]], lazy_imports: str | None = None
) -> dict[str, Any]:
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
    ``lazy_imports`` is ``"all"`` when the rounds ran under ``-X
    lazy_imports=all`` (``--lazy-imports all``), else ``null``;
    ``pending_lazy`` names the PEP 810 lazy imports still pending after the
    import (not in ``modules_loaded``),
    ``reified`` the lazy imports the import itself reified (``{"module",
    "where": "file.py:LINE"}``), ``lazy_imports_saving`` (``--lazy-imports
    compare``, whose flavours then include ``"cold all"``...) maps a flavour to
    its medians ``normal`` and ``all``, the ``saving`` (a fraction) and
    ``modules_normal``/``modules_all``.
    ``startup_modules``, ``lazy_modules``, ``metric``, ``instructions`` and
    the lazy imports' keys were added within schema 1.
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
                "lazy_imports": "all" if lazy_imports == "all" else None,
                "pending_lazy": list(any_result.pending_lazy),
                "reified": [{"module": name, "where": where} for name, where in any_result.reified],
                "lazy_imports_saving": lazy_saving(results),
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
                "suggested_marker": suggested_marker(
                    module,
                    {k: v for k, v in results.items() if not k.endswith(ALL_SUFFIX)},
                    lazy_imports,
                ),
            }
        )
    return {"schema": JSON_SCHEMA_VERSION, "modules": modules}


def comparison_lines(
    comparisons: dict[str, Comparison], threshold: float, failing: bool
) -> list[str]:
    """The ``--against`` block: head and base per flavour, the ratio, what changed.

    Empty without comparisons. ``failing`` says ``--fail`` was given (the
    verdict lines then say FAIL rather than "slower").
    """
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
        source.base.tree,
        source.head.tree,
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
                        comparison.base.tree,
                        comparison.head.tree,
                        comparison.head.module,
                    )
                ],
            }
            for label, comparison in by_label.items()
        }
