"""The ratio of medians with its bootstrap interval, and the noise rule."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_importcache.model.interval import RatioInterval, format_bounds, ratio_interval
from pytest_importcache.model.noise import (
    comparison_noise,
    count_disagreement,
    is_noisy,
    measurement_noise,
    relative_spread,
)

rounds = st.lists(st.floats(min_value=1e-4, max_value=1.0), min_size=1, max_size=20)


estimators = st.sampled_from(["min", "median", None])


@given(head=rounds, base=rounds, estimator=estimators)
@settings(max_examples=60, deadline=None)
def test_the_interval_holds_the_ratio(
    head: list[float], base: list[float], estimator: str | None
) -> None:
    interval = ratio_interval(head, base, estimator=estimator, resamples=200)
    assert interval.low <= interval.ratio <= interval.high
    assert interval.low > 0
    assert math.isfinite(interval.high)


@given(pairs=st.lists(st.tuples(st.floats(1e-4, 1.0), st.floats(1e-4, 1.0)), min_size=1))
@settings(max_examples=40, deadline=None)
def test_the_median_of_pair_ratios(pairs: list[tuple[float, float]]) -> None:
    head, base = [one for one, _ in pairs], [other for _, other in pairs]
    interval = ratio_interval(head, base, estimator="pairs", resamples=100)
    assert interval.low <= interval.ratio <= interval.high


@given(
    head=rounds,
    base=rounds,
    factor=st.floats(min_value=1e-3, max_value=1e3),
    estimator=estimators,
)
@settings(max_examples=60, deadline=None)
def test_the_unit_does_not_matter(
    head: list[float], base: list[float], factor: float, estimator: str | None
) -> None:
    plain = ratio_interval(head, base, estimator=estimator, resamples=200)
    scaled = ratio_interval(
        [v * factor for v in head],
        [v * factor for v in base],
        estimator=estimator,
        resamples=200,
    )
    assert scaled.ratio == pytest.approx(plain.ratio)
    assert scaled.low == pytest.approx(plain.low)
    assert scaled.high == pytest.approx(plain.high)


@given(head=rounds, base=rounds)
@settings(max_examples=30, deadline=None)
def test_the_same_rounds_give_the_same_interval(head: list[float], base: list[float]) -> None:
    assert ratio_interval(head, base, resamples=100) == ratio_interval(head, base, resamples=100)


def test_identical_rounds_give_an_exact_ratio() -> None:
    interval = ratio_interval([36_448_904] * 5, [36_000_000] * 5)
    assert interval.exact
    assert interval.describe() == f"x{36_448_904 / 36_000_000:.3f} (median of pair ratios, exact)"


def test_counts_that_differ_a_little_are_never_shown_as_exact() -> None:
    # pydantic's counts moved by a few hundred instructions between rounds.
    head = [189_707_806, 189_708_024, 189_707_937]
    interval = ratio_interval(head, [189_707_900, 189_707_700, 189_708_100])
    assert not interval.exact
    assert "1.000-1.000" not in interval.describe()
    assert "exact" not in interval.describe()
    low, high = interval.bounds.split("-")
    assert low != high
    assert float(low) <= interval.ratio <= float(high)
    assert "1.000-1.000" not in comparison_noise(interval, 0.0)


@pytest.mark.parametrize(
    ("low", "high", "shown"),
    [
        (1.02, 1.08, "1.020-1.080"),
        (0.9999989, 1.0000021, "0.999999-1.000002"),
        (1.0, 1.0000001, "1.0000000-1.0000001"),
        (1.0, 1.0000000000000002, "1.0000000000000000-1.0000000000000002"),
    ],
)
def test_bounds_show_as_many_digits_as_tell_them_apart(low: float, high: float, shown: str) -> None:
    assert format_bounds(low, high) == shown


def test_counts_that_differ_between_rounds_say_so() -> None:
    assert count_disagreement([5_000_000] * 3) == ""
    assert count_disagreement([5_000_000]) == ""
    assert count_disagreement([189_707_806, 189_708_024]) == (
        "counted rounds disagree: 189,707,806 to 189,708,024 instructions "
        "(218 apart, 1.1e-06 of the count)"
    )


def test_pairing_cancels_a_drift_that_hits_both_sides() -> None:
    drift = [1.0, 1.3, 0.9, 1.6, 1.1, 1.0, 1.4, 0.95, 1.2, 1.05]
    head = [0.011 * d for d in drift]
    base = [0.010 * d for d in drift]
    paired = ratio_interval(head, base, estimator="median")
    unpaired = ratio_interval(head, [*base[:-1], 0.010], estimator="median")
    assert paired.width < 0.1 * unpaired.width
    assert paired.slower_than(0.05)


@pytest.mark.parametrize(
    ("low", "high", "threshold", "slower"),
    [(1.06, 1.2, 0.05, True), (1.04, 1.2, 0.05, False), (0.9, 1.01, 0.05, False)],
)
def test_slower_only_when_the_whole_interval_is_above(
    low: float, high: float, threshold: float, slower: bool
) -> None:
    assert RatioInterval((low + high) / 2, low, high).slower_than(threshold) is slower


@pytest.mark.parametrize(
    ("head", "base", "message"),
    [
        ([], [1.0], "at least one round"),
        ([1.0], [0.0], "positive, finite"),
        ([math.nan], [1.0], "positive, finite"),
    ],
)
def test_bad_input(head: list[float], base: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ratio_interval(head, base)


def test_the_fastest_rounds_ignore_rounds_a_busy_machine_slowed() -> None:
    head = [0.011, 0.033, 0.011, 0.030, 0.0111, 0.011]
    base = [0.010, 0.010, 0.025, 0.010, 0.0101, 0.028]
    assert ratio_interval(head, base, estimator="min").ratio == pytest.approx(1.1)
    assert ratio_interval(head, base, estimator="min").slower_than(0.05)


def test_pairs_ignore_a_pair_only_one_side_of_which_was_disturbed() -> None:
    slow_moments = [1.0, 2.5, 1.0, 3.0, 1.2, 1.0, 2.0, 1.1]
    head = [0.011 * moment for moment in slow_moments]
    base = [0.010 * moment for moment in slow_moments]
    head[2] *= 3  # only head was disturbed in pair 2
    base[5] *= 3  # only base in pair 5
    interval = ratio_interval(head, base)
    assert interval.estimator == "pairs"
    assert interval.ratio == pytest.approx(1.1)
    assert interval.slower_than(0.05)
    assert not ratio_interval(head, base, estimator="median").slower_than(0.05)


def test_sides_of_unequal_length_fall_back_to_the_ratio_of_medians() -> None:
    assert ratio_interval([1.0, 2.0, 3.0], [1.0, 2.0]).estimator == "median"


@pytest.mark.parametrize(
    ("head", "base", "estimator", "message"),
    [
        ([1.0], [1.0], "mean", "estimator must be one of min, median, pairs"),
        ([1.0, 2.0], [1.0], "pairs", "as many rounds on each side"),
    ],
)
def test_bad_estimator(head: list[float], base: list[float], estimator: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ratio_interval(head, base, estimator=estimator)


def test_bad_confidence() -> None:
    with pytest.raises(ValueError, match="confidence"):
        ratio_interval([1.0], [1.0], confidence=1.0)


@pytest.mark.parametrize(
    ("values", "spread"),
    [([1.0], 0.0), ([1.0, 1.0, 1.0, 1.0], 0.0), ([1.0, 1.1, 1.2, 1.3], 0.2 / 1.15)],
)
def test_relative_spread(values: list[float], spread: float) -> None:
    assert relative_spread(values) == pytest.approx(spread)


def test_the_noise_rule() -> None:
    steady = [0.010, 0.0101, 0.0102, 0.0100, 0.0101]
    scattered = [0.010, 0.013, 0.009, 0.015, 0.011]
    assert not is_noisy(steady)
    assert is_noisy(scattered)
    assert measurement_noise(steady) == ""
    assert measurement_noise(steady, headroom=0.3) == ""
    assert measurement_noise(steady, headroom=0.005).startswith("noisy: rounds spread 1% >=")
    assert measurement_noise(scattered).endswith("(IQR/median) > 10%")
    assert comparison_noise(RatioInterval(1.0, 0.97, 1.03), 0.05) == ""
    assert comparison_noise(RatioInterval(1.2, 1.1, 1.3), 0.05) == ""
    assert comparison_noise(RatioInterval(1.0, 0.9, 1.1), 0.05) == (
        "noisy: the 95% interval 0.900-1.100 holds x1.05"
    )


def test_too_few_timed_rounds_never_judge_a_comparison() -> None:
    # Three pairs on a shared machine: an unchanged package read x1.45 (1.13-1.57).
    few = ratio_interval([1.45, 1.50, 1.40], [1.0, 1.0, 1.0])
    assert few.rounds == 3
    assert few.low > 1.10
    assert not few.slower_than(0.10)
    assert comparison_noise(few, 0.10) == (
        "noisy: 3 rounds a side are too few to judge a timed comparison (it takes 5)"
    )
    enough = ratio_interval([1.45, 1.50, 1.40, 1.42, 1.48], [1.0] * 5)
    assert enough.slower_than(0.10)
    assert comparison_noise(enough, 0.10) == ""


def test_counts_that_repeat_judge_from_one_round() -> None:
    exact = ratio_interval([1.2e8], [1.0e8])
    assert exact.exact
    assert exact.slower_than(0.10)
    assert comparison_noise(exact, 0.10) == ""


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 1.0, 1.112, 1.112, 1.112, 1.112], "noisy: rounds spread 10.1% (IQR/median) > 10%"),
        ([1.0, 1.0, 1.2, 1.3, 1.4], "noisy: rounds spread 27% (IQR/median) > 10%"),
    ],
)
def test_a_spread_just_over_the_limit_never_reads_as_equal_to_it(
    values: list[float], expected: str
) -> None:
    assert measurement_noise(values) == expected
