"""When a measurement is too noisy to support its budget or its comparison.

The rule (README, "Noise warnings"), on the counted rounds of one
measurement, whatever their unit:

- the **spread** is the rounds' interquartile range over their median;
- a measurement is **noisy** when its spread exceeds :data:`NOISY_SPREAD`
  (10%): a suggested budget derived from it says so;
- a budget verdict is **not supported** when the spread is at least the
  budget's headroom (either sign): the statistic sits within the rounds' own
  scatter of the budget, so another run can give the other verdict;
- a same-run comparison is **inconclusive** when its confidence interval
  holds the threshold (``low <= 1 + threshold <= high``): it can say neither
  "slower by more than the threshold" nor "not slower by that much".
"""

from __future__ import annotations

from collections.abc import Sequence

from .interval import MIN_DECIDING_ROUNDS, RatioInterval
from .stats import compute_stats

__all__ = [
    "NOISY_SPREAD",
    "comparison_noise",
    "count_disagreement",
    "is_noisy",
    "measurement_noise",
    "relative_spread",
    "suggestion_caveat",
]

#: Above this spread (IQR / median of the rounds) a measurement is called noisy.
NOISY_SPREAD = 0.10


def relative_spread(values: Sequence[float]) -> float:
    """The rounds' interquartile range divided by their median (0 for one round)."""
    if len(values) < 2:
        return 0.0
    stats = compute_stats(values)
    return stats.iqr / stats.median if stats.median > 0 else 0.0


def is_noisy(values: Sequence[float]) -> bool:
    """Whether the rounds' spread exceeds :data:`NOISY_SPREAD`."""
    return relative_spread(values) > NOISY_SPREAD


def suggestion_caveat(values: Sequence[float]) -> str:
    """``from a noisy measurement: ...`` for a budget suggested from noisy rounds, else ``""``."""
    noise = measurement_noise(values)
    return f"from a {noise.replace('noisy: ', 'noisy measurement: ', 1)}" if noise else ""


def measurement_noise(values: Sequence[float], headroom: float | None = None) -> str:
    """Why ``values`` cannot support their budget (``headroom``) or a suggestion; else ``""``.

    For example ``noisy: rounds spread 14% (IQR/median) > 10%`` or
    ``noisy: rounds spread 6% >= headroom 4%``.
    """
    spread = relative_spread(values)
    if headroom is not None and spread > 0 and spread >= abs(headroom):
        shown, limit = _percents(spread, abs(headroom))
        return f"noisy: rounds spread {shown} >= headroom {limit}"
    if spread > NOISY_SPREAD:
        shown, limit = _percents(spread, NOISY_SPREAD)
        return f"noisy: rounds spread {shown} (IQR/median) > {limit}"
    return ""


def _percents(value: float, limit: float) -> tuple[str, str]:
    """``value`` and ``limit`` as whole percents, with a decimal where whole ones read alike.

    ``10.4% > 10%``, never ``10% > 10%``.
    """
    for digits in (0, 1, 2):
        shown, bound = f"{value:.{digits}%}", f"{limit:.{digits}%}"
        if shown != bound:
            break
    return shown, f"{limit:.0%}" if limit == round(limit, 2) else bound


def count_disagreement(values: Sequence[float]) -> str:
    """``counted rounds disagree: ...`` when instruction counts differ between rounds; else ``""``.

    Counts of the same import repeat exactly, unless the import itself varies
    (a native extension seeding its hash tables from the operating system's
    random numbers): then they are not exact, and the output says by how much.
    """
    if len(values) < 2 or min(values) == max(values):
        return ""
    low, high = min(values), max(values)
    return (
        f"counted rounds disagree: {low:,.0f} to {high:,.0f} instructions "
        f"({high - low:,.0f} apart, {(high - low) / low:.1e} of the count)"
    )


def comparison_noise(interval: RatioInterval, threshold: float) -> str:
    """Why ``interval`` cannot decide at ``threshold``; ``""`` when it can."""
    if not interval.decisive:
        return (
            f"noisy: {interval.rounds} rounds a side are too few to judge a timed comparison "
            f"(it takes {MIN_DECIDING_ROUNDS})"
        )
    if interval.low <= 1 + threshold <= interval.high:
        return (
            f"noisy: the {interval.confidence:.0%} interval {interval.bounds} "
            f"holds x{1 + threshold:.2f}"
        )
    return ""
