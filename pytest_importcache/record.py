"""``MeasurementRecord``: one measurement as a test saw it, in a JSON-safe form.

Records travel from where the measurement ran to where it is reported: from
an xdist worker to the controller (attached to the test's report), to the
terminal summary, and into pytest-benchmark storage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .result import ImportResult
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
    worth storing or comparing. ``slowest`` lists (module, self seconds, cumulative seconds) of the
    slowest modules; ``self_seconds`` holds every loaded module's self time.
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
    module_count: int
    wall: tuple[float, ...]
    python_version: str
    file: str
    slowest: tuple[tuple[str, float, float], ...]
    self_seconds: tuple[tuple[str, float], ...]
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
            module_count=len(result.modules),
            wall=result.wall,
            python_version=result.python_version,
            file=result.file,
            slowest=tuple(
                (timing.name, timing.self_seconds, timing.cumulative_seconds)
                for timing in result.slowest(SLOWEST_RECORDED)
            ),
            self_seconds=tuple(
                (name, timing.self_seconds) for name, timing in result.modules.items()
            ),
            timed=timed,
        )

    @property
    def label(self) -> str:
        """``"cold"``, ``"warm"`` or ``"closure-cold"``."""
        return "closure-cold" if self.closure else self.flavour

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
        fields["slowest"] = tuple(tuple(entry) for entry in fields["slowest"])
        fields["self_seconds"] = tuple(tuple(entry) for entry in fields["self_seconds"])
        return cls(**fields)
