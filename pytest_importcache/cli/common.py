"""What every subcommand of ``pytest-importcache`` shares: the parser, the usage error, widths."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from pytest_importcache.model.errors import ImportCacheError
from pytest_importcache.model.units import parse_duration

__all__ = [
    "JSON_SCHEMA_VERSION",
    "PROG",
    "WIDTH",
    "Parser",
    "UsageError",
    "add_storage_argument",
    "count",
    "seconds_argument",
]

PROG = "pytest-importcache"
JSON_SCHEMA_VERSION = 1
WIDTH = 80


class UsageError(ImportCacheError):
    """A bad command line, module or run file: one line on stderr, exit 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit 2).

    Help texts are given as plain text ("95% interval"): argparse %-formats
    them, so :meth:`add_argument` escapes them once, here.
    """

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """``ArgumentParser.add_argument``, with a ``help`` text that may hold ``%``."""
        if isinstance(kwargs.get("help"), str):
            kwargs["help"] = kwargs["help"].replace("%", "%%")
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def add_storage_argument(parser: argparse.ArgumentParser) -> None:
    """``--storage``, where ``compare``, ``report`` and ``history`` read saved runs."""
    parser.add_argument(
        "--storage",
        default=".benchmarks",
        help="pytest-benchmark storage, or one machine directory in it (default: .benchmarks)",
    )


def count(number: int, noun: str = "module", plural: str | None = None) -> str:
    """``1 module``, ``2 modules``; ``plural`` for a noun that does not just take an s."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def seconds_argument(text: str) -> float:
    """``--timeout``'s type: ``"60"``, ``"90s"`` or ``"500ms"`` in seconds, positive and finite.

    Read as ``importcache_timeout`` is; anything else is argparse's one-line error.
    """
    try:
        return parse_duration(text)
    except ValueError as exc:  # a BudgetError is a ValueError
        raise argparse.ArgumentTypeError(str(exc)) from None
