"""Each import's figure over the saved runs: a table for the terminal, SVG charts for a page.

pytest-benchmark saves one file per run, numbered, in one directory per
machine (interpreter and platform), with the commit id and the date. A
history reads every run of one such directory, oldest first, and follows
each import entry by its full name (stable across commits). A run *steps*
when its figure differs by at least :data:`STEP` from the run before it (that
holds the import): a lasting change marks one step, a one-run spike one step
up and one back down.

Needs neither pytest nor pytest-benchmark; every figure goes through one
``figure`` formatter, so counts can replace durations.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pytest_importcache.model.errors import RunError
from pytest_importcache.model.units import Figure, format_cost

from .runs import entry_metric, entry_statistic, import_entries, load_run

__all__ = ["STEP", "Point", "Series", "history_lines", "history_page", "load_history"]

STEP = 0.10


@dataclass(frozen=True)
class Point:
    """One run's figure for one import; ``step`` is ``"up"``/``"down"`` where it stepped."""

    run: str
    commit: str
    date: str
    value: float
    change: float | None = None
    step: Literal["up", "down"] | None = None


@dataclass(frozen=True)
class Series:
    """One import entry (by full name) across the runs that hold it, oldest first."""

    fullname: str
    name: str
    stat: str
    points: tuple[Point, ...]
    metric: str = "time"


def _run_label(run: Mapping[str, Any], path: Path) -> tuple[str, str, str]:
    """(run number, commit id, date) of a run, as pytest-benchmark stored them."""
    commit_info = run.get("commit_info")
    info = commit_info if isinstance(commit_info, dict) else {}
    commit = str(info.get("id") or "") or "-"
    if len(commit) > 8 and all(char in "0123456789abcdef" for char in commit):
        commit = commit[:8]  # a git hash: its short form
    commit = commit[:11]
    if info.get("dirty"):
        commit += "+"
    # When the run was saved (the commit's own date is one for every run of uncommitted work).
    stamp = str(run.get("datetime") or info.get("time") or "")
    date = stamp.replace("T", " ")[:16] or "-"
    return path.name.split("_", 1)[0], commit, date


def _with_steps(points: Sequence[Point]) -> tuple[Point, ...]:
    marked = []
    for index, point in enumerate(points):
        reference = points[index - 1].value if index else 0.0
        change = (point.value - reference) / reference if reference else None
        step: Literal["up", "down"] | None = None
        if change is not None and abs(change) >= STEP:
            step = "up" if change > 0 else "down"
        marked.append(
            Point(point.run, point.commit, point.date, point.value, change=change, step=step)
        )
    return tuple(marked)


def _run_points(run: Mapping[str, Any], path: Path, stat: str) -> list[tuple[str, str, str, Point]]:
    """(full name, name, metric, point) of each import entry of one run, or :class:`RunError`."""
    number, commit, date = _run_label(run, path)
    try:
        return [
            (fullname, str(entry["name"]), entry_metric(entry), Point(number, commit, date, value))
            for fullname, entry in import_entries(run).items()
            for value in [entry_statistic(entry, fullname, stat)]
        ]
    except RunError as exc:
        raise RunError(f"run file {path}: {exc}") from None


def load_history(
    runs: Sequence[Path],
    stat: str = "min",
    *,
    skip: Callable[[RunError], None] | None = None,
) -> list[Series]:
    """Every import entry of ``runs`` (one machine directory's, oldest first), followed by name.

    :class:`~pytest_importcache.render.runs.RunError` names the run file and the entry
    when a file or a statistic cannot be read; with ``skip``, such a run is
    left out and ``skip`` is called with its error instead.
    """
    series: dict[str, tuple[str, list[Point]]] = {}
    metrics: dict[str, str] = {}
    for path in runs:
        try:
            found = _run_points(load_run(path), path, stat)
        except RunError as exc:
            if skip is None:
                raise
            skip(exc)
            continue
        for fullname, name, metric, point in found:
            _, points = series.setdefault(fullname, (name, []))
            points.append(point)
            metrics[fullname] = metric
    return [
        Series(fullname, name, stat, _with_steps(points), metrics[fullname])
        for fullname, (name, points) in series.items()
    ]


def history_lines(history: Sequence[Series], figure: Figure | None = None) -> list[str]:
    """The terminal's tables: per import, one line per run, steps marked."""
    lines: list[str] = []
    for series in history:
        shown = figure or partial(format_cost, metric=series.metric)
        if lines:
            lines.append("")
        lines.append(f"{series.name} ({series.stat})")
        lines.append(f"  {'run':<5} {'commit':<11} {'date':<16} {series.stat:>8} {'change':>7}")
        for point in series.points:
            change = f"{point.change:+.0%}" if point.change is not None else ""
            mark = f"  step {point.step}" if point.step else ""
            line = (
                f"  {point.run:<5} {point.commit:<11} {point.date:<16} "
                f"{shown(point.value):>8} {change:>7}{mark}"
            )
            lines.append(line.rstrip())
    return lines


_WIDTH, _HEIGHT, _LEFT, _BOTTOM, _TOP = 760, 190, 64, 28, 14


def _chart(series: Series, figure: Figure) -> str:
    """One SVG line chart: the figure per run from zero up, steps marked and labelled."""
    points = series.points
    top = max(point.value for point in points) * 1.15 or 1.0
    span = _WIDTH - _LEFT - 48
    gap = span / max(len(points) - 1, 1)

    def x(index: int) -> float:
        return _LEFT + (index * gap if len(points) > 1 else span / 2)

    def y(value: float) -> float:
        return _TOP + (1 - value / top) * (_HEIGHT - _TOP - _BOTTOM)

    coordinates = " ".join(
        f"{x(index):.1f},{y(point.value):.1f}" for index, point in enumerate(points)
    )
    parts = [
        f'<svg class="history" width="{_WIDTH}" height="{_HEIGHT}" role="img" '
        f'aria-label="{html.escape(series.name, quote=True)} over {len(points)} runs">',
        f'<line class="axis" x1="{_LEFT}" y1="{y(0):.1f}" x2="{_WIDTH - 8}" y2="{y(0):.1f}"/>',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{y(0):.1f}"/>',
        f'<text class="tick" x="{_LEFT - 6}" y="{y(0) + 4:.1f}" text-anchor="end">0</text>',
        f'<text class="tick" x="{_LEFT - 6}" y="{y(top / 1.15) + 4:.1f}" text-anchor="end">'
        f"{html.escape(figure(top / 1.15))}</text>",
        f'<polyline class="line" points="{coordinates}"/>',
    ]
    for index, point in enumerate(points):
        step = f" {point.step}" if point.step else ""
        change = f", {point.change:+.0%}" if point.change is not None else ""
        tip = (
            f"run {point.run}, commit {point.commit}, {point.date}: "
            f"{series.stat} {figure(point.value)}{change}"
        )
        parts.append(
            f'<circle class="point{step}" cx="{x(index):.1f}" cy="{y(point.value):.1f}" '
            f'r="{6 if point.step else 3.5}" data-run="{html.escape(point.run)}" '
            f'data-value="{point.value!r}"><title>{html.escape(tip)}</title></circle>'
        )
        if point.step:
            # Above a step up, below a step down: off the line either way.
            label_y = y(point.value) + (-10 if point.step == "up" else 20)
            parts.append(
                f'<text class="steplabel {point.step}" x="{x(index):.1f}" '
                f'y="{label_y:.1f}" text-anchor="middle">{point.change:+.0%}</text>'
            )
        if point.step or index in (0, len(points) - 1):
            # The run, and the commit when it is a git hash (short enough to fit).
            commit = f" {point.commit}" if len(point.commit) <= 9 else ""
            parts.append(
                f'<text class="tick" x="{x(index):.1f}" y="{_HEIGHT - 10}" '
                f'text-anchor="middle">{html.escape(point.run + commit)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _table(series: Series, figure: Figure) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(point.run)}</td><td>{html.escape(point.commit)}</td>"
        f"<td>{html.escape(point.date)}</td><td>{html.escape(figure(point.value))}</td>"
        f"<td>{f'{point.change:+.0%}' if point.change is not None else ''}</td>"
        f"<td>{f'step {point.step}' if point.step else ''}</td></tr>"
        for point in series.points
    )
    return (
        f"<details><summary>{len(series.points)} runs</summary><table><tr><th>run</th>"
        f"<th>commit</th><th>date</th><th>{html.escape(series.stat)}</th><th>change</th>"
        f"<th></th></tr>{rows}</table></details>"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h2 { font-size: 1.05em; font-family: ui-monospace, monospace; word-break: break-all; }
section { margin-bottom: 2em; }
svg.history .axis { stroke: #999; } svg.history .tick { font-size: 11px; fill: #555; }
svg.history .line { fill: none; stroke: #3366aa; stroke-width: 2; }
svg.history .point { fill: #3366aa; } svg.history .point.up { fill: #c62828; }
svg.history .point.down { fill: #2e7d32; }
svg.history .steplabel { font-size: 11px; font-weight: bold; }
svg.history .steplabel.up { fill: #c62828; } svg.history .steplabel.down { fill: #2e7d32; }
table { border-collapse: collapse; font-family: ui-monospace, monospace; font-size: .85em; }
td, th { padding: 0 .7em; text-align: left; }
"""


def history_page(
    history: Sequence[Series], *, figure: Figure | None = None, source: str = ""
) -> str:
    """The standalone HTML page: one chart per import, with its table. No script needed."""
    sections = [
        f"<section><h2>{html.escape(series.name)} ({html.escape(series.stat)})</h2>"
        f"{_chart(series, figure or partial(format_cost, metric=series.metric))}"
        f"{_table(series, figure or partial(format_cost, metric=series.metric))}</section>"
        for series in history
        if series.points
    ] or ["<p>No import measurement in these runs.</p>"]
    lede = (
        f"<p>{html.escape(source)}. A run steps (red up, green down) when its figure moves "
        f"{STEP:.0%} or more from the run before it.</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Import history</title><style>{_STYLE}</style></head><body>"
        f"<h1>Import history</h1>{lede}{''.join(sections)}</body></html>\n"
    )
