"""Properties of the budget arithmetic, checked on generated values with Hypothesis.

Durations: formatting then parsing gives the value back to within the three
significant digits shown; every unit spelling parses; anything that is not a
positive, finite duration is a ``BudgetError`` and never another exception.
Suggestions: at least 30% above the measurement, at most one step of two
significant digits more. Verdicts: a time budget passes exactly when the
statistic is within the scaled limit, and a larger scale never turns a pass
into a failure.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Literal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pytest_importcache.model.budget import ImportBudget
from pytest_importcache.model.errors import BudgetError
from pytest_importcache.model.result import ImportResult, ModuleTiming
from pytest_importcache.model.stats import STATISTICS, compute_stats
from pytest_importcache.model.units import (
    format_duration,
    format_headroom,
    parse_duration,
    suggest_budget,
)
from pytest_importcache.model.verdict import judge

# Pure functions, but no deadline: a loaded CI machine must not fail them.
pure = settings(deadline=None)

UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "": 1.0}

# 1 ns to about three hours: every duration an import budget can sensibly hold.
durations = st.floats(min_value=1e-9, max_value=1e4, allow_nan=False, allow_infinity=False)
# Round times: one fresh interpreter takes at least microseconds, at most minutes.
round_seconds = st.floats(min_value=1e-6, max_value=100.0, allow_nan=False)


def result_of(wall: list[float], modules: list[str]) -> ImportResult:
    """A warm measurement of ``pkg`` with these round times and loaded modules (pkg last)."""
    timings = {name: ModuleTiming(name, 0.0, 0.0, "pkg") for name in modules}
    timings["pkg"] = ModuleTiming("pkg", 0.0, 0.0, None)
    return ImportResult(
        module="pkg",
        flavour="warm",
        closure=False,
        python="python",
        python_version="3.11.7",
        file="/env/pkg/__init__.py",
        wall=tuple(wall),
        cpu=tuple(wall),
        stats=compute_stats(wall),
        modules=timings,
    )


# -- durations ------------------------------------------------------------------------------


@pure
@given(durations)
@example(1e-9)
@example(0.9996)
@example(999.96e-6)
def test_a_formatted_duration_parses_back_within_its_precision(seconds: float) -> None:
    text = format_duration(seconds)
    # Three significant digits: the last one shown is at most half a unit off,
    # and a reading has at least 100 units of its last digit.
    assert parse_duration(text) == pytest.approx(seconds, rel=0.005)
    assert re.fullmatch(r"\d+(\.\d+)?(ns|us|ms|s)", text), text


@pure
@given(
    whole=st.integers(min_value=0, max_value=10**6),
    fraction=st.none() | st.text(alphabet="0123456789", min_size=0, max_size=6),
    unit=st.sampled_from(sorted(UNITS)),
    before=st.sampled_from(["", " ", "  "]),
    between=st.sampled_from(["", " "]),
    after=st.sampled_from(["", " ", "\t"]),
)
def test_every_unit_spelling_parses(
    *, whole: int, fraction: str | None, unit: str, before: str, between: str, after: str
) -> None:
    number = str(whole) if fraction is None else f"{whole}.{fraction}"
    text = f"{before}{number}{between}{unit}{after}"
    expected = float(number) * UNITS[unit]
    if expected > 0:
        assert parse_duration(text) == pytest.approx(expected, rel=1e-12)
    else:
        with pytest.raises(BudgetError, match="is not a positive duration"):
            parse_duration(text)


@pure
@given(st.floats(min_value=1e-12, max_value=1e12) | st.integers(min_value=1, max_value=10**12))
def test_a_positive_number_is_that_many_seconds(value: float) -> None:
    assert parse_duration(value) == float(value)


@pure
@given(
    st.floats(max_value=0.0)
    | st.integers(max_value=0)
    | st.sampled_from([math.nan, math.inf, -math.inf, True, False])
    | st.integers(min_value=10**309)
)
def test_no_positive_finite_duration_is_refused(value: float) -> None:
    with pytest.raises(BudgetError):
        parse_duration(value)


@pure
@given(
    st.none()
    | st.binary()
    | st.lists(st.integers())
    | st.dictionaries(st.text(), st.text())
    | st.complex_numbers()
    | st.decimals(allow_nan=False)
)
def test_other_types_are_refused(value: object) -> None:
    with pytest.raises(BudgetError, match="is not a duration"):
        parse_duration(value)


@pure
@given(st.text())
@example("-5ms")
@example("1e3s")
@example("nan")
@example("inf s")
@example("5 mins")
@example("٣ms")  # a digit, but not an ASCII one
@example("1" * 400 + "s")
@example("1.2.3ms")
@example(".s")
@example("1_000ms")
@example("\u00a01ms")  # a no-break space
def test_any_text_is_a_positive_duration_or_a_budget_error(text: str) -> None:
    outcome: float | BudgetError
    try:
        outcome = parse_duration(text)
    except BudgetError as exc:
        outcome = exc
    if isinstance(outcome, BudgetError):
        assert "\n" not in str(outcome)
    else:
        assert math.isfinite(outcome)
        assert outcome > 0
        # Only ASCII digits, one number, a known unit and spaces were accepted.
        assert re.fullmatch(r"\s*[0-9]*\.?[0-9]*\s*(ns|us|µs|ms|s)?\s*", text, re.ASCII)


# -- suggestions ------------------------------------------------------------------------------


def significant_digits(number: str) -> str:
    """The significant digits of a decimal number: ``0.0130`` -> ``13``."""
    return number.replace(".", "").lstrip("0").rstrip("0")


@pure
@given(durations)
@example(0.1)
@example(0.0312)
@example(0.9 / 1.3)  # lands exactly on a unit boundary
@example(1e-3 / 1.3)
@example(0.010000000000003846)  # 13.000000000005ms: an absolute tolerance gave 13ms
def test_a_suggestion_is_thirty_percent_up_rounded_to_two_digits(seconds: float) -> None:
    text = suggest_budget(seconds)
    suggested = parse_duration(text)
    target = seconds * 1.3
    assert suggested >= target * (1 - 4e-15)  # a few float roundings, no more
    # Rounded up by less than one step of the second significant digit.
    assert suggested < target * 1.1 * (1 + 1e-9)
    number = re.fullmatch(r"([0-9.]+)(ns|us|ms|s)", text)
    assert number is not None, text
    assert 1 <= len(significant_digits(number[1])) <= 2, text


# -- verdicts ---------------------------------------------------------------------------------


@pure
@given(
    wall=st.lists(round_seconds, min_size=1, max_size=12),
    limit=durations,
    scale=st.floats(min_value=0.01, max_value=100.0),
    stat=st.sampled_from(STATISTICS),
)
def test_a_time_budget_passes_exactly_within_the_scaled_limit(
    wall: list[float], limit: float, scale: float, stat: str
) -> None:
    result = result_of(wall, [])
    (verdict,) = judge(ImportBudget("pkg", warm=limit), {"warm": result}, stat=stat, scale=scale)
    measured = result.statistic(stat)
    assert verdict.passed == (measured <= limit * scale)
    assert (verdict.measured, verdict.limit, verdict.scale) == (measured, limit * scale, scale)
    assert (verdict.headroom >= 0) == verdict.passed or verdict.headroom == 0
    assert len(format_headroom(verdict.headroom)) <= 6


@pure
@given(
    wall=st.lists(round_seconds, min_size=1, max_size=12),
    limit=durations,
    scales=st.lists(st.floats(min_value=0.01, max_value=100.0), min_size=2, max_size=6),
    stat=st.sampled_from(STATISTICS),
)
def test_a_larger_scale_never_fails_a_passing_budget(
    wall: list[float], limit: float, scales: list[float], stat: str
) -> None:
    results: dict[Literal["cold", "warm"], ImportResult] = {
        "cold": result_of(wall, []),
        "warm": result_of(wall, []),
    }
    budget = ImportBudget("pkg", cold=limit, warm=limit)
    passed = [
        [verdict.passed for verdict in judge(budget, results, stat=stat, scale=scale)]
        for scale in sorted(scales)
    ]
    for smaller, larger in itertools.pairwise(passed):
        assert all(larger[index] for index, ok in enumerate(smaller) if ok)


@pure
@given(
    wall=st.lists(round_seconds, min_size=1, max_size=5),
    limit=durations,
    cold_scale=st.floats(min_value=0.01, max_value=100.0),
    warm_scale=st.floats(min_value=0.01, max_value=100.0),
)
def test_each_flavour_uses_its_own_scale(
    wall: list[float], limit: float, cold_scale: float, warm_scale: float
) -> None:
    result = result_of(wall, [])
    cold, warm = judge(
        ImportBudget("pkg", cold=limit, warm=limit),
        {"cold": result, "warm": result},
        stat="min",
        scale={"cold": cold_scale, "warm": warm_scale},
    )
    assert (cold.kind, cold.passed) == ("cold", result.min <= limit * cold_scale)
    assert (warm.kind, warm.passed) == ("warm", result.min <= limit * warm_scale)


module_names = st.from_regex(r"[a-z][a-z0-9_]{0,6}(\.[a-z][a-z0-9_]{0,6}){0,2}", fullmatch=True)


@pure
@given(
    modules=st.lists(module_names, unique=True, max_size=10).map(
        lambda names: [name for name in names if name != "pkg"]
    ),
    max_modules=st.integers(min_value=0, max_value=15),
)
def test_max_modules_passes_exactly_up_to_the_count(modules: list[str], max_modules: int) -> None:
    result = result_of([0.01], modules)
    (verdict,) = judge(ImportBudget("pkg", max_modules=max_modules), {"warm": result}, stat="min")
    assert verdict.measured == len(modules) + 1  # the measured module counts too
    assert verdict.passed == (len(modules) + 1 <= max_modules)


@pure
@given(
    modules=st.lists(module_names, unique=True, max_size=10).map(
        lambda names: [name for name in names if name != "pkg"]
    ),
    forbidden=module_names,
)
def test_forbid_fails_exactly_when_a_forbidden_module_or_submodule_loaded(
    modules: list[str], forbidden: str
) -> None:
    result = result_of([0.01], modules)
    budget = ImportBudget("pkg", forbid=(forbidden, f"{forbidden}.*"))
    (verdict,) = judge(budget, {"warm": result}, stat="min")
    hits = [name for name in modules if name == forbidden or name.startswith(forbidden + ".")]
    assert verdict.passed == (not hits)
    assert [name for name, _ in verdict.forbidden] == hits
    assert all(chain[-1] == name for name, chain in verdict.forbidden)
