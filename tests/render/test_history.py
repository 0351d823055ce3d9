"""History: each import's figure over saved runs, steps marked; the table and the page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import Browser
from pytest_importcache.model.errors import RunError
from pytest_importcache.render.history import history_lines, history_page, load_history

# ms per run: steady, then a lasting step up at run 4, a one-run spike at run 6.
FIGURES = [100.0, 102.0, 99.0, 130.0, 131.0, 190.0, 129.0]


def write_runs(directory: Path, figures: list[float], extra: str | None = None) -> list[Path]:
    """Saved runs as pytest-benchmark writes them, one import entry each (two with ``extra``)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, milliseconds in enumerate(figures, start=1):
        entries: list[dict[str, Any]] = []
        for name in ["mylib", extra] if extra and index > 2 else ["mylib"]:
            entries.append(
                {
                    "name": f"test_{name}[{name}-warm]",
                    "fullname": f"t.py::test_{name}[{name}-warm]",
                    "stats": {"min": milliseconds / 1e3, "median": milliseconds / 1e3 * 1.1},
                    "extra_info": {"module": name, "module_self_seconds": {name: 0.001}},
                }
            )
        run = {
            "commit_info": {"id": f"{index:x}" * 40, "time": f"2026-11-{index:02d}T10:00:00"},
            "datetime": f"2026-11-{index:02d}T10:05:00",
            "benchmarks": entries,
        }
        path = directory / f"{index:04d}_run.json"
        path.write_text(json.dumps(run))
        paths.append(path)
    return paths


def test_a_run_steps_when_it_moves_ten_percent_from_the_one_before(tmp_path: Path) -> None:
    (series,) = load_history(write_runs(tmp_path, FIGURES))
    assert series.name == "test_mylib[mylib-warm]"
    assert [point.value for point in series.points] == pytest.approx([f / 1e3 for f in FIGURES])
    assert [point.step for point in series.points] == [None, None, None, "up", None, "up", "down"]
    assert series.points[3].change == pytest.approx(130 / 99 - 1)
    # The date is when the run was saved (pytest-benchmark's "datetime"), not the commit's.
    assert (series.points[0].commit, series.points[0].date) == ("11111111", "2026-11-01 10:05")


def test_runs_of_one_commit_show_when_each_was_saved(tmp_path: Path) -> None:
    runs = write_runs(tmp_path, [100.0, 120.0])
    for index, path in enumerate(runs):
        run = json.loads(path.read_text())
        run["commit_info"] = {"id": "a" * 40, "time": "2026-10-01T09:00:00", "dirty": True}
        run["datetime"] = f"2026-11-0{index + 1}T08:30:00.123456+00:00"
        path.write_text(json.dumps(run))
    (series,) = load_history(runs)
    assert [(point.commit, point.date) for point in series.points] == [
        ("aaaaaaaa+", "2026-11-01 08:30"),
        ("aaaaaaaa+", "2026-11-02 08:30"),
    ]


def test_the_statistic_is_chosen_and_late_imports_join_later(tmp_path: Path) -> None:
    history = load_history(write_runs(tmp_path, FIGURES, extra="other"), "median")
    assert [series.name for series in history] == [
        "test_mylib[mylib-warm]",
        "test_other[other-warm]",
    ]
    assert history[0].points[0].value == pytest.approx(0.11)
    assert [point.run for point in history[1].points] == ["0003", "0004", "0005", "0006", "0007"]


def test_the_terminal_table_marks_steps(tmp_path: Path) -> None:
    lines = history_lines(load_history(write_runs(tmp_path, FIGURES)))
    assert lines[0] == "test_mylib[mylib-warm] (min)"
    assert lines[1].split() == ["run", "commit", "date", "min", "change"]
    assert lines[2].split() == ["0001", "11111111", "2026-11-01", "10:05", "100ms"]
    assert lines[5].split() == [
        "0004",
        "44444444",
        "2026-11-04",
        "10:05",
        "130ms",
        "+31%",
        "step",
        "up",
    ]
    assert lines[8].endswith("-32%  step down")


def test_a_missing_statistic_names_the_run_file_and_the_entry(tmp_path: Path) -> None:
    paths = write_runs(tmp_path, FIGURES[:2])
    with pytest.raises(
        RunError,
        match=r"run file .*0001_run\.json: entry 't.py::test_mylib\[mylib-warm\]' has no 'max'",
    ):
        load_history(paths, "max")


def test_the_page_holds_one_chart_per_import_with_its_steps(tmp_path: Path) -> None:
    page = history_page(load_history(write_runs(tmp_path, FIGURES, extra="a<b&")))
    assert page.count('<svg class="history"') == 2
    assert page.count('class="point up"') == 2 + 2  # runs 4 and 6 of each
    assert "<h2>test_a&lt;b&amp;[a&lt;b&amp;-warm] (min)</h2>" in page
    assert not re.search(r"""(src|href)\\s*=""", page)


CHART = """
var charts = document.querySelectorAll("svg.history");
var points = Array.prototype.map.call(charts[0].querySelectorAll("circle"), function (c) {
  var r = c.getBoundingClientRect();
  return {x: r.left + r.width / 2, y: r.top + r.height / 2, up: c.classList.contains("up"),
    down: c.classList.contains("down")};
});
var axis = charts[0].querySelector("line.axis").getBoundingClientRect();
return {charts: charts.length, points: points, zero: axis.top,
  sections: document.querySelectorAll("section").length};
"""


@pytest.mark.slow
def test_the_browser_draws_each_run_in_order_and_in_proportion(
    browser: Browser, tmp_path: Path
) -> None:
    page = tmp_path / "history.html"
    page.write_text(history_page(load_history(write_runs(tmp_path / "runs", FIGURES))))
    value, errors, log = browser.check(page, CHART)
    assert errors == []
    assert "Uncaught" not in log
    assert (value["charts"], value["sections"]) == (1, 1)
    points = value["points"]
    assert len(points) == len(FIGURES)
    xs = [point["x"] for point in points]
    assert xs == sorted(xs)
    # Heights above the zero line in proportion to the figures.
    heights = [value["zero"] - point["y"] for point in points]
    for height, figure in zip(heights, FIGURES, strict=True):
        assert height / heights[0] == pytest.approx(figure / FIGURES[0], rel=0.03)
    assert [index for index, point in enumerate(points) if point["up"]] == [3, 5]
    assert [index for index, point in enumerate(points) if point["down"]] == [6]
