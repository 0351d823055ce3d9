"""A test's ``import_budget`` and ``startup_budget`` markers: their budgets and measurements.

Cheap to import (the model's budget and spec only): the worker's role reads
markers at collection and at setup in every session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import pytest

from pytest_importcache.model.budget import (
    MARKER_NAME,
    STARTUP_MARKER_NAME,
    ImportBudget,
    StartupBudget,
)
from pytest_importcache.model.errors import BudgetError, ImportCacheError
from pytest_importcache.model.spec import MeasurementSpec

if TYPE_CHECKING:
    from pytest_importcache.model.spec import LazyImportsMode, Metric, StartupCommand

    from .options import Settings

__all__ = [
    "BUDGETS_KEY",
    "BUDGET_MARKERS",
    "DISABLED_REASON",
    "IMPORT_FIXTURES",
    "MeasurementKey",
    "counted_specs",
    "has_budget",
    "measurement_keys",
    "read_budgets",
    "specs_for",
    "timed_keys",
]

IMPORT_FIXTURES = frozenset({"cold_import_env", "warm_import_env", "import_env_factory"})
# Why a budgeted test is skipped under ``--importcache-disable``.
DISABLED_REASON = "import measurements are disabled (importcache disable setting)"
# A test's budgets, read and validated at its setup.
BUDGETS_KEY = pytest.StashKey[list[ImportBudget]]()

BUDGET_MARKERS = (MARKER_NAME, STARTUP_MARKER_NAME)


class MeasurementKey(NamedTuple):
    """What sets one measurement apart from another a test's budgets need.

    A start-up budget's ``module`` is empty: its command says what is measured
    (the package under test is found when the command is resolved).
    """

    module: str
    flavour: str
    closure: bool
    metric: Metric
    lazy_imports: LazyImportsMode | None = None
    command: StartupCommand | None = None
    exit_code: int = 0


def has_budget(item: pytest.Item) -> bool:
    """Whether ``item`` carries an ``import_budget`` or ``startup_budget`` marker."""
    return any(item.get_closest_marker(name) is not None for name in BUDGET_MARKERS)


def read_budgets(item: pytest.Item, metric: Metric) -> list[ImportBudget]:
    """The test's budget markers (both kinds), top to bottom; ``BudgetError`` for a bad one."""
    # iter_markers yields the closest marker first; budgets read top to bottom.
    markers = [marker for marker in item.iter_markers() if marker.name in BUDGET_MARKERS]
    return [
        (StartupBudget if marker.name == STARTUP_MARKER_NAME else ImportBudget).from_marker(
            marker.args, marker.kwargs, metric=metric
        )
        for marker in reversed(markers)
    ]


def measurement_keys(budget: ImportBudget) -> dict[str, MeasurementKey]:
    """The measurements ``budget`` needs, by flavour (and ``"max_memory"``).

    Cold and warm budgets need their flavours in the budget's metric;
    ``max_modules``, ``forbid`` and ``allow`` alone, a warm one, timed (the
    cheaper). ``max_memory`` needs a timed one (peak memory is measured on
    timed rounds only): the warm (else cold) timed measurement, or one warm
    timed round when the budget counts instructions.
    """
    command = budget.command if isinstance(budget, StartupBudget) else None
    exit_code = budget.exit_code if isinstance(budget, StartupBudget) else 0

    def key(flavour: str, closure: bool, metric: Metric) -> MeasurementKey:
        return MeasurementKey(
            budget.module, flavour, closure, metric, budget.lazy_imports, command, exit_code
        )

    untimed = key("warm", False, "time")
    keys: dict[str, MeasurementKey] = {
        flavour: key(flavour, budget.closure and flavour == "cold", budget.metric)
        for flavour in budget.timed_flavours
    } or {"warm": untimed}
    if budget.max_memory is not None:
        timed = keys.get("warm") or keys["cold"]
        keys["max_memory"] = timed if timed.metric == "time" else untimed
    return keys


def timed_keys(budgets: list[ImportBudget]) -> set[MeasurementKey]:
    """The measurements a cold or warm budget is judged on (not only counted modules)."""
    return {
        key
        for budget in budgets
        for flavour, key in measurement_keys(budget).items()
        if flavour in budget.timed_flavours
    }


def specs_for(
    budgets: list[ImportBudget], settings: Settings, *, counted_only: bool = False
) -> dict[MeasurementKey, MeasurementSpec]:
    """One spec per measurement the budgets need, most rounds asked.

    ``max_modules``, ``forbid``, ``allow`` and an instruction budget's
    ``max_memory`` need a single warm round (module lists do not vary); with a
    timed budget on the same import they use its rounds. A start-up budget's
    command is resolved here: ``ImportCacheError`` (one line) when it cannot be.
    ``counted_only`` leaves out timed measurements (not built, commands not resolved).
    """
    needs: dict[MeasurementKey, tuple[int, bool]] = {}
    for budget in budgets:
        for flavour, key in measurement_keys(budget).items():
            timed = flavour in budget.timed_flavours
            rounds = (budget.rounds or settings.rounds_for(key.metric)) if timed else 1
            before_rounds, before_timed = needs.get(key, (0, False))
            needs[key] = (max(before_rounds, rounds), before_timed or timed)
    return {
        key: _spec(key, settings, rounds=rounds, timed=timed)
        for key, (rounds, timed) in needs.items()
        if not counted_only or key.metric != "time"
    }


def _spec(key: MeasurementKey, settings: Settings, *, rounds: int, timed: bool) -> MeasurementSpec:
    """The spec of one measurement; a start-up one resolves its command (``ImportCacheError``)."""
    fields = {
        "flavour": key.flavour,
        "closure": key.closure,
        "rounds": rounds,
        "warmup": settings.warmup_for(key.metric) if timed else 0,
        "timeout": settings.timeout,
        "metric": key.metric,
        "lazy_imports": key.lazy_imports or settings.lazy_imports,
    }
    if key.command is None:
        return MeasurementSpec(key.module, **fields)  # type: ignore[arg-type]
    # Resolving a command looks into the interpreter under test: the engine, at measuring time.
    from pytest_importcache.engine.startup import startup_spec  # noqa: PLC0415 - start-up cost

    try:
        return startup_spec(key.command, exit_code=key.exit_code, **fields)
    except ImportCacheError as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise BudgetError(f"{STARTUP_MARKER_NAME}({key.command.label!r}): {first}") from None


def counted_specs(item: pytest.Item, settings: Settings) -> list[MeasurementSpec]:
    """The counted measurements ``item``'s budgets will ask for, if they can be known now.

    None for a test that may be skipped (a skip or skipif marker), whose
    markers are malformed (its setup says so), or that compares with a
    baseline revision (measured with it, rounds interleaved).
    """
    if not has_budget(item) or settings.baseline is not None:
        return []
    if item.get_closest_marker("skip") or item.get_closest_marker("skipif"):
        return []
    try:
        specs = specs_for(read_budgets(item, settings.metric), settings, counted_only=True)
    except ImportCacheError:  # a BudgetError, or a command that cannot be resolved
        return []
    return list(specs.values())
