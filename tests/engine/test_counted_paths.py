"""Instruction counts do not depend on where the measured files sit on disk.

A same-run comparison counts the working tree's import and the revision's,
whose tree lies under the cache directory at another path: an unchanged tree
must count as itself (x1.000), not some thousand instructions cheaper per
module on one side. And how pytest was started (``python -m pytest`` puts the
current directory on ``sys.path``) must not change what a round counts.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from gitrepos import make_repo

from pytest_importcache.engine.against import head_alias, measure_against
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.model.spec import MeasurementSpec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("valgrind") is None,
        reason="valgrind is not installed (apt-get install valgrind)",
    ),
]

# A package whose import loads a few dozen standard library modules, each
# looked up through every entry of the path before the standard library's.
STDLIB_USER = {"mypkg/__init__.py": "import collections, decimal, functools, json, operator\n"}


def _counted_against_head(repo: Path, entry: Path, cache_dir: Path) -> tuple[float, float]:
    """The head's and the base's count of ``mypkg`` (found in ``entry``) against HEAD."""
    measurer = Measurer(cache_dir=cache_dir, search_path=[str(entry), *sys.path], count_store=False)
    spec = MeasurementSpec("mypkg", metric="instructions", rounds=1, warmup=0)
    comparison = measure_against(measurer, spec, "HEAD")
    return comparison.head.values[0], comparison.base.values[0]


@pytest.mark.parametrize("layout", ["root", "src"])
def test_an_unchanged_tree_counts_as_itself(tmp_path: Path, layout: str) -> None:
    # The directory holding the package is on the path (pytest's pythonpath =
    # ["."] or ["src"]), ahead of the standard library; the revision's tree
    # lies at a path 40-odd characters longer. Before: every module about 4k
    # instructions cheaper on the head's side, x0.998.
    prefix = "" if layout == "root" else "src/"
    repo = make_repo(tmp_path / "r", {prefix + name: text for name, text in STDLIB_USER.items()})
    cache_dir = tmp_path / "a-cache-directory-with-a-long-name"

    head, base = _counted_against_head(repo, repo / prefix, cache_dir)

    # What is left (a few hundred instructions): the strings differ, so do
    # their hashes and dictionaries' probes; the working tree has a .git.
    assert abs(head / base - 1) < 1e-4, f"head {head:,.0f} vs base {base:,.0f}"


def test_the_head_alias_is_a_link_as_long_as_the_tree_that_pruning_leaves_alone(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "r", STDLIB_USER)
    tree = tmp_path / "cache" / "revisions" / "r-0123456789-0123456789ab"
    tree.mkdir(parents=True)
    mapped = ((str(repo), str(tree)), (str(repo / "src"), str(tree / "src")))

    renamed = head_alias(repo, mapped)

    assert renamed is not None
    assert [len(renamed[head]) for head, _ in mapped] == [len(base) for _, base in mapped]
    alias = Path(renamed[str(repo)])
    assert alias.parent == tree.parent and "." in alias.name
    assert os.readlink(alias) == os.path.realpath(repo)
    assert head_alias(repo, mapped) == renamed  # reused
