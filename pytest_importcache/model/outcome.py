"""``MeasurementOutcome``: one measurement as a test saw it, judged, in a JSON-safe form.

An outcome carries what was measured (module, flavour, rounds), the result's
summary, the budget it was held to with the scale factor applied, and the
verdict. It is built once, where the measurement ran, and travels from there
to where it is reported (from an xdist worker to the controller, attached to
the test's report): the summary, pytest-benchmark storage, the HTML report
and comparisons read nothing else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .result import ImportResult, ModuleTiming
from .spec import Metric, flavour_label, metric_label
from .stats import median
from .units import headroom

if TYPE_CHECKING:
    from pytest_importcache.model.comparison import Comparison

__all__ = ["SLOWEST_RECORDED", "MeasurementOutcome", "baseline_record"]

SLOWEST_RECORDED = 20
CHANGED_RECORDED = 10


@dataclass(frozen=True)
class MeasurementOutcome:
    """A measurement, the test that made it, and the cold or warm budget it was held to.

    ``metric`` is ``"time"`` or ``"instructions"``: ``statistic``, ``budget``,
    each round's figure in ``values`` and the module costs are seconds or
    instruction counts. ``budget`` is the scaled budget (``None`` when the
    flavour had none) and ``scale`` the factor that scaled it (time budgets
    only); ``passed`` is ``None`` for a measurement no budget judged. ``timed``
    is false for a measurement made only to count modules (one round for
    ``max_modules``/``forbid``): its figure is not a statistic worth storing
    or comparing. ``modules`` holds every module the import loaded as (name,
    self cost, cumulative cost, importer). ``baseline`` is the same-run
    comparison with ``importcache_baseline``, when one was made (see
    :func:`baseline_record`). ``reused`` says where a count reused from the
    count store was first counted (``{"reused": true, "counted_at",
    "counted_on", "store"}``); ``None`` for one counted now. ``unjudged`` is
    a budget the marker wrote only in the other metric's unit (``"warm='25ms'"``
    for a count), measured but not judged.
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
    values: tuple[float, ...]
    python_version: str
    file: str
    modules: tuple[tuple[str, float, float, str | None], ...]
    timed: bool = True
    scale: float = 1.0
    startup_modules: int = 0
    lazy_modules: tuple[str, ...] = ()
    metric: str = "time"
    baseline: dict[str, Any] | None = None
    reused: dict[str, Any] | None = None
    unjudged: str = ""

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
        scale: float = 1.0,
        baseline: dict[str, Any] | None = None,
        unjudged: str = "",
    ) -> MeasurementOutcome:
        """The outcome of ``result``, measured by the test ``nodeid``."""
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
            values=result.values,
            python_version=result.python_version,
            file=result.file,
            modules=tuple(
                (timing.name, timing.self_cost, timing.cumulative_cost, timing.parent)
                for timing in result.modules.values()
            ),
            timed=timed,
            scale=scale,
            startup_modules=result.startup_modules,
            lazy_modules=result.lazy_modules,
            metric=result.metric,
            baseline=baseline,
            reused=result.reused.to_json() if result.reused is not None else None,
            unjudged=unjudged,
        )

    @property
    def label(self) -> str:
        """``"cold"``, ``"warm"`` or ``"closure-cold"``."""
        return flavour_label(self.flavour, self.closure)

    @property
    def verdict(self) -> bool | None:
        """Whether the test's judgement of this measurement passed; ``None`` when none judged it.

        Its budget's verdict (``passed``), failed as well when the import is
        slower than the same-run baseline revision (``importcache_baseline``).
        """
        if self.baseline is not None and self.baseline.get("slower"):
            return False
        return self.passed

    @property
    def label_with_metric(self) -> str:
        """The label, with ``instructions`` after it for a count: ``"warm instructions"``."""
        return metric_label(self.label, self.metric)

    @property
    def module_count(self) -> int:
        """How many modules the import loaded."""
        return len(self.modules)

    @property
    def timings(self) -> list[ModuleTiming]:
        """Every loaded module's timing."""
        metric: Metric = "instructions" if self.metric == "instructions" else "time"
        return [ModuleTiming(*entry, metric=metric) for entry in self.modules]

    @property
    def self_costs(self) -> dict[str, float]:
        """Every loaded module's self cost (seconds or instructions)."""
        return {name: self_time for name, self_time, _, _ in self.modules}

    @property
    def slowest(self) -> list[tuple[str, float, float]]:
        """(module, self cost, cumulative cost) of the modules with the largest self cost."""
        ranked = sorted(self.modules, key=lambda entry: -entry[1])[:SLOWEST_RECORDED]
        return [(name, self_time, cumulative) for name, self_time, cumulative, _ in ranked]

    @property
    def median(self) -> float:
        """Median of the rounds, in the metric's unit."""
        return median(self.values)

    @property
    def headroom(self) -> float | None:
        """Fraction of the budget left over (negative when overspent); ``None`` without one."""
        return None if self.budget is None else headroom(self.statistic, self.budget)

    @property
    def noise(self) -> str:
        """Why the rounds cannot support the budget (or a suggestion); ``""`` when they can.

        The rule is :func:`~pytest_importcache.model.noise.measurement_noise`'s; counts
        that differ between rounds say so
        (:func:`~pytest_importcache.model.noise.count_disagreement`).
        """
        if not self.timed:
            return ""
        from .noise import count_disagreement, measurement_noise

        if self.metric == "instructions" and (disagreement := count_disagreement(self.values)):
            return disagreement
        return measurement_noise(self.values, self.headroom)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeasurementOutcome:
        """The inverse of :meth:`to_json`."""
        fields = dict(data)
        fields["values"] = tuple(fields["values"])
        fields["modules"] = tuple(tuple(entry) for entry in fields["modules"])
        fields["lazy_modules"] = tuple(fields.get("lazy_modules", ()))
        return cls(**fields)


def baseline_record(comparison: Comparison, threshold: float) -> dict[str, Any]:
    """What an outcome keeps of a same-run comparison: JSON types only.

    ``{"revision", "commit", "ratio", "low", "high", "confidence", "method",
    "estimator", "statistic", "head", "base", "head_values", "base_values",
    "head_median", "base_median", "threshold", "slower", "noise", "changed":
    [[module, self-cost change, "new"/"gone"/""]], "base_modules": [[module,
    self cost, cumulative cost, importer]]}``: the base's whole tree, which the
    report draws the diff icicle against.
    """
    from pytest_importcache.model.comparison import self_time_deltas

    return {
        **comparison.to_json(),
        "threshold": threshold,
        "slower": comparison.slower(threshold),
        "noise": comparison.noise(threshold),
        "changed": [
            [name, delta, tag]
            for name, delta, tag in self_time_deltas(comparison.head, comparison.base)[
                :CHANGED_RECORDED
            ]
        ],
        "base_modules": [
            [timing.name, timing.self_cost, timing.cumulative_cost, timing.parent]
            for timing in comparison.base.modules.values()
        ],
    }
