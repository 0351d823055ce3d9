"""Locating the package under test without importing it."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import MakeTree, bytecode_files
from pytest_importcache.engine.locate import locate_package
from pytest_importcache.model.errors import LocateError


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


def test_a_package_that_shadows_an_imported_standard_library_module_is_named(
    make_tree: MakeTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest's `pythonpath = src` with a `src/json`: this process imported the
    # standard library's json before src went first on the path.

    tree = make_tree({"src/json/__init__.py": "import decimal\n"})
    monkeypatch.syspath_prepend(str(tree / "src"))
    with pytest.raises(LocateError) as caught:
        locate_package("json")
    message = str(caught.value)
    assert "\n" not in message
    assert f"the standard library's {json.__file__}" in message
    assert str(tree / "src" / "json" / "__init__.py") in message


def test_a_package_this_process_imported_from_where_its_path_finds_it_is_taken(
    make_tree: MakeTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree({"src/loadedpkg/__init__.py": ""})
    monkeypatch.syspath_prepend(str(tree / "src"))
    monkeypatch.delitem(sys.modules, "loadedpkg", raising=False)
    __import__("loadedpkg")
    assert locate_package("loadedpkg").portions == (tree / "src" / "loadedpkg",)


class _MappingFinder:
    """A meta-path finder serving one package from a directory it knows (an editable install)."""

    def __init__(self, name: str, init_file: Path) -> None:
        self.name, self.init_file = name, init_file

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> Any:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(
            fullname, self.init_file, submodule_search_locations=[str(self.init_file.parent)]
        )


def test_a_project_directory_before_an_editable_finders_package_names_both(
    make_tree: MakeTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `projects/edpkg/` (pyproject.toml, edpkg/__init__.py) seen from `projects/`: the
    # path finds the project directory as a namespace package before the finder runs.
    tree = make_tree({"edpkg/pyproject.toml": "", "edpkg/edpkg/__init__.py": ""})
    monkeypatch.setattr(
        sys,
        "meta_path",
        [*sys.meta_path, _MappingFinder("edpkg", tree / "edpkg" / "edpkg" / "__init__.py")],
    )
    with pytest.raises(LocateError) as caught:
        locate_package("edpkg", [str(tree)])
    message = str(caught.value)
    assert "\n" not in message
    assert f"the directory {tree / 'edpkg'} (a namespace package" in message
    assert str(tree / "edpkg" / "edpkg" / "__init__.py") in message
    assert "run from a directory that holds no 'edpkg' directory" in message


def test_a_project_module_the_standard_library_hides_is_named(make_tree: MakeTree) -> None:
    # pytest's --import-mode=append puts the project's directory after the standard library.
    tree = make_tree({"email/__init__.py": "import decimal\n"})
    with pytest.raises(LocateError) as caught:
        locate_package("email", [*sys.path, str(tree)])
    message = str(caught.value)
    assert "\n" not in message
    assert "'email' is the standard library's " in message
    assert str(tree / "email" / "__init__.py") in message


def test_a_project_directory_the_test_imported_as_a_namespace_still_names_both(
    make_tree: MakeTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree({"edns/pyproject.toml": "", "edns/edns/__init__.py": ""})
    finder = _MappingFinder("edns", tree / "edns" / "edns" / "__init__.py")
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, finder])
    monkeypatch.syspath_prepend(str(tree))
    monkeypatch.delitem(sys.modules, "edns", raising=False)
    assert __import__("edns").__file__ is None  # the test's own import: the namespace
    with pytest.raises(LocateError, match=r"'edns' is two packages here: the path finds"):
        locate_package("edns")
