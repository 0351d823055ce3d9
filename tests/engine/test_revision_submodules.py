"""A same-run baseline names its revision in the project, and reads submodules at its gitlinks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from gitrepos import commit_all, forget_last_commit, git, make_repo, tree_state

from conftest import quick_ini
from pytest_importcache.cli.main import main
from pytest_importcache.engine.against import measure_against
from pytest_importcache.engine.locate import locate_package
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.engine.revision import RevisionSide, revision_side
from pytest_importcache.model.errors import RevisionError
from pytest_importcache.model.spec import MeasurementSpec

pytestmark = pytest.mark.slow

OLD = "import json\n"
NEW = "import json, decimal\n"


def add_submodule(repo: Path, library: Path, where: str) -> None:
    """Add ``library`` as a submodule of ``repo`` at ``where`` (not committed)."""
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), where)


def vendoring_project(project: Path, files: dict[str, str] | None = None) -> Path:
    """The prober's project: ``ext/sub`` holds ``vendored.py``, moved on once.

    Commits: ``first`` (``files``), ``one`` (the submodule at OLD), ``two``
    (at NEW), ``three`` (a README): ``HEAD~1`` records NEW, as the working
    tree has it, and ``HEAD~2`` records OLD. In the submodule's own
    repository ``HEAD~1`` is OLD and ``HEAD~2`` does not exist.
    """
    library = make_repo(project.parent / f"{project.name}-library", {"vendored.py": OLD})
    make_repo(project, files or {"README": ""})
    add_submodule(project, library, "ext/sub")
    commit_all(project, "one")
    (project / "ext/sub/vendored.py").write_text(NEW)
    commit_all(project / "ext/sub", "sub2")
    commit_all(project, "two")
    (project / "README").write_text("x")
    commit_all(project, "three")
    return project


def vendored_side(project: Path, revision: str, cache: Path, named_in: Path | None) -> RevisionSide:
    """The base side of ``vendored`` (in ``project/ext/sub``) at ``revision`` of ``named_in``."""
    location = locate_package("vendored", [str(project / "ext/sub")])
    path = (str(project), str(project / "ext/sub"))
    return revision_side(location, path, revision, cache, named_in)


def commit_of(repo: Path, revision: str) -> str:
    return git(repo, "rev-parse", revision).strip()


def test_a_package_in_a_submodule_is_read_at_the_commit_the_projects_revision_records(
    tmp_path: Path,
) -> None:
    project = vendoring_project(tmp_path / "p")
    before = tree_state(project)

    at_two = vendored_side(project, "HEAD~1", tmp_path / "cache", project)
    at_one = vendored_side(project, "HEAD~2", tmp_path / "cache", project)

    assert at_two.revision.repository == project.resolve()
    assert at_two.revision.commit == commit_of(project, "HEAD~1")
    assert at_two.location.portions[0].read_text() == NEW
    assert at_one.revision.commit == commit_of(project, "HEAD~2")
    assert at_one.location.portions[0].read_text() == OLD
    # The submodule's path entry is read at the revision too.
    base_entry = dict(at_one.mapped)[str(project / "ext/sub")]
    assert Path(base_entry) == at_one.location.portions[0].parent
    assert tree_state(project) == before


def test_an_unchanged_package_in_a_submodule_loads_the_same_modules_on_both_sides(
    tmp_path: Path,
) -> None:
    project = vendoring_project(tmp_path / "p")
    measurer = Measurer(
        cache_dir=tmp_path / "cache",
        search_path=[str(project), str(project / "ext/sub"), *sys.path],
    )
    spec = MeasurementSpec("vendored", rounds=2, warmup=0)

    unchanged = measure_against(measurer, spec, "HEAD~1", project)
    older = measure_against(measurer, spec, "HEAD~2", project)

    # Module sets, not timings: two rounds a side on a shared machine are noise.
    assert "decimal" in unchanged.base.modules
    assert set(unchanged.base.modules) == set(unchanged.head.modules)
    assert "decimal" in older.head.modules
    assert "decimal" not in older.base.modules
    assert str(older.revision) == f"HEAD~2 ({commit_of(project, 'HEAD~2')[:12]})"


def test_a_package_from_a_checkout_outside_the_project_names_its_own_revisions(
    tmp_path: Path,
) -> None:
    project = vendoring_project(tmp_path / "p")
    elsewhere = make_repo(tmp_path / "elsewhere", {"README": ""})
    checkout = (project / "ext/sub").resolve()

    for named_in in (elsewhere, tmp_path, None):  # another repository, none, not given
        side = vendored_side(project, "HEAD~1", tmp_path / "cache", named_in)
        assert side.revision.repository == checkout
        assert side.revision.commit == commit_of(checkout, "HEAD~1")
        assert side.location.portions[0].read_text() == OLD


def test_a_submodule_on_the_import_path_is_read_at_its_recorded_commit(tmp_path: Path) -> None:
    # The package is the project's own; the dependency it imports is vendored.
    project = vendoring_project(tmp_path / "p", {"src/app/__init__.py": "import vendored\n"})
    location = locate_package("app", [str(project / "src")])
    path = (str(project / "src"), str(project / "ext/sub"))

    side = revision_side(location, path, "HEAD~2", tmp_path / "cache", project)

    base_entry = Path(dict(side.mapped)[str(project / "ext/sub")])
    assert (base_entry / "vendored.py").read_text() == OLD
    assert side.import_path[1] == str(base_entry)


def nested_project(root: Path) -> Path:
    """A project with ``ext/outer``, which has ``inner`` holding ``deep.py``; moved on once.

    ``HEAD`` records ``deep.py`` at NEW (through ``outer``), ``HEAD~1`` at OLD.
    """
    inner = make_repo(root / "inner", {"deep.py": OLD})
    outer = make_repo(root / "outer", {"README": ""})
    add_submodule(outer, inner, "inner")
    commit_all(outer, "inner")
    project = make_repo(root / "p", {"README": ""})
    add_submodule(project, outer, "ext/outer")
    git(project, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init",
        "--recursive")  # fmt: skip
    commit_all(project, "outer")
    checkout = project / "ext/outer/inner"
    (checkout / "deep.py").write_text(NEW)
    commit_all(checkout, "deep2")
    commit_all(project / "ext/outer", "record deep2")
    commit_all(project, "record outer")
    return project


def test_a_nested_submodule_is_read_at_the_commit_its_parent_records(tmp_path: Path) -> None:
    project = nested_project(tmp_path)
    checkout = project / "ext/outer/inner"
    location = locate_package("deep", [str(checkout)])

    now = revision_side(location, (str(checkout),), "HEAD", tmp_path / "cache", project)
    before = revision_side(location, (str(checkout),), "HEAD~1", tmp_path / "cache", project)

    assert now.revision.repository == project.resolve()
    assert now.location.portions[0].read_text() == NEW
    assert before.location.portions[0].read_text() == OLD
    assert Path(dict(before.mapped)[str(checkout)]) == before.location.portions[0].parent


def test_a_missing_recorded_commit_of_the_packages_submodule_is_one_line(
    tmp_path: Path,
) -> None:
    project = vendoring_project(tmp_path / "p")
    checkout = project / "ext/sub"
    (checkout / "vendored.py").write_text("import fractions\n")
    recorded = commit_all(checkout, "only here")
    commit_all(project, "record it")
    forget_last_commit(checkout)

    with pytest.raises(RevisionError) as caught:
        vendored_side(project, "HEAD", tmp_path / "cache", project)

    message = str(caught.value)
    assert "\n" not in message
    assert f"submodule ext/sub is at commit {recorded[:12]} in the revision" in message
    assert "fetch it there" in message


def test_a_nested_submodules_missing_commit_names_its_path_in_the_project(
    tmp_path: Path,
) -> None:
    project = nested_project(tmp_path)
    checkout = project / "ext/outer/inner"
    recorded = git(checkout, "rev-parse", "HEAD").strip()
    forget_last_commit(checkout)
    location = locate_package("deep", [str(checkout)])

    with pytest.raises(RevisionError) as caught:
        revision_side(location, (str(checkout),), "HEAD", tmp_path / "cache", project)

    message = str(caught.value)
    assert "\n" not in message
    assert f"submodule ext/outer/inner is at commit {recorded[:12]} in the revision" in message


# -- the command line and the plugin ---------------------------------------------------


def test_the_command_line_names_the_revision_in_the_current_directorys_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = vendoring_project(tmp_path / "p")
    monkeypatch.chdir(project)

    status = main(["vendored", "--path", "ext/sub", "--rounds", "2", "--against", "HEAD~2"])

    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"against HEAD~2 ({commit_of(project, 'HEAD~2')[:12]})" in captured.out
    assert "vendored -> decimal (new)" in captured.out


PROBER_TESTS = """\
import pytest

@pytest.mark.import_budget("vendored", warm="10s")
def test_vendored():
    pass

@pytest.mark.import_budget("app", warm="10s")
def test_app():
    pass
"""


def test_the_plugin_names_one_revision_for_packages_in_the_project_and_its_submodules(
    pytester: pytest.Pytester,
) -> None:
    project = vendoring_project(
        pytester.path,
        {
            "pytest.ini": quick_ini(2).replace("pythonpath = .", "pythonpath = src ext/sub"),
            "test_budgets.py": PROBER_TESTS,
            "src/app/__init__.py": "import json\n",
        },
    )

    older = pytester.runpytest("--importcache-baseline=HEAD~2", "-p", "no:cacheprovider")
    same = pytester.runpytest("--importcache-baseline=HEAD~1", "-p", "no:cacheprovider")

    older.assert_outcomes(passed=2)
    same.assert_outcomes(passed=2)
    for result, revision in ((older, "HEAD~2"), (same, "HEAD~1")):
        lines = [line for line in result.outlines if line.startswith("vs base: ")]
        assert lines == [
            f"vs base: median of pair ratios against {revision} "
            f"({commit_of(project, revision)[:12]}), same run"
        ], result.outlines
