"""What the user reads: failure blocks for overspent budgets and the run's summary table."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

from pytest_importcache.model.interval import ESTIMATOR_LABELS
from pytest_importcache.model.noise import suggestion_caveat
from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.model.records import TreeRow, reified_note
from pytest_importcache.model.result import ImportResult, cost_changes
from pytest_importcache.model.spec import metric_label
from pytest_importcache.model.stats import median
from pytest_importcache.model.units import (
    cost_name,
    fit,
    format_cost,
    format_headroom,
    format_memory,
    format_significant,
    one_line,
    suggest_cost_budget,
)
from pytest_importcache.model.verdict import Verdict

from .edges import edge_lines

if TYPE_CHECKING:
    from pytest_importcache.model.comparison import Comparison

    from .runs import ImportComparison

__all__ = [
    "baseline_failure_text",
    "explanation_heading",
    "explanation_lines",
    "failure_text",
    "lazy_import_lines",
    "memory_lines",
    "regression_lines",
    "scale_line",
    "self_time_changes",
    "summary_lines",
    "unjudged_line",
]

SLOWEST_IN_FAILURE = 10
SUMMARY_WIDTH = 80


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


# How many pending lazy imports a line names before "and N more".
PENDING_SHOWN = 8
# How many reified lazy imports get a line (under -X lazy_imports=all, every
# import the import uses at once is one): the JSON and extra_info hold them all.
REIFIED_SHOWN = 10


def lazy_import_lines(
    pending: Sequence[str],
    reified: Sequence[tuple[str, str]],
    module: str = "",
    in_run: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """What an import left to PEP 810 (3.15+): its pending lazy imports, the ones it reified.

    ``lazy imports pending (not executed, not counted): decimal, fractions``,
    then one line per lazy import the import itself reified, where it did
    (``mylib/core.py:12 reified lazy import decimal during the import``): nothing
    was deferred there. The first :data:`REIFIED_SHOWN` of them, then how many
    more. ``module`` (``"mylib: "``) starts each line when given. ``in_run``
    (a start-up measurement's) are the lazy imports the command's run reified:
    the deferred cost landing at first use, expected; one line names them
    (``first use reified lazy imports (run phase): decimal (mylib/__init__.py:5)``).
    """
    start = f"{module}: " if module else ""
    lines = []
    if pending:
        shown = ", ".join(pending[:PENDING_SHOWN])
        more = len(pending) - PENDING_SHOWN
        shown += f" and {more} more" if more > 0 else ""
        lines.append(f"{start}lazy imports pending (not executed, not counted): {shown}")
    lines += [f"{start}{reified_note(name, where)}" for name, where in reified[:REIFIED_SHOWN]]
    if len(reified) > REIFIED_SHOWN:
        more = len(reified) - REIFIED_SHOWN
        lines.append(f"{start}and {more} more lazy imports reified during the import")
    if in_run:
        shown = ", ".join(f"{name} ({where})" for name, where in in_run[:REIFIED_SHOWN])
        more = len(in_run) - REIFIED_SHOWN
        shown += f" and {more} more" if more > 0 else ""
        lines.append(f"{start}first use reified lazy imports (run phase): {shown}")
    return lines


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


def explanation_heading(metric: str, label: str = "") -> str:
    """The heading of :func:`explanation_lines` in a same-run comparison of flavour ``label``."""
    return (
        f"what changed most ({label + '; ' if label else ''}head - base): "
        f"import edges, then self {cost_name(metric)}"
    )


def explanation_lines(
    before: Sequence[TreeRow],
    after: Sequence[TreeRow],
    module: str,
    metric: str,
    *,
    before_costs: Mapping[str, float] | None = None,
    after_costs: Mapping[str, float] | None = None,
    modules: int = 5,
) -> list[str]:
    """Why an import's cost went from ``before`` to ``after``: its edges, then its modules.

    First the import edges new, gone or moved (:func:`~pytest_importcache.render.edges.edge_lines`,
    ``app.models -> asyncio (new): +12.3ms cumulative``) when both trees are
    known, then the ``modules`` modules whose self cost changed most
    (``+12.4ms app.heavy (new)``). ``before`` and ``after`` are the tree rows
    of the measurement of ``module``;
    self costs come from them unless ``before_costs``/``after_costs`` are given
    (entries saved before trees were stored kept only their self costs). The
    one explanation of the stored compare, the same-run failure and ``--against``.
    """
    lines = (
        edge_lines(before, after, module, figure=partial(format_cost, metric=metric))
        if before and after
        else []
    )
    if before_costs is None:
        before_costs = {row.name: row.self_cost for row in before}
    if after_costs is None:
        after_costs = {row.name: row.self_cost for row in after}
    return lines + self_time_changes(after_costs, before_costs, modules, metric)


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


def self_time_changes(
    current: Mapping[str, float],
    baseline: Mapping[str, float],
    count: int = 5,
    metric: str = "time",
) -> list[str]:
    """The modules whose self cost changed most: ``+12.4ms mylib.plugins.heavy (new)``.

    A module only in ``current`` is "new", one only in ``baseline`` is "gone".
    Costs are in ``metric``: seconds, or instructions (``+1.2M``).
    """
    return [
        f"{'+' if delta > 0 else '-'}{format_cost(abs(delta), metric)} {name}"
        + (f" ({tag})" if tag else "")
        for name, delta, tag in cost_changes(current, baseline)[:count]
    ]


def regression_lines(comparisons: Iterable[ImportComparison]) -> list[str]:
    """Per compared measurement: its statistic before and after, and what changed most.

    The lines of :func:`explanation_lines`: the import edges new, gone or moved
    (``mylib.cli -> asyncio (new): +12.3ms cumulative``) when both runs stored
    their trees, then the modules whose self time changed most.
    """
    lines = []
    for comparison in comparisons:
        metric = comparison.metric
        before = format_cost(comparison.before, metric)
        after = format_cost(comparison.after, metric)
        lines.append(
            f"{comparison.name}: {comparison.stat} {before} -> {after} ({comparison.change:+.0%})"
        )
        explained = explanation_lines(
            comparison.before_modules,
            comparison.after_modules,
            comparison.module,
            metric,
            before_costs=comparison.before_self_costs,
            after_costs=comparison.after_self_costs,
        )
        lines += [f"    {line}" for line in explained]
    return lines
