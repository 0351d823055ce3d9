"""The HTML report: every measurement drawn as an icicle, with a diff icicle against a baseline.

One box per module: its width is the module's cumulative cost, the darker
strip at its foot its self cost, and its children (the modules its import
pulled in) hang below it, biggest first. Boxes hold every number in a
tooltip (self, cumulative, importer, share); a click zooms into a box (its
ancestors stay above it, full width) and "back" returns; a search box
highlights modules by name. The cold and warm measurements of one import
are drawn side by side on one scale.

The page is one self-contained file: inline SVG, CSS and JavaScript,
nothing loaded from the network. Without JavaScript it still reads: the
boxes are drawn by the server, SVG titles give the tooltips, and a table
per measurement holds the numbers. Zero-cost rows (aliases such as
``typing.io`` that cost nothing) are left out, and the page says how many.

With a baseline, a measurement also gets a diff icicle: its tree coloured by
the change of each module's self cost (red slower, blue faster), new modules
outlined and gone ones listed.

Pure functions of outcomes; every figure goes through one ``figure``
formatter, so the page can show counts instead of durations.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from pytest_importcache.model.records import TreeRow
from pytest_importcache.model.units import (
    Figure,
    format_cost,
    format_headroom,
    format_memory,
    format_significant,
)

if TYPE_CHECKING:
    from pytest_importcache.model.outcome import MeasurementOutcome

__all__ = ["Baseline", "Box", "icicle_page", "layout", "same_run_baseline"]

# (run name, tree rows) of a measurement's baseline.
Baseline = tuple[str, Sequence[TreeRow]]
Rows = Sequence[TreeRow]

ROW_HEIGHT = 20
# Widths shown by the table, in this order.
_TABLE_HEADER = "<tr><th>module</th><th>importer</th><th>self</th><th>cumulative</th><th>share</th>"


def same_run_baseline(outcome: MeasurementOutcome) -> Baseline | None:
    """The tree of the revision ``outcome`` was measured against in the same run, if any.

    Kept in the outcome (``baseline.base_modules``) and so in its saved
    entry: the in-run report and ``pytest-importcache report`` draw the same diff.
    """
    if outcome.baseline is None or not outcome.baseline.base_modules:
        return None
    return f"{outcome.baseline.revision} (same run)", outcome.baseline.base_modules


@dataclass(frozen=True)
class Box:
    """One module drawn: ``x`` and ``width`` are fractions of the measurement's total cost."""

    name: str
    importer: str | None
    self_cost: float
    cumulative: float
    x: float
    width: float
    depth: int


def layout(module: str, rows: Rows) -> tuple[list[Box], float, int]:
    """An import tree's boxes (depth-first), its total cost, and how many rows were dropped.

    Rows of zero cumulative cost are dropped, with whatever hangs only under
    them. Children are scaled down when the medians of their costs add up to
    more than their importer's (medians of rounds need not add up). The
    measured ``module`` is always a root, as in the terminal's tree.
    """
    # Rows by importer, biggest cumulative cost first.
    children: dict[str | None, list[TreeRow]] = {}
    for row in rows:
        if row.cumulative_cost > 0:
            parent = None if row.name == module else row.importer
            children.setdefault(parent, []).append(row)
    for siblings in children.values():
        siblings.sort(key=lambda row: -row.cumulative_cost)
    roots = children.get(None, [])
    total = sum(root.cumulative_cost for root in roots)
    boxes: list[Box] = []
    if total <= 0:
        return boxes, 0.0, len(rows)
    seen: set[str] = set()
    # (row, x, width, depth), popped depth-first, biggest child first.
    stack: list[tuple[TreeRow, float, float, int]] = []
    placed_roots = []
    offset = 0.0
    for root in roots:
        placed_roots.append((root, offset, root.cumulative_cost / total, 0))
        offset += root.cumulative_cost / total
    stack.extend(reversed(placed_roots))
    while stack:
        row, x, width, depth = stack.pop()
        name, cumulative = row.name, row.cumulative_cost
        if name in seen:
            continue
        seen.add(name)
        importer = row.importer if depth else None
        boxes.append(Box(name, importer, row.self_cost, cumulative, x, width, depth))
        kids = [kid for kid in children.get(name, []) if kid.name not in seen]
        kid_total = sum(kid.cumulative_cost for kid in kids)
        shrink = min(1.0, cumulative / kid_total) if kid_total else 1.0
        placed = []
        kid_x = x
        for kid in kids:
            kid_width = width * kid.cumulative_cost / cumulative * shrink
            placed.append((kid, kid_x, kid_width, depth + 1))
            kid_x += kid_width
        stack.extend(reversed(placed))
    return boxes, total, len(rows) - len(boxes)


def _hue(name: str) -> int:
    """A stable hue per top-level package, so a package's modules share a colour."""
    top = name.split(".", 1)[0]
    return int(hashlib.sha1(top.encode("utf-8", "surrogatepass")).hexdigest()[:4], 16) % 360


def _attribute(value: str) -> str:
    return html.escape(value, quote=True)


def _box_svg(box: Box, total: float, tip: str, fill: str, classes: str) -> str:
    """One box: a nested SVG (which clips its label), a background, its self strip, a title."""
    share = box.cumulative / total if total else 0.0
    self_share = min(box.self_cost / box.cumulative, 1.0) if box.cumulative else 0.0
    name = _attribute(box.name)
    return (
        f'<svg class="box{classes}" x="{box.x * 100:.6f}%" y="{box.depth * ROW_HEIGHT}" '
        f'width="{box.width * 100:.6f}%" height="{ROW_HEIGHT - 1}" '
        f'data-x="{box.x:.9f}" data-w="{box.width:.9f}" data-d="{box.depth}" '
        f'data-name="{name}" data-share="{share:.6f}" data-tip="{_attribute(tip)}">'
        f'<rect class="bg" width="100%" height="100%" fill="{fill}"/>'
        f'<rect class="self" y="{ROW_HEIGHT - 5}" width="{self_share * 100:.3f}%" height="4"/>'
        f'<text x="3" y="14">{html.escape(box.name)}</text>'
        f"<title>{html.escape(tip)}</title></svg>"
    )


def _tip(box: Box, total: float, figure: Figure) -> str:
    importer = box.importer or "(the measured import)"
    share = box.cumulative / total if total else 0.0
    return (
        f"{box.name}: self {figure(box.self_cost)}, cumulative {figure(box.cumulative)}, "
        f"importer {importer}, {share:.1%} of the import"
    )


def _table(boxes: Sequence[Box], total: float, figure: Figure, extra: str = "") -> str:
    """The numbers, readable without JavaScript: one row per box, indented by depth."""
    rows = []
    for box in boxes:
        share = box.cumulative / total if total else 0.0
        rows.append(
            f'<tr><td style="padding-left:{0.3 + box.depth * 0.8:.1f}em">'
            f"{html.escape(box.name)}</td><td>{html.escape(box.importer or '')}</td>"
            f"<td>{figure(box.self_cost)}</td><td>{figure(box.cumulative)}</td>"
            f"<td>{share:.1%}</td>{extra}</tr>"
        )
    return (
        f'<details class="numbers"><summary>numbers: {len(boxes)} modules</summary>'
        f"<table>{_TABLE_HEADER}</tr>{''.join(rows)}</table></details>"
    )


def _chart(boxes: Sequence[Box], body: Sequence[str], scale: float, label: str) -> str:
    depth = max((box.depth for box in boxes), default=0) + 1
    return (
        f'<div class="frame" style="width:{scale * 100:.4f}%">'
        f'<svg class="chart" width="100%" height="{depth * ROW_HEIGHT}" role="img" '
        f'aria-label="{_attribute(label)}">{"".join(body)}</svg></div>'
    )


def _controls() -> str:
    return '<div class="controls"><button type="button" class="back" disabled>back</button>' + (
        '<span class="crumb"></span></div>'
    )


def _header(outcome: MeasurementOutcome, figure: Figure) -> str:
    """Verdict, figure, budget, headroom, rounds, modules: what a summary row says."""
    css, word = {True: ("pass", "PASS"), False: ("fail", "FAIL"), None: ("none", "no budget")}[
        outcome.verdict
    ]
    parts = [f'<span class="verdict {css}">{word}</span>']
    if outcome.timed:
        parts.append(f"{outcome.stat} {figure(outcome.statistic)}")
    else:
        parts.append("module count only")
    if outcome.budget is not None:
        scaled = f" (scaled x{format_significant(outcome.scale)})" if outcome.scale != 1.0 else ""
        parts.append(f"budget {figure(outcome.budget)}{scaled}")
        if outcome.headroom is not None:
            parts.append(f"headroom {format_headroom(outcome.headroom)}")
    rounds = len(outcome.values)
    parts.append(f"{rounds} round{'s' if rounds != 1 else ''}")
    parts.append(f"{outcome.module_count} modules")
    if outcome.peak_memory is not None:
        bare = outcome.bare_peak_memory
        parts.append(
            f"peak memory {format_memory(outcome.peak_memory)}"
            + ("" if bare is None else f" (bare interpreter {format_memory(bare)})")
        )
    if outcome.python_version:
        parts.append(f"Python {html.escape(outcome.python_version)}")
    return " · ".join(parts)


def _figure_html(
    outcome: MeasurementOutcome, scale: float, figure: Figure, baseline: Baseline | None
) -> tuple[list[str], list[str]]:
    """The measurement's icicle, and its diff icicle (empty without a baseline)."""
    boxes, total, dropped = layout(outcome.module, outcome.modules)
    source = (
        "counted in the first round (counts repeat)"
        if outcome.metric == "instructions"
        else "median over the rounds"
    )
    note = (
        f"boxes: each module's self and cumulative cost, {source} "
        f"(the {outcome.stat} above is the whole import's)"
    )
    if dropped:
        note += f"; {dropped} zero-cost row{'s' if dropped != 1 else ''} left out"
    parts = [
        f'<figure class="icicle" data-label="{_attribute(outcome.label)}">'
        f"<figcaption><b>{html.escape(outcome.label_with_metric)}</b> "
        f"{_header(outcome, figure)}"
        f"<br><small>{html.escape(note)}</small></figcaption>"
    ]
    if not boxes:
        parts.append('<p class="empty">no module with a cost to draw</p></figure>')
        return parts, []
    body = [
        _box_svg(box, total, _tip(box, total, figure), f"hsl({_hue(box.name)},55%,72%)", "")
        for box in boxes
    ]
    label = f"icicle of {outcome.module} ({outcome.label})"
    parts += [_controls(), _chart(boxes, body, scale, label), _table(boxes, total, figure)]
    parts.append("</figure>")
    if baseline is None:
        return parts, []
    return parts, _diff_html(
        outcome.module,
        outcome.label,
        boxes=boxes,
        total=total,
        scale=scale,
        baseline=baseline,
        figure=figure,
    )


def _diff_html(
    module: str,
    label: str,
    *,
    boxes: Sequence[Box],
    total: float,
    scale: float,
    baseline: Baseline,
    figure: Figure,
) -> list[str]:
    """The diff icicle: this tree, each box coloured by its self cost's change."""
    source, before_rows = baseline
    before = {row.name: row for row in before_rows}
    deltas = {
        box.name: box.self_cost - (before[box.name].self_cost if box.name in before else 0.0)
        for box in boxes
    }
    largest = max((abs(delta) for delta in deltas.values()), default=0.0) or 1.0
    body = []
    for box in boxes:
        delta = deltas[box.name]
        strength = abs(delta) / largest
        hue = 0 if delta > 0 else 215
        fill = f"hsl({hue},75%,{95 - 45 * strength:.0f}%)" if delta else "hsl(0,0%,88%)"
        new = box.name not in before
        was = "new" if new else f"was {figure(before[box.name].self_cost)}"
        sign = "+" if delta >= 0 else "-"
        tip = f"{_tip(box, total, figure)}; self {sign}{figure(abs(delta))} ({was})"
        body.append(_box_svg(box, total, tip, fill, " new" if new else ""))
    drawn = {box.name for box in boxes}
    gone = [row for row in before_rows if row.name not in drawn and row.cumulative_cost > 0]
    gone.sort(key=lambda row: -row.cumulative_cost)
    gone_text = (
        "gone since then: "
        + ", ".join(
            f"{html.escape(row.name)} (-{figure(row.cumulative_cost)})" for row in gone[:30]
        )
        + (f" and {len(gone) - 30} more" if len(gone) > 30 else "")
        if gone
        else "no module gone since then"
    )
    new_count = sum(box.name not in before for box in boxes)
    return [
        f'<figure class="icicle diff" data-label="{_attribute(label)} diff">'
        f"<figcaption><b>{html.escape(label)}: change since {html.escape(source)}</b> "
        f"red: self cost grew, blue: it shrank, outlined: new ({new_count})"
        f'<br><small class="gone">{gone_text}</small></figcaption>',
        _controls(),
        _chart(boxes, body, scale, f"diff icicle of {module} ({label}) against {source}"),
        "</figure>",
    ]


def _groups(outcomes: Sequence[MeasurementOutcome]) -> list[list[int]]:
    """Indexes of outcomes by (test, module), in the order first seen: drawn on one scale."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for index, outcome in enumerate(outcomes):
        # Figures in different metrics (seconds, instruction counts) never share a scale.
        metric = outcome.metric
        groups.setdefault((outcome.nodeid, outcome.measured, metric), []).append(index)
    return list(groups.values())


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
header.top { position: sticky; top: 0; background: #fff; padding: .4em 0; z-index: 2;
  border-bottom: 1px solid #ddd; }
section { margin: 1.5em 0 2.5em; }
h2 { font-size: 1.05em; font-family: ui-monospace, monospace; word-break: break-all; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 1.2em; }
.pair.diffs { margin-top: 1.2em; }
figure { margin: 0; } figcaption { margin-bottom: .3em; overflow-wrap: anywhere; }
header.top p { overflow-wrap: anywhere; }
.verdict { font-weight: bold; padding: 0 .35em; border-radius: 3px; }
.verdict.pass { background: #c8e6c9; color: #1b5e20; }
.verdict.fail { background: #ffcdd2; color: #b00020; }
.verdict.none { background: #eee; color: #555; }
svg.chart { display: block; overflow: visible; }
svg.box { cursor: pointer; }
svg.box text { font: 12px ui-monospace, monospace; fill: #111; pointer-events: none; }
svg.box rect.bg { stroke: #fff; stroke-width: 1; }
svg.box rect.self { fill: rgba(0,0,0,.35); }
svg.box.new rect.bg { stroke: #b00020; stroke-width: 2; stroke-dasharray: 3 2; }
svg.box.hit rect.bg { stroke: #000; stroke-width: 2; }
.searching svg.box:not(.hit) { opacity: .25; }
.controls { font-size: .85em; margin: .2em 0; } .crumb { margin-left: .6em; color: #555; }
details.numbers { margin-top: .4em; font-size: .85em; }
details.numbers table { border-collapse: collapse; font-family: ui-monospace, monospace; }
details.numbers td, details.numbers th { padding: 0 .6em; text-align: right; }
details.numbers td:first-child, details.numbers th:first-child,
details.numbers td:nth-child(2) { text-align: left; }
#tip { position: fixed; pointer-events: none; background: #222; color: #fff; padding: .3em .5em;
  border-radius: 4px; font-size: .8em; max-width: 40em; display: none; z-index: 3; }
"""

# Zoom (click a box; "back" or Escape return), search and the tooltip. Every number
# it shows was formatted by the server (data-tip), so it knows no unit.
_SCRIPT = """
(function () {
  "use strict";
  var figures = Array.prototype.slice.call(document.querySelectorAll("figure.icicle"));
  function boxesOf(fig) { return Array.prototype.slice.call(fig.querySelectorAll("svg.box")); }
  function place(fig, target) {
    var x0 = 0, w0 = 1, d0 = 0;
    if (target) { x0 = +target.dataset.x; w0 = +target.dataset.w; d0 = +target.dataset.d; }
    var eps = 1e-9;
    boxesOf(fig).forEach(function (box) {
      var x = +box.dataset.x, w = +box.dataset.w, d = +box.dataset.d, nx, nw, shown;
      if (target && d < d0) {
        shown = x <= x0 + eps && x + w >= x0 + w0 - eps; nx = 0; nw = 1;
      } else {
        shown = x >= x0 - eps && x + w <= x0 + w0 + eps;
        nx = (x - x0) / w0; nw = w / w0;
      }
      box.style.display = shown ? "" : "none";
      box.setAttribute("x", (nx * 100) + "%");
      box.setAttribute("width", (nw * 100) + "%");
    });
    fig.querySelector(".crumb").textContent = target ? "zoomed into " + target.dataset.name : "";
    fig.querySelector("button.back").disabled = fig.zoomStack.length === 0;
  }
  figures.forEach(function (fig) {
    if (!fig.querySelector("svg.chart")) { return; }
    fig.zoomStack = [];
    fig.current = null;
    fig.addEventListener("click", function (event) {
      var box = event.target.closest ? event.target.closest("svg.box") : null;
      if (!box || box === fig.current) { return; }
      fig.zoomStack.push(fig.current);
      fig.current = box;
      place(fig, box);
    });
    fig.querySelector("button.back").addEventListener("click", function () {
      fig.current = fig.zoomStack.length ? fig.zoomStack.pop() : null;
      place(fig, fig.current);
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    figures.forEach(function (fig) {
      if (fig.zoomStack) { fig.zoomStack = []; fig.current = null; place(fig, null); }
    });
  });
  var search = document.getElementById("search"), count = document.getElementById("matches");
  if (search) {
    search.addEventListener("input", function () {
      var query = search.value.trim().toLowerCase(), hits = 0;
      document.body.classList.toggle("searching", query !== "");
      document.querySelectorAll("svg.box").forEach(function (box) {
        var hit = query !== "" && box.dataset.name.toLowerCase().indexOf(query) >= 0;
        box.classList.toggle("hit", hit);
        if (hit) { hits += 1; }
      });
      count.textContent = query ? hits + " box" + (hits === 1 ? "" : "es") + " match" : "";
    });
  }
  var tip = document.getElementById("tip");
  document.addEventListener("mousemove", function (event) {
    var box = event.target.closest ? event.target.closest("svg.box") : null;
    if (!box) { tip.style.display = "none"; return; }
    tip.textContent = box.dataset.tip;
    tip.style.display = "block";
    tip.style.left = Math.min(event.clientX + 12, window.innerWidth - tip.offsetWidth - 4) + "px";
    tip.style.top = (event.clientY + 14) + "px";
  });
})();
"""


def icicle_page(
    outcomes: Sequence[MeasurementOutcome],
    baselines: Sequence[Baseline | None] = (),
    *,
    figure: Figure | None = None,
    title: str = "Import trees",
    subtitle: str = "",
) -> str:
    """The standalone HTML page of ``outcomes``; ``baselines[i]`` adds a diff icicle to the i-th.

    Outcomes of the same test and module (cold and warm) share one scale and
    are drawn side by side. ``figure`` formats every cost shown.
    """
    sections = []
    for group in _groups(outcomes):
        members = [outcomes[index] for index in group]
        totals = [layout(member.module, member.modules)[1] for member in members]
        largest = max(totals, default=0.0) or 1.0
        first = members[0]
        figures: list[str] = []
        diffs: list[str] = []
        for index, member, total in zip(group, members, totals, strict=True):
            baseline = baselines[index] if index < len(baselines) else None
            chosen = figure or partial(format_cost, metric=member.metric)
            drawn, diff = _figure_html(member, total / largest, chosen, baseline)
            figures += drawn
            diffs += diff
        # The diff icicles on a row of their own, below the measurements they belong to.
        diff_row = f'<div class="pair diffs">{"".join(diffs)}</div>' if diffs else ""
        sections.append(
            f"<section><h2>{html.escape(first.nodeid)}: {html.escape(first.measured)}</h2>"
            f'<div class="pair">{"".join(figures)}</div>{diff_row}</section>'
        )
    if not sections:
        sections.append("<p>No import was measured.</p>")
    lede = f"<p>{html.escape(subtitle)}</p>" if subtitle else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<header class="top"><h1>{html.escape(title)}</h1>{lede}'
        '<label>search modules <input id="search" type="search" autocomplete="off"></label> '
        '<span id="matches"></span> <small>click a box to zoom in; back or Escape to zoom '
        "out; width: cumulative cost, dark strip: self cost</small></header>"
        + "".join(sections)
        + f'<div id="tip"></div><script>{_SCRIPT}</script></body></html>\n'
    )
