"""Budgets: parse ``"25ms"``, model the ``import_budget`` marker, and judge results.

Everything here is a pure function of its arguments, so the parsing rules and
the verdicts are tested without running pytest.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import LocateError
from .locate import check_module_name
from .stats import STAT_NAMES

if TYPE_CHECKING:
    from .result import ImportResult

__all__ = [
    "BudgetError",
    "ImportBudget",
    "Verdict",
    "format_duration",
    "format_significant",
    "judge",
    "parse_duration",
    "suggest_budget",
]

MARKER_NAME = "import_budget"
MARKER_SIGNATURE = (
    "import_budget(module, *, cold=None, warm=None, max_modules=None, forbid=(), "
    "stat=None, rounds=None, closure=False)"
)
MARKER_KEYWORDS = ("cold", "warm", "max_modules", "forbid", "stat", "rounds", "closure")

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_DURATION = re.compile(r"^\s*(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ns|us|µs|ms|s)?\s*$")
# Suggested budgets leave this much room above the measured statistic.
SUGGESTION_HEADROOM = 1.3

Kind = Literal["cold", "warm", "max_modules", "forbid"]


class BudgetError(ValueError):
    """A budget or marker argument is malformed; the message names the argument."""


def parse_duration(value: object) -> float:
    """Seconds from ``"25ms"``, ``"1.5s"``, ``"800us"``, ``"0.2"`` or a number of seconds.

    Raises :class:`BudgetError` for anything else, and for a value that is not
    a positive, finite duration.
    """
    if isinstance(value, bool):
        raise BudgetError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise BudgetError(
                f"{value!r} is not a duration (write '25ms', '1.5s', '800us' or seconds)"
            )
        seconds = float(match["number"]) * _UNITS[match["unit"] or "s"]
    else:
        raise BudgetError(f"{value!r} is not a duration")
    if not math.isfinite(seconds) or seconds <= 0:
        raise BudgetError(f"{value!r} is not a positive duration")
    return seconds


def format_significant(value: float, digits: int = 3) -> str:
    """``value`` with about ``digits`` significant digits, never in scientific notation."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_duration(seconds: float) -> str:
    """A short human reading of a duration: ``850us``, ``31.2ms``, ``1.52s``, ``1200s``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1.0:
        return f"{format_significant(seconds * 1e3)}ms"
    return f"{format_significant(seconds)}s"


def suggest_budget(seconds: float) -> str:
    """A budget for a measured statistic: 30% above it, rounded up to two significant digits."""
    target = seconds * SUGGESTION_HEADROOM
    unit, scale = ("us", 1e-6) if target < 1e-3 else ("ms", 1e-3) if target < 1.0 else ("s", 1.0)
    amount = target / scale
    step = 10 ** (math.floor(math.log10(amount)) - 1)
    rounded = math.ceil(amount / step - 1e-9) * step
    return f"{rounded:.10g}{unit}"


@dataclass(frozen=True)
class ImportBudget:
    """One ``import_budget`` marker: the module and the limits its import must keep."""

    module: str
    cold: float | None = None
    warm: float | None = None
    max_modules: int | None = None
    forbid: tuple[str, ...] = ()
    stat: str | None = None
    rounds: int | None = None
    closure: bool = False

    @classmethod
    def from_marker(cls, args: Sequence[object], kwargs: Mapping[str, object]) -> ImportBudget:
        """Validate a marker's arguments; raises :class:`BudgetError` naming the bad one."""
        arguments = dict(kwargs)
        if len(args) > 1:
            raise BudgetError(
                f"{MARKER_NAME}: takes one positional argument (the module), got {len(args)}"
            )
        if args and "module" in arguments:
            raise BudgetError(f"{MARKER_NAME}: module given both by position and as keyword")
        if not args and "module" not in arguments:
            raise BudgetError(f"{MARKER_NAME}: the module to import is missing")
        module = args[0] if args else arguments.pop("module")
        arguments.pop("module", None)
        if not isinstance(module, str):
            raise BudgetError(f"{MARKER_NAME}: module={module!r} is not a module name (a str)")
        try:
            check_module_name(module)
        except LocateError as exc:
            raise BudgetError(f"{MARKER_NAME}: module={exc}") from None
        prefix = f"{MARKER_NAME}({module!r})"
        unknown = sorted(set(arguments) - set(MARKER_KEYWORDS))
        if unknown:
            raise BudgetError(
                f"{prefix}: unknown argument {unknown[0]}={arguments[unknown[0]]!r} "
                f"(expected {', '.join(MARKER_KEYWORDS)})"
            )

        def duration(name: str) -> float | None:
            value = arguments.get(name)
            if value is None:
                return None
            try:
                return parse_duration(value)
            except BudgetError as exc:
                raise BudgetError(f"{prefix}: {name}={exc}") from None

        def whole_number(name: str, minimum: int) -> int | None:
            value = arguments.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise BudgetError(f"{prefix}: {name}={value!r} is not a whole number >= {minimum}")
            return value

        forbid_value = arguments.get("forbid", ())
        if isinstance(forbid_value, str):
            forbid_value = (forbid_value,)
        if not isinstance(forbid_value, Iterable) or not all(
            isinstance(pattern, str) and pattern for pattern in forbid_value
        ):
            raise BudgetError(
                f"{prefix}: forbid={forbid_value!r} is not a list of module name patterns"
            )
        stat = arguments.get("stat")
        if stat is not None and stat not in STAT_NAMES:
            raise BudgetError(f"{prefix}: stat={stat!r} is not one of {', '.join(STAT_NAMES)}")
        closure = arguments.get("closure", False)
        if not isinstance(closure, bool):
            raise BudgetError(f"{prefix}: closure={closure!r} is not True or False")
        budget = cls(
            module=module,
            cold=duration("cold"),
            warm=duration("warm"),
            max_modules=whole_number("max_modules", 0),
            forbid=tuple(forbid_value),
            stat=stat if isinstance(stat, str) else None,
            rounds=whole_number("rounds", 1),
            closure=closure,
        )
        if closure and budget.cold is None:
            raise BudgetError(f"{prefix}: closure=True applies to a cold budget; give cold=...")
        if not (budget.timed_flavours or budget.max_modules is not None or budget.forbid):
            raise BudgetError(f"{prefix}: no budget given (set cold, warm, max_modules or forbid)")
        return budget

    @property
    def timed_flavours(self) -> tuple[Literal["cold", "warm"], ...]:
        """The flavours whose time is budgeted, cold first."""
        flavours: list[Literal["cold", "warm"]] = []
        if self.cold is not None:
            flavours.append("cold")
        if self.warm is not None:
            flavours.append("warm")
        return tuple(flavours)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one budget against one measurement.

    ``measured`` and ``limit`` are seconds for time budgets and counts for
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
        return (self.limit - self.measured) / self.limit if self.limit else 0.0


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
        limit = (budget.cold if flavour == "cold" else budget.warm) or 0.0
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
