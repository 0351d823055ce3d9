"""Budgets: parse ``"25ms"``, model the ``import_budget`` marker, and judge results.

Everything here is a pure function of its arguments, so the parsing rules and
the verdicts are tested without running pytest.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    "format_headroom",
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
# ASCII digits and spaces only: float() would also take "٣" or "1_000".
_DURATION = re.compile(
    r"^\s*(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ns|us|µs|ms|s)?\s*$", re.ASCII
)
# Suggested budgets leave this much room above the measured statistic.
SUGGESTION_HEADROOM = 1.3

Kind = Literal["cold", "warm", "max_modules", "forbid"]


class BudgetError(ValueError):
    """A budget or marker argument is malformed; the message names the argument."""


def _shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for a message, cut to about ``limit`` characters."""
    try:
        text = repr(value)
    except ValueError:  # an int past the interpreter's digit limit
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_duration(value: object) -> float:
    """Seconds from ``"25ms"``, ``"1.5s"``, ``"800us"``, ``"0.2"`` or a number of seconds.

    Raises :class:`BudgetError` for anything else, and for a value that is not
    a positive, finite duration.
    """
    if isinstance(value, bool):
        raise BudgetError(f"{_shown(value)} is not a duration")
    if isinstance(value, float):
        seconds = value
    elif isinstance(value, int):
        try:
            seconds = float(value)
        except OverflowError:  # too large for a float: no duration either
            seconds = math.inf
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise BudgetError(
                f"{_shown(value)} is not a duration (write '25ms', '1.5s', '800us' or seconds)"
            )
        seconds = float(match["number"]) * _UNITS[match["unit"] or "s"]
    else:
        raise BudgetError(f"{_shown(value)} is not a duration")
    if not math.isfinite(seconds) or seconds <= 0:
        raise BudgetError(f"{_shown(value)} is not a positive duration")
    return seconds


def format_significant(value: float, digits: int = 3) -> str:
    """``value`` with about ``digits`` significant digits, never in scientific notation."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_duration(seconds: float) -> str:
    """A short human reading of a duration: ``850us``, ``31.2ms``, ``1.52s``, ``1200s``.

    About three significant digits in the largest unit that keeps the number at
    least 1: ``ns`` below a microsecond (``1ns``, ``250ns``; ``0.001ns`` below a
    nanosecond), ``us`` below a millisecond, ``ms`` below a second, else ``s``.
    A duration that is not zero never reads as zero, and every reading parses
    back (:func:`parse_duration`) to within half a unit of its last digit. Zero
    is ``0s``; a negative duration reads as its size with a minus sign.
    """
    if not math.isfinite(seconds):
        return f"{seconds}s"
    if seconds < 0:
        return f"-{format_duration(-seconds)}"
    if seconds == 0:
        return "0s"
    unit, scale = _unit_for(seconds)
    return f"{format_significant(seconds / scale)}{unit}"


def _unit_for(seconds: float) -> tuple[str, float]:
    """The largest unit in which ``seconds`` is at least 1 (``ns`` for anything smaller)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return unit, scale
    return "ns", 1e-9


# Below this headroom (a statistic more than ten times its limit) the percentage
# says nothing the failure block does not say better, and would not fit a column.
HEADROOM_FLOOR = -9.99


def format_headroom(fraction: float) -> str:
    """Headroom (the share of a limit left over, negative when overspent) as ``+94%``/``-13%``.

    Whole percents with a sign, from ``+100%`` down to ``-999%``; anything
    lower (a statistic more than 10.99 times its limit) reads ``<-999%``, so the
    text never exceeds six characters. Not a number reads ``?``.
    """
    if math.isnan(fraction):
        return "?"
    if fraction < HEADROOM_FLOOR:
        return "<-999%"
    return f"{fraction:+.0%}"


def suggest_budget(seconds: float) -> str:
    """A budget for a measured statistic: 30% above it, rounded up to two significant digits.

    The result is at least 1.3 times ``seconds`` (up to float rounding) and less
    than one step of its second significant digit above that. The unit follows
    :func:`format_duration` (``ns`` below a microsecond, then ``us``, ``ms``,
    ``s``), so a suggestion reads like the measurement. ``seconds`` must be
    positive and finite (:class:`BudgetError` otherwise).
    """
    if not (math.isfinite(seconds) and seconds > 0):
        raise BudgetError(f"cannot suggest a budget for {seconds!r} seconds")
    target = seconds * SUGGESTION_HEADROOM
    unit, scale = _unit_for(target)
    amount = target / scale
    step = 10 ** (math.floor(math.log10(amount)) - 1)
    # The tolerance keeps float noise (130.00000000000003) from adding a step.
    rounded = math.ceil(amount / step - 1e-9) * step
    return f"{rounded:.10g}{unit}"


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
        patterns, shown = (value,), _shown(value)
    elif not isinstance(value, Iterable) or isinstance(value, bytes | bytearray):
        raise BudgetError(
            f"{prefix}: forbid={_shown(value)} is not a list of module name patterns "
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
                f"{prefix}: forbid={_shown(value)} could not be read: {detail}"
            ) from None
        if isinstance(value, Iterator):
            shown = f"{type(value).__name__} yielding {_shown(list(patterns))}"
        else:
            shown = _shown(value)
    for pattern in patterns:
        if not (isinstance(pattern, str) and pattern):
            raise BudgetError(
                f"{prefix}: forbid={shown} is not a list of module name patterns: "
                f"{_shown(pattern)} is not a non-empty str"
            )
    return tuple(str(pattern) for pattern in patterns)


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
            raise BudgetError(
                f"{MARKER_NAME}: module={_shown(module)} is not a module name (a str)"
            )
        try:
            check_module_name(module)
        except LocateError as exc:
            raise BudgetError(f"{MARKER_NAME}: module={exc}") from None
        prefix = f"{MARKER_NAME}({module!r})"
        unknown = sorted(set(arguments) - set(MARKER_KEYWORDS))
        if unknown:
            raise BudgetError(
                f"{prefix}: unknown argument {unknown[0]}={_shown(arguments[unknown[0]])} "
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
                raise BudgetError(
                    f"{prefix}: {name}={_shown(value)} is not a whole number >= {minimum}"
                )
            return value

        forbid = _forbid_patterns(prefix, arguments.get("forbid", ()))
        stat = arguments.get("stat")
        if stat is not None and stat not in STAT_NAMES:
            raise BudgetError(
                f"{prefix}: stat={_shown(stat)} is not one of {', '.join(STAT_NAMES)}"
            )
        closure = arguments.get("closure", False)
        if not isinstance(closure, bool):
            raise BudgetError(f"{prefix}: closure={_shown(closure)} is not True or False")
        budget = cls(
            module=module,
            cold=duration("cold"),
            warm=duration("warm"),
            max_modules=whole_number("max_modules", 0),
            forbid=forbid,
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
