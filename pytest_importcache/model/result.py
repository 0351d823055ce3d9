"""``ImportResult``: the rounds of one (module, flavour) measurement, summarised."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import RecordError
from .records import RoundReport, TracedImport, TreeRow
from .spec import Flavour, Metric, flavour_label
from .stats import STATISTICS, RoundStats, as_statistic, compute_stats, median

__all__ = [
    "Flavour",
    "ImportResult",
    "ModuleTiming",
    "ReusedCount",
    "build_result",
    "cost_changes",
    "flavour_label",
    "importer_tree",
]


@dataclass(frozen=True)
class ReusedCount:
    """Where a reused count came from: when and on which host it was counted, which store."""

    counted_at: str
    counted_on: str
    store: str

    def to_json(self) -> dict[str, Any]:
        """``{"reused": true, "counted_at", "counted_on", "store"}``."""
        return {
            "reused": True,
            "counted_at": self.counted_at,
            "counted_on": self.counted_on,
            "store": self.store,
        }

    @classmethod
    def from_json(cls, data: object, where: str = "reused") -> ReusedCount:
        """The inverse of :meth:`to_json`; :class:`RecordError` names the bad field."""
        if not isinstance(data, dict):
            raise RecordError(f"{where} is {type(data).__name__}, not an object")
        fields = []
        for key in ("counted_at", "counted_on", "store"):
            value = data.get(key)
            if not isinstance(value, str):
                raise RecordError(f"{where}.{key} is {type(value).__name__}, not a text")
            fields.append(value)
        return cls(*fields)


@dataclass(frozen=True)
class ModuleTiming:
    """One module the import loaded: its self and cumulative cost (median over the rounds).

    The costs are in the measurement's ``metric``: seconds for ``"time"``,
    instructions for ``"instructions"``. ``parent`` is the module whose import
    pulled this one in (``None`` for the measured module itself).
    """

    name: str
    self_cost: float
    cumulative_cost: float
    parent: str | None
    metric: Metric = "time"

    @property
    def self_seconds(self) -> float:
        """The self cost of a timed measurement, seconds (``ValueError`` for a count)."""
        return self._seconds(self.self_cost)

    @property
    def cumulative_seconds(self) -> float:
        """The cumulative cost of a timed measurement, seconds (``ValueError`` for a count)."""
        return self._seconds(self.cumulative_cost)

    def _seconds(self, cost: float) -> float:
        if self.metric != "time":
            raise ValueError(f"{self.name}: the costs are {self.metric}, not seconds")
        return cost

    @property
    def row(self) -> TreeRow:
        """This module as a row of the import's tree (what outcomes carry and runs store)."""
        return TreeRow(self.name, self.self_cost, self.cumulative_cost, self.parent)

    @classmethod
    def from_row(cls, row: TreeRow, metric: Metric = "time") -> ModuleTiming:
        """The timing a tree row holds, its costs in ``metric``."""
        return cls(row.name, row.self_cost, row.cumulative_cost, row.importer, metric=metric)


def cost_changes(
    after: Mapping[str, float], before: Mapping[str, float]
) -> list[tuple[str, float, str]]:
    """(module, change of its cost, ``"new"``/``"gone"``/``""``), biggest change first.

    ``after`` and ``before`` map modules to a cost (self seconds or
    instructions); a module only in ``after`` is new, one only in ``before`` gone.
    """
    changes = []
    for name in {*after, *before}:
        delta = after.get(name, 0.0) - before.get(name, 0.0)
        if delta:
            tag = "new" if name not in before else "gone" if name not in after else ""
            changes.append((name, delta, tag))
    changes.sort(key=lambda change: (-abs(change[1]), change[0]))
    return changes


def importer_tree(
    module: str, timings: Iterable[ModuleTiming]
) -> dict[str | None, list[ModuleTiming]]:
    """Modules by importer, biggest cumulative time first; ``None`` holds the roots.

    The measured ``module`` is always a root, even when its parent package's
    import is what pulled it in.
    """
    children: dict[str | None, list[ModuleTiming]] = {}
    for timing in timings:
        parent = timing.parent if timing.name != module else None
        children.setdefault(parent, []).append(timing)
    for siblings in children.values():
        siblings.sort(key=lambda timing: -timing.cumulative_cost)
    return children


@dataclass(frozen=True, eq=False)
class ImportResult:
    """The measurement of one module's import in one flavour.

    ``metric`` is what the rounds measured: ``"time"`` or ``"instructions"``.
    ``values`` holds each counted round's figure in that metric (``wall``
    seconds, or the ``instructions`` counts) and ``stats`` summarises them; the
    statistics' properties (``min``, ``median``, ...) are in that unit too.
    ``wall`` and ``cpu`` hold each counted round's seconds (under callgrind,
    the slowed-down ones). ``modules`` maps every module the import newly loaded (in the order
    their imports completed, the measured module last) to its timing, so
    ``"mylib.core" in result.modules`` asks whether the import loaded it.
    ``file`` is the file the module was imported from, inside the environment.
    ``startup_modules`` is how many modules the interpreter had loaded before the
    import began (its clean start-up, the same for every import on that
    interpreter). ``lazy_modules`` names the modules the import created lazily
    (``importlib.util.LazyLoader``) but never executed: they are not in ``modules``.
    ``pending_lazy`` names the PEP 810 lazy imports (3.15+) still pending after
    the import, never executed and not in ``modules`` either; ``reified`` the
    lazy imports the import itself reified, as (module, ``"file.py:LINE"``):
    nothing was deferred for them. A start-up measurement's ``reified`` are
    those the entry module's import reified; ``reified_in_run`` those the
    command's run reified (the deferred cost landing at first use, expected).
    ``reused`` says where a count reused from the count store came from
    (:mod:`~pytest_importcache.engine.countstore`); ``None`` for one counted now.
    ``peak_memory`` holds each counted round's peak resident set in bytes (the
    round process's, from ``os.wait4``), empty for instructions rounds (under
    valgrind the peak would be valgrind's) and where unknown. ``command`` is a
    start-up measurement's key (``StartupCommand.key``; ``None`` for an
    import); its ``phases`` split each counted round's figure, in the metric's
    unit, into ``"start-up"`` (exec to the first statement), ``"site"``,
    ``"import"`` (the entry module) and ``"run"`` (the rest, to exit): ``(name, values per round)``.
    """

    module: str
    flavour: Flavour
    closure: bool
    python: str
    python_version: str
    file: str
    wall: tuple[float, ...]
    cpu: tuple[float, ...]
    stats: RoundStats
    modules: Mapping[str, ModuleTiming]
    startup_modules: int = 0
    lazy_modules: tuple[str, ...] = ()
    metric: Metric = "time"
    reused: ReusedCount | None = None
    instructions: tuple[int, ...] = ()
    peak_memory: tuple[int, ...] = ()
    command: str | None = None
    phases: tuple[tuple[str, tuple[float, ...]], ...] = ()
    pending_lazy: tuple[str, ...] = ()
    reified: tuple[tuple[str, str], ...] = ()
    reified_in_run: tuple[tuple[str, str], ...] = ()

    @property
    def peak_memory_max(self) -> int | None:
        """The highest peak resident set of the counted rounds, bytes; ``None`` when unknown."""
        return max(self.peak_memory, default=None)

    @property
    def values(self) -> tuple[float, ...]:
        """Each counted round's figure in the result's metric: seconds or instructions."""
        return self.wall if self.metric == "time" else tuple(map(float, self.instructions))

    @property
    def label(self) -> str:
        """``"cold"``, ``"warm"`` or ``"closure-cold"``: the flavour as shown to users."""
        return flavour_label(self.flavour, self.closure)

    @property
    def min(self) -> float:
        """Fastest round, in the metric's unit (seconds or instructions)."""
        return self.stats.min

    @property
    def max(self) -> float:
        """Slowest round, in the metric's unit (seconds or instructions)."""
        return self.stats.max

    @property
    def mean(self) -> float:
        """Mean of the rounds, in the metric's unit (seconds or instructions)."""
        return self.stats.mean

    @property
    def median(self) -> float:
        """Median of the rounds, in the metric's unit (seconds or instructions)."""
        return self.stats.median

    @property
    def stddev(self) -> float:
        """Standard deviation of the rounds, in the metric's unit (seconds or instructions)."""
        return self.stats.stddev

    @property
    def iqr(self) -> float:
        """Interquartile range of the rounds, in the metric's unit (seconds or instructions)."""
        return self.stats.iqr

    @property
    def rounds(self) -> int:
        """Number of counted rounds (warm-up rounds excluded)."""
        return self.stats.rounds

    def statistic(self, name: str) -> float:
        """The named statistic (``min``, ``max``, ``mean`` or ``median``), in the metric's unit."""
        statistic = as_statistic(name)
        if statistic is None:
            raise ValueError(f"unknown statistic {name!r}; choose one of {', '.join(STATISTICS)}")
        value: float = getattr(self.stats, statistic)
        return value

    @property
    def tree(self) -> tuple[TreeRow, ...]:
        """Every module the import loaded as a tree row, in the order of :attr:`modules`."""
        return tuple(timing.row for timing in self.modules.values())

    def slowest(self, count: int = 10) -> list[ModuleTiming]:
        """The ``count`` modules with the largest self cost, costliest first."""
        return sorted(self.modules.values(), key=lambda timing: -timing.self_cost)[:count]

    def chain(self, name: str) -> list[str]:
        """Importers from the measured module down to ``name``: ``[pkg, pkg.helper, decimal]``."""
        names = [name]
        seen = {name}
        timing = self.modules.get(name)
        while timing is not None and timing.parent is not None and timing.parent not in seen:
            names.append(timing.parent)
            seen.add(timing.parent)
            timing = self.modules.get(timing.parent)
        return names[::-1]


def _cumulative(call: TracedImport, metric: Metric) -> int:
    """A call's cumulative cost in ``metric``: nanoseconds or instructions."""
    if metric == "time":
        return call.cumulative_ns
    return call.cumulative_instructions or 0


def _traced_tree(
    traced: Sequence[TracedImport], loaded: set[str], metric: Metric
) -> dict[str, tuple[int, int, str | None]]:
    """(self cost, cumulative cost, importer) per module, from the child's import calls.

    The costs are nanoseconds or instructions, as ``metric`` says. A module
    belongs to the first call that loaded it (the innermost, when ``import
    a.b`` loads ``a`` whose ``__init__`` imports ``a.b``). Its importer is the
    module of the nearest enclosing call that loaded one, and its self cost is
    its cumulative cost less that of the modules it imported.
    """
    calls = {call.call_id: call for call in traced}
    loaders: dict[str, TracedImport] = {}
    for call in traced:
        if call.loaded and call.name in loaded and call.name not in loaders:
            loaders[call.name] = call
    module_of_call = {call.call_id: name for name, call in loaders.items()}
    importers: dict[str, str | None] = {}
    imported_cost: dict[str, int] = {}
    for name, call in loaders.items():
        enclosing = call.parent_id
        while enclosing and enclosing not in module_of_call and enclosing in calls:
            enclosing = calls[enclosing].parent_id
        importer = module_of_call.get(enclosing)
        importers[name] = importer
        if importer is not None:
            imported_cost[importer] = imported_cost.get(importer, 0) + _cumulative(call, metric)
    return {
        name: (
            max(_cumulative(call, metric) - imported_cost.get(name, 0), 0),
            _cumulative(call, metric),
            importers[name],
        )
        for name, call in loaders.items()
    }


def _module_timings(reports: Sequence[RoundReport], metric: Metric) -> dict[str, ModuleTiming]:
    """Per-module median self/cumulative costs over the rounds, in completion order.

    Instruction rounds count modules only when detailed: the others are left out.
    """
    if metric == "instructions":
        reports = [
            report
            for report in reports
            if any(call.cumulative_instructions is not None for call in report.traced)
        ] or reports[:1]
    unit = 1e9 if metric == "time" else 1
    loaded = reports[0].loaded
    loaded_set = set(loaded)
    self_times: dict[str, list[int]] = {name: [] for name in loaded}
    cumulative_times: dict[str, list[int]] = {name: [] for name in loaded}
    parents: dict[str, str | None] = {}
    for report in reports:
        for name, (self_cost, cumulative_cost, parent) in _traced_tree(
            report.traced, loaded_set, metric
        ).items():
            self_times[name].append(self_cost)
            cumulative_times[name].append(cumulative_cost)
            parents.setdefault(name, parent)
    return {
        name: ModuleTiming(
            name=name,
            self_cost=median(self_times[name]) / unit if self_times[name] else 0.0,
            cumulative_cost=(
                median(cumulative_times[name]) / unit if cumulative_times[name] else 0.0
            ),
            parent=parents.get(name),
            metric=metric,
        )
        for name in loaded
    }


def build_result(
    module: str,
    flavour: Flavour,
    closure: bool,
    python: str,
    reports: Sequence[RoundReport],
    *,
    metric: Metric = "time",
) -> ImportResult:
    """Summarise the counted rounds of one measurement in ``metric``."""
    if not reports:
        raise ValueError("a result needs at least one counted round")
    wall = tuple(report.wall_ns / 1e9 for report in reports)
    instructions = tuple(report.instructions or 0 for report in reports)
    if metric == "instructions" and any(report.instructions is None for report in reports):
        raise ValueError("an instructions result needs rounds that counted instructions")
    values = wall if metric == "time" else tuple(map(float, instructions))
    peaks = [report.peak_memory for report in reports]
    return ImportResult(
        module=module,
        flavour=flavour,
        closure=closure,
        python=python,
        python_version=reports[0].python_version,
        file=reports[0].origin,
        wall=wall,
        cpu=tuple(report.cpu_ns / 1e9 for report in reports),
        stats=compute_stats(values),
        modules=_module_timings(reports, metric),
        startup_modules=reports[0].startup_modules,
        lazy_modules=reports[0].lazy,
        metric=metric,
        instructions=instructions if metric == "instructions" else (),
        peak_memory=(
            tuple(peak for peak in peaks if peak is not None)
            if metric == "time" and None not in peaks
            else ()
        ),
        command=reports[0].command,
        phases=_phases(reports, metric),
        pending_lazy=reports[0].pending_lazy,
        reified=reports[0].reified,
        reified_in_run=reports[0].reified_in_run,
    )


def _phases(
    reports: Sequence[RoundReport], metric: Metric
) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """Each phase's figure per round, in ``metric``'s unit (seconds or instructions)."""
    if not reports[0].phases:
        return ()
    unit = 1e9 if metric == "time" else 1
    names = [name for name, _ in reports[0].phases]
    per_round = [dict(report.phases) for report in reports]
    return tuple(
        (name, tuple(phases.get(name, 0) / unit for phases in per_round)) for name in names
    )
