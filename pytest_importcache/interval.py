"""The ratio of two measurements, head/base, with a bootstrap confidence interval.

Used by same-run comparisons (``--against REV``, ``--importcache-baseline``):
``head`` is the working tree's rounds, ``base`` the revision's. The method:

- the point estimate is, by default, the ratio of the fastest rounds,
  ``min(head) / min(base)`` (``estimator="min"``); the ratio of medians
  (``"median"``) and the median of the pairs' ratios (``"pairs"``) are there too;
- the interval is a percentile bootstrap of that ratio. When both sides have
  as many rounds (interleaved rounds: A B A B ...), the rounds are resampled
  in pairs (round *i* of head with round *i* of base), so a moment when the
  machine was slow weighs on both sides alike; otherwise each side is
  resampled on its own.
- The resampling is seeded: the same rounds give the same interval.

Why the fastest rounds: on a shared, loaded machine a third to half of the
rounds can be slowed two- or threefold by other processes; the fastest rounds
are the ones nothing disturbed. On the same recorded rounds
(``tests/benchmarks/bench_ab.py --analyse``), the ratio of minimums gave
intervals 2-5 times narrower than the ratio of medians and caught more of a
10% slowdown, with no more false alarms (README, "Measurement quality"). The
same reason makes ``min`` the budgets' default statistic.

Nothing here knows the unit: seconds and instruction counts work alike.
Identical rounds (exact instruction counts) give an interval of zero width.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .stats import median

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_ESTIMATOR",
    "DEFAULT_RESAMPLES",
    "ESTIMATORS",
    "RatioInterval",
    "ratio_interval",
]

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000
_SEED = 20261129


@dataclass(frozen=True)
class RatioInterval:
    """``ratio`` = median(head) / median(base), and its interval [``low``, ``high``]."""

    ratio: float
    low: float
    high: float
    confidence: float = DEFAULT_CONFIDENCE
    estimator: str = "min"

    @property
    def method(self) -> str:
        """How the ratio and its interval were computed, in words."""
        name = ESTIMATOR_NAMES.get(self.estimator, self.estimator)
        return f"{name}, percentile bootstrap, rounds resampled in pairs"

    @property
    def width(self) -> float:
        """``high - low``: how uncertain the ratio is (0.04 reads as 4 points)."""
        return self.high - self.low

    @property
    def exact(self) -> bool:
        """Whether the interval has no width (every round gave the same figure)."""
        return self.low == self.high

    def slower_than(self, threshold: float) -> bool:
        """Whether the whole interval lies above ``1 + threshold`` (0.05: 5% slower)."""
        return self.low > 1 + threshold

    def describe(self) -> str:
        """``x1.12 (95% CI 1.08-1.17)``, or ``x1.12 (exact)`` for an interval of no width."""
        if self.exact:
            return f"x{self.ratio:.3f} (exact)"
        return f"x{self.ratio:.3f} ({self.confidence:.0%} CI {self.low:.3f}-{self.high:.3f})"


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of sorted data, interpolating linearly."""
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _ratio_of_minimums(head: Sequence[float], base: Sequence[float]) -> float:
    return min(head) / min(base)


def _ratio_of_medians(head: Sequence[float], base: Sequence[float]) -> float:
    return median(head) / median(base)


def _median_of_pair_ratios(head: Sequence[float], base: Sequence[float]) -> float:
    return median([one / other for one, other in zip(head, base, strict=True)])


#: The estimators of head/base, by name; :data:`DEFAULT_ESTIMATOR` is used unless asked.
ESTIMATORS: dict[str, Callable[[Sequence[float], Sequence[float]], float]] = {
    "min": _ratio_of_minimums,
    "median": _ratio_of_medians,
    "pairs": _median_of_pair_ratios,
}
ESTIMATOR_NAMES = {
    "min": "ratio of the fastest rounds",
    "median": "ratio of medians",
    "pairs": "median of the pairs' ratios",
}
DEFAULT_ESTIMATOR = "min"


def ratio_interval(
    head: Sequence[float],
    base: Sequence[float],
    *,
    estimator: str = DEFAULT_ESTIMATOR,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = _SEED,
) -> RatioInterval:
    """The ratio ``head``/``base`` by ``estimator``, with its bootstrap ``confidence`` interval.

    ``estimator`` is one of :data:`ESTIMATORS`: ``"min"`` (the fastest rounds,
    the default), ``"median"`` or ``"pairs"`` (the median of round *i*'s
    ratios; needs as many rounds on each side). Both sides need at least one
    value, all positive and finite; ``confidence`` lies strictly between 0
    and 1. Raises ``ValueError`` otherwise.
    """
    if not head or not base:
        raise ValueError("a ratio interval needs at least one round on each side")
    if not all(math.isfinite(value) and value > 0 for value in (*head, *base)):
        raise ValueError("a ratio interval needs positive, finite figures")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, not {confidence!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples!r}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, not {estimator!r}")
    paired = len(head) == len(base)
    if estimator == "pairs" and not paired:
        raise ValueError("the 'pairs' estimator needs as many rounds on each side")
    statistic = ESTIMATORS[estimator]
    ratio = statistic(head, base)
    generator = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        if paired:
            picks = [generator.randrange(len(head)) for _ in head]
            ratios.append(statistic([head[i] for i in picks], [base[i] for i in picks]))
        else:
            ratios.append(
                statistic(
                    generator.choices(head, k=len(head)), generator.choices(base, k=len(base))
                )
            )
    ratios.sort()
    tail = (1 - confidence) / 2
    low, high = _percentile(ratios, tail), _percentile(ratios, 1 - tail)
    # A bootstrap of a median can miss the sample's own ratio by rounding: keep it inside.
    return RatioInterval(ratio, min(low, ratio), max(high, ratio), confidence, estimator)
