"""A same-run comparison: the working tree's import against a git revision's, interleaved.

:func:`measure_against` locates the package, extracts the repository at the
revision (:mod:`pytest_importcache.engine.revision`), measures both sides with
:meth:`~pytest_importcache.engine.measurer.Measurer.measure_pair` (rounds A B A B
under one measurement lock) and summarises the ratio head/base with its
bootstrap interval (:mod:`pytest_importcache.model.interval`). The command line's
``--against`` and the plugin's ``--importcache-baseline`` both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_importcache.model.interval import RatioInterval, ratio_interval
from pytest_importcache.model.noise import comparison_noise
from pytest_importcache.model.result import ImportResult, cost_changes
from pytest_importcache.model.spec import MeasurementSpec

from .cache import default_cache_dir
from .locate import locate_package
from .measurer import Measurer, resolve_python
from .revision import Revision, revision_side

__all__ = ["Comparison", "measure_against", "self_time_deltas"]


@dataclass(frozen=True)
class Comparison:
    """The head (working tree) and base (revision) measurements of one spec, and their ratio."""

    revision: Revision
    head: ImportResult
    base: ImportResult
    interval: RatioInterval
    served: tuple[str, ...] = ()

    @property
    def served_note(self) -> str:
        """One line naming the files git ignores that both sides took from the working tree."""
        if not self.served:
            return ""
        return (
            f"served from the working tree to both sides (git ignores them, {self.revision} "
            f"has none): {', '.join(self.served)}"
        )

    def slower(self, threshold: float) -> bool:
        """Whether the head is slower than the base by more than ``threshold``, surely.

        Surely means: the whole confidence interval of the ratio lies above
        ``1 + threshold``.
        """
        return self.interval.slower_than(threshold)

    def noise(self, threshold: float) -> str:
        """Why the interval cannot decide at ``threshold`` (``""`` when it can)."""
        return comparison_noise(self.interval, threshold)

    @property
    def statistic(self) -> str:
        """The statistic the ratio compares: ``"min"`` or ``"median"``."""
        return "min" if self.interval.estimator == "min" else "median"

    @property
    def figures(self) -> tuple[float, float]:
        """The head's and the base's :attr:`statistic`."""
        return self.head.statistic(self.statistic), self.base.statistic(self.statistic)

    def to_json(self) -> dict[str, Any]:
        """The revision, the ratio and its interval, each side's rounds (seconds or counts).

        ``served`` lists the files git ignores that both sides took from the working tree.
        """
        return {
            "revision": self.revision.name,
            "commit": self.revision.commit,
            "ratio": self.interval.ratio,
            "low": self.interval.low,
            "high": self.interval.high,
            "confidence": self.interval.confidence,
            "method": self.interval.method,
            "estimator": self.interval.estimator,
            "statistic": self.statistic,
            "head": self.figures[0],
            "base": self.figures[1],
            "head_values": list(self.head.values),
            "base_values": list(self.base.values),
            "head_median": self.head.median,
            "base_median": self.base.median,
            "served": list(self.served),
        }


def self_time_deltas(head: ImportResult, base: ImportResult) -> list[tuple[str, float, str]]:
    """(module, self-cost change, ``"new"``/``"gone"``/``""``), biggest change first."""
    return cost_changes(
        {name: timing.self_cost for name, timing in head.modules.items()},
        {name: timing.self_cost for name, timing in base.modules.items()},
    )


def measure_against(measurer: Measurer, spec: MeasurementSpec, revision: str) -> Comparison:
    """Measure ``spec`` in the working tree and at git ``revision``, interleaved.

    The base side is the whole repository at ``revision``: its copy of the
    package, and every entry of the import path inside the repository, come
    from the revision's tree (:func:`~pytest_importcache.engine.revision.revision_side`).

    Raises :class:`~pytest_importcache.model.errors.RevisionError` (one line) when the
    revision cannot be used, and whatever :meth:`Measurer.measure` raises.
    """
    __tracebackhide__ = True
    python = resolve_python(spec.python)
    location = locate_package(spec.module, measurer.search_path, python=python)
    cache_dir = measurer.cache_dir or default_cache_dir()
    head_path = measurer.import_path_for(spec)
    side = revision_side(location, head_path, revision, cache_dir)
    resolved = side.revision
    # Siblings from the repository compile in every round on both sides: the
    # revision's tree has no bytecode, and the working tree's must not favour the head.
    head, base = measurer.measure_pair(
        spec.replace(import_path=head_path),
        side.location,
        f"at {resolved.name} ({resolved.short})",
        side.import_path,
        source_only=(
            tuple(head for head, _ in side.mapped),
            tuple(base for _, base in side.mapped),
        ),
    )
    interval = ratio_interval(head.values, base.values)
    return Comparison(resolved, head, base, interval, side.served)
