"""pytest-importcache: import-time regression testing for pytest.

The engine is usable without pytest::

    from pytest_importcache import ImportEnv

    result = ImportEnv("cold").measure("email.mime.text", rounds=5)
    print(result.median, len(result.modules))

Public names are loaded on first use, so importing this package (which pytest
does to load the plugin) costs next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine.environment import ImportEnv, InvalidationMode
    from .engine.lifecycle import RoundsInterrupted
    from .engine.locate import ImportLocationWarning
    from .model.errors import (
        EnvironmentBuildError,
        ImportCacheError,
        ImportRaisedError,
        InterpreterError,
        LocateError,
        MetricUnavailableError,
        RevisionError,
        RoundCrashedError,
        RoundTimeoutError,
        SpecError,
        WrongOriginError,
    )
    from .model.result import Flavour, ImportResult, ModuleTiming
    from .model.stats import RoundStats

__all__ = [
    "EnvironmentBuildError",
    "Flavour",
    "ImportCacheError",
    "ImportEnv",
    "ImportLocationWarning",
    "ImportRaisedError",
    "ImportResult",
    "InterpreterError",
    "InvalidationMode",
    "LocateError",
    "MetricUnavailableError",
    "ModuleTiming",
    "RevisionError",
    "RoundCrashedError",
    "RoundStats",
    "RoundTimeoutError",
    "RoundsInterrupted",
    "SpecError",
    "WrongOriginError",
]

_HOMES = {
    "ImportEnv": "engine.environment",
    "InvalidationMode": "engine.environment",
    "Flavour": "model.result",
    "ImportResult": "model.result",
    "ModuleTiming": "model.result",
    "RoundStats": "model.stats",
    "EnvironmentBuildError": "model.errors",
    "ImportCacheError": "model.errors",
    "ImportRaisedError": "model.errors",
    "InterpreterError": "model.errors",
    "LocateError": "model.errors",
    "MetricUnavailableError": "model.errors",
    "RevisionError": "model.errors",
    "RoundCrashedError": "model.errors",
    "RoundTimeoutError": "model.errors",
    "SpecError": "model.errors",
    "WrongOriginError": "model.errors",
    "RoundsInterrupted": "engine.lifecycle",
    "ImportLocationWarning": "engine.locate",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is used."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
