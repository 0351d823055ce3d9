"""Statistics match pytest-benchmark's definitions, field by field."""

from __future__ import annotations

import pytest
from pytest_benchmark.stats import Stats

from pytest_importcache.model.stats import compute_stats

SAMPLES = [
    [0.5],
    [0.2, 0.1],
    [3.0, 1.0, 2.0],
    [1.0, 2.0, 3.0, 4.0],
    [1.0, 2.0, 3.0, 4.0, 5.0],
    [5.0, 1.0, 1.1, 1.2, 0.9, 1.0, 1.05],
    [0.010, 0.011, 0.0105, 0.030, 0.0102, 0.0099, 0.0101, 0.0103, 0.0104, 0.0098],
    [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2],
]


@pytest.mark.parametrize("durations", SAMPLES, ids=lambda data: f"{len(data)}-rounds")
def test_every_field_equals_pytest_benchmarks(durations: list[float]) -> None:
    reference = Stats()  # type: ignore[no-untyped-call]
    for value in durations:
        reference.update(value)  # type: ignore[no-untyped-call]
    ours = compute_stats(durations).as_dict()
    for field in Stats.fields:
        assert ours[field] == pytest.approx(getattr(reference, field)), field


def test_outliers_are_counted_beyond_the_fences() -> None:
    stats = compute_stats([1.0, 1.0, 1.0, 1.0, 10.0])
    assert stats.iqr_outliers == 1
    assert stats.hd15iqr == 1.0
    assert stats.outliers == "1;1"


def test_no_rounds_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one round"):
        compute_stats([])
