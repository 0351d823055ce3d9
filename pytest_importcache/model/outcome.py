"""``MeasurementOutcome``: one measurement as a test saw it, judged, in a JSON-safe form.

An outcome carries what was measured (module, flavour, rounds), the result's
summary, the budget it was held to with the scale factor applied, and the
verdict. It is built once, where the measurement ran, and travels from there
to where it is reported (from an xdist worker to the controller, attached to
the test's report): the summary, pytest-benchmark storage, the HTML report
and comparisons read nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from .errors import RecordError
from .noise import count_disagreement, measurement_noise
from .records import SameRunBaseline, TreeRow
from .result import ImportResult, ModuleTiming, ReusedCount
from .spec import Metric, flavour_label, measurement_suffix, metric_label
from .stats import median
from .units import headroom, one_line

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
    or comparing. ``modules`` holds every module the import loaded as a
    :class:`~pytest_importcache.model.records.TreeRow`. ``baseline`` is the
    same-run comparison with ``importcache_baseline``, when one was made (see
    :func:`baseline_record`). ``reused`` says where a count reused from the
    count store was first counted (a
    :class:`~pytest_importcache.model.result.ReusedCount`); ``None`` for one
    counted now. ``unjudged`` is
    a budget the marker wrote only in the other metric's unit (``"warm='25ms'"``
    for a count), measured but not judged. ``pending_lazy`` and ``reified`` are
    the result's PEP 810 lazy imports (see
    :class:`~pytest_importcache.model.result.ImportResult`).
    for a count), measured but not judged. ``command`` is a start-up
    measurement's command label (``None`` for an import; ``module`` is then
    the package under test), ``phases`` its breakdown (start-up, site,
    import, run: values per round in the metric's unit). ``peak_memory`` is
    the highest round's peak resident memory in bytes (``None`` for counts),
    ``bare_peak_memory`` a bare interpreter's beside it. ``lazy_imports`` is
    the PEP 810 mode the rounds ran under (``None``: the default).
    ``reified_in_run`` are a start-up measurement's lazy imports reified by
    the command's run, at first use (expected: shown, never judged).
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
    modules: tuple[TreeRow, ...]
    timed: bool = True
    scale: float = 1.0
    startup_modules: int = 0
    lazy_modules: tuple[str, ...] = ()
    metric: str = "time"
    baseline: SameRunBaseline | None = None
    reused: ReusedCount | None = None
    unjudged: str = ""
    pending_lazy: tuple[str, ...] = ()
    reified: tuple[tuple[str, str], ...] = ()
    command: str | None = None
    peak_memory: int | None = None
    bare_peak_memory: int | None = None
    phases: tuple[tuple[str, tuple[float, ...]], ...] = ()
    lazy_imports: str | None = None
    reified_in_run: tuple[tuple[str, str], ...] = ()

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
        baseline: SameRunBaseline | None = None,
        unjudged: str = "",
        lazy_imports: str | None = None,
        bare_peak_memory: int | None = None,
    ) -> MeasurementOutcome:
        """The outcome of ``result``, measured by the test ``nodeid``.

        ``lazy_imports`` is the PEP 810 mode the spec asked for (``None``: the
        interpreter's default); ``bare_peak_memory`` a bare interpreter's peak
        beside the result's.
        """
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
            modules=result.tree,
            timed=timed,
            scale=scale,
            startup_modules=result.startup_modules,
            lazy_modules=result.lazy_modules,
            metric=result.metric,
            baseline=baseline,
            reused=result.reused,
            unjudged=unjudged,
            pending_lazy=result.pending_lazy,
            reified=result.reified,
            reified_in_run=result.reified_in_run,
            command=result.command,
            peak_memory=result.peak_memory_max,
            bare_peak_memory=bare_peak_memory,
            phases=result.phases,
            lazy_imports=lazy_imports,
        )

    @property
    def label(self) -> str:
        """``"cold"``, ``"warm"`` or ``"closure-cold"``."""
        return flavour_label(self.flavour, self.closure)

    @property
    def measured(self) -> str:
        """What was measured, as shown: the module, or a start-up's command label."""
        return self.module if self.command is None else one_line(self.command)

    @property
    def name_suffix(self) -> str:
        """The measurement in its benchmark's name: ``mylib-warm``, ``mycli_--help-warm``.

        See :func:`~pytest_importcache.model.spec.measurement_suffix`.
        """
        return measurement_suffix(
            self.module,
            self.label,
            self.metric,
            command=self.command,
            lazy_imports=self.lazy_imports,
        )

    @property
    def verdict(self) -> bool | None:
        """Whether the test's judgement of this measurement passed; ``None`` when none judged it.

        Its budget's verdict (``passed``), failed as well when the import is
        slower than the same-run baseline revision (``importcache_baseline``).
        """
        if self.baseline is not None and self.baseline.slower:
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
        return [ModuleTiming.from_row(row, metric) for row in self.modules]

    @property
    def self_costs(self) -> dict[str, float]:
        """Every loaded module's self cost (seconds or instructions)."""
        return {row.name: row.self_cost for row in self.modules}

    @property
    def slowest(self) -> list[TreeRow]:
        """The rows of the modules with the largest self cost, costliest first."""
        return sorted(self.modules, key=lambda row: -row.self_cost)[:SLOWEST_RECORDED]

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
        if self.metric == "instructions" and (disagreement := count_disagreement(self.values)):
            return disagreement
        return measurement_noise(self.values, self.headroom)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only: tree rows as lists, the baseline as its JSON object."""
        data = {field.name: getattr(self, field.name) for field in fields(self)}
        data["values"] = list(self.values)
        data["lazy_modules"] = list(self.lazy_modules)
        data["pending_lazy"] = list(self.pending_lazy)
        data["reified"] = [list(pair) for pair in self.reified]
        data["reified_in_run"] = [list(pair) for pair in self.reified_in_run]
        data["modules"] = [row.to_json() for row in self.modules]
        data["baseline"] = None if self.baseline is None else self.baseline.to_json()
        data["reused"] = None if self.reused is None else self.reused.to_json()
        data["phases"] = [[name, list(values)] for name, values in self.phases]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeasurementOutcome:
        """The inverse of :meth:`to_json`; :class:`RecordError` for a malformed tree or baseline."""
        if not isinstance(data, dict):
            raise RecordError(f"outcome is {type(data).__name__}, not an object")
        given = dict(data)
        given["values"] = tuple(given["values"])
        where = f"outcome of {given.get('nodeid')!r}"
        modules = given["modules"]
        if not isinstance(modules, list | tuple):
            raise RecordError(f"{where}: modules is not a list")
        given["modules"] = tuple(TreeRow.from_json(row, f"{where}: modules") for row in modules)
        given["lazy_modules"] = tuple(given.get("lazy_modules", ()))
        given["pending_lazy"] = tuple(given.get("pending_lazy", ()))
        given["reified"] = tuple(tuple(pair) for pair in given.get("reified", ()))
        given["reified_in_run"] = tuple(tuple(pair) for pair in given.get("reified_in_run", ()))
        phases = given.get("phases", ())
        if not isinstance(phases, list | tuple) or not all(
            isinstance(phase, list | tuple) and len(phase) == 2 and isinstance(phase[0], str)
            for phase in phases
        ):
            raise RecordError(f"{where}: phases is not a list of [name, values] pairs")
        given["phases"] = tuple((str(name), tuple(values)) for name, values in phases)
        if given.get("reused") is not None:
            given["reused"] = ReusedCount.from_json(given["reused"], f"{where}: reused")
        if given.get("baseline") is not None:
            given["baseline"] = SameRunBaseline.from_json(given["baseline"], f"{where}: baseline")
        return cls(**given)


def baseline_record(comparison: Comparison, threshold: float) -> SameRunBaseline:
    """What an outcome keeps of a same-run comparison judged at ``threshold``.

    The :class:`~pytest_importcache.model.records.SameRunBaseline` of
    :meth:`~pytest_importcache.model.comparison.Comparison.same_run_baseline`,
    with the :data:`CHANGED_RECORDED` modules whose self cost changed most.
    """
    return comparison.same_run_baseline(threshold, changed=CHANGED_RECORDED)
