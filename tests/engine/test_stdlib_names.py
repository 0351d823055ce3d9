"""The standard library ``allow=`` leaves out is the one of the interpreter under test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_importcache.engine.interpreter import stdlib_module_names
from pytest_importcache.model.errors import InterpreterError


def pyenv_python(version: str) -> Path | None:
    """``~/.pyenv``'s CPython ``version`` (major.minor), if installed."""
    return next(
        iter(sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))), None
    )


def test_the_running_interpreter_answers_from_sys() -> None:
    assert stdlib_module_names(sys.executable) == frozenset(sys.stdlib_module_names)


@pytest.mark.slow
def test_another_version_is_asked_for_its_own_standard_library() -> None:
    # distutils left the standard library in 3.12; tomllib joined it in 3.11.
    other = pyenv_python("3.10" if sys.version_info >= (3, 11) else "3.12")
    if other is None:
        pytest.skip("no second CPython under ~/.pyenv")
    names = stdlib_module_names(str(other))
    assert names != frozenset(sys.stdlib_module_names)
    assert ("tomllib" in names) == (sys.version_info < (3, 11))
    assert {"json", "os", "decimal"} <= names


@pytest.mark.slow
def test_an_interpreter_without_the_list_is_one_line() -> None:
    old = pyenv_python("3.9")
    if old is None:
        pytest.skip("no CPython 3.9 under ~/.pyenv")
    with pytest.raises(InterpreterError, match=r"does not list its standard library") as caught:
        stdlib_module_names(str(old))
    assert "\n" not in str(caught.value)
