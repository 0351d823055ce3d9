"""What the user reads: failure blocks for overspent budgets and the run's summary table."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .budget import Verdict
from .outcome import MeasurementOutcome
from .result import ImportResult, ModuleTiming, importer_tree
from .units import fit, format_duration, format_headroom, format_significant, suggest_budget

if TYPE_CHECKING:
    from .comparison import Comparison
    from .runs import ImportComparison

__all__ = [
    "baseline_failure_text",
    "failure_text",
    "html_report",
    "regression_lines",
    "scale_line",
    "self_time_changes",
    "summary_lines",
]

SLOWEST_IN_FAILURE = 10
SUMMARY_WIDTH = 80


def _slowest_table(result: ImportResult, count: int) -> list[str]:
    lines = ["  slowest modules (self time, cumulative time):"]
    for timing in result.slowest(count):
        self_time = format_duration(timing.self_seconds)
        cumulative = format_duration(timing.cumulative_seconds)
        lines.append(f"    {self_time:>8} {cumulative:>8}  {timing.name}")
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


def _time_block(verdict: Verdict) -> list[str]:
    result = verdict.result
    scaled = (
        f" (budget scaled by {format_significant(verdict.scale)})" if verdict.scale != 1.0 else ""
    )
    flavour_argument = "cold" if verdict.kind == "cold" else "warm"
    # A budget to write in the marker, so before scaling.
    suggestion = suggest_budget(verdict.measured / verdict.scale)
    return [
        f"import budget exceeded: {result.module} ({result.label})",
        f"  {verdict.stat} {format_duration(verdict.measured)} > budget "
        f"{format_duration(verdict.limit)}{scaled}",
        f"  {result.rounds} rounds: min {format_duration(result.min)}, "
        f"median {format_duration(result.median)}, max {format_duration(result.max)}",
        *_slowest_table(result, SLOWEST_IN_FAILURE),
        f'  suggested budget: {flavour_argument}="{suggestion}"{_noisy_note(result.wall)}',
    ]


def _noisy_note(wall: Sequence[float]) -> str:
    """`` (from a noisy measurement: ...)`` after a suggestion from noisy rounds, else ``""``."""
    from .noise import measurement_noise

    noise = measurement_noise(wall)
    return f" (from a {noise.replace('noisy: ', 'noisy measurement: ', 1)})" if noise else ""


def _module_count_block(verdict: Verdict) -> list[str]:
    result = verdict.result
    return [
        f"import budget exceeded: {result.module} loaded {len(result.modules)} modules "
        f"> max_modules={int(verdict.limit)}",
        *_heaviest_subtrees(result),
    ]


def _forbidden_block(verdict: Verdict) -> list[str]:
    result = verdict.result
    lines = [f"import budget exceeded: {result.module} loaded forbidden modules:"]
    lines += [f"    {name}: {' -> '.join(chain)}" for name, chain in verdict.forbidden]
    return lines


def failure_text(verdicts: Iterable[Verdict]) -> str:
    """One block per overspent budget, separated by blank lines."""
    blocks = []
    for verdict in verdicts:
        if verdict.passed:
            continue
        if verdict.kind in ("cold", "warm"):
            blocks.append(_time_block(verdict))
        elif verdict.kind == "max_modules":
            blocks.append(_module_count_block(verdict))
        else:
            blocks.append(_forbidden_block(verdict))
    return "\n\n".join("\n".join(block) for block in blocks)


def baseline_failure_text(comparison: Comparison, threshold: float) -> str:
    """The failure block of a measurement slower than the baseline revision."""
    from .comparison import self_time_deltas

    head, base = comparison.head, comparison.base
    lines = [
        f"import slower than baseline {comparison.revision}: {head.module} ({head.label})",
        f"  {comparison.statistic} {format_duration(comparison.figures[0])} vs "
        f"{format_duration(comparison.figures[1])} at {comparison.revision.short}",
        f"  ratio {comparison.interval.describe()}",
        f"  the whole interval lies above x{1 + threshold:.2f} "
        f"(importcache_baseline_fail {threshold:.0%})",
        f"  {head.rounds} rounds each, interleaved with the baseline's",
        "  what changed most (self time, head - base):",
    ]
    for name, delta, tag in self_time_deltas(head, base)[:SLOWEST_IN_FAILURE]:
        shown = ("+" if delta > 0 else "-") + format_duration(abs(delta))
        lines.append(f"    {shown:>9}  {name}" + (f" ({tag})" if tag else ""))
    return "\n".join(lines)


def scale_line(outcomes: Sequence[MeasurementOutcome]) -> str:
    """The line that says how time budgets were scaled, read from the outcomes.

    For example ``time budgets scaled by the reference import: cold x1.2, warm x1.1``.

    Empty when no time budget was scaled. The factors travel with the outcomes,
    so the line is the same with and without pytest-xdist.
    """
    factors: dict[str, float] = {}
    for outcome in outcomes:
        if outcome.budget is not None:
            factors.setdefault(outcome.flavour, outcome.scale)
    if not factors:
        return ""
    shown = ", ".join(
        f"{flavour} x{format_significant(factors[flavour])}"
        for flavour in ("cold", "warm")
        if flavour in factors
    )
    return f"time budgets scaled by the reference import: {shown}"


NOISE_MARK = "~"


def _ratio_cell(record: MeasurementOutcome) -> str:
    """``x1.034`` (``~`` when the interval cannot decide), ``-`` without a baseline."""
    if record.baseline is None:
        return "-"
    return f"x{record.baseline['ratio']:.3f}" + (NOISE_MARK if record.baseline["noise"] else "")


def summary_lines(records: Sequence[MeasurementOutcome]) -> list[str]:
    """The "import budgets" table: one row per measurement, at most 80 columns wide.

    A figure too noisy for its budget (:attr:`MeasurementOutcome.noise`) is
    marked ``~`` and explained below the table. With a baseline revision, a
    ``vs base`` column shows the ratio against it (its statistic is named below).
    """
    stat_names = {record.stat for record in records}
    stat = stat_names.pop() if len(stat_names) == 1 else "stat"
    with_baseline = any(record.baseline is not None for record in records)
    width = 16 if with_baseline else 24
    header = (
        f"{'module':<{width}} {'flavour':<12} {stat:>8} {'budget':>8} {'headroom':>8} "
        f"{'modules':>7}"
    )
    if with_baseline:
        header += f" {'vs base':>7}"
    lines = [f"{header} verdict"]
    notes = []
    for record in records:
        noise = record.noise
        measured = format_duration(record.statistic) if record.timed else "-"
        if noise:
            measured += NOISE_MARK
            notes.append(f"{NOISE_MARK} {record.module} ({record.label}): {noise}")
        budget = format_duration(record.budget) if record.budget is not None else "-"
        headroom = format_headroom(record.headroom) if record.headroom is not None else "-"
        verdict = {True: "PASS", False: "FAIL", None: "-"}[record.passed]
        ratio = f" {_ratio_cell(record):>7}" if with_baseline else ""
        if record.baseline is not None and record.baseline["noise"]:
            notes.append(
                f"{NOISE_MARK} {record.module} ({record.label}) vs base: {record.baseline['noise']}"
            )
        if record.baseline is not None and record.baseline["slower"]:
            verdict = "FAIL"
        lines.append(
            f"{fit(record.module, width):<{width}} {record.label:<12} "
            f"{measured:>8} {budget:>8} {headroom:>8} "
            f"{record.module_count:>7}{ratio} {verdict}"
        )
    revisions = {
        (
            record.baseline["revision"],
            record.baseline["commit"][:12],
            record.baseline.get("estimator", "pairs"),
        )
        for record in records
        if record.baseline is not None
    }
    for name, commit, estimator in sorted(revisions):
        from .interval import ESTIMATOR_LABELS

        shown = commit if commit.startswith(name) else f"{name} ({commit})"
        label = ESTIMATOR_LABELS.get(estimator, estimator)
        lines.append(fit(f"vs base: {label} against {shown}, same run", SUMMARY_WIDTH))
    return lines + [fit(note, SUMMARY_WIDTH) for note in notes]


def self_time_changes(
    current: Mapping[str, float], baseline: Mapping[str, float], count: int = 5
) -> list[str]:
    """The modules whose self time changed most: ``+12.4ms mylib.plugins.heavy (new)``.

    A module only in ``current`` is "new", one only in ``baseline`` is "gone".
    """
    changes = []
    for name in {*current, *baseline}:
        delta = current.get(name, 0.0) - baseline.get(name, 0.0)
        if delta:
            tag = " (new)" if name not in baseline else " (gone)" if name not in current else ""
            changes.append((delta, name, tag))
    changes.sort(key=lambda change: (-abs(change[0]), change[1]))
    return [
        f"{'+' if delta > 0 else '-'}{format_duration(abs(delta))} {name}{tag}"
        for delta, name, tag in changes[:count]
    ]


def regression_lines(comparisons: Iterable[ImportComparison]) -> list[str]:
    """Per compared measurement: its statistic before and after, and what changed most."""
    lines = []
    for comparison in comparisons:
        before, after = format_duration(comparison.before), format_duration(comparison.after)
        lines.append(
            f"{comparison.name}: {comparison.stat} {before} -> {after} ({comparison.change:+.0%})"
        )
        changes = self_time_changes(comparison.after_self_seconds, comparison.before_self_seconds)
        lines += [f"    {change}" for change in changes]
    return lines


_HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; }
section { margin-bottom: 2em; }
summary, li { font-family: ui-monospace, monospace; white-space: pre; }
ul { list-style: none; padding-left: 1.5em; margin: 0; }
.fail { color: #b00020; } .pass { color: #1b5e20; }
"""


def _html_tree(record: MeasurementOutcome) -> str:
    """Nested lists of the import tree, biggest cumulative time first."""
    children = importer_tree(record.module, record.timings)

    def render(timing: ModuleTiming, depth: int) -> str:
        self_time = format_duration(timing.self_seconds)
        cumulative = format_duration(timing.cumulative_seconds)
        label = html.escape(f"{self_time:>8} {cumulative:>8}  {timing.name}")
        kids = children.get(timing.name, [])
        if not kids:
            return f"<li>{label}</li>"
        inner = "".join(render(kid, depth + 1) for kid in kids)
        opened = " open" if depth < 2 else ""
        return f"<li><details{opened}><summary>{label}</summary><ul>{inner}</ul></details></li>"

    return "<ul>" + "".join(render(root, 0) for root in children.get(None, [])) + "</ul>"


def html_report(records: Sequence[MeasurementOutcome]) -> str:
    """A standalone HTML page with every measurement's import tree (self, cumulative)."""
    sections = []
    for record in records:
        verdict = {True: ("pass", "PASS"), False: ("fail", "FAIL"), None: ("", "no budget")}
        css, word = verdict[record.passed]
        budget = f", budget {format_duration(record.budget)}" if record.budget is not None else ""
        measured = (
            f"{record.stat} {format_duration(record.statistic)}{budget}, "
            if record.timed
            else "module count only, "
        )
        sections.append(
            f"<section><h2>{html.escape(record.nodeid)}: {html.escape(record.module)} "
            f"({record.label})</h2><p>{measured}{len(record.wall)} rounds, "
            f"{record.module_count} modules, Python {html.escape(record.python_version)}: "
            f'<span class="{css}">{word}</span></p>'
            f"<p>self time, cumulative time, module</p>{_html_tree(record)}</section>"
        )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Import trees</title>'
        f"<style>{_HTML_STYLE}</style></head><body><h1>Import trees</h1>"
        + "".join(sections)
        + "</body></html>\n"
    )
