"""Statistics over the rounds of one measurement.

The field names and definitions are pytest-benchmark's (``min``, ``max``,
``mean``, ``stddev``, ``median``, ``q1``, ``q3``, ``iqr``, ``ld15iqr``,
``hd15iqr``, ``iqr_outliers``, ``stddev_outliers``, ``outliers``, ``rounds``,
``total``, ``ops``), so a measurement reads the same in its table and in ours.
Quartiles use the same computing methods as pytest-benchmark (method 2 for an
even number of rounds, method 3 for an odd one).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

__all__ = ["STATISTICS", "RoundStats", "Statistic", "as_statistic", "compute_stats", "median"]

#: The statistics a budget, a setting or a comparison may name.
Statistic = Literal["min", "max", "mean", "median"]
STATISTICS: tuple[Statistic, ...] = get_args(Statistic)


def as_statistic(value: object) -> Statistic | None:
    """``value`` as one of :data:`STATISTICS`, or ``None`` when it names none.

    The one check of a statistic's name; callers say what was wrong, and where.
    """
    for name in STATISTICS:
        if value == name and isinstance(value, str):
            return name
    return None


@dataclass(frozen=True)
class RoundStats:
    """Summary statistics of per-round figures: seconds, or instruction counts."""

    min: float
    max: float
    mean: float
    stddev: float
    median: float
    q1: float
    q3: float
    iqr: float
    ld15iqr: float
    hd15iqr: float
    iqr_outliers: int
    stddev_outliers: int
    rounds: int
    total: float

    @property
    def outliers(self) -> str:
        """pytest-benchmark's outlier summary: ``"<stddev outliers>;<iqr outliers>"``."""
        return f"{self.stddev_outliers};{self.iqr_outliers}"

    @property
    def ops(self) -> float:
        """Rounds per second of measured time (pytest-benchmark's ``ops``)."""
        return self.rounds / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Every field, ``outliers`` and ``ops`` included, as plain values."""
        fields = asdict(self)
        fields["outliers"] = self.outliers
        fields["ops"] = self.ops
        return fields


def median(values: Sequence[float]) -> float:
    """The middle value (the mean of the two middle values for an even count)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _quartiles(ordered: Sequence[float]) -> tuple[float, float]:
    """First and third quartile of sorted data, by pytest-benchmark's methods."""
    count = len(ordered)
    if count == 1:
        return ordered[0], ordered[0]
    if count % 2 == 0:
        half = count // 2
        return median(ordered[:half]), median(ordered[half:])
    quarter, remainder = divmod(count, 4)
    if remainder == 1:
        q1 = 0.25 * ordered[quarter - 1] + 0.75 * ordered[quarter]
        q3 = 0.75 * ordered[3 * quarter] + 0.25 * ordered[3 * quarter + 1]
    else:
        q1 = 0.75 * ordered[quarter] + 0.25 * ordered[quarter + 1]
        q3 = 0.25 * ordered[3 * quarter + 1] + 0.75 * ordered[3 * quarter + 2]
    return q1, q3


def compute_stats(durations: Sequence[float]) -> RoundStats:
    """Summarise per-round figures (seconds or counts); at least one round is required."""
    if not durations:
        raise ValueError("statistics need at least one round")
    ordered = sorted(durations)
    count = len(ordered)
    mean = math.fsum(ordered) / count
    # The sample standard deviation, as statistics.stdev (not imported: it is slow to load).
    stddev = (
        math.sqrt(math.fsum((value - mean) ** 2 for value in ordered) / (count - 1))
        if count > 1
        else 0.0
    )
    q1, q3 = _quartiles(ordered)
    iqr = q3 - q1
    low_fence, high_fence = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    return RoundStats(
        min=ordered[0],
        max=ordered[-1],
        mean=mean,
        stddev=stddev,
        median=median(ordered),
        q1=q1,
        q3=q3,
        iqr=iqr,
        ld15iqr=ordered[bisect_left(ordered, low_fence)],
        hd15iqr=ordered[bisect_right(ordered, high_fence) - 1],
        iqr_outliers=sum(1 for value in ordered if value < low_fence or value > high_fence),
        stddev_outliers=sum(
            1 for value in ordered if value < mean - stddev or value > mean + stddev
        ),
        rounds=count,
        total=math.fsum(ordered),
    )
