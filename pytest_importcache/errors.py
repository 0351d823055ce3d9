"""The errors the engine raises; each message names what failed and where."""

from __future__ import annotations

__all__ = [
    "ImportCacheError",
    "ImportRaisedError",
    "LocateError",
    "RoundCrashedError",
    "RoundTimeoutError",
    "WrongOriginError",
]


class ImportCacheError(Exception):
    """Base class of every error pytest-importcache reports to its user."""


class LocateError(ImportCacheError, LookupError):
    """The package under test could not be found, or cannot be copied."""


class ImportRaisedError(ImportCacheError):
    """Importing the module raised in the child interpreter.

    ``child_traceback`` holds the child's formatted traceback.
    """

    def __init__(self, message: str, child_traceback: str) -> None:
        super().__init__(message)
        self.child_traceback = child_traceback


class RoundTimeoutError(ImportCacheError):
    """A round outlived its timeout; its process group was killed."""


class RoundCrashedError(ImportCacheError):
    """The child interpreter exited without reporting (crash, ``os._exit``, bad interpreter)."""


class WrongOriginError(ImportCacheError):
    """The module was imported from a file outside the import environment."""
