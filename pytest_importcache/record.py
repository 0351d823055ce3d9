"""``MeasurementRecord``: one measurement as a test saw it, in a JSON-safe form.

Records travel from where the measurement ran to where it is reported: from
an xdist worker to the controller (attached to the test's report), to the
terminal summary, and into pytest-benchmark storage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .result import ImportResult, ModuleTiming, flavour_label
from .stats import median

__all__ = ["SLOWEST_RECORDED", "MeasurementRecord"]

SLOWEST_RECORDED = 20


@dataclass(frozen=True)
class MeasurementRecord:
    """A measurement, the test that made it, and the time budget it was held to.

    ``budget`` is the scaled time budget in seconds (``None`` when the flavour
    had no time budget); ``passed`` is ``None`` for a measurement no budget
    judged. ``timed`` is false for a measurement made only to count modules
    (one round for ``max_modules``/``forbid``): its time is not a statistic
    worth storing or comparing. ``modules`` holds every module the import
    loaded as (name, self seconds, cumulative seconds, importer).
    """

    nodeid: str
    test_name: str
    module: str
    flavour: str
    closure: bool
    stat: str
    statistic: float
    budget: float | None
    passed: bool | None
    wall: tuple[float, ...]
    python_version: str
    file: str
    modules: tuple[tuple[str, float, float, str | None], ...]
    timed: bool = True

    @classmethod
    def from_result(
        cls,
        result: ImportResult,
        *,
        nodeid: str,
        test_name: str,
        stat: str,
        budget: float | None = None,
        passed: bool | None = None,
        timed: bool = True,
    ) -> MeasurementRecord:
        """The record of ``result`` measured by the test ``nodeid``."""
        return cls(
            nodeid=nodeid,
            test_name=test_name,
            module=result.module,
            flavour=result.flavour,
            closure=result.closure,
            stat=stat,
            statistic=result.statistic(stat),
            budget=budget,
            passed=passed,
            wall=result.wall,
            python_version=result.python_version,
            file=result.file,
            modules=tuple(
                (timing.name, timing.self_seconds, timing.cumulative_seconds, timing.parent)
                for timing in result.modules.values()
            ),
            timed=timed,
        )

    @property
    def label(self) -> str:
        """``"cold"``, ``"warm"`` or ``"closure-cold"``."""
        return flavour_label(self.flavour, self.closure)

    @property
    def module_count(self) -> int:
        """How many modules the import loaded."""
        return len(self.modules)

    @property
    def timings(self) -> list[ModuleTiming]:
        """Every loaded module's timing."""
        return [ModuleTiming(*entry) for entry in self.modules]

    @property
    def self_seconds(self) -> dict[str, float]:
        """Every loaded module's self time."""
        return {name: self_time for name, self_time, _, _ in self.modules}

    @property
    def slowest(self) -> list[tuple[str, float, float]]:
        """(module, self seconds, cumulative seconds) of the modules with the largest self time."""
        ranked = sorted(self.modules, key=lambda entry: -entry[1])[:SLOWEST_RECORDED]
        return [(name, self_time, cumulative) for name, self_time, cumulative, _ in ranked]

    @property
    def median(self) -> float:
        """Median of the rounds, seconds."""
        return median(self.wall)

    @property
    def headroom(self) -> float | None:
        """Fraction of the budget left over (negative when overspent); ``None`` without one."""
        if self.budget is None:
            return None
        return (self.budget - self.statistic) / self.budget

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeasurementRecord:
        """The inverse of :meth:`to_json`."""
        fields = dict(data)
        fields["wall"] = tuple(fields["wall"])
        fields["modules"] = tuple(tuple(entry) for entry in fields["modules"])
        return cls(**fields)
