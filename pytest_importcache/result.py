"""``ImportResult``: the rounds of one (module, flavour) measurement, summarised."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .runner import RoundReport, TracedImport
from .spec import Flavour, flavour_label
from .stats import STAT_NAMES, RoundStats, compute_stats, median

__all__ = [
    "Flavour",
    "ImportResult",
    "ModuleTiming",
    "build_result",
    "flavour_label",
    "importer_tree",
]


@dataclass(frozen=True)
class ModuleTiming:
    """One module the import loaded: median self and cumulative seconds over the rounds.

    ``parent`` is the module whose import pulled this one in (``None`` for the
    measured module itself).
    """

    name: str
    self_seconds: float
    cumulative_seconds: float
    parent: str | None


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
        siblings.sort(key=lambda timing: -timing.cumulative_seconds)
    return children


@dataclass(frozen=True, eq=False)
class ImportResult:
    """The measurement of one module's import in one flavour.

    ``wall`` and ``cpu`` hold each counted round's seconds; ``stats`` summarises
    ``wall``. ``modules`` maps every module the import newly loaded (in the order
    their imports completed, the measured module last) to its timing, so
    ``"mylib.core" in result.modules`` asks whether the import loaded it.
    ``file`` is the file the module was imported from, inside the environment.
    ``startup_modules`` is how many modules the interpreter had loaded before the
    import began (its clean start-up, the same for every import on that
    interpreter). ``lazy_modules`` names the modules the import created lazily
    (``importlib.util.LazyLoader``) but never executed: they are not in ``modules``.
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

    @property
    def label(self) -> str:
        """``"cold"``, ``"warm"`` or ``"closure-cold"``: the flavour as shown to users."""
        return flavour_label(self.flavour, self.closure)

    @property
    def min(self) -> float:
        """Fastest round, seconds."""
        return self.stats.min

    @property
    def max(self) -> float:
        """Slowest round, seconds."""
        return self.stats.max

    @property
    def mean(self) -> float:
        """Mean of the rounds, seconds."""
        return self.stats.mean

    @property
    def median(self) -> float:
        """Median of the rounds, seconds."""
        return self.stats.median

    @property
    def stddev(self) -> float:
        """Standard deviation of the rounds, seconds."""
        return self.stats.stddev

    @property
    def iqr(self) -> float:
        """Interquartile range of the rounds, seconds."""
        return self.stats.iqr

    @property
    def rounds(self) -> int:
        """Number of counted rounds (warm-up rounds excluded)."""
        return self.stats.rounds

    def statistic(self, name: str) -> float:
        """The named statistic (``min``, ``max``, ``mean`` or ``median``), seconds."""
        if name not in STAT_NAMES:
            raise ValueError(f"unknown statistic {name!r}; choose one of {', '.join(STAT_NAMES)}")
        value: float = getattr(self.stats, name)
        return value

    def slowest(self, count: int = 10) -> list[ModuleTiming]:
        """The ``count`` modules with the largest self time, slowest first."""
        return sorted(self.modules.values(), key=lambda timing: -timing.self_seconds)[:count]

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


def _traced_tree(
    traced: Sequence[TracedImport], loaded: set[str]
) -> dict[str, tuple[int, int, str | None]]:
    """(self ns, cumulative ns, importer) per module, from the child's import calls.

    A module belongs to the first call that loaded it (the innermost, when
    ``import a.b`` loads ``a`` whose ``__init__`` imports ``a.b``). Its importer
    is the module of the nearest enclosing call that loaded one, and its self
    time is its cumulative time less that of the modules it imported.
    """
    calls = {call.call_id: call for call in traced}
    loaders: dict[str, TracedImport] = {}
    for call in traced:
        if call.loaded and call.name in loaded and call.name not in loaders:
            loaders[call.name] = call
    module_of_call = {call.call_id: name for name, call in loaders.items()}
    importers: dict[str, str | None] = {}
    imported_ns: dict[str, int] = {}
    for name, call in loaders.items():
        enclosing = call.parent_id
        while enclosing and enclosing not in module_of_call and enclosing in calls:
            enclosing = calls[enclosing].parent_id
        importer = module_of_call.get(enclosing)
        importers[name] = importer
        if importer is not None:
            imported_ns[importer] = imported_ns.get(importer, 0) + call.cumulative_ns
    return {
        name: (
            max(call.cumulative_ns - imported_ns.get(name, 0), 0),
            call.cumulative_ns,
            importers[name],
        )
        for name, call in loaders.items()
    }


def _module_timings(reports: Sequence[RoundReport]) -> dict[str, ModuleTiming]:
    """Per-module median self/cumulative times over the rounds, in completion order."""
    loaded = reports[0].loaded
    loaded_set = set(loaded)
    self_times: dict[str, list[int]] = {name: [] for name in loaded}
    cumulative_times: dict[str, list[int]] = {name: [] for name in loaded}
    parents: dict[str, str | None] = {}
    for report in reports:
        for name, (self_ns, cumulative_ns, parent) in _traced_tree(
            report.traced, loaded_set
        ).items():
            self_times[name].append(self_ns)
            cumulative_times[name].append(cumulative_ns)
            parents.setdefault(name, parent)
    return {
        name: ModuleTiming(
            name=name,
            self_seconds=median(self_times[name]) / 1e9 if self_times[name] else 0.0,
            cumulative_seconds=(
                median(cumulative_times[name]) / 1e9 if cumulative_times[name] else 0.0
            ),
            parent=parents.get(name),
        )
        for name in loaded
    }


def build_result(
    module: str,
    flavour: Flavour,
    closure: bool,
    python: str,
    reports: Sequence[RoundReport],
) -> ImportResult:
    """Summarise the counted rounds of one measurement."""
    if not reports:
        raise ValueError("a result needs at least one counted round")
    wall = tuple(report.wall_ns / 1e9 for report in reports)
    return ImportResult(
        module=module,
        flavour=flavour,
        closure=closure,
        python=python,
        python_version=reports[0].python_version,
        file=reports[0].origin,
        wall=wall,
        cpu=tuple(report.cpu_ns / 1e9 for report in reports),
        stats=compute_stats(wall),
        modules=_module_timings(reports),
        startup_modules=reports[0].startup_modules,
        lazy_modules=reports[0].lazy,
    )
