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
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gitrepos import make_repo

from pytest_importcache.engine.against import head_alias, measure_against
from pytest_importcache.engine.child import CHILD_SCRIPT
from pytest_importcache.engine.interpreter import past_sibling_links
from pytest_importcache.engine.measurer import Measurer, round_import_path
from pytest_importcache.model.spec import MeasurementSpec

counting = pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind is not installed (apt-get install valgrind)"
)

# A package whose import loads a few dozen standard library modules, each
# looked up through every entry of the path before the standard library's.
STDLIB_USER = {"mypkg/__init__.py": "import collections, decimal, functools, json, operator\n"}


def _counted_against_head(repo: Path, entry: Path, cache_dir: Path) -> tuple[float, float]:
    """The head's and the base's count of ``mypkg`` (found in ``entry``) against HEAD."""
    measurer = Measurer(cache_dir=cache_dir, search_path=[str(entry), *sys.path], count_store=False)
    spec = MeasurementSpec("mypkg", metric="instructions", rounds=1, warmup=0)
    comparison = measure_against(measurer, spec, "HEAD")
    return comparison.head.values[0], comparison.base.values[0]


@pytest.mark.slow
@counting
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

    # What is left: the strings differ, so do their hashes, dictionaries'
    # probes and the type cache's hits; the working tree has a .git. Measured
    # here: 1e-5 on 3.10, 3.11 and 3.13, 1.2e-4 once on 3.12; before, 2.7e-4
    # (these paths), 2e-3 (a short working tree's path, a longer cache's). The
    # bound keeps well clear of the residual (the cause itself is tested below).
    assert abs(head / base - 1) < 6e-4, f"head {head:,.0f} vs base {base:,.0f}"


# Loads the round's harness, makes `source_only` a source-only path entry
# beside `other`, and prints how many path tests a module of `other` costs.
PATH_TESTS = """
import os, sys
harness = {}
with open(sys.argv[1], "rb") as file:
    exec(compile(file.read(), "<frozen importlib._bootstrap>", "exec"), harness)
import _frozen_importlib_external as external
source_only, other = sys.argv[2:]
sys.path[:] = [source_only, other]
harness["compile_from_source"]([source_only])
tests = []
def profile(frame, event, argument):
    if event == "c_call" and getattr(argument, "__name__", "") == "startswith":
        tests.append(argument)
sys.setprofile(profile)
external.cache_from_source(os.path.join(other, "functools.py"))
sys.setprofile(None)
print(len(tests))
"""


@pytest.mark.slow
def test_a_modules_path_tests_do_not_depend_on_the_source_only_directorys_length() -> None:
    # The cause of x0.998: path entries were tested longest first, so the
    # revision's tree (longer than the standard library's directory) cost
    # every standard library module one test more than the working tree.
    harness = str(CHILD_SCRIPT.with_name("harness.py"))
    tests = [
        subprocess.run(
            [sys.executable, "-c", PATH_TESTS, harness, source_only, "/usr/lib/python3.x"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for source_only in ("/w/repo", "/home/user/.cache/pytest-importcache/revisions/r-0a-1b")
    ]

    assert tests[0] == tests[1]


@pytest.mark.slow
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
    assert alias.parent == tree.parent
    assert "." in alias.name
    assert os.readlink(alias) == os.path.realpath(repo)
    assert head_alias(repo, mapped) == renamed  # reused


@pytest.mark.slow
def test_no_head_alias_is_made_in_a_cache_inside_the_repository(tmp_path: Path) -> None:
    # TMPDIR inside the project: a link there back to the project would be collected by
    # pytest through itself, again and again.
    repo = make_repo(tmp_path / "r", STDLIB_USER)
    tree = repo / "tmp" / "cache" / "revisions" / "r-0123456789-0123456789ab"
    tree.mkdir(parents=True)

    assert head_alias(repo, ((str(repo), str(tree)),)) is None
    assert [path.name for path in tree.parent.iterdir()] == [tree.name]


# -- how pytest was started -------------------------------------------------------

COUNTING_TEST = """
    from pytest_importcache import ImportEnv
    from pytest_importcache.engine.measurer import Measurer

    def test_count():
        measurer = Measurer(cache_dir={cache!r}, count_store=False)
        result = ImportEnv("warm", metric="instructions", measurer=measurer).measure("mypkg")
        print("COUNT", result.values[0])
"""


@pytest.mark.slow
@counting
def test_python_m_pytest_and_the_pytest_script_count_the_same(tmp_path: Path) -> None:
    # `python -m pytest` puts the current directory (here also pythonpath's
    # ".") on sys.path, and runs as `python`; the pytest script runs as its
    # #! line's interpreter (a virtual environment's `python3`, a link in the
    # same directory). Before: 545 instructions apart, python against python3.
    script = Path(sys.executable).parent / "pytest"
    if not script.is_file():
        pytest.skip(f"no pytest script beside {sys.executable}")
    project = tmp_path / "project"
    (project / "mypkg").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "mypkg/__init__.py").write_text(STDLIB_USER["mypkg/__init__.py"])
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    test_source = COUNTING_TEST.format(cache=str(tmp_path / "cache"))
    (project / "tests/test_count.py").write_text(textwrap.dedent(test_source))
    counts = []
    for command in ([sys.executable, "-m", "pytest"], [str(script)]):
        completed = subprocess.run(
            [*command, "-s", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [line for line in completed.stdout.splitlines() if line.startswith("COUNT ")]
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert lines, completed.stdout
        counts.append(lines[0])

    assert counts[0] == counts[1], counts


def test_the_same_real_directory_is_searched_once(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "project")

    entries = [str(tmp_path / "link"), str(tmp_path / "project"), str(tmp_path / "link/../project")]

    assert round_import_path(entries) == (str(tmp_path / "link"),)


def test_an_interpreter_is_named_past_links_within_its_directory(tmp_path: Path) -> None:
    # A virtual environment's python -> python3 (beside it) -> the base
    # interpreter (elsewhere): the first link is followed, the second is not.
    bindir = tmp_path / "venv/bin"
    bindir.mkdir(parents=True)
    (bindir / "python3").symlink_to(os.path.realpath(sys.executable))
    (bindir / "python").symlink_to("python3")
    (bindir / "python3.x").symlink_to(bindir / "python")
    (bindir / "loop").symlink_to("loop2")
    (bindir / "loop2").symlink_to("loop")

    named = {past_sibling_links(str(bindir / name)) for name in ("python", "python3", "python3.x")}

    assert named == {str(bindir / "python3")}
    assert past_sibling_links(str(bindir / "loop")) in {str(bindir / "loop"), str(bindir / "loop2")}
