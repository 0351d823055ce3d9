"""A package at a git revision, read from git objects, and measured against the working tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gitrepos import commit_all, git, make_repo, tree_state

from conftest import FakeRoundRunner, write_tree
from pytest_importcache.engine.against import measure_against
from pytest_importcache.engine.locate import locate_package
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.engine.revision import find_repository, resolve_revision, revision_location
from pytest_importcache.model.errors import RevisionError
from pytest_importcache.model.spec import MeasurementSpec

pytestmark = pytest.mark.slow


def test_the_revision_tree_holds_the_files_as_committed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"pkg/__init__.py": "X = 1\n", "pkg/sub/m.py": ""})
    first = git(repo, "rev-parse", "HEAD").strip()
    (repo / "pkg/__init__.py").write_text("X = 2\n")
    commit_all(repo, "second")
    (repo / "pkg/__init__.py").write_text("X = 3  # uncommitted\n")
    location = locate_package("pkg", [str(repo)])

    base, revision = revision_location(location, "HEAD~1", tmp_path / "cache")

    assert revision.commit == first
    assert str(revision) == f"HEAD~1 ({first[:12]})"
    assert (base.portions[0] / "__init__.py").read_text() == "X = 1\n"
    assert (base.portions[0] / "sub/m.py").exists()
    assert not base.portions[0].is_relative_to(repo)


def test_a_revision_is_extracted_once_and_reused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"pkg/__init__.py": ""})
    location = locate_package("pkg", [str(repo)])
    first, _ = revision_location(location, "main", tmp_path / "cache")
    marker = first.portions[0] / "__init__.py"
    before = marker.stat().st_ino
    again, _ = revision_location(location, "main", tmp_path / "cache")
    assert again == first
    assert marker.stat().st_ino == before


def test_the_users_tree_index_and_stash_are_untouched(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"pkg/__init__.py": "", "pkg/a.py": "A = 1\n"})
    (repo / "pkg/a.py").write_text("A = 2\n")  # unstaged
    (repo / "pkg/b.py").write_text("")  # untracked
    write_tree(repo, {"pkg/c.py": "C = 1\n"})
    git(repo, "add", "pkg/c.py")  # staged
    git(repo, "stash", "list")
    before = tree_state(repo)
    index_before = (repo / ".git/index").read_bytes()

    revision_location(locate_package("pkg", [str(repo)]), "HEAD", tmp_path / "cache")

    assert tree_state(repo) == before
    assert (repo / ".git/index").read_bytes() == index_before
    assert not list((repo / "pkg").rglob("__pycache__"))


def test_src_layout_in_a_subdirectory_of_a_bigger_repository(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "mono",
        {"services/api/src/apipkg/__init__.py": "V = 1\n", "other/README": "x"},
    )
    (repo / "services/api/src/apipkg/__init__.py").write_text("V = 2\n")
    location = locate_package("apipkg", [str(repo / "services/api/src")])

    base, _ = revision_location(location, "HEAD", tmp_path / "cache")

    assert base.portions[0].name == "apipkg"
    assert (base.portions[0] / "__init__.py").read_text() == "V = 1\n"
    assert not (base.portions[0].parent / "other").exists()


def test_a_single_file_module(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"lib/onefile.py": "N = 1\n"})
    base, _ = revision_location(locate_package("onefile", [str(repo / "lib")]), "HEAD", tmp_path)
    assert base.kind == "module"
    assert base.portions[0].read_text() == "N = 1\n"


def test_not_a_git_repository(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "plain", {"pkg/__init__.py": ""})
    with pytest.raises(RevisionError, match=r"is not in a git repository") as caught:
        revision_location(locate_package("pkg", [str(tree)]), "HEAD", tmp_path / "cache")
    assert "\n" not in str(caught.value)


def test_unknown_revision(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"pkg/__init__.py": ""})
    with pytest.raises(RevisionError, match=r"unknown revision 'v9\.9' in .*no commit"):
        revision_location(locate_package("pkg", [str(repo)]), "v9.9", tmp_path / "cache")


@pytest.mark.parametrize("name", ["", "--output=x", "a\0b"])
def test_a_name_that_is_no_revision(tmp_path: Path, name: str) -> None:
    repo = make_repo(tmp_path / "repo", {"pkg/__init__.py": ""})
    with pytest.raises(RevisionError):
        resolve_revision(repo, name)


def test_package_absent_at_the_revision(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README": "x"})
    write_tree(repo, {"newpkg/__init__.py": ""})
    commit_all(repo, "add newpkg")
    location = locate_package("newpkg", [str(repo)])
    with pytest.raises(RevisionError, match=r"'newpkg' is absent at revision HEAD~1 .*newpkg"):
        revision_location(location, "HEAD~1", tmp_path / "cache")


def test_shallow_clone_missing_the_revision(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "origin", {"pkg/__init__.py": "X = 1\n"})
    (origin / "pkg/__init__.py").write_text("X = 2\n")
    commit_all(origin, "second")
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{origin}", str(clone)], check=True
    )
    location = locate_package("pkg", [str(clone)])
    with pytest.raises(RevisionError, match=r"shallow clone: fetch .*fetch-depth: 0"):
        revision_location(location, "HEAD~1", tmp_path / "cache")


def test_git_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "repo", {"pkg/__init__.py": ""})
    location = locate_package("pkg", [str(repo)])
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RevisionError, match=r"^git is not installed \(not found on PATH\)"):
        revision_location(location, "HEAD", tmp_path / "cache")


def test_git_variables_of_a_hook_do_not_redirect_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_repo(tmp_path / "other", {"x": ""})
    repo = make_repo(tmp_path / "repo", {"pkg/__init__.py": ""})
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert find_repository(repo / "pkg") == Path(os.path.realpath(repo))


def test_measure_against_interleaves_rounds_and_shares_an_unchanged_copy(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"pkg/__init__.py": ""})
    runner = FakeRoundRunner([0.010, 0.011])  # head rounds take 10 ms, base rounds 11 ms
    measurer = Measurer(cache_dir=tmp_path / "cache", search_path=[str(repo)], round_runner=runner)

    comparison = measure_against(measurer, MeasurementSpec("pkg", rounds=5, warmup=1), "HEAD")

    assert runner.calls == 12
    assert comparison.head.values == (0.010,) * 5
    assert comparison.base.values == (0.011,) * 5
    assert comparison.interval.exact
    assert comparison.interval.ratio == pytest.approx(10 / 11)
    assert comparison.head.file == comparison.base.file  # one copy for identical content


def test_a_real_slowdown_is_caught_and_an_unchanged_package_is_not(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"slowpkg/__init__.py": "X = 1\n"})
    before = tree_state(repo)
    measurer = Measurer(cache_dir=tmp_path / "cache", search_path=[str(repo), *sys.path])
    spec = MeasurementSpec("slowpkg", rounds=5, warmup=1)

    unchanged = measure_against(measurer, spec, "HEAD")
    (repo / "slowpkg/__init__.py").write_text("import time\ntime.sleep(0.05)\nX = 1\n")
    slowed = measure_against(measurer, spec, "HEAD")

    assert not unchanged.slower(0.5)
    assert slowed.slower(0.5)
    assert slowed.interval.low > 2
    assert Path(slowed.base.file).read_text() == "X = 1\n"
    assert tree_state(repo)[1:] == before[1:]
    assert git(repo, "status", "--porcelain") == " M slowpkg/__init__.py\n"
