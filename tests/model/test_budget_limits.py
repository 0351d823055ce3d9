"""The limits of issue 20 as pure functions: allow, max_memory, lazy_imports, startup_budget."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_importcache.model.budget import (
    MARKER_KEYWORDS,
    STARTUP_MARKER_KEYWORDS,
    ImportBudget,
    StartupBudget,
)
from pytest_importcache.model.errors import BudgetError
from pytest_importcache.model.result import ImportResult, ModuleTiming
from pytest_importcache.model.spec import StartupCommand
from pytest_importcache.model.stats import compute_stats
from pytest_importcache.model.units import format_memory, parse_memory
from pytest_importcache.model.verdict import judge

STDLIB = frozenset({"decimal", "json", "os", "sys", "email"})


def make_result(modules: dict[str, str | None]) -> ImportResult:
    """A warm result of ``lightpkg`` whose import loaded ``modules`` (name -> importer)."""
    wall = (0.01, 0.02)
    return ImportResult(
        module="lightpkg",
        flavour="warm",
        closure=False,
        python="python",
        python_version="3.11.7",
        file="/env/lightpkg/__init__.py",
        wall=wall,
        cpu=wall,
        stats=compute_stats(wall),
        modules={
            name: ModuleTiming(name, 0.001, 0.001, parent) for name, parent in modules.items()
        },
    )


LOADED = {
    "email.mime": "lightpkg.helper",
    "decimal": "lightpkg.helper",
    "requests.adapters": "requests",
    "requests": "lightpkg.net",
    "lightpkg.net": "lightpkg",
    "lightpkg.helper": "lightpkg",
    "lightpkg": None,
}


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("60MB", 60_000_000),
        ("1.5GB", 1_500_000_000),
        ("800kB", 800_000),
        ("800KB", 800_000),
        ("60mb", 60_000_000),
        ("512KiB", 524_288),
        ("1MiB", 1_048_576),
        ("2GiB", 2 * 2**30),
        (" 40 MB ", 40_000_000),
        ("100B", 100),
        (4096, 4096),
    ],
)
def test_memory_sizes_parse_to_bytes(text: object, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("800k", "'800k' is not a memory size"),
        ("60M", "'60M' is not a memory size"),
        ("60 megabytes", "is not a memory size"),
        ("5iB", "is not a memory size"),
        (1.5, "1.5 is not a memory size"),
        (True, "True is not a memory size"),
        (0, "0 is not a positive memory size"),
        ("0MB", "'0MB' is not a positive memory size"),
        (-1, "-1 is not a positive memory size"),
        (10**20, "more memory than any interpreter"),
        (None, "None is not a memory size"),
    ],
)
def test_bad_memory_sizes_are_one_line(value: object, message: str) -> None:
    with pytest.raises(BudgetError, match=message) as caught:
        parse_memory(value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("size", "text"),
    [(58_234_000, "58.2MB"), (912_000, "912kB"), (1_500_000_000, "1.5GB"), (12, "12B")],
)
def test_memory_sizes_read_back_as_written(size: int, text: str) -> None:
    assert format_memory(size) == text
    assert parse_memory(text) == pytest.approx(size, rel=0.01)


def test_allow_names_every_module_outside_the_stdlib_and_the_patterns_with_its_chain() -> None:
    budget = ImportBudget("lightpkg", allow=("lightpkg", "lightpkg.*"))
    (verdict,) = judge(budget, {"warm": make_result(LOADED)}, stat="min", stdlib=STDLIB)
    assert verdict.kind == "allow"
    assert not verdict.passed
    assert verdict.forbidden == (
        ("requests.adapters", ("lightpkg", "lightpkg.net", "requests", "requests.adapters")),
        ("requests", ("lightpkg", "lightpkg.net", "requests")),
    )


def test_an_allow_pattern_matches_as_forbid_does_a_package_name_alone_is_not_its_submodules() -> (
    None
):
    budget = ImportBudget("lightpkg", allow=("lightpkg*", "requests"))
    (verdict,) = judge(budget, {"warm": make_result(LOADED)}, stat="min", stdlib=STDLIB)
    assert [name for name, _ in verdict.forbidden] == ["requests.adapters"]
    widened = ImportBudget("lightpkg", allow=("lightpkg*", "requests", "requests.*"))
    (passing,) = judge(widened, {"warm": make_result(LOADED)}, stat="min", stdlib=STDLIB)
    assert passing.passed


def test_allow_takes_the_standard_library_of_the_interpreter_under_test() -> None:
    # The same import judged against an interpreter whose stdlib lacks ``decimal``.
    budget = ImportBudget("lightpkg", allow=("lightpkg*", "requests*"))
    (verdict,) = judge(
        budget, {"warm": make_result(LOADED)}, stat="min", stdlib=STDLIB - {"decimal"}
    )
    assert [name for name, _ in verdict.forbidden] == ["decimal"]


def test_main_counts_as_the_interpreter_s_own() -> None:
    result = make_result({"__main__": None, "json": "__main__"})
    (verdict,) = judge(
        ImportBudget("x", allow=("nothing",)), {"warm": result}, stat="min", stdlib=STDLIB
    )
    assert verdict.passed


@pytest.mark.parametrize("marker", [ImportBudget, StartupBudget])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"allow": 3}, r"allow=3 is not a list of module name patterns \(write allow="),
        ({"allow": ["ok", ""]}, r"allow=\['ok', ''\] is not a list of module name patterns"),
        ({"allow": b"x"}, r"allow=b'x' is not a list"),
        ({"max_memory": "60M"}, r"max_memory='60M' is not a memory size"),
        ({"max_memory": -5}, r"max_memory=-5 is not a positive memory size"),
        ({"warm": "1s", "lazy_imports": "none"}, r"lazy_imports='none' is not one of normal, all"),
        ({"warm": "1s", "lazy_imports": True}, r"lazy_imports=True is not one of"),
    ],
)
def test_malformed_new_arguments_name_the_argument_on_both_markers(
    marker: type[ImportBudget], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(BudgetError, match=message) as caught:
        marker.from_marker(("mylib",), kwargs)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("marker", [ImportBudget, StartupBudget])
def test_allow_or_max_memory_alone_is_a_budget(marker: type[ImportBudget]) -> None:
    allowed = marker.from_marker(("mylib",), {"allow": ["mylib", "mylib.*"]})
    assert (allowed.allow, allowed.timed_flavours) == (("mylib", "mylib.*"), ())
    bounded = marker.from_marker(("mylib",), {"max_memory": "60MB", "lazy_imports": "all"})
    assert (bounded.max_memory, bounded.lazy_imports) == (60_000_000, "all")


def test_both_markers_list_the_new_keywords() -> None:
    for keyword in ("allow", "max_memory", "lazy_imports"):
        assert keyword in MARKER_KEYWORDS
        assert keyword in STARTUP_MARKER_KEYWORDS


@pytest.mark.parametrize(
    ("args", "kwargs", "command"),
    [
        (("mycli --help",), {"warm": "120ms"}, StartupCommand(argv=("mycli", "--help"))),
        ((["python", "-m", "mylib"],), {"warm": "80ms"}, StartupCommand(("python", "-m", "mylib"))),
        (
            (),
            {"command": "mycli 'two words'", "forbid": ["x"]},
            StartupCommand(("mycli", "two words")),
        ),
        ((), {"code": "import mylib", "forbid": ["pandas"]}, StartupCommand(code="import mylib")),
    ],
)
def test_a_startup_marker_reads_its_command(
    args: tuple[object, ...], kwargs: dict[str, Any], command: StartupCommand
) -> None:
    budget = StartupBudget.from_marker(args, kwargs)
    assert budget.command == command
    assert budget.exit_code == 0


def test_a_startup_marker_keeps_its_limits_and_exit_code() -> None:
    budget = StartupBudget.from_marker(
        ("mycli --version",),
        {"cold": "300ms", "warm": "120ms", "max_modules": 150, "exit_code": 2, "stat": "median"},
    )
    assert (budget.cold, budget.warm, budget.max_modules) == (0.3, 0.12, 150)
    assert (budget.exit_code, budget.stat, budget.metric) == (2, "median", "time")
    assert budget.label == "startup_budget('mycli --version')"
    counted = StartupBudget.from_marker(("mycli",), {"warm": "40M"}, metric="instructions")
    assert (counted.warm, counted.metric) == (40_000_000, "instructions")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {"warm": "1s"}, "startup_budget: a start-up budget needs a command or code=..."),
        (("a", "b"), {"warm": "1s"}, "startup_budget: takes one positional argument"),
        (("a",), {"command": "b", "warm": "1s"}, "command given both by position and as keyword"),
        (("a",), {"code": "pass", "warm": "1s"}, "give a command or code=..., not both"),
        ((42,), {"warm": "1s"}, "a command is a string or a list of words, not 42"),
        (([],), {"warm": "1s"}, "needs a command or code"),
        (("'unclosed",), {"warm": "1s"}, "cannot be split into words"),
        ((["a", 3],), {"warm": "1s"}, "a command's words must be strings"),
        ((), {"code": "  ", "warm": "1s"}, "code must be a non-empty snippet"),
        (("mycli",), {}, r"startup_budget\('mycli'\): no budget given"),
        (("mycli",), {"warm": "1s", "closure": True}, "unknown argument closure=True"),
        (("mycli",), {"warm": "1s", "exit_code": "1"}, "exit_code='1' is not an exit status"),
        (("mycli",), {"warm": "1s", "exit_code": 256}, "exit_code=256 is not an exit status"),
        (("mycli",), {"warm": "fast"}, r"startup_budget\('mycli'\): warm='fast' is not a duration"),
        (("mycli",), {"warm": "1s", "rounds": 0}, "rounds=0 is not a whole number >= 1"),
        (("mycli",), {"warm": "1s", "metric": "cycles"}, "metric='cycles' is not one of"),
    ],
)
def test_malformed_startup_markers_are_one_line_naming_the_argument(
    args: tuple[object, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(BudgetError, match=message) as caught:
        StartupBudget.from_marker(args, kwargs)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["forbid", "allow"])
def test_an_iterator_that_raises_fails_the_same_way_at_every_read(name: str) -> None:
    # The look-ahead reads markers before setup does: the second read must not see it empty.
    kwargs = {name: map(int, ["x"])}
    for _ in range(2):
        with pytest.raises(BudgetError, match=rf"{name}=<map object .*> could not be read"):
            ImportBudget.from_marker(("mylib",), kwargs)
