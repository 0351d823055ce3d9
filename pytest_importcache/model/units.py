"""Durations and counts as users write and read them: parse, format, suggest budgets.

A duration is ``"25ms"`` or ``31.2ms``; an instruction count is ``"45M"`` or
``36.4M``. Pure functions, used by the marker, the settings, the reports and
the command line alike, so a figure reads the same everywhere. The ``*_cost``
functions take the metric (``"time"`` or ``"instructions"``) and pick.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import BudgetError

if TYPE_CHECKING:
    from decimal import Decimal

__all__ = [
    "SUGGESTION_HEADROOM",
    "Figure",
    "cost_name",
    "fit",
    "format_cost",
    "format_count",
    "format_duration",
    "format_headroom",
    "format_memory",
    "format_significant",
    "headroom",
    "parse_cost",
    "parse_count",
    "parse_duration",
    "parse_memory",
    "parse_percentage",
    "shorten",
    "suggest_budget",
    "suggest_cost_budget",
]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
# ASCII digits and spaces only: float() would also take "٣" or "1_000".
_DURATION = re.compile(
    r"^\s*(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ns|us|µs|ms|s)?\s*$", re.ASCII
)
_COUNT_SUFFIXES = {"": 1, "k": 1_000, "K": 1_000, "M": 1_000_000, "G": 1_000_000_000}
_COUNT = re.compile(r"^\s*(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<suffix>[kKMG]?)\s*$", re.ASCII)
_COUNT_HINT = "write 45_000_000, '45M', '1.2G' or '800k'"
# A thousand seconds at 10^12 instructions per second: no import comes near.
MAX_COUNT = 10**15
# An hour: a larger time budget is an instruction count given without its metric.
MAX_TIME_BUDGET = 3600.0
# Memory units: kB, MB, GB are powers of 1000 (as disk and cloud limits are written),
# KiB, MiB, GiB powers of 1024; case does not matter ("60mb"), a bare number is bytes.
_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}
_MEMORY = re.compile(
    r"^\s*(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[kKmMgG]?(?:[iI])?[bB])?\s*$", re.ASCII
)
_MEMORY_HINT = "write '60MB', '1.5GB', '512KiB' or a number of bytes"
# A pebibyte: no interpreter's start-up comes near; a larger limit is a typo.
MAX_MEMORY = 2**50
# How a figure is shown: ``format_duration``, or ``format_cost`` bound to a metric.
Figure = Callable[[float], str]
# Suggested budgets leave this much room above the measured statistic.
SUGGESTION_HEADROOM = 1.3


def shorten(value: object, limit: int = 60) -> str:
    """``repr(value)`` for a message, cut to about ``limit`` characters.

    A date or a time (a TOML value) shows as it is written there, ``1979-05-27``.
    """
    try:
        # Without importing datetime: this module is loaded by the plugin's entry point.
        if type(value).__module__ == "datetime" and hasattr(value, "isoformat"):
            text = str(value.isoformat())
        else:
            text = repr(value)
    except ValueError:  # an int past the interpreter's digit limit
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (``\\n``, ``\\t``), to show on one line."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def parse_duration(value: object) -> float:
    """Seconds from ``"25ms"``, ``"1.5s"``, ``"800us"``, ``"0.2"`` or a number of seconds.

    Raises :class:`BudgetError` for anything else, and for a value that is not
    a positive, finite duration.
    """
    if isinstance(value, bool):
        raise BudgetError(f"{shorten(value)} is not a duration")
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
                f"{shorten(value)} is not a duration (write '25ms', '1.5s', '800us' or seconds)"
            )
        seconds = float(match["number"]) * _UNITS[match["unit"] or "s"]
    else:
        raise BudgetError(f"{shorten(value)} is not a duration")
    if not math.isfinite(seconds) or seconds <= 0:
        raise BudgetError(f"{shorten(value)} is not a positive duration")
    return seconds


def parse_count(value: object) -> int:
    """An instruction count from ``45_000_000``, ``"45M"``, ``"1.2G"``, ``"800k"`` or ``"1200"``.

    Raises :class:`BudgetError` for anything else (a duration such as
    ``"25ms"`` included, with a line saying so), and for a count below 1 or
    above ``MAX_COUNT``.
    """
    if isinstance(value, bool):
        raise BudgetError(f"{shorten(value)} is not an instruction count ({_COUNT_HINT})")
    try:
        count = _count_of(value)
    except OverflowError:
        count = MAX_COUNT + 1
    if count < 1:
        raise BudgetError(f"{shorten(value)} is not a positive instruction count")
    if count > MAX_COUNT:
        raise BudgetError(f"{shorten(value)} is more instructions than any import executes")
    return count


def _count_of(value: object) -> int:
    """The count ``value`` writes, or :class:`BudgetError`; ``OverflowError`` for a huge one."""
    if isinstance(value, int):
        count = value
    elif isinstance(value, float) and math.isfinite(value) and value == int(value):
        count = int(value)
    elif isinstance(value, str) and (match := _COUNT.match(value)) is not None:
        count = round(float(match["number"]) * _COUNT_SUFFIXES[match["suffix"]])
    elif isinstance(value, str) and _DURATION.match(value) is not None:
        raise BudgetError(
            f"{shorten(value)} is a duration, and the instructions metric takes instruction "
            f"counts ({_COUNT_HINT})"
        )
    else:
        raise BudgetError(f"{shorten(value)} is not an instruction count ({_COUNT_HINT})")
    return count


def format_count(count: float) -> str:
    """An instruction count with about three significant digits: ``950``, ``800k``, ``36.4M``.

    Every reading parses back (:func:`parse_count`) to within half a unit of
    its last digit.
    """
    if not math.isfinite(count):
        return str(count)
    if count < 0:
        return f"-{format_count(-count)}"
    if round(count) < 1000:
        return f"{count:.0f}"
    for suffix, scale in (("k", 1e3), ("M", 1e6)):
        text = format_significant(count / scale)
        if float(text) < 1000:
            return f"{text}{suffix}"
    return f"{format_significant(count / 1e9)}G"


def parse_cost(value: object, metric: str) -> float:
    """A budget in ``metric``: seconds from a duration, or an instruction count.

    Under ``"time"``, a count written with a suffix (``"45M"``) is refused with
    a line that names the instructions metric.
    """
    if metric == "instructions":
        return float(parse_count(value))
    if isinstance(value, str) and _COUNT.match(value) and value.strip()[-1:] in "kKMG":
        raise BudgetError(
            f"{shorten(value)} is an instruction count, and the time metric takes durations "
            "(write '25ms', or set metric='instructions')"
        )
    seconds = parse_duration(value)
    if seconds > MAX_TIME_BUDGET:
        raise BudgetError(
            f"{shorten(value)} seconds is longer than any import takes: for an instruction "
            "count, set metric='instructions'"
        )
    return seconds


def cost_name(metric: str) -> str:
    """What a metric's costs are called: ``"time"`` or ``"instructions"``."""
    return "instructions" if metric == "instructions" else "time"


def format_cost(value: float, metric: str) -> str:
    """``value`` as users read it in ``metric``: ``31.2ms`` or ``36.4M``."""
    return format_count(value) if metric == "instructions" else format_duration(value)


def suggest_cost_budget(value: float, metric: str) -> str:
    """:func:`suggest_budget` for a duration, or the same 30% above a count (``48M``)."""
    if metric != "instructions":
        return suggest_budget(value)
    if not (math.isfinite(value) and value > 0):
        raise BudgetError(f"cannot suggest a budget for {value!r} instructions")
    target = _with_headroom(value)
    suffix, scale = next(
        (
            (suffix, scale)
            for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3))
            if target >= scale
        ),
        ("", 1.0),
    )
    # A plain count is whole: its step is never below one instruction.
    return f"{_round_up(target, scale, 1 if not suffix else 0)}{suffix}"


def parse_percentage(text: str) -> float:
    """A slowdown as a percentage, ``"10%"``, ``"10"`` or ``"0.5%"``, as a fraction (0.1).

    ``ValueError`` for anything but a finite, non-negative number.
    """
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"expected a percentage such as 10%, got {text!r}")
    return value / 100


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


# From this ratio of statistic to limit on, an overspend reads as the ratio
# (``x12``): a percentage of headroom (-1100%) says it less plainly.
OVERSPEND_RATIO = 10.0
# The largest ratio written out; anything beyond reads ``x9999+``.
LARGEST_RATIO_SHOWN = 9999


def headroom(measured: float, limit: float) -> float:
    """The share of ``limit`` that ``measured`` leaves over (negative when overspent).

    A limit of zero leaves no room to measure in: 0.
    """
    return (limit - measured) / limit if limit else 0.0


def format_headroom(fraction: float) -> str:
    """Headroom (the share of a limit left over, negative when overspent), at most 6 characters.

    * Whole percents with their sign, ``+94%`` down to ``-899%``.
    * Within one percent of the limit, one decimal (``+0.4%``, ``-0.3%``), and
      ``0%`` when even that rounds to zero: a zero never carries a sign.
    * A statistic ten times its limit or more reads as that ratio,
      ``x10``, ``x12``, ``x1136``, up to ``x9999+``: how many times the
      budget the import took, where ``-1036%`` would say the same less plainly.
    * Not a number reads ``?``.
    """
    if math.isnan(fraction):
        return "?"
    ratio = 1 - fraction  # the statistic over its limit
    if ratio >= OVERSPEND_RATIO:
        return f"x{ratio:.0f}" if ratio < LARGEST_RATIO_SHOWN + 0.5 else f"x{LARGEST_RATIO_SHOWN}+"
    if abs(fraction) < 0.0095:
        tenths = round(fraction * 1000)
        return "0%" if tenths == 0 else f"{tenths / 10:+.1f}%"
    return f"{fraction:+.0%}"


def suggest_budget(seconds: float) -> str:
    """A budget for a measured statistic: 30% above it, rounded up to two significant digits.

    The result is at least 1.3 times ``seconds`` as written (its shortest
    decimal form: ``0.1`` is one tenth) and less than one step of its second
    significant digit above that. The unit follows
    :func:`format_duration` (``ns`` below a microsecond, then ``us``, ``ms``,
    ``s``), so a suggestion reads like the measurement. ``seconds`` must be
    positive and finite (:class:`BudgetError` otherwise).
    """
    if not (math.isfinite(seconds) and seconds > 0):
        raise BudgetError(f"cannot suggest a budget for {seconds!r} seconds")
    target = _with_headroom(seconds)
    unit, scale = _unit_for(float(target))
    return f"{_round_up(target, scale)}{unit}"


def _with_headroom(value: float) -> Decimal:
    """``value`` (as written: its shortest decimal form) times 1.3, exactly."""
    from decimal import Decimal  # noqa: PLC0415 - only suggestions need decimal (start-up cost)

    return Decimal(repr(float(value))) * Decimal(str(SUGGESTION_HEADROOM))


def _round_up(target: Decimal, scale: float, smallest_step: int = 0) -> str:
    """``target / scale`` rounded up to two significant digits, as decimal text (``"130"``).

    Steps are at least ``smallest_step``. The arithmetic is exact: the result is
    never below ``target / scale``, and float noise (``0.1 * 1.3`` is
    ``0.13000000000000003``) never adds a step, so no tolerance is needed.
    """
    from decimal import ROUND_CEILING, Context, Decimal  # noqa: PLC0415 - as above

    exact = Context(prec=60)
    amount = exact.divide(target, Decimal(repr(float(scale))))
    step = max(Decimal(1).scaleb(amount.adjusted() - 1), Decimal(smallest_step))
    steps = exact.divide(amount, step).to_integral_value(rounding=ROUND_CEILING)
    return f"{exact.multiply(steps, step).normalize(exact):f}"


def parse_memory(value: object) -> int:
    """Bytes from ``"60MB"``, ``"1.5GB"``, ``"512KiB"``, ``"800kB"`` or a whole number of bytes.

    ``kB``/``MB``/``GB`` are powers of 1000, ``KiB``/``MiB``/``GiB`` of 1024,
    in any case. A bare suffix (``"800k"``, ``"60M"``) is refused: it reads as
    an instruction count. Raises :class:`BudgetError` for anything else, and
    for a size below one byte or above ``MAX_MEMORY``.
    """
    if isinstance(value, bool):
        raise BudgetError(f"{shorten(value)} is not a memory size ({_MEMORY_HINT})")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _MEMORY.match(value)) is not None:
        unit = (match["unit"] or "").lower()
        if unit not in _MEMORY_UNITS:
            raise BudgetError(f"{shorten(value)} is not a memory size ({_MEMORY_HINT})")
        size = round(float(match["number"]) * _MEMORY_UNITS[unit])
    else:
        raise BudgetError(f"{shorten(value)} is not a memory size ({_MEMORY_HINT})")
    if size < 1:
        raise BudgetError(f"{shorten(value)} is not a positive memory size")
    if size > MAX_MEMORY:
        raise BudgetError(f"{shorten(value)} is more memory than any interpreter starts with")
    return size


def format_memory(size: float) -> str:
    """A memory size in the units :func:`parse_memory` reads: ``"58.2MB"``, ``"912kB"``."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{format_significant(size / factor)}{unit}"
    return f"{int(size)}B"
