"""``pytest-importcache calibrate``: measure this machine for ``importcache_budget_scale = auto``.

It measures the reference import (see :mod:`pytest_importcache.engine.reference`)
and prints the ini lines that make ``importcache_budget_scale = auto`` scale
time budgets by this machine's speed.
"""

from __future__ import annotations

import argparse

from pytest_importcache.engine.cache import default_cache_dir
from pytest_importcache.engine.reference import REFERENCE_PACKAGE, measure_reference
from pytest_importcache.model.errors import ImportCacheError
from pytest_importcache.model.spec import DEFAULT_ROUNDS
from pytest_importcache.model.units import format_duration

from .common import PROG, Parser, UsageError

__all__ = ["make_parser", "run"]


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``calibrate``."""
    parser = Parser(
        prog=f"{PROG} calibrate",
        description="Measure the reference import and print the ini lines for "
        "importcache_budget_scale = auto.",
    )
    parser.add_argument(
        "--rounds", type=int, default=DEFAULT_ROUNDS, help=f"counted rounds ({DEFAULT_ROUNDS})"
    )
    parser.add_argument("--python", help="interpreter to measure under (default: this one)")
    return parser


def run(arguments: argparse.Namespace) -> int:
    """Measure the reference import and print the ini lines; 0."""
    if arguments.rounds < 1:
        raise UsageError("--rounds must be >= 1")
    try:
        calibration = measure_reference(
            default_cache_dir(), python=arguments.python, rounds=arguments.rounds
        )
    except (ImportCacheError, ValueError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    print(
        f"reference import ({REFERENCE_PACKAGE}): cold {format_duration(calibration.cold)}, "
        f"warm {format_duration(calibration.warm)}"
    )
    print("\nin pyproject.toml, under [tool.pytest.ini_options]:")
    print(f'importcache_calibration = "{calibration.to_text()}"')
    print('importcache_budget_scale = "auto"')
    print("\nin pytest.ini, tox.ini or setup.cfg, under [pytest] (or [tool:pytest]):")
    print(f"importcache_calibration = {calibration.to_text()}")
    print("importcache_budget_scale = auto")
    return 0
