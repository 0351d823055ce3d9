"""What a start-up command names: the snippet's package in the interpreter under test, and
which interpreter a ``python`` word is."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from pytest_importcache.engine.startup import first_imported_package, resolve_target, startup_spec
from pytest_importcache.model.errors import CommandNotFoundError, SpecError
from pytest_importcache.model.spec import StartupCommand


def pyenv_python(version: str) -> Path | None:
    """``~/.pyenv``'s CPython ``version`` (major.minor), if installed."""
    return next(
        iter(sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))), None
    )


@pytest.fixture
def newer_python() -> str:
    """A CPython of 3.12 or newer (PEP 695's ``type`` statement), beside a 3.11 host."""
    if sys.version_info >= (3, 12):
        pytest.skip("the running interpreter already knows PEP 695")
    found = pyenv_python("3.12") or pyenv_python("3.13")
    if found is None:
        pytest.skip("no CPython 3.12+ under ~/.pyenv")
    return str(found)


@pytest.mark.slow
def test_a_snippet_in_newer_syntax_is_read_by_the_interpreter_under_test(
    newer_python: str,
) -> None:
    code = "type Alias = int\nimport mylib_xyz"
    with pytest.raises(SpecError, match="is not valid Python"):
        first_imported_package(code)  # the running interpreter cannot parse it
    assert first_imported_package(code, newer_python) == "mylib_xyz"
    with pytest.raises(SpecError, match=f"is not valid Python for {newer_python}: "):
        first_imported_package("type = = 1", newer_python)


@pytest.mark.slow
def test_the_standard_library_is_the_interpreter_under_tests(newer_python: str) -> None:
    # imp is standard in 3.11, gone from 3.12's standard library: there, a package to copy.
    code = "import json\nimport imp"
    assert first_imported_package(code) == "json"
    assert first_imported_package(code, newer_python) == "imp"


def test_a_path_to_the_interpreter_under_test_is_named_python() -> None:
    spec = startup_spec(StartupCommand.parse([sys.executable, "-m", "json.tool", "--help"]))
    assert spec.command is not None
    assert spec.command.argv == ("python", "-m", "json.tool", "--help")
    assert spec.command.label == "python -m json.tool --help"
    plain = startup_spec(StartupCommand.parse("python3 -m json.tool"))
    assert plain.command is not None
    assert plain.command.argv[0] == "python3"


@pytest.mark.parametrize("word", ["python2", "python3.9", "/usr/bin/python3.9", "/no/python"])
def test_another_interpreter_is_refused_in_one_line(word: str) -> None:
    if shutil.which(word) and os.path.realpath(str(shutil.which(word))) == os.path.realpath(
        sys.executable
    ):
        pytest.skip(f"{word} is the running interpreter here")
    with pytest.raises(CommandNotFoundError, match="not the interpreter under test") as raised:
        resolve_target(StartupCommand.parse([word, "-m", "json.tool"]), sys.executable)
    assert "\n" not in str(raised.value)
    # What really chooses the interpreter: there is no --importcache-python.
    assert str(raised.value).endswith(
        "(write python: in pytest, the interpreter running pytest; pytest-importcache startup "
        "and check take --python PATH)"
    )


def test_a_versioned_name_of_the_version_under_test_is_that_interpreter() -> None:
    word = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    target = resolve_target(StartupCommand.parse([word, "-m", "json.tool"]), sys.executable)
    assert (target.kind, target.target) == ("module", "json.tool")
