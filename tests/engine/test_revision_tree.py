"""The base of a same-run comparison is the whole repository as ``git checkout REV`` gives it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gitrepos import commit_all, forget_last_commit, git, make_repo, tree_state

from conftest import heavy_source, quick_ini, write_tree
from pytest_importcache.cli.main import main
from pytest_importcache.engine.against import measure_against
from pytest_importcache.engine.locate import locate_package
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.engine.revision import RevisionSide, revision_side
from pytest_importcache.model.comparison import Comparison
from pytest_importcache.model.errors import RevisionError
from pytest_importcache.model.spec import MeasurementSpec

pytestmark = pytest.mark.slow

SLEEPS = "import time\ntime.sleep(0.06)\n"
APP = {"src/app/__init__.py": "import core\n", "src/core/__init__.py": "X = 1\n"}


def compare(repo: Path, tmp_path: Path, revision: str = "HEAD", module: str = "app") -> Comparison:
    """``module`` from ``repo/src`` measured against ``revision``, few rounds."""
    measurer = Measurer(cache_dir=tmp_path / "cache", search_path=[str(repo / "src"), *sys.path])
    return measure_against(measurer, MeasurementSpec(module, rounds=5, warmup=1), revision)


def side(repo: Path, tmp_path: Path, revision: str = "HEAD", module: str = "app") -> RevisionSide:
    """The base side of ``module`` (found in ``repo/src``) at ``revision``."""
    location = locate_package(module, [str(repo / "src")])
    return revision_side(location, (str(repo / "src"),), revision, tmp_path / "cache")


# -- the whole repository ----------------------------------------------------------


def test_a_sibling_that_got_heavier_shows_as_a_slowdown(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", APP)
    unchanged = compare(repo, tmp_path)
    (repo / "src/core/__init__.py").write_text(SLEEPS + "X = 1\n")

    slowed = compare(repo, tmp_path)

    assert not unchanged.slower(0.5)
    assert slowed.slower(0.5)
    assert "core" in slowed.base.modules
    assert git(repo, "status", "--porcelain") == " M src/core/__init__.py\n"


def test_the_base_path_maps_repository_entries_into_the_revisions_tree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", APP)
    base = side(repo, tmp_path)
    (tree,) = base.import_path
    assert Path(tree).name == "src"
    assert (Path(tree) / "core/__init__.py").read_text() == "X = 1\n"
    assert base.location.portions[0] == Path(tree) / "app"


def test_an_ignored_directory_in_the_repository_is_the_same_on_both_sides(tmp_path: Path) -> None:
    # An in-project environment git ignores: outside the repository's history, so
    # the base reads it from the working tree, as the head does.
    repo = make_repo(
        tmp_path / "repo",
        {".gitignore": "venvlike/\n", "src/app/__init__.py": "import dep\n"},
    )
    write_tree(repo, {"venvlike/dep/__init__.py": SLEEPS})
    measurer = Measurer(
        cache_dir=tmp_path / "cache", search_path=[str(repo / "src"), str(repo / "venvlike")]
    )

    comparison = measure_against(measurer, MeasurementSpec("app", rounds=5, warmup=1), "HEAD")

    assert "dep" in comparison.base.modules
    assert not comparison.slower(0.5)


# -- .gitattributes, symbolic links, executable bits --------------------------------


def test_export_subst_and_export_ignore_do_not_apply(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitattributes": "src/app/_version.py export-subst\nsrc/app/extra.py export-ignore\n",
            "src/app/__init__.py": "from . import _version, extra\n",
            "src/app/_version.py": "refnames = '$Format:%d$'\nfull = '$Format:%H$'\n",
            "src/app/extra.py": "import core\n",
            "src/core/__init__.py": "",
        },
    )
    base = side(repo, tmp_path)
    package = base.location.portions[0]
    assert (package / "_version.py").read_text() == (repo / "src/app/_version.py").read_text()
    assert (package / "extra.py").exists()

    comparison = compare(repo, tmp_path)

    assert not comparison.slower(0.5)


def test_symbolic_links_and_executable_bits_are_as_committed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"src/app/__init__.py": "", "src/app/real.py": "R = 1\n"})
    os.symlink("real.py", repo / "src/app/alias.py")
    (repo / "src/app/tool.py").write_text("")
    (repo / "src/app/tool.py").chmod(0o755)
    commit_all(repo, "link and tool")

    package = side(repo, tmp_path).location.portions[0]

    assert os.readlink(package / "alias.py") == "real.py"
    assert (package / "alias.py").read_text() == "R = 1\n"
    assert os.access(package / "tool.py", os.X_OK)
    assert not os.access(package / "real.py", os.X_OK)


# -- files git ignores ---------------------------------------------------------------


def test_an_ignored_generated_file_is_served_to_both_sides_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {".gitignore": "_version.py\n", "src/app/__init__.py": "from ._version import V\n"},
    )
    write_tree(repo, {"src/app/_version.py": "V = '1.0.dev3'\n"})

    status = main(["app", "--path", str(repo / "src"), "--rounds", "3", "--against", "HEAD"])

    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert (
        "note: served from the working tree to both sides (git ignores them, HEAD "
        in captured.out + captured.err
    )
    assert "src/app/_version.py" in captured.out + captured.err
    assert side(repo, tmp_path).served == ("src/app/_version.py",)


def test_a_committed_file_wins_over_an_ignored_one_and_bytecode_is_never_served(
    tmp_path: Path,
) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {".gitignore": "*.so\n__pycache__/\n", "src/app/__init__.py": "", "src/app/x.py": ""},
    )
    write_tree(repo, {"src/app/__pycache__/x.cpython-311.pyc": "", "src/app/_fast.so": "ELF"})
    base = side(repo, tmp_path)
    assert base.served == ("src/app/_fast.so",)
    assert not (base.location.portions[0] / "__pycache__").exists()


# -- submodules ----------------------------------------------------------------------


def add_submodule(repo: Path, library: Path, where: str) -> None:
    """Add ``library`` as a submodule of ``repo`` at ``where`` and commit."""
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), where)
    commit_all(repo, "submodule")


def test_a_submodule_is_at_its_recorded_commit(tmp_path: Path) -> None:
    library = make_repo(tmp_path / "library", {"__init__.py": "VERSION = 1\n"})
    repo = make_repo(tmp_path / "repo", {"src/app/__init__.py": "from . import vendored\n"})
    add_submodule(repo, library, "src/app/vendored")
    checkout = repo / "src/app/vendored"
    (checkout / "__init__.py").write_text("VERSION = 2\n")
    commit_all(checkout, "newer")  # the submodule moved on; the repository records VERSION = 1

    package = side(repo, tmp_path).location.portions[0]

    assert (package / "vendored/__init__.py").read_text() == "VERSION = 1\n"
    assert not (package / "vendored/.git").exists()


def test_a_submodule_commit_missing_locally_is_one_line_saying_what_to_do(
    tmp_path: Path,
) -> None:
    library = make_repo(tmp_path / "library", {"__init__.py": "VERSION = 1\n"})
    repo = make_repo(tmp_path / "repo", {"src/app/__init__.py": ""})
    add_submodule(repo, library, "src/app/vendored")
    checkout = repo / "src/app/vendored"
    (checkout / "__init__.py").write_text("VERSION = 2\n")
    recorded = commit_all(checkout, "only here")
    commit_all(repo, "record it")
    # The submodule's repository loses that commit (as a fresh clone that never fetched it).
    forget_last_commit(checkout)

    with pytest.raises(RevisionError) as caught:
        side(repo, tmp_path)

    message = str(caught.value)
    assert "\n" not in message
    assert f"submodule src/app/vendored is at commit {recorded[:12]}" in message
    assert "fetch it there" in message


def test_a_submodule_not_checked_out_is_empty_on_both_sides(tmp_path: Path) -> None:
    library = make_repo(tmp_path / "library", {"__init__.py": ""})
    origin = make_repo(tmp_path / "origin", {"src/app/__init__.py": ""})
    add_submodule(origin, library, "src/app/vendored")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)

    package = side(clone, tmp_path).location.portions[0]

    assert (package / "vendored").is_dir()
    assert list((package / "vendored").iterdir()) == []


# -- the git hook environment ----------------------------------------------------------


def test_variables_a_hook_sets_neither_redirect_git_nor_write_an_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_repo(tmp_path / "other", {"x": ""})
    repo = make_repo(tmp_path / "repo", APP)
    (repo / "src/core/__init__.py").write_text("X = 2\n")
    before = tree_state(repo)
    index_before = (repo / ".git/index").read_bytes()
    hook_index = tmp_path / "hook-index"
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(hook_index))
    monkeypatch.setenv("GIT_COMMON_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(other / ".git/objects"))

    base = side(repo, tmp_path)

    assert (Path(base.import_path[0]) / "core/__init__.py").read_text() == "X = 1\n"
    assert not hook_index.exists()
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_WORK_TREE")
    monkeypatch.delenv("GIT_INDEX_FILE")
    monkeypatch.delenv("GIT_COMMON_DIR")
    monkeypatch.delenv("GIT_OBJECT_DIRECTORY")
    assert tree_state(repo) == before
    assert (repo / ".git/index").read_bytes() == index_before


# -- a module that became a package, and back -------------------------------------------


def test_a_module_that_became_a_package_compares(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"src/app.py": "import core\n", "src/core/__init__.py": ""})
    git(repo, "rm", "-q", "src/app.py")
    write_tree(repo, {"src/app/__init__.py": SLEEPS + "import core\n"})

    assert side(repo, tmp_path).location.kind == "module"
    comparison = compare(repo, tmp_path)

    assert comparison.slower(0.5)
    assert comparison.base.file.endswith("app.py")


def test_a_package_that_became_a_module_compares(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"src/app/__init__.py": "X = 1\n"})
    git(repo, "rm", "-q", "-r", "src/app")
    write_tree(repo, {"src/app.py": "X = 1\n"})

    base = side(repo, tmp_path)

    assert base.location.kind == "package"
    assert (base.location.portions[0] / "__init__.py").read_text() == "X = 1\n"
    assert not compare(repo, tmp_path).slower(0.5)


def test_a_package_absent_at_the_revision_is_one_line(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README": ""})
    write_tree(repo, {"src/app/__init__.py": ""})
    git(repo, "add", "src/app")  # tracked, not committed (untracked is another message)
    with pytest.raises(RevisionError, match=r"'app' is absent at revision HEAD .*neither app/"):
        side(repo, tmp_path)


# -- the plugin ------------------------------------------------------------------------


def test_the_plugins_baseline_sees_a_heavier_sibling_and_names_served_files(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(quick_ini(5).replace("pythonpath = .", "pythonpath = src"))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.import_budget("app", warm="10s")
        def test_budget():
            pass
        """
    )
    repo = make_repo(
        pytester.path,
        {
            ".gitignore": "_version.py\n",
            "src/app/__init__.py": "import core\nfrom ._version import V\n",
            "src/core/__init__.py": "X = 1\n",
        },
    )
    write_tree(repo, {"src/app/_version.py": "V = '1.0'\n"})
    (repo / "src/core/__init__.py").write_text("import time\ntime.sleep(0.1)\nX = 1\n")

    result = pytester.runpytest("--importcache-baseline=HEAD", "-p", "no:cacheprovider")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["import slower than baseline HEAD (*): app (warm)"])
    result.stdout.fnmatch_lines(
        [
            "vs base: served from the working tree to both sides (git ignores them, the revision "
            "has none): src/app/_version.py"
        ]
    )


def test_a_wholly_ignored_subpackage_is_served_and_an_environment_is_not(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {".gitignore": "_generated/\n.venv/\n", "src/app/__init__.py": "", "README": ""},
    )
    write_tree(
        repo,
        {
            "src/app/_generated/__init__.py": "",
            "src/app/_generated/table.py": "",
            "src/app/_generated/__pycache__/table.cpython-311.pyc": "",
            ".venv/lib/site.py": "",
        },
    )
    location = locate_package("app", [str(repo / "src")])

    base = revision_side(location, (str(repo),), "HEAD", tmp_path / "cache")

    assert base.served == ("src/app/_generated/__init__.py", "src/app/_generated/table.py")
    assert (base.location.portions[0] / "_generated/table.py").is_file()


def test_the_working_trees_bytecode_does_not_favour_the_head(tmp_path: Path) -> None:
    # `core` is slow to compile and quick to run. The working tree has its
    # bytecode, the revision's tree has none: were the head to use it, an
    # unchanged repository would look several times faster than itself.
    repo = make_repo(tmp_path / "repo", {**APP, "src/core/__init__.py": heavy_source(3000)})
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(repo / "src/core")], check=True)
    bytecode = sorted((repo / "src/core/__pycache__").iterdir())
    stamps = [path.stat().st_mtime_ns for path in bytecode]

    comparison = compare(repo, tmp_path)

    assert comparison.interval.ratio > 0.6
    assert [path.stat().st_mtime_ns for path in bytecode] == stamps


def test_an_ignored_environment_inside_the_repository_keeps_its_bytecode(tmp_path: Path) -> None:
    # The repository's root is on the path, so its modules compile in every
    # round; `env/dep` belongs to the (ignored) entry `env`, and keeps its
    # bytecode. Its bytecode says X = 1 while its source (same size, same
    # modification time) raises: only a round that reads the bytecode imports it.
    repo = make_repo(tmp_path / "repo", {".gitignore": "env/\n", "app/__init__.py": "import dep\n"})
    source = repo / "env/dep/__init__.py"
    write_tree(repo, {"env/dep/__init__.py": "X = 1  # padding to the same size.....\n"})
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(source.parent)], check=True)
    stamp = source.stat().st_mtime_ns
    source.write_text("raise ImportError('source read')      \n")
    os.utime(source, ns=(stamp, stamp))
    measurer = Measurer(cache_dir=tmp_path / "cache", search_path=[str(repo), str(repo / "env")])

    comparison = measure_against(measurer, MeasurementSpec("app", rounds=2, warmup=0), "HEAD")

    assert "dep" in comparison.head.modules
    assert "dep" in comparison.base.modules
