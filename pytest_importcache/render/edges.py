"""Import edges: which module imported which, and the edges a slower import gained or lost.

When an import gets slower, the modules whose self time grew are usually
leaves (``_ssl``, ``typing``) far from the line that caused them. The edge
that changed (``mylib.cli -> asyncio``, new) names that line. An edge is
(importer, module) in a measurement's tree; an edge counts as a *cause* when
its importer was loaded on both sides, so the new subtree under a new edge is
summed into that edge instead of listed edge by edge.

An edge is *new* only when its module was not loaded before, and *gone* only
when its module is no longer loaded at all. A module loaded on both sides
through another importer (``typing`` first imported by ``pydantic._internal``
now, by ``pydantic`` before) is *moved*: an import that moved is not a module
that came or went. A move is listed only when both importers are loaded on
both sides; otherwise the module sits inside a new or gone subtree, whose own
edge names it.

Pure functions on the :class:`~pytest_importcache.model.records.TreeRow` rows
an outcome carries and a saved entry stores; the figure's formatting is a parameter, so
the same lines serve seconds or counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pytest_importcache.model.records import TreeRow
from pytest_importcache.model.units import Figure, format_duration

__all__ = ["EDGES_SHOWN", "EdgeChange", "edge_changes", "edge_lines"]

EDGES_SHOWN = 5


@dataclass(frozen=True)
class EdgeChange:
    """An import edge present on one side only, with the cumulative cost it brought or took.

    ``delta`` is the imported module's cumulative cost under that edge: positive
    for a new edge (cost the later import pays), negative for a gone one; for a
    moved module (``status`` ``"moved"``, ``importer`` the new one, ``was`` the
    old one), the change of its cumulative cost.
    """

    importer: str
    module: str
    status: Literal["new", "gone", "moved"]
    delta: float
    was: str = ""

    def line(self, figure: Figure = format_duration) -> str:
        """``mylib.cli -> asyncio (new): +12.3ms cumulative``.

        A move reads ``typing: now via pydantic._internal (was pydantic): +10us cumulative``.
        """
        sign = "+" if self.delta >= 0 else "-"
        if self.status == "moved":
            return (
                f"{self.module}: now via {self.importer} (was {self.was}): "
                f"{sign}{figure(abs(self.delta))} cumulative"
            )
        return (
            f"{self.importer} -> {self.module} ({self.status}): "
            f"{sign}{figure(abs(self.delta))} cumulative"
        )


def _edges(rows: Iterable[TreeRow], measured: str) -> dict[tuple[str, str], float]:
    """(importer, module) -> the module's cumulative cost; roots and ``measured`` left out."""
    return {
        (row.importer, row.name): row.cumulative_cost
        for row in rows
        if row.importer is not None and row.name != measured
    }


def edge_changes(
    before: Iterable[TreeRow], after: Iterable[TreeRow], measured: str
) -> list[EdgeChange]:
    """The edges only one side has, whose importer both sides loaded, biggest cost first.

    ``before`` and ``after`` are the tree rows of the same measurement (module
    ``measured``) in a baseline and a later run.
    A new edge's module was not loaded before, a gone edge's module is not
    loaded after; a module both sides loaded through different importers, each
    loaded on both sides, is moved (see the module's docstring).
    """
    before_rows, after_rows = list(before), list(after)
    before_edges, after_edges = _edges(before_rows, measured), _edges(after_rows, measured)
    before_names = {row.name for row in before_rows}
    after_names = {row.name for row in after_rows}
    both = before_names & after_names
    changes = [
        EdgeChange(importer, module, "new", cost)
        for (importer, module), cost in after_edges.items()
        if (importer, module) not in before_edges
        and importer in before_names
        and module not in before_names
    ]
    changes += [
        EdgeChange(importer, module, "gone", -cost)
        for (importer, module), cost in before_edges.items()
        if (importer, module) not in after_edges
        and importer in after_names
        and module not in after_names
    ]
    importer_before = {
        module: (importer, cost) for (importer, module), cost in before_edges.items()
    }
    changes += [
        EdgeChange(importer, module, "moved", cost - importer_before[module][1], was)
        for (importer, module), cost in after_edges.items()
        if module in importer_before
        and (was := importer_before[module][0]) != importer
        and importer in both
        and was in both
    ]
    # Biggest first; on a tie, new before gone before moved.
    order = {"new": 0, "gone": 1, "moved": 2}
    changes.sort(
        key=lambda change: (
            -abs(change.delta),
            order[change.status],
            change.importer,
            change.module,
        )
    )
    return changes


def edge_lines(
    before: Iterable[TreeRow],
    after: Iterable[TreeRow],
    measured: str,
    *,
    count: int = EDGES_SHOWN,
    figure: Figure = format_duration,
) -> list[str]:
    """At most ``count`` lines, one per new, gone or moved edge (see :func:`edge_changes`)."""
    return [change.line(figure) for change in edge_changes(before, after, measured)[:count]]
