"""Budget parsing, marker validation and verdicts, as pure functions."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any, Literal

import pytest

from pytest_importcache.model.budget import ImportBudget
from pytest_importcache.model.errors import BudgetError
from pytest_importcache.model.result import ImportResult, ModuleTiming
from pytest_importcache.model.stats import compute_stats
from pytest_importcache.model.units import (
    format_duration,
    format_headroom,
    parse_duration,
    suggest_budget,
)
from pytest_importcache.model.verdict import judge


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("25ms", 0.025),
        ("1.5s", 1.5),
        ("800us", 0.0008),
        ("800µs", 0.0008),
        ("250000ns", 0.00025),
        (" 40 ms ", 0.04),
        ("0.2", 0.2),
        (".5s", 0.5),
        (2, 2.0),
        (0.125, 0.125),
    ],
)
def test_durations_parse_to_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", ["fast", "25 mins", "-5ms", "0ms", 0, -1.0, math.inf, math.nan, True, None, "", "1e3s"]
)
def test_bad_durations_are_rejected(value: object) -> None:
    with pytest.raises(BudgetError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.00085, "850us"),
        (0.0312, "31.2ms"),
        (0.25, "250ms"),
        (0.001, "1ms"),
        (0.9996, "1000ms"),
        (1.524, "1.52s"),
        (1234.5, "1234s"),
        (1.5e-6, "1.5us"),
        (2.5e-7, "250ns"),
        (1e-9, "1ns"),
        (1e-12, "0.001ns"),
        (0.0, "0s"),
        (-0.0005, "-500us"),
    ],
)
def test_durations_format_for_humans(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [1e-9, 3e-10, 4e-7, 1e-15])
def test_a_tiny_duration_never_reads_as_zero(seconds: float) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == pytest.approx(seconds, rel=0.01)


@pytest.mark.parametrize(
    ("fraction", "text"),
    [
        (0.94, "+94%"),
        (1.0, "+100%"),
        (-0.13, "-13%"),
        (-1.04, "-104%"),
        (-8.99, "-899%"),
        # Within a percent of the limit: one decimal, and never a signed zero.
        (0.0, "0%"),
        (-0.0, "0%"),
        (-0.004, "-0.4%"),
        (0.003, "+0.3%"),
        (-0.0004, "0%"),
        (0.0004, "0%"),
        (-0.0096, "-1%"),
        # Ten times the limit and more: the ratio, however far over.
        (-9.0, "x10"),
        (-11.0, "x12"),
        (-1135.0, "x1136"),
        (-9998.0, "x9999"),
        (-1136394.0, "x9999+"),
        (-math.inf, "x9999+"),
        (math.nan, "?"),
    ],
)
def test_headroom_stays_short_however_far_over(fraction: float, text: str) -> None:
    assert format_headroom(fraction) == text


@pytest.mark.parametrize("fraction", [i / 10_000 for i in range(-200, 201, 3)])
def test_a_headroom_near_zero_reads_its_sign_only_when_it_is_not_zero(fraction: float) -> None:
    text = format_headroom(fraction)
    assert text not in ("-0%", "+0%", "-0.0%", "+0.0%")
    assert float(text.rstrip("%")) == pytest.approx(fraction * 100, abs=0.5)


def test_the_headroom_of_a_nanosecond_budget_is_readable() -> None:
    budget = ImportBudget("lightpkg", warm=1e-9)
    (verdict,) = judge(budget, {"warm": make_result()}, stat="min")
    assert (format_duration(verdict.limit), format_headroom(verdict.headroom)) == ("1ns", "x9999+")


@pytest.mark.parametrize(
    ("seconds", "suggestion"),
    [
        (0.0312, "41ms"),
        (0.1, "130ms"),
        (0.0005, "650us"),
        (2.0, "2.6s"),
        (0.9, "1.2s"),
        (1e-9, "1.3ns"),
        (7.6e-7, "990ns"),
    ],
)
def test_suggestions_leave_thirty_percent_rounded_up(seconds: float, suggestion: str) -> None:
    assert suggest_budget(seconds) == suggestion
    assert parse_duration(suggestion) >= seconds * 1.3 - 1e-12


def test_a_full_marker_is_read() -> None:
    budget = ImportBudget.from_marker(
        ("mylib.cli",),
        {
            "cold": "150ms",
            "warm": 0.025,
            "max_modules": 60,
            "forbid": ["numpy", "pandas.*"],
            "stat": "min",
            "rounds": 5,
            "closure": True,
        },
    )
    assert budget == ImportBudget(
        "mylib.cli", 0.15, 0.025, 60, ("numpy", "pandas.*"), "min", 5, True
    )
    assert budget.timed_flavours == ("cold", "warm")


def test_the_module_may_be_given_as_keyword_and_forbid_as_one_string() -> None:
    budget = ImportBudget.from_marker((), {"module": "mylib", "forbid": "numpy"})
    assert (budget.module, budget.forbid, budget.timed_flavours) == ("mylib", ("numpy",), ())


@pytest.mark.parametrize("seconds", [0.0, -1.0, math.inf, math.nan])
def test_no_budget_is_suggested_for_a_non_positive_time(seconds: float) -> None:
    with pytest.raises(BudgetError, match="cannot suggest a budget"):
        suggest_budget(seconds)


@pytest.mark.parametrize(
    "make_forbid",
    [
        lambda: itertools.chain(["numpy"], ["pandas.*"]),
        lambda: map(str.strip, [" numpy", "pandas.* "]),
        lambda: (name for name in ("numpy", "pandas.*")),
        lambda: iter(["numpy", "pandas.*"]),
        lambda: ("numpy", "pandas.*"),
        lambda: dict.fromkeys(["numpy", "pandas.*"]),
    ],
    ids=["chain", "map", "generator", "iter", "tuple", "dict-keys"],
)
def test_forbid_takes_any_iterable_read_once(make_forbid: Callable[[], Iterable[str]]) -> None:
    # One marker object serves every test it applies to: reading it again must
    # give the same patterns, not an exhausted iterator (no budget at all).
    kwargs = {"forbid": make_forbid()}
    first = ImportBudget.from_marker(("mylib",), kwargs)
    again = ImportBudget.from_marker(("mylib",), kwargs)
    assert first.forbid == again.forbid == ("numpy", "pandas.*")


def test_a_generator_of_non_strings_is_refused_naming_the_element() -> None:
    with pytest.raises(
        BudgetError,
        match=r"forbid=generator yielding \['numpy', 3\] is not a list of module name "
        r"patterns: 3 is not a non-empty str",
    ):
        ImportBudget.from_marker(("mylib",), {"forbid": (x for x in ["numpy", 3])})


def test_a_forbid_iterable_that_raises_is_one_line() -> None:
    def broken() -> Iterable[str]:
        yield "numpy"
        raise RuntimeError("no more\nsecond line")

    with pytest.raises(BudgetError, match=r"could not be read: RuntimeError: no more$"):
        ImportBudget.from_marker(("mylib",), {"forbid": broken()})


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {"cold": "1s"}, "the module to import is missing"),
        (("a", "b"), {"cold": "1s"}, "takes one positional argument"),
        ((42,), {"cold": "1s"}, "module=42 is not a module name"),
        (("my-lib",), {"cold": "1s"}, "'my-lib' is not a valid dotted module name"),
        (("mylib",), {"colde": "1s"}, "unknown argument colde='1s'"),
        (("mylib",), {"cold": "fast"}, "cold='fast' is not a duration"),
        (("mylib",), {"warm": "-5ms"}, "warm='-5ms' is not a duration"),
        (("mylib",), {"warm": -0.5}, "warm=-0.5 is not a positive duration"),
        (("mylib",), {}, "no budget given"),
        (("mylib",), {"max_modules": -1}, "max_modules=-1 is not a whole number >= 0"),
        (("mylib",), {"max_modules": 2.5}, "max_modules=2.5 is not a whole number"),
        (("mylib",), {"forbid": [1]}, "forbid=[1] is not a list of module name patterns: 1"),
        (("mylib",), {"forbid": ["numpy", ""]}, "'' is not a non-empty str"),
        (("mylib",), {"forbid": 3}, "forbid=3 is not a list of module name patterns"),
        (("mylib",), {"forbid": b"numpy"}, "forbid=b'numpy' is not a list of module name"),
        (("mylib",), {"forbid": iter([])}, "no budget given"),
        (("mylib",), {"cold": "1s", "stat": "p99"}, "stat='p99' is not one of min, max"),
        (("mylib",), {"cold": "1s", "rounds": 0}, "rounds=0 is not a whole number >= 1"),
        (("mylib",), {"warm": "1s", "closure": True}, "closure=True applies to a cold budget"),
        (("mylib",), {"cold": "1s", "closure": "yes"}, "closure='yes' is not True or False"),
    ],
)
def test_malformed_markers_name_the_argument(
    args: tuple[object, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(BudgetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ImportBudget.from_marker(args, kwargs)


def make_result(
    flavour: str = "warm", wall: tuple[float, ...] = (0.01, 0.02, 0.03)
) -> ImportResult:
    """A result of ``lightpkg`` that loaded lightpkg.helper and decimal through it."""
    modules = {
        "decimal": ModuleTiming("decimal", 0.004, 0.004, "lightpkg.helper"),
        "lightpkg.helper": ModuleTiming("lightpkg.helper", 0.001, 0.005, "lightpkg"),
        "lightpkg": ModuleTiming("lightpkg", 0.001, 0.006, None),
    }
    return ImportResult(
        module="lightpkg",
        flavour=flavour,  # type: ignore[arg-type]
        closure=False,
        python="python",
        python_version="3.11.7",
        file="/env/lightpkg/__init__.py",
        wall=wall,
        cpu=wall,
        stats=compute_stats(wall),
        modules=modules,
    )


def test_a_time_budget_compares_the_chosen_statistic_after_scaling() -> None:
    budget = ImportBudget("lightpkg", warm=0.025)
    results: dict[Literal["cold", "warm"], ImportResult] = {"warm": make_result()}
    (by_median,) = judge(budget, results, stat="median")
    (by_max,) = judge(budget, results, stat="max")
    (by_scaled_max,) = judge(budget, results, stat="max", scale=2.0)
    assert (by_median.passed, by_max.passed, by_scaled_max.passed) == (True, False, True)
    assert by_scaled_max.limit == pytest.approx(0.05)
    assert by_median.headroom == pytest.approx(0.2)


def test_forbidden_modules_are_matched_by_glob_with_their_chain() -> None:
    budget = ImportBudget("lightpkg", forbid=("deci*", "numpy"))
    results: dict[Literal["cold", "warm"], ImportResult] = {"warm": make_result()}
    (verdict,) = judge(budget, results, stat="median")
    assert not verdict.passed
    assert verdict.forbidden == (("decimal", ("lightpkg", "lightpkg.helper", "decimal")),)


@pytest.mark.parametrize(("limit", "passed"), [(3, True), (2, False)])
def test_max_modules_counts_the_modules_loaded(limit: int, passed: bool) -> None:
    (verdict,) = judge(
        ImportBudget("lightpkg", max_modules=limit), {"warm": make_result()}, stat="median"
    )
    assert (verdict.passed, verdict.measured) == (passed, 3)
