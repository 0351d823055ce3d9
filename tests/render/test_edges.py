"""Import edges: the lines that name which import a slower import gained or lost."""

from __future__ import annotations

from conftest import tree
from pytest_importcache.render.edges import EdgeChange, edge_changes, edge_lines

BEFORE = tree(
    ("mylib.core", 0.002, 0.002, "mylib"),
    ("json", 0.001, 0.001, "mylib.cli"),
    ("mylib.cli", 0.001, 0.002, "mylib"),
    ("mylib", 0.001, 0.005, None),
)
# mylib.cli now imports asyncio (which pulls in ssl), and no longer json.
AFTER = tree(
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


def test_a_module_still_loaded_through_another_importer_is_moved_not_gone() -> None:
    # json is now imported first by mylib.core: it moved, it did not come or go.
    moved = tree(
        ("json", 0.001, 0.0015, "mylib.core"),
        ("mylib.core", 0.002, 0.0035, "mylib"),
        ("mylib.cli", 0.001, 0.001, "mylib"),
        ("mylib", 0.001, 0.0055, None),
    )
    assert edge_changes(BEFORE, moved, "mylib") == [
        EdgeChange("mylib.core", "json", "moved", 0.0005, "mylib.cli")
    ]
    assert edge_lines(BEFORE, moved, "mylib") == [
        "json: now via mylib.core (was mylib.cli): +500us cumulative",
    ]


# pydantic's tree, in short: typing was first imported by pydantic, now by
# pydantic._internal; annotated_types is no longer imported at all.
PYDANTIC_BEFORE = tree(
    ("typing", 0.004, 0.004, "pydantic"),
    ("annotated_types", 0.002, 0.002, "pydantic"),
    ("pydantic._internal", 0.003, 0.003, "pydantic"),
    ("pydantic", 0.001, 0.010, None),
)
PYDANTIC_AFTER = tree(
    ("typing", 0.004, 0.004, "pydantic._internal"),
    ("pydantic._internal", 0.003, 0.007, "pydantic"),
    ("pydantic", 0.001, 0.008, None),
)


def test_only_a_module_no_longer_loaded_is_gone() -> None:
    assert edge_lines(PYDANTIC_BEFORE, PYDANTIC_AFTER, "pydantic") == [
        "pydantic -> annotated_types (gone): -2ms cumulative",
        "typing: now via pydantic._internal (was pydantic): +0s cumulative",
    ]
    # The other way round, the same module is new, and typing moved back.
    assert edge_lines(PYDANTIC_AFTER, PYDANTIC_BEFORE, "pydantic") == [
        "pydantic -> annotated_types (new): +2ms cumulative",
        "typing: now via pydantic (was pydantic._internal): +0s cumulative",
    ]


def test_a_move_into_a_new_subtree_is_named_by_the_new_edge_alone() -> None:
    # typing is now imported by the new pydantic.v2, whose own edge is the cause.
    after = tree(
        ("typing", 0.004, 0.004, "pydantic.v2"),
        ("pydantic.v2", 0.001, 0.005, "pydantic"),
        ("annotated_types", 0.002, 0.002, "pydantic"),
        ("pydantic._internal", 0.003, 0.003, "pydantic"),
        ("pydantic", 0.001, 0.011, None),
    )
    assert edge_lines(PYDANTIC_BEFORE, after, "pydantic") == [
        "pydantic -> pydantic.v2 (new): +5ms cumulative",
    ]


def test_the_figure_formatter_and_the_count_are_parameters() -> None:
    lines = edge_lines(BEFORE, AFTER, "mylib", count=1, figure=lambda value: f"{value * 1e3:.0f}k")
    assert lines == ["mylib.cli -> asyncio (new): +12k cumulative"]


def test_the_measured_module_and_roots_are_no_edges() -> None:
    # The measured module's own importer (its parent package) is no edge of the import.
    before = tree(("pkg.mod", 0.001, 0.001, None))
    after = tree(("pkg.mod", 0.001, 0.001, "pkg"))
    assert edge_changes(before, after, "pkg.mod") == []
