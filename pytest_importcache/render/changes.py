"""Why a cost changed between two measurements: the import edges, then the modules' self costs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

from pytest_importcache.model.records import TreeRow
from pytest_importcache.model.result import cost_changes
from pytest_importcache.model.units import (
    cost_name,
    format_cost,
)

from .edges import edge_lines

if TYPE_CHECKING:
    from .runs import ImportComparison

__all__ = ["explanation_heading", "explanation_lines", "regression_lines", "self_time_changes"]


def explanation_heading(metric: str, label: str = "") -> str:
    """The heading of :func:`explanation_lines` in a same-run comparison of flavour ``label``."""
    return (
        f"what changed most ({label + '; ' if label else ''}head - base): "
        f"import edges, then self {cost_name(metric)}"
    )


def explanation_lines(
    before: Sequence[TreeRow],
    after: Sequence[TreeRow],
    module: str,
    metric: str,
    *,
    before_costs: Mapping[str, float] | None = None,
    after_costs: Mapping[str, float] | None = None,
    modules: int = 5,
) -> list[str]:
    """Why an import's cost went from ``before`` to ``after``: its edges, then its modules.

    First the import edges new, gone or moved (:func:`~pytest_importcache.render.edges.edge_lines`,
    ``app.models -> asyncio (new): +12.3ms cumulative``) when both trees are
    known, then the ``modules`` modules whose self cost changed most
    (``+12.4ms app.heavy (new)``). ``before`` and ``after`` are the tree rows
    of the measurement of ``module``;
    self costs come from them unless ``before_costs``/``after_costs`` are given
    (entries saved before trees were stored kept only their self costs). The
    one explanation of the stored compare, the same-run failure and ``--against``.
    """
    lines = (
        edge_lines(before, after, module, figure=partial(format_cost, metric=metric))
        if before and after
        else []
    )
    if before_costs is None:
        before_costs = {row.name: row.self_cost for row in before}
    if after_costs is None:
        after_costs = {row.name: row.self_cost for row in after}
    return lines + self_time_changes(after_costs, before_costs, modules, metric)


def self_time_changes(
    current: Mapping[str, float],
    baseline: Mapping[str, float],
    count: int = 5,
    metric: str = "time",
) -> list[str]:
    """The modules whose self cost changed most: ``+12.4ms mylib.plugins.heavy (new)``.

    A module only in ``current`` is "new", one only in ``baseline`` is "gone".
    Costs are in ``metric``: seconds, or instructions (``+1.2M``).
    """
    return [
        f"{'+' if delta > 0 else '-'}{format_cost(abs(delta), metric)} {name}"
        + (f" ({tag})" if tag else "")
        for name, delta, tag in cost_changes(current, baseline)[:count]
    ]


def regression_lines(comparisons: Iterable[ImportComparison]) -> list[str]:
    """Per compared measurement: its statistic before and after, and what changed most.

    The lines of :func:`explanation_lines`: the import edges new, gone or moved
    (``mylib.cli -> asyncio (new): +12.3ms cumulative``) when both runs stored
    their trees, then the modules whose self time changed most.
    """
    lines = []
    for comparison in comparisons:
        metric = comparison.metric
        before = format_cost(comparison.before, metric)
        after = format_cost(comparison.after, metric)
        lines.append(
            f"{comparison.name}: {comparison.stat} {before} -> {after} ({comparison.change:+.0%})"
        )
        explained = explanation_lines(
            comparison.before_modules,
            comparison.after_modules,
            comparison.module,
            metric,
            before_costs=comparison.before_self_costs,
            after_costs=comparison.after_self_costs,
        )
        lines += [f"    {line}" for line in explained]
    return lines
