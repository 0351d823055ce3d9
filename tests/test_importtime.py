"""Parsing ``-X importtime`` rows into a module tree."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_importcache.importtime import iter_nodes, parse_importtime

SAMPLE = """\
import time: self [us] | cumulative | imported package
import time:       140 |        140 |   _io
import time:        30 |         30 |       lightpkg.deep
import time:       412 |        442 |     lightpkg.helper
import time:      1000 |       1000 |     decimal
import time:        50 |       1492 |   lightpkg
"""


def test_rows_nest_children_first() -> None:
    roots = parse_importtime(SAMPLE.splitlines())
    assert [root.name for root in roots] == ["_io", "lightpkg"]
    package = roots[1]
    assert (package.self_us, package.cumulative_us, package.level) == (50, 1492, 1)
    assert [child.name for child in package.children] == ["lightpkg.helper", "decimal"]
    deep = package.children[0].children[0]
    assert deep.chain == ["lightpkg", "lightpkg.helper", "lightpkg.deep"]
    assert [node.name for node in iter_nodes(roots)] == [
        "_io",
        "lightpkg",
        "lightpkg.helper",
        "lightpkg.deep",
        "decimal",
    ]


@pytest.mark.parametrize(
    "noise",
    [
        "Traceback (most recent call last):",
        "warning: something | odd | here",
        "import time: not a number | 12 | x",
        "",
    ],
)
def test_unrelated_lines_are_ignored(noise: str) -> None:
    roots = parse_importtime([noise, *SAMPLE.splitlines(), noise])
    assert [node.name for node in iter_nodes(roots)][-1] == "decimal"
    assert len(list(iter_nodes(roots))) == 5


def test_a_row_glued_to_unterminated_output_is_still_read() -> None:
    lines = ["progress: 50%import time:       412 |        442 |   glued.module"]
    (node,) = parse_importtime(lines)
    assert (node.name, node.self_us, node.cumulative_us) == ("glued.module", 412, 442)


def test_python_314_cached_rows_count_as_zero() -> None:
    lines = ["import time:    cached |     cached |     json", "import time: 5 | 9 |   mod"]
    (root,) = parse_importtime(lines)
    assert root.children[0].cached
    assert root.children[0].self_us == 0


def test_an_import_that_never_completed_leaves_its_children_as_roots() -> None:
    lines = ["import time:        30 |         30 |     orphan.child"]
    (orphan,) = parse_importtime(lines)
    assert orphan.parent is None
    assert orphan.level == 2


def test_real_interpreter_output_parses() -> None:
    completed = subprocess.run(
        [sys.executable, "-I", "-X", "importtime", "-c", "import json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {
        node.name: node for node in iter_nodes(parse_importtime(completed.stderr.splitlines()))
    }
    assert "json.decoder" in names
    assert names["json.decoder"].parent is not None
    assert names["json.decoder"].parent.name == "json"
    assert names["json"].cumulative_us >= names["json"].self_us
