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
    from .environment import ImportEnv, InvalidationMode
    from .errors import (
        EnvironmentBuildError,
        ImportCacheError,
        ImportRaisedError,
        InterpreterError,
        LocateError,
        MetricUnavailableError,
        RevisionError,
        RoundCrashedError,
        RoundTimeoutError,
        WrongOriginError,
    )
    from .lifecycle import RoundsInterrupted
    from .locate import ImportLocationWarning
    from .result import Flavour, ImportResult, ModuleTiming
    from .stats import RoundStats

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
    "WrongOriginError",
]

_HOMES = {
    "ImportEnv": "environment",
    "InvalidationMode": "environment",
    "Flavour": "result",
    "ImportResult": "result",
    "ModuleTiming": "result",
    "RoundStats": "stats",
    "EnvironmentBuildError": "errors",
    "ImportCacheError": "errors",
    "ImportRaisedError": "errors",
    "InterpreterError": "errors",
    "LocateError": "errors",
    "MetricUnavailableError": "errors",
    "RevisionError": "errors",
    "RoundCrashedError": "errors",
    "RoundTimeoutError": "errors",
    "WrongOriginError": "errors",
    "RoundsInterrupted": "lifecycle",
    "ImportLocationWarning": "locate",
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
