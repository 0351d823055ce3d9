"""Every error pytest-importcache raises; each message names what failed and where.

All derive from :class:`ImportCacheError`, so ``except ImportCacheError``
catches every one of them; those that callers long caught as ``ValueError``
(a malformed budget, an unreadable run, a bad record) are ``ValueError`` too.
The engine functions that raise them set ``__tracebackhide__``, a plain local
variable that pytest honours (no pytest import): a failing measurement in a
test shows the message, not the engine's frames.
"""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "CommandExitError",
    "CommandNotFoundError",
    "ConfigError",
    "EnvironmentBuildError",
    "ImportCacheError",
    "ImportRaisedError",
    "InterpreterError",
    "LocateError",
    "LockError",
    "MetricUnavailableError",
    "RecordError",
    "RevisionError",
    "RoundCrashedError",
    "RoundTimeoutError",
    "RunError",
    "SpecError",
    "WrongOriginError",
]


class ImportCacheError(Exception):
    """Base class of every error pytest-importcache reports to its user."""


class LocateError(ImportCacheError, LookupError):
    """The package under test could not be found, or cannot be copied."""


class ImportRaisedError(ImportCacheError):
    """Importing the module raised in the child interpreter.

    ``child_traceback`` holds the child's formatted traceback, which ``str()``
    of the error shows after the one-line message.
    """

    def __init__(self, message: str, child_traceback: str) -> None:
        super().__init__(message)
        self.message = message
        self.child_traceback = child_traceback

    def __str__(self) -> str:
        if not self.child_traceback:
            return self.message
        return f"{self.message}\n{self.child_traceback.rstrip()}"


class InterpreterError(ImportCacheError, ValueError):
    """The interpreter for the rounds cannot be used: missing, failing or too old."""


class EnvironmentBuildError(ImportCacheError):
    """A copy of the package under test could not be built (e.g. compiling it failed)."""


class RoundTimeoutError(ImportCacheError):
    """A round outlived its timeout; its process group was killed."""


class RoundCrashedError(ImportCacheError):
    """The child interpreter exited without reporting (crash, ``os._exit``, bad interpreter)."""


class WrongOriginError(ImportCacheError):
    """The module was imported from a file outside the import environment."""


class MetricUnavailableError(ImportCacheError):
    """The chosen metric cannot be measured here (instructions without valgrind)."""


class RevisionError(ImportCacheError):
    """A git revision to compare with cannot be used: no git, no repository, unknown, absent."""


class BudgetError(ImportCacheError, ValueError):
    """A budget or marker argument is malformed; the message names the argument."""


class RunError(ImportCacheError, ValueError):
    """A saved run cannot be found or read; the message names it."""


class RecordError(ImportCacheError, ValueError):
    """A record's JSON (a tree row, a same-run baseline, a round's report) is malformed.

    The message names the record and the field.
    """


class SpecError(ImportCacheError, ValueError):
    """A measurement's settings are invalid (a flavour, a metric, a number of rounds...)."""


class ConfigError(ImportCacheError, ValueError):
    """``[tool.importcache]`` in pyproject.toml is malformed; the message names the file and key."""


class LockError(ImportCacheError, ValueError):
    """``importcache.lock`` cannot be read or written; the message names the file and the line."""


class CommandNotFoundError(LocateError):
    """A start-up command's first word is no console script of the interpreter under test,
    nor ``python``; or it names nothing a start-up round can run. (A :class:`LocateError`:
    what the test names is not found, as a missing package under test, and is reported
    as such a problem, not as a failed measurement.)"""


class CommandExitError(ImportCacheError, ValueError):
    """A start-up command exited with another status than expected: the message names the
    command, the status and the last lines of its stderr. (Not a :class:`RunError`, which
    is about saved runs: those who read saved runs must not take it for an unreadable one.)"""
