"""A test's ``import_budget`` markers: the budgets they hold and the measurements those need.

Cheap to import (the model's budget and spec only): the worker's role reads
markers at collection and at setup in every session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_importcache.model.budget import MARKER_NAME, ImportBudget
from pytest_importcache.model.errors import BudgetError
from pytest_importcache.model.spec import MeasurementSpec

if TYPE_CHECKING:
    from pytest_importcache.model.spec import Flavour, Metric

    from .options import Settings

__all__ = [
    "BUDGETS_KEY",
    "DISABLED_REASON",
    "IMPORT_FIXTURES",
    "MeasurementKey",
    "counted_specs",
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

MeasurementKey = tuple[str, str, bool, "Metric"]


def read_budgets(item: pytest.Item, metric: Metric) -> list[ImportBudget]:
    """The test's ``import_budget`` markers, top to bottom; ``BudgetError`` for a bad one."""
    # iter_markers yields the closest marker first; budgets read top to bottom.
    return [
        ImportBudget.from_marker(marker.args, marker.kwargs, metric=metric)
        for marker in reversed(list(item.iter_markers(MARKER_NAME)))
    ]


def measurement_keys(budget: ImportBudget) -> dict[Flavour, MeasurementKey]:
    """The (module, flavour, closure, metric) measurements ``budget`` needs, by flavour.

    Cold and warm budgets need their flavours in the budget's metric;
    ``max_modules`` and ``forbid`` alone, a warm one, timed (the cheaper).
    """
    if not budget.timed_flavours:
        return {"warm": (budget.module, "warm", False, "time")}
    return {
        flavour: (budget.module, flavour, budget.closure and flavour == "cold", budget.metric)
        for flavour in budget.timed_flavours
    }


def timed_keys(budgets: list[ImportBudget]) -> set[MeasurementKey]:
    """The measurements a cold or warm budget is judged on (not only counted modules)."""
    return {
        key
        for budget in budgets
        for flavour, key in measurement_keys(budget).items()
        if flavour in budget.timed_flavours
    }


def specs_for(
    budgets: list[ImportBudget], settings: Settings
) -> dict[MeasurementKey, MeasurementSpec]:
    """One spec per (module, flavour, closure, metric) the budgets need, most rounds asked.

    ``max_modules`` and ``forbid`` alone need a single warm round (module
    lists do not vary); with a timed budget on the same import they use its rounds.
    """
    needs: dict[MeasurementKey, tuple[int, bool]] = {}
    for budget in budgets:
        for flavour, key in measurement_keys(budget).items():
            timed = flavour in budget.timed_flavours
            rounds = (budget.rounds or settings.rounds_for(key[3])) if timed else 1
            before_rounds, before_timed = needs.get(key, (0, False))
            needs[key] = (max(before_rounds, rounds), before_timed or timed)
    return {
        key: MeasurementSpec(
            key[0],
            flavour=key[1],  # type: ignore[arg-type]
            closure=key[2],
            rounds=rounds,
            warmup=settings.warmup_for(key[3]) if timed else 0,
            timeout=settings.timeout,
            metric=key[3],
            lazy_imports=settings.lazy_imports,
        )
        for key, (rounds, timed) in needs.items()
    }


def counted_specs(item: pytest.Item, settings: Settings) -> list[MeasurementSpec]:
    """The counted measurements ``item``'s budgets will ask for, if they can be known now.

    None for a test that may be skipped (a skip or skipif marker), whose
    markers are malformed (its setup says so), or that compares with a
    baseline revision (measured with it, rounds interleaved).
    """
    if item.get_closest_marker(MARKER_NAME) is None or settings.baseline is not None:
        return []
    if item.get_closest_marker("skip") or item.get_closest_marker("skipif"):
        return []
    try:
        budgets = read_budgets(item, settings.metric)
    except BudgetError:
        return []
    return [spec for spec in specs_for(budgets, settings).values() if spec.metric != "time"]
