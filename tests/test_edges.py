"""Import edges: the lines that name which import a slower import gained or lost."""

from __future__ import annotations

from pytest_importcache.edges import EdgeChange, edge_changes, edge_lines

BEFORE = (
    ("mylib.core", 0.002, 0.002, "mylib"),
    ("json", 0.001, 0.001, "mylib.cli"),
    ("mylib.cli", 0.001, 0.002, "mylib"),
    ("mylib", 0.001, 0.005, None),
)
# mylib.cli now imports asyncio (which pulls in ssl), and no longer json.
AFTER = (
    ("mylib.core", 0.002, 0.002, "mylib"),
    ("ssl", 0.004, 0.004, "asyncio"),
    ("asyncio", 0.0083, 0.0123, "mylib.cli"),
    ("mylib.cli", 0.001, 0.0133, "mylib"),
    ("mylib", 0.001, 0.0163, None),
)


def test_a_new_edge_is_named_with_its_subtree_and_not_the_edges_below_it() -> None:
    changes = edge_changes(BEFORE, AFTER, "mylib")
    assert changes == [
        EdgeChange("mylib.cli", "asyncio", "new", 0.0123),
        EdgeChange("mylib.cli", "json", "gone", -0.001),
    ]
    # asyncio -> ssl is new too, but asyncio itself is: the cause is mylib.cli -> asyncio.
    assert edge_lines(BEFORE, AFTER, "mylib") == [
        "mylib.cli -> asyncio (new): +12.3ms cumulative",
        "mylib.cli -> json (gone): -1ms cumulative",
    ]


def test_unchanged_trees_have_no_edge_lines() -> None:
    assert edge_lines(AFTER, AFTER, "mylib") == []
    assert edge_lines((), (), "mylib") == []


def test_a_module_imported_by_another_importer_is_gone_from_one_and_new_in_the_other() -> None:
    moved = (
        ("json", 0.001, 0.001, "mylib.core"),
        ("mylib.core", 0.002, 0.003, "mylib"),
        ("mylib.cli", 0.001, 0.001, "mylib"),
        ("mylib", 0.001, 0.005, None),
    )
    assert edge_lines(BEFORE, moved, "mylib") == [
        "mylib.core -> json (new): +1ms cumulative",
        "mylib.cli -> json (gone): -1ms cumulative",
    ]


def test_the_figure_formatter_and_the_count_are_parameters() -> None:
    lines = edge_lines(BEFORE, AFTER, "mylib", count=1, figure=lambda value: f"{value * 1e3:.0f}k")
    assert lines == ["mylib.cli -> asyncio (new): +12k cumulative"]


def test_the_measured_module_and_roots_are_no_edges() -> None:
    # The measured module's own importer (its parent package) is no edge of the import.
    before = (("pkg.mod", 0.001, 0.001, None),)
    after = (("pkg.mod", 0.001, 0.001, "pkg"),)
    assert edge_changes(before, after, "pkg.mod") == []
