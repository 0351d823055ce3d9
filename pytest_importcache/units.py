"""Durations as users write and read them: parse ``"25ms"``, format ``31.2ms``, suggest budgets.

Pure functions, used by the marker, the settings, the reports and the command
line alike, so a duration reads the same everywhere.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "SUGGESTION_HEADROOM",
    "BudgetError",
    "fit",
    "format_duration",
    "format_headroom",
    "format_significant",
    "headroom",
    "parse_duration",
    "shorten",
    "suggest_budget",
]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
# ASCII digits and spaces only: float() would also take "٣" or "1_000".
_DURATION = re.compile(
    r"^\s*(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ns|us|µs|ms|s)?\s*$", re.ASCII
)
# Suggested budgets leave this much room above the measured statistic.
SUGGESTION_HEADROOM = 1.3


class BudgetError(ValueError):
    """A budget or marker argument is malformed; the message names the argument."""


def shorten(value: object, limit: int = 60) -> str:
    """``repr(value)`` for a message, cut to about ``limit`` characters."""
    try:
        text = repr(value)
    except ValueError:  # an int past the interpreter's digit limit
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def headroom(measured: float, limit: float) -> float:
    """The share of ``limit`` that ``measured`` leaves over (negative when overspent).

    A limit of zero leaves no room to measure in: 0.
    """
    return (limit - measured) / limit if limit else 0.0


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
