"""Measuring imports in fresh interpreters: the engine end to end, without pytest's plugin."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import MakeTree, bytecode_files, heavy_source
from pytest_importcache import (
    ImportEnv,
    ImportRaisedError,
    ImportResult,
    LocateError,
    RoundCrashedError,
    RoundTimeoutError,
    WrongOriginError,
)

EnvFor = Callable[..., ImportEnv]

LIGHT_PACKAGE = {
    "lightpkg/__init__.py": "from . import helper\n",
    "lightpkg/helper.py": "import decimal\n",
}


def test_a_measurement_reports_rounds_stats_modules_and_file(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree(LIGHT_PACKAGE)
    env = env_for(tree, "warm")
    result = env.measure("lightpkg", rounds=3)
    assert result.rounds == len(result.wall) == len(result.cpu) == 3
    assert result.min <= result.median <= result.max
    assert list(result.modules)[-2:] == ["lightpkg.helper", "lightpkg"]
    assert "decimal" in result.modules
    assert result.chain("decimal") == ["lightpkg", "lightpkg.helper", "decimal"]
    assert Path(result.file).is_relative_to(env.path)
    assert result.python_version == sys.version.split()[0]
    assert result.label == "warm"


def test_the_callers_bytecode_settings_do_not_change_the_result(
    make_tree: MakeTree, env_for: EnvFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The caller's environment says "never write bytecode"; the warm copy still
    # has bytecode and a cold round still compiles and writes it, as after an install.
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", "/nonexistent/prefix")
    tree = make_tree({"sizable/__init__.py": heavy_source(400)})
    cold = env_for(tree, "cold", rounds=3).measure("sizable")
    warm = env_for(tree, "warm", rounds=3).measure("sizable")
    assert cold.median > 2 * warm.median


def test_the_budget_of_a_sleeping_import_shows_in_the_median(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree({"sleepy.py": "import time\ntime.sleep(0.3)\n"})
    result = env_for(tree, "warm").measure("sleepy")
    assert result.median >= 0.3
    assert result.cpu[0] < 0.3
    assert result.slowest(1)[0].name == "sleepy"


def test_cold_rounds_start_without_bytecode_and_leave_none(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree({"cached/__init__.py": "X = 1\n"})
    env = env_for(tree, "cold")
    env.measure("cached")
    copy = env.copy_for("cached")
    assert bytecode_files(copy.directory) == []
    assert bytecode_files(tree) == []


def test_closure_cold_compiles_the_dependencies_too(make_tree: MakeTree, env_for: EnvFor) -> None:
    tree = make_tree({"usesemail.py": "import email.mime.text\n"})
    cold = env_for(tree, "cold", rounds=3).measure("usesemail")
    closure = env_for(tree, "cold", rounds=3, closure=True).measure("usesemail")
    assert closure.label == "closure-cold"
    assert closure.median > 1.5 * cold.median


def test_an_import_that_raises_reports_the_childs_traceback(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree({"broken/__init__.py": "from . import inner\n", "broken/inner.py": "1 / 0\n"})
    with pytest.raises(ImportRaisedError) as caught:
        env_for(tree).measure("broken")
    assert "importing 'broken' raised ZeroDivisionError: division by zero" in str(caught.value)
    assert "round 1 of 2" in str(caught.value)
    assert 'inner.py", line 1' in caught.value.child_traceback
    assert "_CHILD_CODE" not in caught.value.child_traceback


def test_a_missing_submodule_is_an_import_error_of_the_child(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree(LIGHT_PACKAGE)
    with pytest.raises(ImportRaisedError, match=r"No module named 'lightpkg\.nope'"):
        env_for(tree).measure("lightpkg.nope")


def test_a_missing_package_is_a_locate_error(make_tree: MakeTree, env_for: EnvFor) -> None:
    with pytest.raises(LocateError, match="cannot find module 'absentpkg'"):
        env_for(make_tree({})).measure("absentpkg")


def test_a_hung_import_is_killed_with_its_children(make_tree: MakeTree, env_for: EnvFor) -> None:
    tree = make_tree(
        {
            "hangs.py": """\
            import subprocess, sys, time
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            time.sleep(60)
            """
        }
    )
    with pytest.raises(RoundTimeoutError, match=r"'hangs' did not finish within 1 s"):
        env_for(tree, timeout=1.0).measure("hangs")


def test_an_interpreter_that_exits_early_is_reported_with_its_stderr(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree({"quits.py": "import os, sys\nsys.stderr.write('goodbye\\n')\nos._exit(3)\n"})
    with pytest.raises(
        RoundCrashedError, match=r"exited with code 3 before reporting[\s\S]*goodbye"
    ):
        env_for(tree).measure("quits")


def test_a_module_replaced_from_elsewhere_is_a_wrong_origin(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree({"impostor.py": "import sys, json\nsys.modules[__name__] = json\n"})
    with pytest.raises(WrongOriginError, match=r"'impostor' was imported from .*json"):
        env_for(tree).measure("impostor")


def test_a_start_up_module_cannot_be_measured(env_for: EnvFor, make_tree: MakeTree) -> None:
    with pytest.raises(ImportRaisedError, match="already imported when the interpreter starts"):
        env_for(make_tree({})).measure("codecs")


def test_noise_on_stderr_does_not_become_modules(make_tree: MakeTree, env_for: EnvFor) -> None:
    tree = make_tree(
        {
            "noisy.py": """\
            import sys
            sys.stderr.write("import time:       999 |        999 |   fake.module\\n")
            sys.stderr.write("half a line")
            sys.stderr.flush()
            import colorsys
            """
        }
    )
    result = env_for(tree).measure("noisy")
    assert "fake.module" not in result.modules
    assert result.modules["colorsys"].parent == "noisy"


def test_warmup_rounds_are_not_counted(make_tree: MakeTree, env_for: EnvFor) -> None:
    tree = make_tree({"tiny.py": ""})
    assert env_for(tree, warmup=2, rounds=3).measure("tiny").rounds == 3


def test_measurements_are_passed_to_the_result_callback(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    seen: list[ImportResult] = []
    tree = make_tree({"tiny.py": ""})
    result = env_for(tree, on_result=seen.append).measure("tiny")
    assert seen == [result]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"flavour": "hot"}, "flavour must be 'cold' or 'warm'"),
        ({"flavour": "warm", "closure": True}, "closure=True measures a cold import"),
        ({"optimize": 3}, "optimize must be 0, 1 or 2"),
        ({"invalidation_mode": "never"}, "invalidation_mode must be one of"),
        ({"rounds": 0}, "rounds must be a whole number >= 1"),
        ({"warmup": -1}, "warmup must be a whole number >= 0"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"python": "/no/such/python"}, "'/no/such/python' not found"),
    ],
)
def test_bad_settings_are_rejected_by_name(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImportEnv(**arguments)  # type: ignore[arg-type]


def test_another_interpreter_can_run_the_rounds(make_tree: MakeTree, env_for: EnvFor) -> None:
    other = next(
        (
            path
            for version in ("3.12", "3.10", "3.13", "3.11")
            for path in Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}")
            if not sys.version.startswith(version)
        ),
        None,
    )
    if other is None:
        pytest.skip("no second CPython under ~/.pyenv")
    tree = make_tree({"tiny.py": ""})
    result = env_for(tree, "warm", python=str(other)).measure("tiny")
    assert result.python_version != sys.version.split()[0]
