"""A same-run comparison's values: the revision, both sides' results, their ratio."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .interval import RatioInterval
from .noise import comparison_noise
from .records import SameRunBaseline
from .result import ImportResult, cost_changes

__all__ = ["Comparison", "Revision", "self_time_deltas"]


@dataclass(frozen=True)
class Revision:
    """A git revision as the user named it (``name``) and the commit it resolved to."""

    repository: Path
    name: str
    commit: str

    @property
    def short(self) -> str:
        """The commit's first 12 hex digits."""
        return self.commit[:12]

    def __str__(self) -> str:
        if self.name.lower() == self.commit.lower() or self.commit.startswith(self.name):
            return self.short
        return f"{self.name} ({self.short})"


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

    def same_run_baseline(self, threshold: float, *, changed: int) -> SameRunBaseline:
        """The record an outcome keeps of this comparison, judged at ``threshold``.

        It holds the ``changed`` modules whose self cost changed most and the
        base's whole tree.
        """
        return SameRunBaseline(
            **self._shared_fields(),
            threshold=threshold,
            slower=self.slower(threshold),
            noise=self.noise(threshold),
            changed=tuple(self_time_deltas(self.head, self.base)[:changed]),
            base_modules=self.base.tree,
        )

    def to_json(self) -> dict[str, Any]:
        """The revision, the ratio and its interval, each side's rounds (seconds or counts).

        ``served`` lists the files git ignores that both sides took from the working tree.
        (The command line's ``--json``; outcomes keep :meth:`same_run_baseline`.)
        """
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in self._shared_fields().items()
        }

    def _shared_fields(self) -> dict[str, Any]:
        """What the JSON and the record share: the revision, the ratio, each side's rounds."""
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
            "head_values": tuple(self.head.values),
            "base_values": tuple(self.base.values),
            "head_median": self.head.median,
            "base_median": self.base.median,
            "served": tuple(self.served),
        }


def self_time_deltas(head: ImportResult, base: ImportResult) -> list[tuple[str, float, str]]:
    """(module, self-cost change, ``"new"``/``"gone"``/``""``), biggest change first."""
    return cost_changes(
        {name: timing.self_cost for name, timing in head.modules.items()},
        {name: timing.self_cost for name, timing in base.modules.items()},
    )
