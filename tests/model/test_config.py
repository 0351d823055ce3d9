"""``[tool.importcache] budgets``: entries read into marker arguments, malformed ones named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pytest_importcache.model.config import (
    ConfigBudget,
    find_pyproject,
    load_budgets,
    pytest_pythonpath,
    read_budgets,
)
from pytest_importcache.model.errors import ConfigError


def test_entries_become_marker_arguments() -> None:
    budgets = read_budgets(
        {
            "budgets": [
                {"module": "mylib", "cold": "150ms", "warm": "25ms", "forbid": ["numpy"]},
                {"command": "mycli --help", "warm": "120ms"},
                {"code": "import mylib", "warm": "60ms"},
            ]
        }
    )
    assert [(budget.marker, budget.args, dict(budget.kwargs)) for budget in budgets] == [
        ("import_budget", ("mylib",), {"cold": "150ms", "warm": "25ms", "forbid": ["numpy"]}),
        ("startup_budget", ("mycli --help",), {"warm": "120ms"}),
        ("startup_budget", (), {"code": "import mylib", "warm": "60ms"}),
    ]
    assert [budget.name for budget in budgets] == [
        "importcache[mylib]",
        "importcache[mycli --help]",
        "importcache[code: import mylib]",
    ]
    assert [budget.lock_key for budget in budgets] == [
        "mylib",
        "$ mycli --help",
        "$ code: import mylib",
    ]
    assert not any(budget.problem for budget in budgets)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"module": "mylib", "colt": "1s"}, "budgets[0] (module 'mylib'): unknown key 'colt'"),
        ({"module": "mylib", "cold": "fast"}, "budgets[0] (module 'mylib'): cold='fast'"),
        (
            {"module": "mylib", "rounds": "3", "warm": "1s"},
            "budgets[0] (module 'mylib'): rounds='3'",
        ),
        ({"module": "mylib"}, "budgets[0] (module 'mylib'): no budget given"),
        ({"module": 3, "warm": "1s"}, "budgets[0]: module=3 is not a module name"),
        ({"module": "my lib", "warm": "1s"}, "budgets[0] (module 'my lib'): module="),
        ("mylib", "budgets[0]: 'mylib' is not a table"),
        ({"warm": "1s"}, "budgets[0]: no module, command or code key"),
        ({"module": "m", "command": "c", "warm": "1s"}, "budgets[0]: give module"),
        ({"command": 3}, "budgets[0]: command: a command is a string or a list of words"),
        ({"command": "mycli", "colt": 1}, "budgets[0] (command 'mycli'): unknown key 'colt'"),
    ],
)
def test_a_malformed_entry_names_its_index_target_and_key(entry: object, problem: str) -> None:
    (budget,) = read_budgets({"budgets": [entry]})
    assert budget.problem.startswith(problem), budget.problem
    assert "\n" not in budget.problem
    assert "import_budget(" not in budget.problem


def test_a_duplicate_budget_is_named_and_keeps_a_name_of_its_own() -> None:
    budgets = read_budgets(
        {"budgets": [{"module": "m", "warm": "1s"}, {"module": "m", "cold": "1s"}]}
    )
    assert budgets[1].problem == (
        "budgets[1] (module 'm'): duplicate budget: budgets[0] budgets 'm' already "
        "(merge the two entries)"
    )
    assert [budget.name for budget in budgets] == ["importcache[m]", "importcache[budgets[1]]"]


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        ({"colt": "25ms"}, "unknown key 'colt'"),
        ({"warm": [1, 2, 3]}, "warm=[1, 2, 3] is not a budget"),
        ({"warm": dt.date(1979, 5, 27)}, "warm=1979-05-27 is not a duration"),
        ({"warm": "1s", "forbid": [1]}, "forbid=[1] is not a list of module"),
        ({"warm": "1s", "max_modules": 1.5}, "max_modules=1.5 is not"),
    ],
)
def test_a_duplicate_entrys_own_problem_comes_first(
    second: dict[str, object], problem: str
) -> None:
    budgets = read_budgets(
        {"budgets": [{"module": "m", "warm": "25ms"}, {"module": "m", **second}]}
    )
    assert budgets[1].problem.startswith(f"budgets[1] (module 'm'): {problem}")
    assert "duplicate" not in budgets[1].problem
    assert [budget.name for budget in budgets] == ["importcache[m]", "importcache[budgets[1]]"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.importcache]\nbudgets = 3\n", "budgets = 3 is not an array of tables"),
        ("[tool.importcache]\nbudget = []\n", "unknown key 'budget'"),
        ("[tool]\nimportcache = 3\n", "tool.importcache = 3 is not a table"),
        ("[tool.importcache\n", "not valid TOML"),
    ],
)
def test_an_unusable_table_is_one_line_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_budgets(path)
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


def test_no_table_means_no_budgets_and_the_nearest_file_is_found(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_pyproject(tmp_path / "a" / "b") == tmp_path / "pyproject.toml"
    assert load_budgets(tmp_path / "pyproject.toml") == []
    assert ConfigBudget(0, "m", "module").where == "budgets[0] (module 'm')"


def test_a_start_up_entry_is_validated_as_its_marker() -> None:
    (budget,) = read_budgets({"budgets": [{"command": "mycli", "exit_code": "zero"}]})
    assert budget.problem.startswith("budgets[0] (command 'mycli'): exit_code='zero'")


def test_a_snippet_entry_says_code_once() -> None:
    snippet, command = read_budgets(
        {"budgets": [{"code": "import mylib", "colt": 1}, {"command": "mycli", "colt": 1}]}
    )
    assert snippet.problem.startswith("budgets[0] (code 'import mylib'): unknown key 'colt'")
    assert command.problem.startswith("budgets[1] (command 'mycli'): unknown key 'colt'")
    assert snippet.name == "importcache[code: import mylib]"  # names are keys: unchanged


def test_entries_for_one_module_may_differ_in_closure_metric_or_lazy_mode() -> None:
    budgets = read_budgets(
        {
            "budgets": [
                {"module": "mylib", "warm": "25ms"},
                {"module": "mylib", "cold": "90ms", "closure": True},
                {"module": "mylib", "warm": "40M", "metric": "instructions"},
                {"module": "mylib", "warm": "25ms", "lazy_imports": "all"},
                {"module": "mylib", "cold": "1s", "closure": True, "lazy_imports": "all"},
                {"module": "mylib", "cold": "2s", "closure": False},
                {"module": "mylib", "warm": "9ms", "lazy_imports": "all"},
            ]
        }
    )
    assert [budget.problem for budget in budgets[:5]] == [""] * 5
    assert [budget.name for budget in budgets[:5]] == [
        "importcache[mylib]",  # a plain entry's name is unchanged: a key across commits
        "importcache[mylib closure]",
        "importcache[mylib metric=instructions]",
        "importcache[mylib lazy_imports=all]",
        "importcache[mylib closure lazy_imports=all]",
    ]
    assert budgets[4].lock_key == "mylib closure lazy_imports=all"
    assert budgets[5].problem == (
        "budgets[5] (module 'mylib'): duplicate budget: budgets[0] budgets 'mylib' already "
        "(merge the two entries)"
    )
    assert budgets[6].problem.startswith(
        "budgets[6] (module 'mylib'): duplicate budget: budgets[3] budgets 'mylib' "
        "(lazy_imports=all) already"
    )


def test_long_snippets_that_begin_alike_are_two_budgets_with_names_of_their_own() -> None:
    start = "import mylib; mylib.load_configuration_from_disk_file"
    budgets = read_budgets(
        {
            "budgets": [
                {"code": f"{start}('alpha.toml')", "warm": "1s"},
                {"code": f"{start}('beta.toml')", "warm": "1s"},
            ]
        }
    )
    assert [budget.problem for budget in budgets] == ["", ""]
    assert budgets[0].name != budgets[1].name


@pytest.mark.parametrize(
    ("table", "entries"),
    [
        ('[tool.pytest.ini_options]\npythonpath = ["libs", "src"]\n', ["libs", "src"]),
        ('[tool.pytest.ini_options]\npythonpath = "libs src"\n', ["libs", "src"]),
        ('[tool.pytest]\npythonpath = ["libs"]\n', ["libs"]),
        ("[tool.pytest.ini_options]\n", []),
        ("[tool.pytest\n", []),
    ],
)
def test_pytests_pythonpath_is_read_relative_to_the_file(
    tmp_path: Path, table: str, entries: list[str]
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(table)
    assert pytest_pythonpath(pyproject) == [str(tmp_path / entry) for entry in entries]
