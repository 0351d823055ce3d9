"""``pytest-importcache MODULE --against REV [--fail PCT]``: same-run comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepos import git, make_repo, tree_state

from pytest_importcache.cli.main import main
from pytest_importcache.engine.locate import locate_package
from pytest_importcache.engine.revision import revision_location, revision_trees

pytestmark = pytest.mark.slow

SLOW = "import time\ntime.sleep(0.05)\nX = 1\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a src layout in a subdirectory: ``sub/src/abpkg``, committed."""
    return make_repo(tmp_path / "repo", {"sub/src/abpkg/__init__.py": "X = 1\n"})


def against(repo: Path, *arguments: str) -> list[str]:
    """The command line measuring ``abpkg`` from ``repo`` with few rounds."""
    return ["abpkg", "--path", str(repo / "sub/src"), "--rounds", "5", *arguments]


def test_a_slowdown_past_the_threshold_exits_1_and_says_why(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "sub/src/abpkg/__init__.py").write_text(SLOW)
    before = tree_state(repo)

    status = main(against(repo, "--against", "HEAD", "--fail", "50%"))

    out = capsys.readouterr().out
    assert status == 1
    assert "against HEAD (" in out
    assert "FAIL: cold is more than 50% slower than" in out
    assert "FAIL: warm is more than 50% slower than" in out
    assert "what changed most (warm; head - base): import edges, then self time:" in out
    assert tree_state(repo) == before


def test_an_unchanged_package_passes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(against(repo, "--against", "HEAD", "--fail", "50%")) == 0
    assert "FAIL" not in capsys.readouterr().out


def test_without_fail_a_slowdown_is_reported_but_exits_0(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "sub/src/abpkg/__init__.py").write_text(SLOW)
    assert main(against(repo, "--against", "HEAD")) == 0
    assert "slower: warm is more than 10% slower than" in capsys.readouterr().out


def test_json_carries_both_sides_and_the_interval(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "sub/src/abpkg/__init__.py").write_text(SLOW)
    commit = git(repo, "rev-parse", "HEAD").strip()

    main(against(repo, "--against", "main", "--json"))

    warm = json.loads(capsys.readouterr().out)["modules"][0]["against"]["warm"]
    assert warm["revision"] == "main"
    assert warm["commit"] == commit
    assert len(warm["head_values"]) == len(warm["base_values"]) == 5
    assert warm["low"] <= warm["ratio"] <= warm["high"]
    assert warm["slower"] is True
    assert warm["changed"][0]["module"] == "abpkg"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--fail", "5%"], "--fail needs --against REV"),
        (["--against", "nope"], "unknown revision 'nope'"),
        (["--against", "HEAD", "--fail", "fast"], "expected a percentage such as 10%"),
    ],
)
def test_bad_input_is_one_line(
    repo: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    assert main(against(repo, *arguments)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_not_a_repository_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plain/abpkg").mkdir(parents=True)
    (tmp_path / "plain/abpkg/__init__.py").write_text("")
    status = main(["abpkg", "--path", str(tmp_path / "plain"), "--against", "HEAD"])
    err = capsys.readouterr().err
    assert status == 2
    assert "is not in a git repository" in err
    assert err.count("\n") == 1


def test_the_cache_command_lists_and_clears_extracted_revisions(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    revision_location(locate_package("abpkg", [str(repo / "sub/src")]), "HEAD", cache)

    assert main(["cache", "--dir", str(cache)]) == 0
    assert "1 git revision extracted for same-run comparisons" in capsys.readouterr().out
    assert main(["cache", "--dir", str(cache), "--clear", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["revisions"], document["revisions_removed"]) == (1, 1)
    assert revision_trees(cache) == []


def test_an_error_in_the_revisions_copy_says_it_is_the_revisions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path / "repo", {"sub/src/abpkg/__init__.py": "raise ValueError('old')\n"})
    (repo / "sub/src/abpkg/__init__.py").write_text("X = 1\n")  # fixed, not committed

    assert main(against(repo, "--against", "HEAD")) == 2

    error = capsys.readouterr().err
    assert "raised ValueError: old" in error
    assert ", at HEAD (" in error
    assert error.count("\n") == 1


# app.models gains `import asyncio` (and a pause, far beyond any threshold): the
# explanation names that edge, not only asyncio's leaves (_ssl, ssl, ...).
APP_BASE = {"src/app/__init__.py": "from . import models\n", "src/app/models.py": "X = 1\n"}
APP_HEAD_MODELS = "import time\nimport asyncio\ntime.sleep(0.05)\nX = 1\n"


def test_the_explanation_names_the_import_edge_that_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path / "repo", APP_BASE)
    (repo / "src/app/models.py").write_text(APP_HEAD_MODELS)
    arguments = ["app", "--path", str(repo / "src"), "--rounds", "5", "--against", "HEAD"]

    assert main(arguments) == 0
    out = capsys.readouterr().out.splitlines()
    heading = out.index("  what changed most (warm; head - base): import edges, then self time:")
    assert out[heading + 1].startswith("    app.models -> asyncio (new): +")
    assert not any("-> asyncio." in line or "-> ssl " in line for line in out)

    assert main([*arguments, "--json"]) == 0
    edges = json.loads(capsys.readouterr().out)["modules"][0]["against"]["warm"]["edges"]
    assert edges[0]["importer"] == "app.models"
    assert edges[0]["module"] == "asyncio"
    assert edges[0]["status"] == "new"
    assert edges[0]["delta"] > 0
