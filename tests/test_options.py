"""Setting parsers as pure functions."""

from __future__ import annotations

import pytest

from pytest_importcache.options import (
    SETTINGS,
    parse_bool,
    parse_scale,
    parse_seconds,
    parse_stat,
    parse_whole_number,
)


@pytest.mark.parametrize(("text", "value"), [("10", 10), ("1", 1), (" 3 ", 3)])
def test_whole_numbers(text: str, value: int) -> None:
    assert parse_whole_number(1)(text) == value


@pytest.mark.parametrize("text", ["0", "-2", "2.5", "ten", ""])
def test_bad_whole_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="expected a whole number >= 1"):
        parse_whole_number(1)(text)


@pytest.mark.parametrize(("text", "value"), [("60", 60.0), ("90s", 90.0), ("500ms", 0.5)])
def test_timeouts(text: str, value: float) -> None:
    assert parse_seconds(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0", "-1", "soon"])
def test_bad_timeouts(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_seconds(text)


@pytest.mark.parametrize(("text", "value"), [("1.0", 1.0), ("2.5", 2.5), ("0.5", 0.5)])
def test_scales(text: str, value: float) -> None:
    assert parse_scale(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "inf", "nan", "double"])
def test_bad_scales(text: str) -> None:
    with pytest.raises(ValueError, match="expected a positive number or 'auto'"):
        parse_scale(text)


def test_auto_scale() -> None:
    assert parse_scale("auto") == "auto"


@pytest.mark.parametrize("text", ["median", "min", "mean", "max"])
def test_stats(text: str) -> None:
    assert parse_stat(text) == text


def test_bad_stat() -> None:
    with pytest.raises(ValueError, match="expected one of min, max, mean, median, got 'p99'"):
        parse_stat("p99")


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("Yes", True), ("1", True), ("off", False), ("0", False)]
)
def test_booleans(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_bad_boolean() -> None:
    with pytest.raises(ValueError, match="expected true or false"):
        parse_bool("maybe")


def test_every_setting_has_a_flag_an_ini_key_and_a_valid_default() -> None:
    for setting in SETTINGS:
        assert setting.flag == f"--importcache-{setting.name}"
        assert setting.ini == "importcache_" + setting.name.replace("-", "_")
        setting.parse(setting.default)
