"""Budgets: parse ``"25ms"`` or ``"45M"``, model the ``import_budget`` marker, judge results.

Everything here is a pure function of its arguments, so the parsing rules and
the verdicts are tested without running pytest.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import BudgetError, LocateError
from .spec import METRICS, Metric, as_metric, check_module_name
from .stats import STATISTICS, as_statistic
from .units import cost_name, headroom, parse_cost, shorten

if TYPE_CHECKING:
    from .result import ImportResult

__all__ = [
    "ImportBudget",
    "Verdict",
    "judge",
]

MARKER_NAME = "import_budget"
MARKER_SIGNATURE = (
    "import_budget(module, *, cold=None, warm=None, max_modules=None, forbid=(), "
    "stat=None, rounds=None, closure=False, metric=None)"
)
MARKER_KEYWORDS = (
    "cold",
    "warm",
    "max_modules",
    "forbid",
    "stat",
    "rounds",
    "closure",
    "metric",
)

Kind = Literal["cold", "warm", "max_modules", "forbid"]


# One-shot iterators given as ``forbid``, by id, with what they yielded. A marker
# object is shared by every test it applies to (a class or module ``pytestmark``)
# and read once per test, so a generator must be read once per process and the
# same patterns returned every time. The iterator is kept alive alongside its
# patterns, so its id cannot be reused by another object.
_MATERIALISED: dict[int, tuple[Iterator[object], tuple[object, ...]]] = {}


def _forbid_patterns(prefix: str, value: object) -> tuple[str, ...]:
    """The ``forbid`` argument as a tuple of non-empty glob patterns.

    A str is one pattern; any other iterable (a list, a tuple, a set, a
    generator, ``map(...)``, ``itertools.chain(...)``; a dict gives its keys)
    is read once and every element must be a non-empty str; bytes are refused.
    Raises :class:`BudgetError` naming the argument and the first bad element.
    """
    patterns: tuple[object, ...]
    if isinstance(value, str):
        patterns, shown = (value,), shorten(value)
    elif not isinstance(value, Iterable) or isinstance(value, bytes | bytearray):
        raise BudgetError(
            f"{prefix}: forbid={shorten(value)} is not a list of module name patterns "
            "(write forbid=['numpy', 'pandas.*'])"
        )
    else:
        try:
            if isinstance(value, Iterator):
                if id(value) not in _MATERIALISED:
                    _MATERIALISED[id(value)] = (value, tuple(value))
                patterns = _MATERIALISED[id(value)][1]
            else:
                patterns = tuple(value)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {''.join(str(exc).splitlines()[:1])}"
            raise BudgetError(
                f"{prefix}: forbid={shorten(value)} could not be read: {detail}"
            ) from None
        if isinstance(value, Iterator):
            shown = f"{type(value).__name__} yielding {shorten(list(patterns))}"
        else:
            shown = shorten(value)
    for pattern in patterns:
        if not (isinstance(pattern, str) and pattern):
            raise BudgetError(
                f"{prefix}: forbid={shown} is not a list of module name patterns: "
                f"{shorten(pattern)} is not a non-empty str"
            )
    return tuple(str(pattern) for pattern in patterns)


def _marker_module(args: Sequence[object], arguments: dict[str, object]) -> str:
    """The marker's module, by position or keyword (taken out of ``arguments``), validated."""
    if len(args) > 1:
        raise BudgetError(
            f"{MARKER_NAME}: takes one positional argument (the module), got {len(args)}"
        )
    if args and "module" in arguments:
        raise BudgetError(f"{MARKER_NAME}: module given both by position and as keyword")
    if not args and "module" not in arguments:
        raise BudgetError(f"{MARKER_NAME}: the module to import is missing")
    module = args[0] if args else arguments["module"]
    arguments.pop("module", None)
    if not isinstance(module, str):
        raise BudgetError(f"{MARKER_NAME}: module={shorten(module)} is not a module name (a str)")
    try:
        check_module_name(module)
    except LocateError as exc:
        raise BudgetError(f"{MARKER_NAME}: module={exc}") from None
    return module


def _cost_argument(prefix: str, name: str, value: object, metric: Metric) -> float | None:
    """A cold or warm budget in ``metric`` (seconds or instructions), or ``None`` when not given."""
    if value is None:
        return None
    try:
        return parse_cost(value, metric)
    except BudgetError as exc:
        raise BudgetError(f"{prefix}: {name}={exc}") from None


_DURATION_UNIT = re.compile(r"\d\s*(?:ns|us|µs|ms|s)\s*$")
_COUNT_SUFFIX = re.compile(r"\d\s*[kKMG]\s*$")


def unit_metric(value: object) -> Metric | None:
    """The metric a budget's unit names: ``'25ms'`` time, ``'45M'`` instructions; else ``None``.

    A bare number (``0.025``, ``45_000_000``, ``"1200"``) names none: it is in
    the metric the budget is measured in.
    """
    if isinstance(value, str):
        if _DURATION_UNIT.search(value):
            return "time"
        if _COUNT_SUFFIX.search(value):
            return "instructions"
    return None


def _flavour_budget(
    prefix: str, name: str, value: object, metric: Metric, *, lenient: bool
) -> tuple[float | None, str]:
    """A cold or warm argument as (limit in ``metric`` or ``None``, budget in the other unit).

    The argument is one budget, or a duration and a count together
    (``("25ms", "45M")``): the one in ``metric``'s unit is judged, the other
    is kept as written (``"warm='25ms'"``), to be shown beside the suggestion
    in ``metric``. With ``lenient`` false (the marker names its metric), a
    single budget in the other unit is an error.
    """
    if value is None:
        return None, ""
    values = tuple(value) if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(values) <= 2:
        raise BudgetError(
            f"{prefix}: {name}={shorten(value)} is not a budget (one value, or a duration and "
            f"a count: {name}=('25ms', '45M'))"
        )
    limit: float | None = None
    other = ""
    units: list[Metric] = []
    for item in values:
        unit = unit_metric(item) or (metric if len(values) == 1 else None)
        if unit is None:
            raise BudgetError(
                f"{prefix}: {name}={shorten(value)}: write both budgets with their units "
                f"({name}=('25ms', '45M'))"
            )
        if unit in units:
            raise BudgetError(
                f"{prefix}: {name}={shorten(value)} gives two {cost_name(unit)} budgets "
                f"(write a duration and a count: {name}=('25ms', '45M'))"
            )
        units.append(unit)
        if unit == metric or (len(values) == 1 and not lenient):
            limit = _cost_argument(prefix, name, item, metric)
        else:
            _cost_argument(prefix, name, item, unit)
            other = f"{name}={item!r}"
    return limit, other


def _metric_argument(prefix: str, value: object, default: Metric) -> Metric:
    """The marker's ``metric``, or the run's ``default`` when not given."""
    if value is None:
        return default
    metric = as_metric(value)
    if metric is not None:
        return metric
    raise BudgetError(f"{prefix}: metric={shorten(value)} is not one of {', '.join(METRICS)}")


def _count_argument(prefix: str, name: str, value: object, minimum: int) -> int | None:
    """A whole-number argument of at least ``minimum``, or ``None`` when not given."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BudgetError(f"{prefix}: {name}={shorten(value)} is not a whole number >= {minimum}")
    return value


@dataclass(frozen=True)
class ImportBudget:
    """One ``import_budget`` marker: the module and the limits its import must keep.

    ``cold`` and ``warm`` are in ``metric``: seconds, or instruction counts.
    A budget the marker gives only in the other unit (``warm="25ms"`` in a run
    under ``--importcache-metric=instructions``) is in ``unjudged`` as
    (flavour, ``"warm='25ms'"``): that flavour is measured in ``metric`` and
    not judged.
    """

    module: str
    cold: float | None = None
    warm: float | None = None
    max_modules: int | None = None
    forbid: tuple[str, ...] = ()
    stat: str | None = None
    rounds: int | None = None
    closure: bool = False
    metric: Metric = "time"
    unjudged: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_marker(
        cls, args: Sequence[object], kwargs: Mapping[str, object], *, metric: Metric = "time"
    ) -> ImportBudget:
        """Validate a marker's arguments; raises :class:`BudgetError` naming the bad one.

        ``metric`` is the run's, used when the marker names none.
        """
        arguments = dict(kwargs)
        module = _marker_module(args, arguments)
        prefix = f"{MARKER_NAME}({module!r})"
        unknown = sorted(set(arguments) - set(MARKER_KEYWORDS))
        if unknown:
            raise BudgetError(
                f"{prefix}: unknown argument {unknown[0]}={shorten(arguments[unknown[0]])} "
                f"(expected {', '.join(MARKER_KEYWORDS)})"
            )
        stat = arguments.get("stat")
        if stat is not None and as_statistic(stat) is None:
            raise BudgetError(
                f"{prefix}: stat={shorten(stat)} is not one of {', '.join(STATISTICS)}"
            )
        closure = arguments.get("closure", False)
        if not isinstance(closure, bool):
            raise BudgetError(f"{prefix}: closure={shorten(closure)} is not True or False")
        chosen = _metric_argument(prefix, arguments.get("metric"), metric)
        # Only the run's metric switches leniently; a marker's own metric is meant.
        lenient = arguments.get("metric") is None
        cold, cold_other = _flavour_budget(
            prefix, "cold", arguments.get("cold"), chosen, lenient=lenient
        )
        warm, warm_other = _flavour_budget(
            prefix, "warm", arguments.get("warm"), chosen, lenient=lenient
        )
        budget = cls(
            module=module,
            cold=cold,
            warm=warm,
            max_modules=_count_argument(prefix, "max_modules", arguments.get("max_modules"), 0),
            forbid=_forbid_patterns(prefix, arguments.get("forbid", ())),
            stat=stat if isinstance(stat, str) else None,
            rounds=_count_argument(prefix, "rounds", arguments.get("rounds"), 1),
            closure=closure,
            metric=chosen,
            unjudged=tuple(
                (flavour, text)
                for flavour, text in (("cold", cold_other), ("warm", warm_other))
                if text and (cold if flavour == "cold" else warm) is None
            ),
        )
        if closure and "cold" not in budget.timed_flavours:
            raise BudgetError(f"{prefix}: closure=True applies to a cold budget; give cold=...")
        if not (budget.timed_flavours or budget.max_modules is not None or budget.forbid):
            raise BudgetError(f"{prefix}: no budget given (set cold, warm, max_modules or forbid)")
        return budget

    @property
    def timed_flavours(self) -> tuple[Literal["cold", "warm"], ...]:
        """The flavours whose time (or count) is budgeted, judged or not, cold first."""
        unjudged = dict(self.unjudged)
        flavours: list[Literal["cold", "warm"]] = []
        if self.cold is not None or "cold" in unjudged:
            flavours.append("cold")
        if self.warm is not None or "warm" in unjudged:
            flavours.append("warm")
        return tuple(flavours)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one budget against one measurement.

    ``measured`` and ``limit`` are in the budget's metric (seconds or
    instructions) for cold and warm budgets, and module counts for
    ``max_modules``; ``forbidden`` lists (module, chain) pairs for ``forbid``.
    """

    budget: ImportBudget
    kind: Kind
    passed: bool
    result: ImportResult
    measured: float = 0.0
    limit: float = 0.0
    stat: str = "min"
    scale: float = 1.0
    forbidden: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def headroom(self) -> float:
        """Fraction of the limit left over (negative when overspent)."""
        return headroom(self.measured, self.limit)


def forbidden_modules(result: ImportResult, patterns: Sequence[str]) -> list[str]:
    """Modules the import loaded whose names match one of the glob ``patterns``."""
    return [
        name
        for name in result.modules
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
    ]


def judge(
    budget: ImportBudget,
    results: Mapping[Literal["cold", "warm"], ImportResult],
    *,
    stat: str,
    scale: float | Mapping[str, float] = 1.0,
) -> list[Verdict]:
    """Judge every limit of ``budget``; ``results`` maps ``"cold"``/``"warm"`` to measurements.

    Time budgets compare ``stat`` with the budget times ``scale`` (one factor, or
    one per flavour: ``{"cold": 1.2, "warm": 1.1}``); ``max_modules``
    and ``forbid`` use any measurement (they do not depend on timing).
    """
    verdicts: list[Verdict] = []
    for flavour in budget.timed_flavours:
        result = results[flavour]
        written = budget.cold if flavour == "cold" else budget.warm
        if written is None:
            continue  # a budget in the other unit: measured, not judged
        limit = written
        factor = scale if isinstance(scale, int | float) else scale[flavour]
        measured = result.statistic(stat)
        verdicts.append(
            Verdict(
                budget,
                flavour,
                measured <= limit * factor,
                result,
                measured=measured,
                limit=limit * factor,
                stat=stat,
                scale=factor,
            )
        )
    any_result = results.get("warm") or results["cold"]
    if budget.max_modules is not None:
        count = len(any_result.modules)
        verdicts.append(
            Verdict(
                budget,
                "max_modules",
                count <= budget.max_modules,
                any_result,
                measured=count,
                limit=budget.max_modules,
            )
        )
    if budget.forbid:
        found = forbidden_modules(any_result, budget.forbid)
        verdicts.append(
            Verdict(
                budget,
                "forbid",
                not found,
                any_result,
                forbidden=tuple((name, tuple(any_result.chain(name))) for name in found),
            )
        )
    return verdicts
