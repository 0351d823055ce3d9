"""The run's import budgets as markdown: for a CI job summary or a pull request comment.

GitHub Actions shows whatever a step appends to the file ``GITHUB_STEP_SUMMARY``
names; GitLab, Buildkite and the rest take a file (``--importcache-markdown``).
The text is one table of budgets (module, flavour, figure, budget, headroom,
verdict) and, when the run was compared with a baseline, one table of the
imports that got slower with the import edges behind them. It stays short
enough for a comment: at most :data:`MAX_ROWS` rows per table, failures first.

Pure functions of outcomes and comparisons; the figure's formatting is a
parameter, so the same table serves seconds or counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from pytest_importcache.model.units import Figure, format_cost, format_headroom, format_memory

from .edges import edge_changes

if TYPE_CHECKING:
    from pytest_importcache.model.outcome import MeasurementOutcome

    from .runs import ImportComparison

__all__ = ["MAX_ROWS", "code", "escape", "markdown_summary"]

MAX_ROWS = 30
EDGES_PER_IMPORT = 3
# Characters that would start markup inside a table cell or a list item's text.
_SPECIAL = set("\\`*_[]<>|")


def escape(text: str) -> str:
    """``text`` as literal markdown inside a table cell: specials escaped, no line breaks."""
    escaped = "".join(f"\\{char}" if char in _SPECIAL else char for char in text)
    return escaped.replace("&", "&amp;").replace("\r", " ").replace("\n", " ")


def code(text: str) -> str:
    """``text`` as a code span (module and test names), safe inside a table cell.

    Pipes still end a cell inside a code span, so they are escaped; a name that
    holds a backtick cannot be a simple code span and is escaped as text instead.
    """
    flat = text.replace("\r", " ").replace("\n", " ")
    if "`" in flat or not flat.strip():
        return escape(flat)
    return "`" + flat.replace("|", "\\|") + "`"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _budget_table(outcomes: Sequence[MeasurementOutcome], figure: Figure | None) -> list[str]:
    stats = {outcome.stat for outcome in outcomes}
    stat = stats.pop() if len(stats) == 1 else "figure"
    # Peak memory gets a column when a measurement has one (counts have none).
    memory = any(outcome.peak_memory is not None for outcome in outcomes)
    lines = [
        _row(
            ["module", "flavour", stat, "budget", "headroom", "verdict"]
            + (["peak memory (bare)"] if memory else [])
        ),
        _row(["---", "---", "---:", "---:", "---:", "---"] + (["---:"] if memory else [])),
    ]
    # Failures first, so a cut never hides one; otherwise the run's order.
    ranked = sorted(outcomes, key=lambda outcome: outcome.verdict is not False)
    for outcome in ranked[:MAX_ROWS]:
        shown = figure or partial(format_cost, metric=outcome.metric)
        verdict = {True: "PASS", False: "**FAIL**", None: "-"}[outcome.verdict]
        lines.append(
            _row(
                [
                    code(outcome.measured),
                    outcome.label_with_metric,
                    shown(outcome.statistic) if outcome.timed else "-",
                    shown(outcome.budget) if outcome.budget is not None else "-",
                    format_headroom(outcome.headroom) if outcome.headroom is not None else "-",
                    verdict,
                ]
                + ([_memory_cell(outcome)] if memory else [])
            )
        )
    if len(ranked) > MAX_ROWS:
        lines += ["", f"...and {len(ranked) - MAX_ROWS} more measurements."]
    return lines


def _memory_cell(outcome: MeasurementOutcome) -> str:
    """``14.2MB (10.5MB)``: the highest round's peak and a bare interpreter's; ``-`` without."""
    if outcome.peak_memory is None:
        return "-"
    bare = outcome.bare_peak_memory
    return format_memory(outcome.peak_memory) + (
        "" if bare is None else f" ({format_memory(bare)})"
    )


def _regression_table(comparisons: Sequence[ImportComparison], figure: Figure | None) -> list[str]:
    lines = [
        _row(["import", f"{comparisons[0].stat} before", "after", "change"]),
        _row(["---", "---:", "---:", "---:"]),
    ]
    shown = sorted(comparisons, key=lambda comparison: -comparison.change)[:MAX_ROWS]
    lines += [
        _row(
            [
                code(comparison.name),
                (figure or partial(format_cost, metric=comparison.metric))(comparison.before),
                (figure or partial(format_cost, metric=comparison.metric))(comparison.after),
                f"{comparison.change:+.0%}",
            ]
        )
        for comparison in shown
    ]
    causes = []
    for comparison in shown:
        cost = figure or partial(format_cost, metric=comparison.metric)
        if comparison.before_modules and comparison.after_modules:
            changes = edge_changes(
                comparison.before_modules, comparison.after_modules, comparison.module
            )
            causes += [
                f"- {code(comparison.name)}: {code(f'{edge.importer} -> {edge.module}')} "
                + (f"(moved, was via {code(edge.was)})" if edge.was else f"({edge.status})")
                + f": {'+' if edge.delta >= 0 else '-'}{cost(abs(edge.delta))} cumulative"
                for edge in changes[:EDGES_PER_IMPORT]
            ]
    if causes:
        lines += ["", "Import edges new or gone:", "", *causes]
    if len(comparisons) > MAX_ROWS:
        lines += ["", f"...and {len(comparisons) - MAX_ROWS} more slower imports."]
    return lines


def markdown_summary(
    outcomes: Sequence[MeasurementOutcome],
    slower: Sequence[ImportComparison] = (),
    *,
    figure: Figure | None = None,
) -> str:
    """The markdown for the run: its budgets, then the imports ``slower`` than the baseline.

    ``figure`` formats every figure; by default each in its measurement's metric.
    ``slower`` holds the comparisons the terminal's "slower imports" section
    shows (with compare-fail thresholds, those they flag). Ends with a newline.
    """
    failed = sum(outcome.verdict is False for outcome in outcomes)
    passed = sum(outcome.verdict is True for outcome in outcomes)
    lines = [
        "### Import budgets",
        "",
        f"{len(outcomes)} measurements: {passed} passed, {failed} failed, "
        f"{len(outcomes) - passed - failed} without a budget.",
        "",
        *_budget_table(outcomes, figure),
    ]
    if slower:
        lines += ["", f"### Slower imports than {code(slower[0].source)}", ""]
        lines += _regression_table(slower, figure)
    return "\n".join(lines) + "\n"
