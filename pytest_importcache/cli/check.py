"""``pytest-importcache check [--update]``: the pyproject.toml budgets, without pytest.

Reads ``[tool.importcache] budgets`` from ``--pyproject PATH`` or from the
nearest pyproject.toml in the current directory or above it, measures each
budget (``module =``, or ``command =``/``code =`` for a start-up) as its marker
would (the engine's :class:`~pytest_importcache.engine.measurer.Measurer`,
counts reused from the count store while their inputs are unchanged), judges
it as the plugin does (:func:`~pytest_importcache.pytest.judging.judge_budgets`),
checks the modules each import loads against ``importcache.lock`` beside pyproject.toml,
and prints the failures, the summary table and how long it took. Exit 0 when
every budget holds, 1 when one fails (a budget overspent, a module new or gone
since the lock), 2 on bad configuration (a malformed entry, a module that is
not found, a corrupt lock). ``--update`` writes the lock instead of checking it.
``--json`` prints one JSON document instead of text. Modules are looked for in
pyproject.toml's directory first (a flat layout), then where this command's
interpreter finds them (``--path DIR`` adds directories, ``--python`` measures
under another interpreter).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_importcache.model.budget import STARTUP_MARKER_NAME
from pytest_importcache.model.config import (
    PYPROJECT,
    ConfigBudget,
    find_pyproject,
    load_budgets,
)
from pytest_importcache.model.errors import ConfigError
from pytest_importcache.model.spec import (
    DEFAULT_TIMEOUT,
    METRICS,
    STATISTICS,
)

from .common import JSON_SCHEMA_VERSION, PROG, Parser, UsageError, count, seconds_argument

if TYPE_CHECKING:
    from pytest_importcache.engine.measurer import Measurer
    from pytest_importcache.model.lock import Lock
    from pytest_importcache.model.outcome import MeasurementOutcome
    from pytest_importcache.model.result import ImportResult
    from pytest_importcache.model.spec import MeasurementSpec

__all__ = ["BudgetRun", "make_parser", "run"]


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``check``."""
    parser = Parser(
        prog=f"{PROG} check",
        description=(
            "Measure the budgets of [tool.importcache] in pyproject.toml and check the modules "
            "each import loads against importcache.lock. Exit 0: all hold; 1: one fails; "
            "2: bad configuration."
        ),
    )
    parser.add_argument(
        "--pyproject",
        metavar="PATH",
        help="the pyproject.toml to read (default: the nearest one in the current directory "
        "or above it)",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="write importcache.lock (beside pyproject.toml) from this run instead of "
        "checking against it",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--python", help="interpreter to measure under (default: this one)")
    parser.add_argument(
        "--path", action="append", default=[], metavar="DIR", help="find modules here first"
    )
    parser.add_argument(
        "--metric",
        choices=METRICS,
        default="time",
        help="what budgets without their own metric measure (default: time)",
    )
    parser.add_argument("--rounds", type=int, help="counted rounds (default: the metric's)")
    parser.add_argument("--warmup", type=int, help="warm-up rounds (default: the metric's)")
    parser.add_argument(
        "--stat",
        choices=STATISTICS,
        default="min",
        help="statistic compared with time budgets (default: min)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds_argument,
        default=DEFAULT_TIMEOUT,
        help=f"time one round may take, e.g. 60, 90s or 500ms ({DEFAULT_TIMEOUT:g} seconds)",
    )
    parser.add_argument(
        "--store",
        metavar="DIR",
        help="keep instruction counts here and reuse those whose inputs are unchanged "
        "(default: the per-user cache)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="count instructions again instead of reusing them"
    )
    return parser


@dataclass
class BudgetRun:
    """One budget of pyproject.toml as ``check`` ran it."""

    budget: ConfigBudget
    results: list[ImportResult] = field(default_factory=list)
    outcomes: list[MeasurementOutcome] = field(default_factory=list)
    failure: str = ""
    problem: str = ""
    lock: dict[str, Any] | None = None
    lock_failed: bool = False

    @property
    def passed(self) -> bool:
        """Whether the budget held (and its modules match the lock)."""
        return not (self.failure or self.problem)

    def to_json(self) -> dict[str, Any]:
        """The budget's entry in the ``--json`` document."""
        return {
            "entry": self.budget.index,
            "kind": self.budget.kind,
            "target": self.budget.target,
            "passed": self.passed,
            "problem": self.problem,
            "failure": self.failure,
            "lock": self.lock,
            "measurements": [outcome.to_json() for outcome in self.outcomes],
        }


def _pyproject(arguments: argparse.Namespace) -> Path:
    """The pyproject.toml to read: ``--pyproject``, or the nearest one upwards."""
    if arguments.pyproject is not None:
        path = Path(arguments.pyproject)
        if path.is_dir():
            path = path / PYPROJECT
        if not path.is_file():
            raise UsageError(f"--pyproject {arguments.pyproject}: no such file")
        return path
    found = find_pyproject(Path.cwd())
    if found is None:
        raise UsageError(f"no {PYPROJECT} in {Path.cwd()} or above it (give --pyproject PATH)")
    return found


def run(arguments: argparse.Namespace) -> int:
    """Measure, judge and lock-check every budget; print; 0, 1 (a failure) or 2 (configuration)."""
    started = time.monotonic()
    for name in ("rounds", "warmup"):
        value = getattr(arguments, name)
        if value is not None and value < (1 if name == "rounds" else 0):
            raise UsageError(f"--{name} {value}: too few")
    pyproject = _pyproject(arguments)
    try:
        budgets = load_budgets(pyproject)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if not budgets:
        raise UsageError(f"{pyproject}: no [tool.importcache] budgets to check")
    # The engine and the renderers load once the configuration is known to be good.
    runs = _measure_all(arguments, pyproject, budgets)
    lock_path = pyproject.with_name("importcache.lock")
    lock_problem = _lock_step(arguments, lock_path, runs)
    elapsed = time.monotonic() - started
    configuration = bool(lock_problem) or any(each.problem for each in runs)
    failed = [each for each in runs if not each.passed]
    # Bad configuration: one line each on stderr, with --json too.
    for line in [*(each.problem for each in runs if each.problem), lock_problem]:
        if line:
            print(line, file=sys.stderr)
    if arguments.json:
        document = {
            "schema": JSON_SCHEMA_VERSION,
            "pyproject": str(pyproject),
            "lock": str(lock_path) if lock_path.exists() else None,
            "updated": bool(arguments.update) and not lock_problem,
            "seconds": elapsed,
            "passed": not failed and not configuration,
            "problem": lock_problem,
            "budgets": [each.to_json() for each in runs],
        }
        print(json.dumps(document, indent=2))
    else:
        _print_text(runs, pyproject, lock_path, lock_problem, elapsed, updated=arguments.update)
    if configuration:
        return 2
    return 1 if failed else 0


def _measurer(arguments: argparse.Namespace, pyproject: Path) -> Measurer:
    """The engine's measurer: ``--path``, pytest's ``pythonpath``, the project's directory first.

    Counts are reused from the store.
    """
    from pytest_importcache.engine.measurer import Measurer  # noqa: PLC0415 - not for --help
    from pytest_importcache.model.config import pytest_pythonpath  # noqa: PLC0415

    from .profile_run import _count_store, _search_path_without_own_entry  # noqa: PLC0415

    # As pytest would: its pythonpath entries first, then the project's directory.
    search_path = [
        *map(str, arguments.path),
        *pytest_pythonpath(pyproject),
        str(pyproject.parent.absolute()),
        *_search_path_without_own_entry(),
    ]
    return Measurer(search_path=search_path, count_store=_count_store(arguments))


def _measure_all(
    arguments: argparse.Namespace, pyproject: Path, budgets: list[ConfigBudget]
) -> list[BudgetRun]:
    """Every budget measured and judged (a malformed one carries its problem)."""
    measurer = _measurer(arguments, pyproject)
    runs = []
    for budget in budgets:
        each = BudgetRun(budget)
        if budget.problem:
            each.problem = f"{pyproject.name} {budget.problem}"
        else:
            _check_budget(arguments, measurer, each, pyproject.name)
        runs.append(each)
    return runs


def _check_budget(
    arguments: argparse.Namespace, measurer: Measurer, each: BudgetRun, source: str
) -> None:
    """Measure and judge one budget with the plugin's own planning, verdicts and records."""
    from pytest_importcache.model.budget import ImportBudget, StartupBudget  # noqa: PLC0415
    from pytest_importcache.model.errors import (  # noqa: PLC0415
        ImportCacheError,
        LocateError,
    )
    from pytest_importcache.pytest.judging import judge_budgets, records_for  # noqa: PLC0415
    from pytest_importcache.pytest.markers import specs_for  # noqa: PLC0415
    from pytest_importcache.pytest.options import Settings  # noqa: PLC0415
    from pytest_importcache.pytest.recording import outcome_of  # noqa: PLC0415
    from pytest_importcache.render.failure import failure_text  # noqa: PLC0415

    budget = each.budget
    settings = Settings(
        rounds=arguments.rounds,
        warmup=arguments.warmup,
        metric=arguments.metric,
        stat=arguments.stat,
        timeout=arguments.timeout,
    )
    where = f"{source} {budget.where}"
    kind = StartupBudget if budget.marker == STARTUP_MARKER_NAME else ImportBudget
    measured: dict[Any, ImportResult] = {}
    try:
        marker = kind.from_marker(budget.args, budget.kwargs, metric=settings.metric)
        specs = specs_for([marker], settings)
    except ImportCacheError as exc:  # bad settings (SpecError), an unknown command, too
        each.problem = f"{where}: {str(exc).splitlines()[0]}"
        return
    try:
        for key, spec in specs.items():
            measured[key] = measurer.measure(_under(spec, arguments.python))
        verdicts = judge_budgets([marker], measured, stat=settings.stat)
    except LocateError as exc:
        each.problem = f"{where}: {str(exc).splitlines()[0]}"
        return
    except ImportCacheError as exc:
        each.failure = f"{where}: {exc}"
        return
    each.results = list(measured.values())
    each.outcomes = [
        outcome_of(entry, f"{PYPROJECT}::{budget.name}", budget.name)
        for entry in records_for([marker], measured, verdicts, stat=settings.stat)
    ]
    failing = [verdict for _, verdict in verdicts if not verdict.passed]
    if failing:
        each.failure = failure_text(failing)


def _under(spec: MeasurementSpec, python: str | None) -> MeasurementSpec:
    """``spec`` measured by ``python`` (``--python``); a start-up's command resolved by it."""
    if python is None:
        return spec
    if spec.command is None:
        return dataclasses.replace(spec, python=python)
    from pytest_importcache.engine.startup import startup_spec  # noqa: PLC0415 - not for --help

    fields = {
        each.name: getattr(spec, each.name)
        for each in dataclasses.fields(spec)
        if each.init and each.name not in ("module", "command")
    }
    return startup_spec(spec.command, **{**fields, "python": python})


def _lock_step(arguments: argparse.Namespace, lock_path: Path, runs: list[BudgetRun]) -> str:
    """Check the runs against the lock, or write it (``--update``); a corrupt lock's line."""
    from pytest_importcache.engine.cache import default_cache_dir  # noqa: PLC0415
    from pytest_importcache.model.errors import ImportCacheError, LockError  # noqa: PLC0415
    from pytest_importcache.model.lock import load_lock, update_lock  # noqa: PLC0415

    def change(lock: Lock) -> Lock:
        updated = lock.keeping(each.budget.lock_key for each in runs)
        for each in runs:
            updated = _lock_one(updated, each, write=True)
        return updated

    try:
        if arguments.update:
            # One update at a time: two runs (two Python versions) keep each other's sections.
            update_lock(lock_path, change, default_cache_dir())
            return ""
        lock = load_lock(lock_path)
        if lock is not None:  # no lock, no lock check
            # The command that updates this run's section: the same interpreter's.
            python = f" --python {shlex.quote(arguments.python)}" if arguments.python else ""
            hint = (
                f"if that is intended, update the lock: pytest-importcache check --update{python}"
            )
            for each in runs:
                _lock_one(lock, each, write=False, update_hint=hint)
    except LockError as exc:
        return str(exc)
    except OSError as exc:
        return f"{lock_path}: cannot write: {exc.strerror or exc}"
    except ImportCacheError as exc:  # the interpreter's build cannot be asked
        return f"{lock_path}: {str(exc).splitlines()[0]}"
    return ""


def _lock_one(lock: Lock, each: BudgetRun, *, write: bool, update_hint: str = "") -> Lock:
    """One budget against the lock: written into it, or checked (a change fails the budget).

    ``update_hint`` is the command that updates this build's section.
    """
    from pytest_importcache.model.lock import check_lock, lock_with  # noqa: PLC0415
    from pytest_importcache.pytest.configitems import lock_place  # noqa: PLC0415

    if not each.results:
        return lock
    key, python = lock_place(each.budget, each.results)
    if write:
        return lock_with(lock, key, python, each.results)
    checked = check_lock(lock, key, python, each.results, update_hint=update_hint)
    each.lock = checked.to_json()
    if checked.failure:
        each.lock_failed = True
        each.failure = "\n\n".join(text for text in (each.failure, checked.failure) if text)
    return lock


def _print_text(
    runs: list[BudgetRun],
    pyproject: Path,
    lock_path: Path,
    lock_problem: str,
    elapsed: float,
    *,
    updated: bool,
) -> None:
    """Problems and failures, the summary table, and one closing line with the time taken."""
    from pytest_importcache.render.summary import summary_lines  # noqa: PLC0415

    blocks = [f"{each.budget.name}\n{each.failure}" for each in runs if each.failure]
    # A budget that holds but loads other modules than the lock says fails: its rows say so.
    outcomes = [
        dataclasses.replace(outcome, passed=False)
        if each.lock_failed and outcome.passed
        else outcome
        for each in runs
        for outcome in each.outcomes
    ]
    if outcomes:
        blocks.append("\n".join(summary_lines(outcomes)))
    if updated and not lock_problem:
        blocks.append(f"wrote {lock_path}")
    failed = sum(1 for each in runs if each.failure and not each.problem)
    malformed = sum(1 for each in runs if each.problem)
    parts = [f"{failed} failed"] if failed else []
    parts += [f"{malformed} not checked (configuration)"] if malformed else []
    if lock_problem:
        if ": cannot write: " in lock_problem:
            parts.append(f"{lock_path.name} could not be written")
        else:  # a corrupt lock is not read, by --update either
            done = "not updated" if updated else "the lock not checked"
            parts.append(f"{lock_path.name} could not be read: {done}")
    verdict = ", ".join(parts) or "all hold"
    blocks.append(
        f"checked {count(len(runs), 'budget')} of {pyproject} in {elapsed:.2f} s: {verdict}"
    )
    print("\n\n".join(blocks))
