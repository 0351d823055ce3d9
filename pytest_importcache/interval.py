"""The ratio of two measurements' medians, with a bootstrap confidence interval.

Used by same-run comparisons (``--against REV``, ``--importcache-baseline``):
``head`` is the working tree's rounds, ``base`` the revision's. The method:

- the point estimate is ``median(head) / median(base)``;
- the interval is a percentile bootstrap of that ratio. When both sides have
  as many rounds (interleaved rounds: A B A B ...), the rounds are resampled
  in pairs (round *i* of head with round *i* of base), so a moment when the
  machine was slow weighs on both sides alike; otherwise each side is
  resampled on its own.
- The resampling is seeded: the same rounds give the same interval.

Medians suit small samples of skewed timings (a few slow rounds move them
little), and a bootstrap assumes no distribution. Nothing here knows the
unit: seconds and instruction counts work alike. Identical rounds (exact
instruction counts) give an interval of zero width.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from .stats import median

__all__ = ["DEFAULT_CONFIDENCE", "DEFAULT_RESAMPLES", "RatioInterval", "ratio_interval"]

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


def ratio_interval(
    head: Sequence[float],
    base: Sequence[float],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = _SEED,
) -> RatioInterval:
    """The ratio of medians ``head``/``base`` with its bootstrap ``confidence`` interval.

    Both sides need at least one value, all positive and finite; ``confidence``
    lies strictly between 0 and 1. Raises ``ValueError`` otherwise.
    """
    if not head or not base:
        raise ValueError("a ratio interval needs at least one round on each side")
    if not all(math.isfinite(value) and value > 0 for value in (*head, *base)):
        raise ValueError("a ratio interval needs positive, finite figures")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, not {confidence!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples!r}")
    ratio = median(head) / median(base)
    generator = random.Random(seed)
    ratios = []
    if len(head) == len(base):
        count = len(head)
        for _ in range(resamples):
            picks = [generator.randrange(count) for _ in range(count)]
            ratios.append(median([head[i] for i in picks]) / median([base[i] for i in picks]))
    else:
        for _ in range(resamples):
            ratios.append(
                median(generator.choices(head, k=len(head)))
                / median(generator.choices(base, k=len(base)))
            )
    ratios.sort()
    tail = (1 - confidence) / 2
    low, high = _percentile(ratios, tail), _percentile(ratios, 1 - tail)
    # A bootstrap of a median can miss the sample's own ratio by rounding: keep it inside.
    return RatioInterval(ratio, min(low, ratio), max(high, ratio), confidence)
