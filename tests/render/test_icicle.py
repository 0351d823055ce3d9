"""The icicle report: layout, escaping, the diff view, and the page in a real browser."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import (
    FAKE_ROUNDS_CONFTEST,
    Browser,
    fake_rounds,
    make_outcome,
    quick_ini,
    tree,
    write_tree,
)
from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.render.icicle import icicle_page, layout

# mylib (7 ms) imports mylib.core (3.1 ms: re, enum) and mylib.cli (3 ms: typing, json);
# typing.io is an alias row of no cost.
WARM = tree(
    ("re._parser", 0.0006, 0.0006, "re"),
    ("re._compiler", 0.0004, 0.0004, "re"),
    ("re", 0.0003, 0.0013, "mylib.core"),
    ("enum", 0.0008, 0.0008, "mylib.core"),
    ("mylib.core", 0.001, 0.0031, "mylib"),
    ("typing.io", 0.0, 0.0, "typing"),
    ("typing", 0.0015, 0.0015, "mylib.cli"),
    ("json.decoder", 0.0005, 0.0005, "json"),
    ("json", 0.0004, 0.0009, "mylib.cli"),
    ("mylib.cli", 0.0006, 0.003, "mylib"),
    ("mylib", 0.0009, 0.007, None),
)
COLD = tree(*((row.name, row.self_cost * 3, row.cumulative_cost * 3, row.importer) for row in WARM))
HOSTILE = "a<b>&\"q'"


def outcomes() -> list[MeasurementOutcome]:
    """Cold and warm of mylib (warm over budget), a hostile name, an empty tree."""
    return [
        make_outcome(
            nodeid="tests/test_imports.py::test_mylib",
            module="mylib",
            flavour="cold",
            statistic=0.021,
            budget=0.15,
            passed=True,
            values=(0.021,) * 10,
            modules=COLD,
        ),
        make_outcome(
            nodeid="tests/test_imports.py::test_mylib",
            module="mylib",
            flavour="warm",
            statistic=0.007,
            budget=0.005,
            passed=False,
            values=(0.007,) * 10,
            modules=WARM,
        ),
        make_outcome(
            nodeid=f"t.py::test[{HOSTILE}]",
            module=HOSTILE,
            modules=((HOSTILE, 0.001, 0.002, None), ("x&y</svg>", 0.001, 0.001, HOSTILE)),
        ),
        make_outcome(nodeid="t.py::empty", module="empty", modules=()),
    ]


def test_boxes_are_as_wide_as_their_cumulative_share() -> None:
    boxes, total, dropped = layout("mylib", WARM)
    assert total == pytest.approx(0.007)
    assert dropped == 1  # typing.io
    by_name = {box.name: box for box in boxes}
    assert "typing.io" not in by_name
    assert by_name["mylib"].width == pytest.approx(1.0)
    assert by_name["mylib.core"].width == pytest.approx(0.0031 / 0.007)
    # Children hang below their importer, biggest first, from its left edge.
    assert by_name["mylib.core"].x == pytest.approx(0.0)
    assert by_name["mylib.cli"].x == pytest.approx(0.0031 / 0.007)
    assert by_name["json.decoder"].depth == 3
    assert by_name["json.decoder"].x >= by_name["json"].x
    # Depth first: every box comes after its importer.
    order = [box.name for box in boxes]
    assert all(order.index(box.importer) < order.index(box.name) for box in boxes if box.importer)


def test_children_costing_more_than_their_importer_are_scaled_into_it() -> None:
    # Medians need not add up: 2 + 2 ms of children under a 3 ms importer.
    rows = (("a", 0.002, 0.002, "top"), ("b", 0.002, 0.002, "top"), ("top", 0.0, 0.003, None))
    boxes, _, _ = layout("top", tree(*rows))
    children = [box for box in boxes if box.depth == 1]
    assert sum(box.width for box in children) == pytest.approx(1.0)
    assert children[1].x + children[1].width <= 1.0 + 1e-12


def test_an_empty_tree_and_an_all_zero_tree_draw_nothing() -> None:
    assert layout("m", ()) == ([], 0.0, 0)
    assert layout("m", tree(("m", 0.0, 0.0, None), ("n", 0.0, 0.0, "m"))) == ([], 0.0, 2)
    page = icicle_page([make_outcome(modules=())])
    assert "no module with a cost to draw" in page


def test_an_importer_cycle_does_not_hang_the_layout() -> None:
    rows = (("a", 0.001, 0.002, "b"), ("b", 0.001, 0.002, "a"), ("m", 0.001, 0.001, None))
    boxes, _, _ = layout("m", tree(*rows))
    assert [box.name for box in boxes] == ["m"]


def test_thousands_of_modules_lay_out_inside_their_importers() -> None:
    rows: list[tuple[str, float, float, str | None]] = [("big", 0.0, 1.0, None)]
    rows += [(f"big.m{index}", 0.0002, 0.0002, "big") for index in range(2500)]
    rows += [(f"big.m{index}.sub", 0.0001, 0.0001, f"big.m{index}") for index in range(2500)]
    boxes, _, dropped = layout("big", tree(*rows))
    assert (len(boxes), dropped) == (5001, 0)
    for box in boxes:
        assert box.x >= 0.0
        assert box.x + box.width <= 1.0 + 1e-9


class _Attributes(HTMLParser):
    """Every element's attributes and the page's text, as a browser's parser reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.tags: list[str] = []
        self.headings: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "h2":
            self.headings.append("")
        for key, value in attrs:
            if key == "data-name" and value is not None:
                self.names.append(value)

    def handle_data(self, data: str) -> None:
        if self.tags and self.tags[-1] == "h2":
            self.headings[-1] += data

    def handle_endtag(self, tag: str) -> None:
        self.tags.append(f"/{tag}")


def test_hostile_module_names_are_escaped_everywhere() -> None:
    page = icicle_page(outcomes())
    parser = _Attributes()
    parser.feed(page)
    assert HOSTILE in parser.names
    assert "x&y</svg>" in parser.names
    assert f"t.py::test[{HOSTILE}]: {HOSTILE}" in parser.headings
    # No markup from a module name: one <b> per figure caption, every <svg> closed.
    assert parser.tags.count("b") == parser.tags.count("figure") == 4
    assert parser.tags.count("svg") == parser.tags.count("/svg")


def test_a_page_is_self_contained() -> None:
    page = icicle_page(outcomes())
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page
    assert "<script src" not in page


def test_the_statistic_verdict_budget_and_rounds_head_each_icicle() -> None:
    page = icicle_page(outcomes())
    assert '<span class="verdict fail">FAIL</span> · min 7ms · budget 5ms · headroom -40%' in page
    assert " · 10 rounds · 11 modules · Python 3.11.7" in page
    assert "each module&#x27;s self and cumulative cost, median over the rounds" in page
    assert "1 zero-cost row left out" in page
    # The numbers without JavaScript: a table row per drawn module.
    assert page.count("<tr><td") == 2 * 10 + 2


def test_the_figure_formatter_formats_every_figure() -> None:
    page = icicle_page(outcomes()[:2], figure=lambda value: f"{value * 1e6:.0f}k")
    assert "min 7000k · budget 5000k" in page
    assert "cumulative 7000k" in page
    assert not re.search(r"\d(ms|us)\b", page)


# -- in a real browser -------------------------------------------------------------------

PROPORTIONS = """
var figures = document.querySelectorAll("figure.icicle");
function box(fig, name) { return fig.querySelector('svg.box[data-name="' + name + '"]'); }
function width(el) { return el.getBoundingClientRect().width; }
var cold = figures[0], warm = figures[1];
return {
  core: width(box(warm, "mylib.core")) / width(box(warm, "mylib")),
  cli: width(box(warm, "mylib.cli")) / width(box(warm, "mylib")),
  warmToCold: width(box(warm, "mylib")) / width(box(cold, "mylib")),
  leftOfCli: box(warm, "mylib.cli").getBoundingClientRect().left
    - box(warm, "mylib").getBoundingClientRect().left,
  rootWidth: width(box(warm, "mylib")),
  labels: Array.prototype.map.call(warm.querySelectorAll("svg.box"), function (b) {
    return b.dataset.name; }),
};
"""


@pytest.fixture
def page(tmp_path: Path) -> Path:
    """The report of the fixed outcomes, on disk."""
    path = tmp_path / "imports.html"
    path.write_text(icicle_page(outcomes()), encoding="utf-8")
    return path


@pytest.mark.slow
def test_the_browser_draws_boxes_in_proportion(browser: Browser, page: Path) -> None:
    value, errors, _ = browser.check(page, PROPORTIONS)
    assert errors == []
    assert value["core"] == pytest.approx(0.0031 / 0.007, rel=0.02)
    assert value["cli"] == pytest.approx(0.003 / 0.007, rel=0.02)
    # Cold and warm on one scale: warm's root a third of cold's.
    assert value["warmToCold"] == pytest.approx(1 / 3, rel=0.02)
    assert value["leftOfCli"] == pytest.approx(value["rootWidth"] * 0.0031 / 0.007, abs=1.5)
    assert "typing.io" not in value["labels"]


ZOOM = """
var warm = document.querySelectorAll("figure.icicle")[1];
function box(name) { return warm.querySelector('svg.box[data-name="' + name + '"]'); }
function width(name) { return box(name).getBoundingClientRect().width; }
function shown(name) { return box(name).style.display !== "none"; }
var frame = warm.querySelector("svg.chart").getBoundingClientRect().width;
var before = width("mylib.cli") / frame;
box("mylib.cli").querySelector("rect").dispatchEvent(new MouseEvent("click", {bubbles: true}));
var zoomed = {cli: width("mylib.cli") / frame, typing: width("typing") / frame,
  root: width("mylib") / frame, core: shown("mylib.core"), json: shown("json"),
  crumb: warm.querySelector(".crumb").textContent,
  back: warm.querySelector("button.back").disabled};
warm.querySelector("button.back").click();
var back = {cli: width("mylib.cli") / frame, core: shown("mylib.core"),
  backDisabled: warm.querySelector("button.back").disabled};
return {before: before, zoomed: zoomed, back: back};
"""


@pytest.mark.slow
def test_a_click_zooms_into_a_box_and_back_returns(browser: Browser, page: Path) -> None:
    value, errors, _ = browser.check(page, ZOOM)
    assert errors == []
    assert value["before"] == pytest.approx(0.003 / 0.007, rel=0.02)
    zoomed = value["zoomed"]
    # The clicked box fills the width; its ancestors stay above, full width; others go.
    assert zoomed["cli"] == pytest.approx(1.0, rel=0.01)
    assert zoomed["root"] == pytest.approx(1.0, rel=0.01)
    assert zoomed["typing"] == pytest.approx(0.0015 / 0.003, rel=0.02)
    assert (zoomed["core"], zoomed["json"]) == (False, True)
    assert zoomed["crumb"] == "zoomed into mylib.cli"
    assert zoomed["back"] is False
    assert value["back"] == {
        "cli": pytest.approx(value["before"], rel=0.01),
        "core": True,
        "backDisabled": True,
    }


SEARCH = """
var input = document.getElementById("search");
input.value = "json";
input.dispatchEvent(new Event("input"));
var hits = Array.prototype.map.call(document.querySelectorAll("svg.box.hit"),
  function (b) { return b.dataset.name; });
var dimmed = getComputedStyle(document.querySelector('svg.box[data-name="typing"]')).opacity;
var lit = getComputedStyle(document.querySelector("svg.box.hit")).opacity;
var count = document.getElementById("matches").textContent;
input.value = "";
input.dispatchEvent(new Event("input"));
return {hits: hits, dimmed: dimmed, lit: lit, count: count,
  after: document.querySelectorAll("svg.box.hit").length};
"""


@pytest.mark.slow
def test_search_highlights_matching_modules(browser: Browser, page: Path) -> None:
    value, errors, _ = browser.check(page, SEARCH)
    assert errors == []
    # json and json.decoder, in cold and in warm.
    assert sorted(value["hits"]) == ["json", "json", "json.decoder", "json.decoder"]
    assert value["count"] == "4 boxes match"
    assert float(value["dimmed"]) < 0.5 < float(value["lit"])
    assert value["after"] == 0


@pytest.mark.slow
def test_a_hostile_and_a_huge_page_load_without_errors(browser: Browser, tmp_path: Path) -> None:
    rows: list[tuple[str, float, float, str | None]] = [("big", 0.0, 1.0, None)]
    rows += [(f"big.m{index}", 0.0004, 0.0004, "big") for index in range(2500)]
    huge = [*outcomes(), make_outcome(module="big", modules=tuple(rows))]
    path = tmp_path / "huge.html"
    path.write_text(icicle_page(huge), encoding="utf-8")
    script = """
    var input = document.getElementById("search");
    input.value = "big.m24";
    input.dispatchEvent(new Event("input"));
    var hostile = document.querySelector('svg.box[data-name="a<b>&\\\\"q\\'"]');
    return {boxes: document.querySelectorAll("svg.box").length,
      hits: document.querySelectorAll("svg.box.hit").length,
      hostile: hostile ? hostile.querySelector("text").textContent : null,
      headings: document.querySelectorAll("h2").length};
    """
    value, errors, log = browser.check(path, script)
    assert errors == []
    assert "Uncaught" not in log
    assert value["boxes"] == 10 + 10 + 2 + 2501
    assert value["hits"] == 111  # big.m24, big.m240..249 and big.m2400..2499
    assert value["hostile"] == HOSTILE
    assert value["headings"] == 4


# -- from a pytest run -------------------------------------------------------------------


@pytest.mark.slow
def test_a_compared_run_draws_a_diff_icicle_with_the_new_module(
    pytester: pytest.Pytester,
) -> None:
    write_tree(pytester.path, {"steady/__init__.py": "", "steady/slowpart.py": ""})
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    pytester.makeini(quick_ini(3))
    pytester.makepyfile(
        test_imports="""
        import pytest

        @pytest.mark.import_budget("steady", warm="10s")
        def test_steady():
            pass
        """
    )
    fake_rounds(pytester.path, {"steady": {"seconds": 0.2}})
    pytester.runpytest("--benchmark-save=base").assert_outcomes(passed=1)
    fake_rounds(pytester.path, {"steady": {"seconds": 0.2, "modules": {"steady.slowpart": 0.4}}})
    pytester.runpytest(
        "--benchmark-compare=0001", "--importcache-report=imports.html"
    ).assert_outcomes(passed=1)
    page = (pytester.path / "imports.html").read_text(encoding="utf-8")
    assert '<figure class="icicle diff" data-label="warm diff">' in page
    assert "warm: change since 0001_base.json" in page
    diff = page[page.index('class="icicle diff"') :]
    assert re.search(r'<svg class="box new"[^>]*data-name="steady.slowpart"', diff)
    assert "self +400ms (new)" in diff
    assert "self +0s (was 200ms)" in diff  # steady's own cost did not change


DIFF = """
var diff = document.querySelector("figure.icicle.diff");
function box(name) { return diff.querySelector('svg.box[data-name="' + name + '"]'); }
var newNames = Array.prototype.map.call(diff.querySelectorAll("svg.box.new"),
  function (b) { return b.dataset.name; });
var fill = getComputedStyle(box("json").querySelector("rect.bg")).fill;
var frame = diff.querySelector("svg.chart").getBoundingClientRect().width;
box("json").querySelector("rect").dispatchEvent(new MouseEvent("click", {bubbles: true}));
return {newNames: newNames, fill: fill, gone: diff.querySelector(".gone").textContent,
  zoomed: box("json").getBoundingClientRect().width / frame,
  tip: box("json").dataset.tip};
"""


@pytest.mark.slow
def test_the_diff_icicle_marks_new_modules_and_lists_gone_ones(
    browser: Browser, tmp_path: Path
) -> None:
    # The baseline had no json (nor json.decoder) but argparse under mylib.cli.
    before = (
        *(row for row in WARM if not row.name.startswith("json")),
        *tree(("argparse", 0.001, 0.001, "mylib.cli")),
    )
    page = tmp_path / "diff.html"
    page.write_text(icicle_page(outcomes()[:2], [None, ("0001_base.json", before)]))
    value, errors, _ = browser.check(page, DIFF)
    assert errors == []
    assert sorted(value["newNames"]) == ["json", "json.decoder"]
    red, green, blue = map(int, re.findall(r"\d+", value["fill"])[:3])
    # Slower: red.
    assert red > green
    assert red > blue
    assert value["gone"] == "gone since then: argparse (-1ms)"
    assert value["zoomed"] == pytest.approx(1.0, rel=0.01)
    assert value["tip"].endswith("; self +400us (new)")
