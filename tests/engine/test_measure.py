"""Measuring imports in fresh interpreters: the engine end to end, without pytest's plugin."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import MakeTree, bytecode_files, heavy_source, is_alive
from pytest_importcache import (
    ImportCacheError,
    ImportEnv,
    ImportRaisedError,
    LocateError,
    RoundCrashedError,
    RoundTimeoutError,
    WrongOriginError,
)
from pytest_importcache.engine.lifecycle import ROUND_TOKEN_VARIABLE
from pytest_importcache.engine.roundcommand import child_environment

EnvFor = Callable[..., ImportEnv]

LIGHT_PACKAGE = {
    "lightpkg/__init__.py": "from . import helper\n",
    "lightpkg/helper.py": "import decimal\n",
}


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_budget_of_a_sleeping_import_shows_in_the_median(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree({"sleepy.py": "import time\ntime.sleep(0.3)\n"})
    result = env_for(tree, "warm").measure("sleepy")
    assert result.median >= 0.3
    # The sleep is wall time, not CPU time: most of it lies between the two.
    assert result.wall[0] - result.cpu[0] >= 0.25
    assert result.slowest(1)[0].name == "sleepy"


@pytest.mark.slow
def test_cold_rounds_start_without_bytecode_and_leave_none(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree({"cached/__init__.py": "X = 1\n"})
    env = env_for(tree, "cold")
    env.measure("cached")
    copy = env.copy_for("cached")
    assert bytecode_files(copy.directory) == []
    assert bytecode_files(tree) == []


@pytest.mark.slow
def test_closure_cold_compiles_the_dependencies_too(make_tree: MakeTree, env_for: EnvFor) -> None:
    tree = make_tree({"usesemail.py": "import email.mime.text\n"})
    cold = env_for(tree, "cold", rounds=3).measure("usesemail")
    closure = env_for(tree, "cold", rounds=3, closure=True).measure("usesemail")
    assert closure.label == "closure-cold"
    assert closure.median > 1.5 * cold.median


@pytest.mark.slow
def test_an_import_that_raises_reports_the_childs_traceback(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree({"broken/__init__.py": "from . import inner\n", "broken/inner.py": "1 / 0\n"})
    with pytest.raises(ImportRaisedError) as caught:
        env_for(tree).measure("broken")
    assert "importing 'broken' raised ZeroDivisionError: division by zero" in str(caught.value)
    assert "round 1 of 2" in str(caught.value)
    assert 'inner.py", line 1' in caught.value.child_traceback
    # Neither the child's own code nor its import tracer shows in the traceback.
    assert "<string>" not in caught.value.child_traceback
    assert "traced_find_and_load" not in caught.value.child_traceback


@pytest.mark.slow
def test_a_missing_submodule_is_an_import_error_of_the_child(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree(LIGHT_PACKAGE)
    with pytest.raises(ImportRaisedError, match=r"No module named 'lightpkg\.nope'"):
        env_for(tree).measure("lightpkg.nope")


def test_a_missing_package_is_a_locate_error(make_tree: MakeTree, env_for: EnvFor) -> None:
    with pytest.raises(LocateError, match="cannot find module 'absentpkg'"):
        env_for(make_tree({})).measure("absentpkg")


# Started by the hung import below with an empty environment, so that no round
# token leads to it: only the kill of the round's process group can end it.
HIDDEN_SLEEPER = """\
import os, sys, time
with open(sys.argv[1] + ".tmp", "w") as handle:
    handle.write(f"{os.getpid()} {os.getpgrp()} {' '.join(sorted(os.environ))}")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
@pytest.mark.slow
def test_a_hung_import_is_killed_with_its_children(
    make_tree: MakeTree, env_for: EnvFor, tmp_path: Path
) -> None:
    sleeper_script, started = tmp_path / "sleeper.py", tmp_path / "sleeper.txt"
    sleeper_script.write_text(HIDDEN_SLEEPER)
    round_group = tmp_path / "round-group.txt"
    tree = make_tree(
        {
            "hangs.py": f"""\
            import os, sys, time
            SCRIPT, STARTED = {str(sleeper_script)!r}, {str(started)!r}
            if os.fork() == 0:
                try:
                    os.execve(sys.executable, [sys.executable, SCRIPT, STARTED], {{}})
                finally:
                    os._exit(127)
            with open({str(round_group)!r}, "w") as handle:
                handle.write(str(os.getpgrp()))
            while not os.path.exists(STARTED):
                time.sleep(0.01)
            time.sleep(60)
            """
        }
    )
    try:
        with pytest.raises(RoundTimeoutError, match=r"'hangs' did not finish within 1 s"):
            env_for(tree, timeout=1.0, warmup=0, rounds=1).measure("hangs")
        pid, group, *variables = started.read_text().split(" ")
        # The sleeper stayed in the round's process group, and carries no round token.
        assert group == round_group.read_text() != str(os.getpgrp())
        assert ROUND_TOKEN_VARIABLE not in variables
        deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously
        while is_alive(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not is_alive(int(pid)), "the child of the hung import outlived its round"
    finally:
        if started.exists() and is_alive(leftover := int(started.read_text().split(" ")[0])):
            os.kill(leftover, signal.SIGKILL)


@pytest.mark.slow
def test_an_interpreter_that_exits_early_is_reported_with_its_stderr(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree({"quits.py": "import os, sys\nsys.stderr.write('goodbye\\n')\nos._exit(3)\n"})
    with pytest.raises(
        RoundCrashedError, match=r"ended with exit code 3 before reporting .*: goodbye$"
    ):
        env_for(tree).measure("quits")


@pytest.mark.slow
def test_a_module_loaded_from_outside_the_environment_is_a_wrong_origin(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    # The package sends its submodules' search to a directory outside the copy.
    elsewhere = make_tree({"redirect/sub.py": ""})
    tree = make_tree({"redirect/__init__.py": f"__path__ = [{str(elsewhere / 'redirect')!r}]\n"})
    with pytest.raises(WrongOriginError, match=r"'redirect.sub' was imported from .*sub\.py"):
        env_for(tree).measure("redirect.sub")


@pytest.mark.slow  # on 3.10, whose codecs is no frozen module, it builds a warm copy
def test_a_start_up_module_cannot_be_measured(env_for: EnvFor, make_tree: MakeTree) -> None:
    # Frozen from Python 3.11 on (found as such), a file before (seen loaded in the child).
    with pytest.raises(
        ImportCacheError, match=r"already imported when the interpreter starts|a start-up module"
    ):
        env_for(make_tree({})).measure("codecs")


@pytest.mark.slow
def test_rows_written_to_stderr_do_not_change_the_tree(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    # A row in -X importtime's format naming a real module, with a 99 s self time.
    tree = make_tree(
        {
            "noisy.py": """\
            import sys
            import colorsys
            sys.stderr.write("import time:  99000000 |   99000000 |   colorsys\\n")
            sys.stderr.write("half a line")
            sys.stderr.flush()
            """
        }
    )
    started = time.perf_counter()
    result = env_for(tree).measure("noisy")
    elapsed = time.perf_counter() - started
    colorsys = result.modules["colorsys"]
    assert colorsys.parent == "noisy"
    # Not the row's 99 s: less than the whole measurement took, and inside its importer.
    assert colorsys.self_seconds < elapsed
    assert colorsys.cumulative_seconds <= result.modules["noisy"].cumulative_seconds


@pytest.mark.slow
def test_a_package_importing_the_requested_submodule_keeps_one_tree(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    # `import cyc.sub` loads `cyc`, whose __init__ imports `cyc.sub` itself.
    tree = make_tree(
        {
            "cyc/__init__.py": "import time\ntime.sleep(0.1)\nfrom . import sub\n",
            "cyc/sub.py": "import time\ntime.sleep(0.2)\n",
        }
    )
    result = env_for(tree).measure("cyc.sub")
    package, sub = result.modules["cyc"], result.modules["cyc.sub"]
    assert (package.parent, sub.parent) == (None, "cyc")
    assert sub.self_seconds >= 0.2
    assert package.self_seconds >= 0.1
    # The submodule's 0.2 s sleep is not the package's own time as well.
    assert package.self_seconds < sub.self_seconds
    assert package.cumulative_seconds >= 0.3


@pytest.mark.slow
def test_imports_in_another_thread_keep_their_own_importers(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    # While the main thread imports thr.foreground, a thread imports thrside,
    # which sleeps longer than foreground does, then imports email. (A module of
    # its own, not thr.side: from 3.14 on, importing a submodule waits for its
    # package to finish, which is waiting for the thread; see the test below.)
    tree = make_tree(
        {
            "thr/__init__.py": """\
            import importlib, threading
            worker = threading.Thread(target=importlib.import_module, args=("thrside",))
            worker.start()
            from . import foreground
            worker.join()
            """,
            "thr/foreground.py": "import time\ntime.sleep(0.1)\nimport fractions\n",
            "thrside.py": "import time\ntime.sleep(0.2)\nimport email.mime.text\n",
        }
    )
    result = env_for(tree).measure("thr")
    # The thread's imports start their own tree, whatever the main thread was doing.
    assert result.chain("email.mime.base")[:2] == ["thrside", "email.mime.text"]
    assert result.modules["thrside"].parent is None
    assert result.chain("fractions") == ["thr", "thr.foreground", "fractions"]
    foreground, side = result.modules["thr.foreground"], result.modules["thrside"]
    assert foreground.self_seconds >= 0.1
    # The other thread's longer sleep, which overlapped foreground's, is not foreground's.
    assert foreground.self_seconds < side.self_seconds


THREAD_IMPORTING_A_SUBMODULE = {
    "thrsub/__init__.py": """\
    import importlib, threading
    worker = threading.Thread(target=importlib.import_module, args=("thrsub.side",))
    worker.start()
    worker.join()
    """,
    "thrsub/side.py": "import colorsys\n",
}


@pytest.mark.slow
@pytest.mark.skipif(sys.version_info < (3, 14), reason="deadlocks from CPython 3.14 on")
def test_a_package_joining_a_thread_that_imports_its_submodule_times_out_from_3_14(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    # CPython 3.14 makes a submodule's import wait for its package's __init__,
    # which here waits for that import's thread: plain `python -c "import thrsub"`
    # hangs too, and the round times out as it would.
    tree = make_tree(THREAD_IMPORTING_A_SUBMODULE)
    with pytest.raises(RoundTimeoutError, match=r"'thrsub' did not finish within 2 s"):
        env_for(tree, timeout=2.0, warmup=0, rounds=1).measure("thrsub")


@pytest.mark.slow
@pytest.mark.skipif(sys.version_info >= (3, 14), reason="deadlocks from CPython 3.14 on")
def test_a_package_joining_a_thread_that_imports_its_submodule_is_measured_before_3_14(
    make_tree: MakeTree, env_for: EnvFor
) -> None:
    tree = make_tree(THREAD_IMPORTING_A_SUBMODULE)
    result = env_for(tree, timeout=30.0, warmup=0, rounds=1).measure("thrsub")
    assert result.chain("colorsys") == ["thrsub.side", "colorsys"]


@pytest.mark.slow
def test_the_import_sees_no_arguments(
    make_tree: MakeTree, env_for: EnvFor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As under `python -c "import quiet"`: the report file's path is not in sys.argv.
    seen = tmp_path / "seen.txt"
    monkeypatch.setenv("IMPORTCACHE_TEST_SEEN", str(seen))
    tree = make_tree(
        {
            "quiet.py": """\
            import os, sys
            with open(os.environ["IMPORTCACHE_TEST_SEEN"], "w") as seen:
                seen.write(repr(sys.argv))
            """
        }
    )
    env_for(tree, warmup=0, rounds=1).measure("quiet")
    assert seen.read_text() == "['-c']"


@pytest.mark.slow
def test_a_module_that_replaces_itself_keeps_its_file(make_tree: MakeTree, env_for: EnvFor) -> None:
    tree = make_tree(
        {
            "wrapped.py": """\
            import sys

            class Wrapper:
                def __getattr__(self, name):
                    return name

            sys.modules[__name__] = Wrapper()
            """
        }
    )
    result = env_for(tree).measure("wrapped")
    assert result.file.endswith("wrapped.py")


@pytest.mark.slow
def test_warmup_rounds_are_not_counted(make_tree: MakeTree, env_for: EnvFor) -> None:
    tree = make_tree({"tiny.py": ""})
    assert env_for(tree, warmup=2, rounds=3).measure("tiny").rounds == 3


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_import_module_keeps_the_true_importer_chain(make_tree: MakeTree, env_for: EnvFor) -> None:
    # -X importtime gives no row for a module imported by importlib.import_module.
    tree = make_tree(
        {
            "plugins/__init__.py": "import importlib\nimportlib.import_module('plugins.heavy')\n",
            "plugins/heavy.py": "import colorsys, time\ntime.sleep(0.2)\n",
        }
    )
    result = env_for(tree).measure("plugins")
    assert result.chain("colorsys") == ["plugins", "plugins.heavy", "colorsys"]
    heavy, package = result.modules["plugins.heavy"], result.modules["plugins"]
    assert heavy.self_seconds >= 0.2
    # The 0.2 s sleep of the module import_module loaded is not the package's own time.
    assert package.self_seconds < heavy.self_seconds
    assert package.cumulative_seconds >= heavy.cumulative_seconds


@pytest.mark.slow
def test_every_cold_round_starts_without_bytecode(
    make_tree: MakeTree, env_for: EnvFor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The package notes, in each round, whether its submodule's bytecode is there.
    stamps = tmp_path / "stamps.txt"
    monkeypatch.setenv("IMPORTCACHE_TEST_STAMPS", str(stamps))
    tree = make_tree(
        {
            "noted/__init__.py": """\
            import importlib.util, os
            _cached = importlib.util.cache_from_source(
                os.path.join(os.path.dirname(__file__), "sub.py")
            )
            with open(os.environ["IMPORTCACHE_TEST_STAMPS"], "a") as _stamps:
                _stamps.write(f"{os.path.exists(_cached)}\\n")
            from . import sub  # imported (no name 'sub' here yet): a cold round writes its .pyc
            """,
            "noted/sub.py": "",
        }
    )
    cold = env_for(tree, "cold", warmup=1, rounds=3).measure("noted")
    assert "noted.sub" in cold.modules
    assert stamps.read_text().split() == ["False"] * 4
    stamps.unlink()
    env_for(tree, "warm", warmup=1, rounds=3).measure("noted")
    assert stamps.read_text().split() == ["True"] * 4


@pytest.mark.slow
def test_the_processes_a_hung_import_started_are_killed(
    make_tree: MakeTree, env_for: EnvFor, tmp_path: Path
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    tree = make_tree(
        {
            "spawner.py": f"""\
            import subprocess, sys, time
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            open({str(pid_file)!r}, "w").write(str(child.pid))
            time.sleep(60)
            """
        }
    )
    with pytest.raises(RoundTimeoutError):
        env_for(tree, timeout=1.0).measure("spawner")
    status = Path(f"/proc/{pid_file.read_text()}/status")
    for _ in range(50):  # the kill is delivered asynchronously
        if not status.exists() or "State:\tZ" in status.read_text():
            break
        time.sleep(0.02)
    assert not status.exists() or "State:\tZ" in status.read_text()


@pytest.mark.slow
def test_a_relative_cache_dir_works(
    make_tree: MakeTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree({"tiny.py": ""})
    monkeypatch.chdir(tmp_path)
    env = ImportEnv("warm", rounds=1, cache_dir="relative-cache", search_path=[str(tree)])
    assert env.measure("tiny").rounds == 1
    assert (tmp_path / "relative-cache").is_dir()


def test_coverage_and_python_variables_do_not_reach_the_rounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("COVERAGE_PROCESS_START", "COV_CORE_SOURCE", "PYTHONPATH", "PYTHONSTARTUP"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("IMPORTCACHE_KEPT", "yes")
    environment = child_environment()
    assert not {"COVERAGE_PROCESS_START", "COV_CORE_SOURCE", "PYTHONPATH", "PYTHONSTARTUP"} & set(
        environment
    )
    assert environment["IMPORTCACHE_KEPT"] == "yes"
