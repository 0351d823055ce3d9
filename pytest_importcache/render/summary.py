"""The run's summary: the "import budgets" table, its notes, peak memory and scaled budgets."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_importcache.model.interval import ESTIMATOR_LABELS
from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.model.stats import median
from pytest_importcache.model.units import (
    cost_name,
    fit,
    format_cost,
    format_headroom,
    format_memory,
    format_significant,
    suggest_cost_budget,
)

from .lazynotes import lazy_import_lines

__all__ = ["memory_lines", "scale_line", "summary_lines", "unjudged_line"]

SUMMARY_WIDTH = 80


def scale_line(outcomes: Sequence[MeasurementOutcome]) -> str:
    """The line that says how time budgets were scaled, read from the outcomes.

    For example ``time budgets scaled by the reference import: cold x1.2, warm x1.1``.

    Empty when no time budget was scaled. The factors travel with the outcomes,
    so the line is the same with and without pytest-xdist.
    """
    factors: dict[str, float] = {}
    for outcome in outcomes:
        if outcome.budget is not None and outcome.metric == "time":
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
# After a count reused from the count store.
REUSED_MARK = "="


def _ratio_cell(record: MeasurementOutcome) -> str:
    """``x1.034`` (``~`` when the interval cannot decide), ``-`` without a baseline."""
    if record.baseline is None:
        return "-"
    return f"x{record.baseline.ratio:.3f}" + (NOISE_MARK if record.baseline.noise else "")


def summary_lines(records: Sequence[MeasurementOutcome]) -> list[str]:
    """The "import budgets" table: one row per measurement, at most 80 columns wide.

    A figure too noisy for its budget (:attr:`MeasurementOutcome.noise`) is
    marked ``~`` and explained below the table. With a baseline revision, a
    ``vs base`` column shows the ratio against it (its statistic is named below).
    A budget written only in the other metric's unit was not judged: a line
    below says so, with the budget to write for both.
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
    unjudged: list[str] = []  # whole lines: the budget to write must not be cut
    for record in records:
        noise = record.noise
        measured = format_cost(record.statistic, record.metric) if record.timed else "-"
        label = record.label_with_metric.replace("instructions", "(instr)")
        if noise:
            measured += NOISE_MARK
            notes.append(f"{NOISE_MARK} {record.measured} ({label}): {noise}")
        if record.reused is not None:
            measured += REUSED_MARK
            when = record.reused.counted_at[:16].replace("T", " ")
            notes.append(
                f"{REUSED_MARK} {record.measured} ({label}): reused, counted {when} UTC on "
                f"{record.reused.counted_on}"
            )
        budget = format_cost(record.budget, record.metric) if record.budget is not None else "-"
        headroom = format_headroom(record.headroom) if record.headroom is not None else "-"
        verdict = {True: "PASS", False: "FAIL", None: "-"}[record.verdict]
        ratio = f" {_ratio_cell(record):>7}" if with_baseline else ""
        if record.unjudged:
            unjudged.append(_unjudged_note(record))
        if record.baseline is not None and record.baseline.noise:
            notes.append(
                f"{NOISE_MARK} {record.measured} ({record.label}) vs base: {record.baseline.noise}"
            )
        lines.append(
            f"{fit(record.measured, width):<{width}} {fit(label, 12):<12} "
            f"{measured:>8} {budget:>8} {headroom:>8} "
            f"{record.module_count:>7}{ratio} {verdict}"
        )
    revisions = {
        (record.baseline.revision, record.baseline.commit[:12], record.baseline.estimator)
        for record in records
        if record.baseline is not None
    }
    for name, commit, estimator in sorted(revisions):
        shown = commit if commit.startswith(name) else f"{name} ({commit})"
        label = ESTIMATOR_LABELS.get(estimator, estimator)
        lines.append(fit(f"vs base: {label} against {shown}, same run", SUMMARY_WIDTH))
    if any(record.reused is not None for record in records):
        notes.append(
            f"{REUSED_MARK} reused: inputs unchanged since counted; "
            "--importcache-fresh counts again"
        )
    served = sorted(
        {
            str(name)
            for record in records
            if record.baseline is not None
            for name in record.baseline.served
        }
    )
    if served:
        # Not cut to the summary's width: the line must name every file.
        lines.append(
            "vs base: served from the working tree to both sides (git ignores them, the "
            f"revision has none): {', '.join(served)}"
        )
    return (
        lines
        + [fit(note, SUMMARY_WIDTH) for note in notes]
        + unjudged
        + memory_lines(records)
        + _lazy_notes(records)
    )


def _lazy_notes(records: Sequence[MeasurementOutcome]) -> list[str]:
    """:func:`lazy_import_lines` of every measured module, once each, whole (files not cut)."""
    notes: list[str] = []
    for record in records:
        for line in lazy_import_lines(
            record.pending_lazy, record.reified, record.module, record.reified_in_run
        ):
            if line not in notes:
                notes.append(line)
    return notes


def memory_lines(records: Sequence[MeasurementOutcome]) -> list[str]:
    """Each measurement's peak memory (its highest round), beside a bare interpreter's.

    One heading per interpreter (its Python version, named when there are
    several), with one bare figure: the median of those its measurements
    report (under xdist each worker measures its own bare round); then a line
    per measurement that has a peak (counts have none): ``mylib (warm) 14.2MB
    (+4.4MB)``.
    """
    by_python: dict[str, list[MeasurementOutcome]] = {}
    for record in records:
        if record.peak_memory is not None:
            by_python.setdefault(record.python_version, []).append(record)
    lines = []
    for python_version, measured in by_python.items():
        bares = [record.bare_peak_memory for record in measured]
        reported = [bare for bare in bares if bare is not None]
        bare = round(median(reported)) if reported else None
        about = [f"Python {python_version}"] if len(by_python) > 1 else []
        if bare is not None:
            about.append(f"a bare interpreter: {format_memory(bare)}")
        beside = "; ".join(about)
        lines.append(f"peak memory, highest round{f' ({beside})' if beside else ''}:")
        for record in measured:
            assert record.peak_memory is not None
            added = (
                "" if bare is None else f" (+{format_memory(max(record.peak_memory - bare, 0))})"
            )
            lines.append(
                fit(
                    f"  {record.measured} ({record.label}) "
                    f"{format_memory(record.peak_memory)}{added}",
                    SUMMARY_WIDTH,
                )
            )
    return lines


def _unjudged_note(record: MeasurementOutcome) -> str:
    """:func:`unjudged_line` for a summary row."""
    label = record.label_with_metric.replace("instructions", "instr")
    return unjudged_line(record.measured, label, record.unjudged, record.statistic, record.metric)


def _budget_kind(metric: str) -> str:
    """``a time budget`` or ``an instruction-count budget``."""
    return "a time budget" if metric == "time" else "an instruction-count budget"


def unjudged_line(module: str, label: str, written: str, statistic: float, metric: str) -> str:
    """``m (warm instr): warm='25ms' is a time budget, not judged in instructions; ...``.

    ``written`` is the budget as the marker gave it (``"warm='25ms'"``) and
    ``statistic`` the figure measured in ``metric``. The suggestion keeps the
    written budget beside one in the measured unit, so the marker then gates
    either metric.
    """
    flavour, _, value = written.partition("=")
    suggested = suggest_cost_budget(statistic, metric)
    other = "instructions" if metric == "time" else "time"
    return (
        f"{module} ({label}): {written} is {_budget_kind(other)}, not "
        f"judged in {cost_name(metric)}; write {flavour}=({value}, '{suggested}')"
    )
