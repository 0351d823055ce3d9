"""One error base: ``except ImportCacheError`` catches every error the package defines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import pytest_importcache
from pytest_importcache.engine.lifecycle import RoundsInterrupted
from pytest_importcache.model.errors import (
    BudgetError,
    CommandExitError,
    ImportCacheError,
    RecordError,
    RunError,
)

# Not errors: warnings, and the interrupt that must pass ``except Exception``
# (a KeyboardInterrupt, as SIGTERM and SIGHUP arrive).
NOT_ERRORS = (Warning,)
CHILD_SCRIPTS = "pytest_importcache.engine.child."


def _defined_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in a module of the package.

    Not ``__main__``, nor the round's child code: both are scripts, run and not imported.
    """
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(pytest_importcache.__path__, "pytest_importcache."):
        if info.name.endswith("__main__") or info.name.startswith(CHILD_SCRIPTS):
            continue
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


EXCEPTIONS = _defined_exceptions()


def test_the_walk_finds_the_errors_of_every_layer() -> None:
    names = {error.__name__ for error in EXCEPTIONS}
    assert {"BudgetError", "RunError", "RecordError", "LocateError", "UsageError"} <= names
    assert "MeasurementStopped" in names


@pytest.mark.parametrize(
    "error",
    [
        error
        for error in EXCEPTIONS
        if issubclass(error, Exception) and not issubclass(error, NOT_ERRORS)
    ],
    ids=lambda error: f"{error.__module__}.{error.__qualname__}",
)
def test_every_error_of_the_package_derives_from_the_base(error: type[Exception]) -> None:
    assert issubclass(error, ImportCacheError)


def test_errors_long_caught_as_value_errors_still_are() -> None:
    for error in (BudgetError, RunError, RecordError):
        assert issubclass(error, ValueError)


def test_the_interrupt_is_no_exception() -> None:
    assert not issubclass(RoundsInterrupted, Exception)


def test_a_command_that_fails_is_no_unreadable_saved_run() -> None:
    """Code that reads saved runs catches RunError as "cannot be read": never a command."""
    assert not issubclass(CommandExitError, RunError)
    assert issubclass(CommandExitError, ImportCacheError)
    assert issubclass(CommandExitError, ValueError)
