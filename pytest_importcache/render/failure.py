"""What a failing budget says: a block per overspent budget or slower-than-baseline measurement."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from pytest_importcache.model.noise import suggestion_caveat
from pytest_importcache.model.records import TreeRow
from pytest_importcache.model.result import ImportResult
from pytest_importcache.model.spec import metric_label
from pytest_importcache.model.stats import median
from pytest_importcache.model.units import (
    cost_name,
    format_cost,
    format_memory,
    format_significant,
    one_line,
    suggest_cost_budget,
)
from pytest_importcache.model.verdict import Verdict

from .changes import explanation_heading, explanation_lines
from .edges import edge_lines
from .lazynotes import lazy_import_lines

if TYPE_CHECKING:
    from pytest_importcache.model.comparison import Comparison


__all__ = ["BaselineLookup", "baseline_failure_text", "failure_text"]

SLOWEST_IN_FAILURE = 10


def _cost_names(metric: str) -> str:
    """How the two per-module columns are headed in ``metric``."""
    return f"self {cost_name(metric)}, cumulative {cost_name(metric)}"


def _slowest_table(result: ImportResult, count: int) -> list[str]:
    heading = "costliest" if result.metric == "instructions" else "slowest"
    lines = [f"  {heading} modules ({_cost_names(result.metric)}):"]
    for timing in result.slowest(count):
        self_cost = format_cost(timing.self_cost, result.metric)
        cumulative = format_cost(timing.cumulative_cost, result.metric)
        lines.append(f"    {self_cost:>8} {cumulative:>8}  {timing.name}")
    return lines


def _heaviest_subtrees(result: ImportResult, count: int = 10) -> list[str]:
    """The modules that pulled in the most other modules, with how many."""
    pulled_in: dict[str, int] = {}
    for name in result.modules:
        for importer in result.chain(name)[:-1]:
            if importer != result.module:
                pulled_in[importer] = pulled_in.get(importer, 0) + 1
    heaviest = sorted(pulled_in.items(), key=lambda item: (-item[1], item[0]))[:count]
    lines = ["  heaviest subtrees (modules each one pulled in):"]
    lines += [f"    {number:>5}  {' -> '.join(result.chain(name))}" for name, number in heaviest]
    return lines if heaviest else []


# The baseline of a measurement, for a failure's "import edges" lines: the run
# file's name and its tree rows, or None.
BaselineLookup = Callable[[ImportResult], "tuple[str, Sequence[TreeRow]] | None"]


def _edge_block(result: ImportResult, baseline: BaselineLookup | None) -> list[str]:
    """The import edges that changed since the baseline (new, gone or moved), if any."""
    found = baseline(result) if baseline is not None else None
    if found is None:
        return []
    source, rows = found
    lines = edge_lines(
        rows, result.tree, result.module, figure=partial(format_cost, metric=result.metric)
    )
    return (
        [f"  import edges new, gone or moved since {source}:", *(f"    {line}" for line in lines)]
        if (lines)
        else []
    )


def _exceeded(result: ImportResult) -> str:
    """How a failure block starts: ``import budget exceeded: mylib``, or a start-up's command."""
    if result.command is not None:
        return f"start-up budget exceeded: {one_line(result.command)}"
    return f"import budget exceeded: {result.module}"


def _phase_lines(result: ImportResult, stat: str) -> list[str]:
    """A start-up's breakdown: each phase's median (start-up, site, import, run)."""
    if not result.phases:
        return []
    parts = [
        f"{name} {format_cost(median(values), result.metric)}"
        for name, values in result.phases
        if values
    ]
    return [f"  phases (median of each): {', '.join(parts)}"] if parts else []


def _time_block(verdict: Verdict, baseline: BaselineLookup | None = None) -> list[str]:
    result = verdict.result
    scaled = (
        f" (budget scaled by {format_significant(verdict.scale)})" if verdict.scale != 1.0 else ""
    )
    flavour_argument = "cold" if verdict.kind == "cold" else "warm"
    metric = result.metric
    # A budget to write in the marker, so before scaling.
    suggestion = suggest_cost_budget(verdict.measured / verdict.scale, metric)
    return [
        f"{_exceeded(result)} ({metric_label(result.label, metric)})",
        f"  {verdict.stat} {format_cost(verdict.measured, metric)} > budget "
        f"{format_cost(verdict.limit, metric)}{scaled}",
        (
            f"  {result.rounds} rounds: min {format_cost(result.min, metric)}, "
            f"median {format_cost(result.median, metric)}, max {format_cost(result.max, metric)}"
            if result.rounds > 1
            else f"  1 round: {format_cost(result.min, metric)}"
        ),
        *_phase_lines(result, verdict.stat),
        *_edge_block(result, baseline),
        *_slowest_table(result, SLOWEST_IN_FAILURE),
        f'  suggested budget: {flavour_argument}="{suggestion}"{_noisy_note(result.values)}',
    ]


def _noisy_note(values: Sequence[float]) -> str:
    """`` (from a noisy measurement: ...)`` after a suggestion from noisy rounds, else ``""``."""
    caveat = suggestion_caveat(values)
    return f" ({caveat})" if caveat else ""


def _module_count_block(verdict: Verdict) -> list[str]:
    result = verdict.result
    return [
        f"{_exceeded(result)} loaded {len(result.modules)} modules "
        f"> max_modules={int(verdict.limit)}",
        *_heaviest_subtrees(result),
    ]


def _forbidden_block(verdict: Verdict) -> list[str]:
    result = verdict.result
    lines = [f"{_exceeded(result)} loaded forbidden modules:"]
    lines += [f"    {name}: {' -> '.join(chain)}" for name, chain in verdict.forbidden]
    return lines


def _disallowed_block(verdict: Verdict) -> list[str]:
    """Each module outside ``allow`` that came in first, with its chain, and what it pulled in.

    A disallowed package's own imports (``requests.adapters`` under ``requests``)
    would repeat its chain: they are named on one line below it.
    """
    result = verdict.result
    patterns = ", ".join(repr(pattern) for pattern in verdict.budget.allow)
    lines = [
        f"{_exceeded(result)} loaded modules outside the standard library and allow=[{patterns}]:"
    ]
    disallowed = {name for name, _ in verdict.forbidden}
    chains = dict(verdict.forbidden)
    followers: dict[str, list[str]] = {}
    for name, chain in verdict.forbidden:
        entry = next((module for module in chain if module in disallowed), name)
        if entry != name:
            followers.setdefault(entry, []).append(name)
    pulled_in = {name for names in followers.values() for name in names}
    for name in sorted(disallowed - pulled_in):
        lines.append(f"    {name}: {' -> '.join(chains[name])}")
        if name in followers:
            pulled = sorted(followers[name])
            lines.append(f"      and {len(pulled)} more through it: {', '.join(pulled)}")
    return lines


def _memory_block(verdict: Verdict) -> list[str]:
    """The highest round's peak against ``max_memory``, beside a bare interpreter's."""
    result = verdict.result
    if not result.peak_memory:
        why = (
            "the round runner reported none"
            if result.metric == "time"
            else f"max_memory={format_memory(verdict.limit)} needs timed rounds"
        )
        return [f"{_exceeded(result)}: peak memory was not measured: {why}"]
    peaks = result.peak_memory
    lines = [
        f"{_exceeded(result)} ({result.label}): peak memory {format_memory(verdict.measured)} "
        f"> max_memory={format_memory(verdict.limit)}",
        (
            f"  {len(peaks)} rounds: lowest peak {format_memory(min(peaks))}, "
            f"highest {format_memory(max(peaks))}"
            if len(peaks) > 1
            else f"  1 round: peak {format_memory(peaks[0])}"
        ),
    ]
    if verdict.bare_memory is not None:
        added = verdict.measured - verdict.bare_memory
        lines.append(
            f"  a bare interpreter peaks at {format_memory(verdict.bare_memory)}: "
            f"{'this added ' + format_memory(added) if added > 0 else 'nothing added'}"
        )
    return lines


def failure_text(verdicts: Iterable[Verdict], baseline: BaselineLookup | None = None) -> str:
    """One block per overspent budget, separated by blank lines.

    ``baseline`` finds a measurement's tree in the baseline run (``--benchmark-compare``);
    a time block then names the import edges new, gone or moved since, before the slowest modules.
    """
    blocks = []
    for verdict in verdicts:
        if verdict.passed:
            continue
        if verdict.kind in ("cold", "warm"):
            blocks.append(_time_block(verdict, baseline))
        elif verdict.kind == "max_modules":
            blocks.append(_module_count_block(verdict))
        elif verdict.kind == "allow":
            blocks.append(_disallowed_block(verdict))
        elif verdict.kind == "max_memory":
            blocks.append(_memory_block(verdict))
        else:
            blocks.append(_forbidden_block(verdict))
        result = verdict.result
        blocks[-1] += [
            f"  {line}"
            for line in lazy_import_lines(
                result.pending_lazy, result.reified, in_run=result.reified_in_run
            )
        ]
    return "\n\n".join("\n".join(block) for block in blocks)


def baseline_failure_text(comparison: Comparison, threshold: float) -> str:
    """The failure block of a measurement slower than the baseline revision."""
    head, base = comparison.head, comparison.base
    metric = head.metric
    lines = [
        f"{'import' if head.command is None else 'start-up'} slower than baseline "
        f"{comparison.revision}: {head.module if head.command is None else one_line(head.command)} "
        f"({metric_label(head.label, metric)})",
        f"  {comparison.statistic} {format_cost(comparison.figures[0], metric)} vs "
        f"{format_cost(comparison.figures[1], metric)} at {comparison.revision.short}",
        f"  ratio {comparison.interval.describe()}",
        f"  the whole interval lies above x{1 + threshold:.2f} "
        f"(importcache_baseline_fail {threshold:.0%})",
        f"  {head.rounds} rounds each, interleaved with the baseline's",
    ]
    explained = explanation_lines(
        base.tree, head.tree, head.module, metric, modules=SLOWEST_IN_FAILURE
    )
    if explained:
        lines.append(f"  {explanation_heading(metric)}:")
        lines += [f"    {line}" for line in explained]
    return "\n".join(lines)
