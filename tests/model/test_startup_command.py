"""``StartupCommand``: what a start-up command may be; and how odd values are shown."""

from __future__ import annotations

import datetime

import pytest

from pytest_importcache.model.errors import BudgetError, SpecError
from pytest_importcache.model.spec import StartupCommand
from pytest_importcache.model.units import parse_duration


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        (["mycli", "--sep", ""], ("mycli", "--sep", "")),
        ("mycli --sep ''", ("mycli", "--sep", "")),
        # Quoted, an operator is an argument; in a list, every word is taken literally.
        ("mycli --help '|' head", ("mycli", "--help", "|", "head")),
        ('mycli "a;b" \\> x', ("mycli", "a;b", ">", "x")),
        (["mycli", "|", "head", "$(x)", "`x`"], ("mycli", "|", "head", "$(x)", "`x`")),
        (["FOO=1", "mycli"], ("FOO=1", "mycli")),
        ("mycli FOO=1 --opt=a=b", ("mycli", "FOO=1", "--opt=a=b")),
        ("mycli 'it''s' '$(x)'", ("mycli", "its", "$(x)")),
    ],
)
def test_arguments_may_be_empty_and_quoted_operators_are_words(
    command: object, argv: tuple[str, ...]
) -> None:
    assert StartupCommand.parse(command).argv == argv


@pytest.mark.parametrize(
    ("command", "found"),
    [
        ("mycli --help | head", "|"),
        ("mycli --help || true", "||"),
        ("mycli && other", "&&"),
        ("mycli; other", ";"),
        ("mycli > out.txt", ">"),
        ("mycli < in.txt", "<"),
        ("mycli &", "&"),
        ("mycli `date`", "`"),
        ("mycli $(date)", "$("),
        ('mycli "$(date)"', "$("),
        ("FOO=1 mycli", "FOO=1"),
    ],
)
def test_shell_syntax_in_a_string_is_refused_in_one_line(command: str, found: str) -> None:
    with pytest.raises(SpecError) as caught:
        StartupCommand.parse(command)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"command {command!r}: ")
    assert f"{found!r}" in message
    assert "a start-up command is one program and its arguments" in message


@pytest.mark.parametrize("command", [["", "--help"], "'' --help", [""]])
def test_the_first_word_must_not_be_empty(command: object) -> None:
    with pytest.raises(SpecError, match="a command's first word"):
        StartupCommand.parse(command)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (datetime.date(1979, 5, 27), "1979-05-27"),
        (datetime.time(7, 32), "07:32:00"),
        (datetime.datetime(1979, 5, 27, 7, 32, tzinfo=datetime.timezone.utc), "1979-05-27T07:32"),
    ],
)
def test_a_toml_date_is_shown_as_written(value: object, shown: str) -> None:
    with pytest.raises(BudgetError) as caught:
        parse_duration(value)
    assert str(caught.value).startswith(f"{shown}")
    assert "datetime" not in str(caught.value)
