"""Locating the package under test without importing it."""

from __future__ import annotations

import importlib.machinery
import sys
from pathlib import Path

import pytest

from conftest import MakeTree, bytecode_files
from pytest_importcache.errors import LocateError
from pytest_importcache.locate import locate_package


def test_a_regular_package_is_found_by_its_directory(make_tree: MakeTree) -> None:
    tree = make_tree({"pkg/__init__.py": "raise RuntimeError('must not run')", "pkg/sub.py": ""})
    location = locate_package("pkg.sub", [str(tree)])
    assert (location.top_level, location.kind, location.portions) == (
        "pkg",
        "package",
        (tree / "pkg",),
    )
    assert "pkg" not in sys.modules
    assert bytecode_files(tree) == []


def test_a_single_file_module_is_found_by_its_file(make_tree: MakeTree) -> None:
    tree = make_tree({"single.py": ""})
    location = locate_package("single", [str(tree)])
    assert (location.kind, location.portions) == ("module", (tree / "single.py",))


def test_a_src_layout_is_found_through_its_path_entry(make_tree: MakeTree) -> None:
    tree = make_tree({"src/app/__init__.py": "", "tests/test_app.py": ""})
    location = locate_package("app", [str(tree), str(tree / "src")])
    assert location.portions == (tree / "src" / "app",)


def test_an_extension_module_is_found_by_its_shared_library(make_tree: MakeTree) -> None:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    tree = make_tree({f"fastext{suffix}": ""})
    location = locate_package("fastext", [str(tree)])
    assert (location.kind, location.portions) == ("module", (tree / f"fastext{suffix}",))


def test_every_portion_of_a_namespace_package_is_found(make_tree: MakeTree) -> None:
    first = make_tree({"ns/one/__init__.py": ""})
    second = make_tree({"ns/two/__init__.py": ""})
    location = locate_package("ns.two", [str(first), str(second)])
    assert location.kind == "namespace"
    assert location.portions == (first / "ns", second / "ns")


def test_a_missing_module_names_the_module_and_the_entries_searched(make_tree: MakeTree) -> None:
    tree = make_tree({"other.py": ""})
    with pytest.raises(LocateError) as caught:
        locate_package("nosuchmodule.sub", [str(tree)])
    message = str(caught.value)
    assert "'nosuchmodule'" in message
    assert "'nosuchmodule.sub'" in message
    assert str(tree) in message


@pytest.mark.parametrize("name", ["", "1abc", "pkg..sub", "pkg-name", "pkg.", 42])
def test_an_invalid_module_name_is_rejected(name: str) -> None:
    with pytest.raises(LocateError, match="not a valid dotted module name"):
        locate_package(name)


def test_a_built_in_module_is_explained() -> None:
    with pytest.raises(LocateError, match="built into the interpreter"):
        locate_package("sys")


def test_the_empty_entry_means_the_current_directory(
    make_tree: MakeTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree({"here.py": ""})
    monkeypatch.chdir(tree)
    assert locate_package("here", [""]).portions == (Path(tree) / "here.py",)
