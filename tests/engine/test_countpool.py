"""Counted budgets measured concurrently, ahead of their tests, in one pytest process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from shutil import which

import pytest

from conftest import write_tree
from pytest_importcache.engine.countpool import CountPool, MeasurementStopped
from pytest_importcache.engine.lifecycle import ROUND_TOKEN_VARIABLE
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.model.errors import ImportCacheError
from pytest_importcache.model.spec import MeasurementSpec

pytestmark = pytest.mark.slow

# Rounds that take 0.4 s and say how many counted rounds ran at once, and
# whether a timed round ever ran while one was counted. ``broken*`` raises,
# ``slow*`` takes 1.5 s.
SLOW_ROUNDS_CONFTEST = """
import json
import threading
import time
from pathlib import Path


import pytest_importcache.pytest.lookahead as lookahead_module
from pytest_importcache.model.errors import ImportRaisedError
from pytest_importcache.model.records import RoundReport, TracedImport

STATE = {"counting": 0, "most": 0, "overlap": 0, "rounds": 0}
LOCK = threading.Lock()
LOG = Path(__file__).with_name("concurrency.json")
lookahead_module.PROGRESS_AFTER = 0.2


def slow_round(
    module, roots, workdir, *, python, optimize, timeout, pycache_prefix, description,
    metric="time", module_costs=True, import_path=(), source_only=(),
):
    counted = metric == "instructions"
    with LOCK:
        STATE["rounds"] += 1
        if counted:
            STATE["counting"] += 1
            STATE["most"] = max(STATE["most"], STATE["counting"])
        elif STATE["counting"]:
            STATE["overlap"] += 1
    try:
        time.sleep(1.5 if module.startswith("slow") else 0.4)
        with LOCK:
            if not counted and STATE["counting"]:
                STATE["overlap"] += 1
        if module.startswith("broken"):
            raise ImportRaisedError(f"importing {module!r} raised RuntimeError: boom", "")
        cost = 100_000_000 * (1 + int(module[-1]))
        origin = sorted(Path(roots[0]).rglob("*.py"))[0]
        return RoundReport(
            wall_ns=cost // 100, cpu_ns=cost // 100, origin=str(origin), loaded=(module,),
            python_version="3.11.7",
            traced=(TracedImport(1, 0, module, True, cost, cost if counted else None),),
            stderr=description, instructions=cost if counted else None,
        )
    finally:
        with LOCK:
            if counted:
                STATE["counting"] -= 1
            LOG.write_text(json.dumps(STATE))


def pytest_importcache_round_runner(config):
    return slow_round
"""

FOUR_COUNTED = """
import pytest

@pytest.mark.import_budget("m0", warm="1G", metric="instructions")
def test_0():
    pass

@pytest.mark.import_budget("m1", warm="1G", metric="instructions")
def test_1():
    pass

@pytest.mark.import_budget("m2", warm="250M", metric="instructions")
def test_2():
    pass

@pytest.mark.import_budget("m3", warm="1G", metric="instructions")
def test_3():
    pass
"""


@pytest.fixture
def slow_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Modules m0..m3, broken0, slow0 and slow1 (1.5 s); fake rounds of 0.4 s, one each."""
    write_tree(
        pytester.path,
        {f"m{index}.py": "" for index in range(4)}
        | {"broken0.py": "", "slow0.py": "", "slow1.py": ""},
    )
    pytester.makeconftest(SLOW_ROUNDS_CONFTEST)
    pytester.makeini(
        "[pytest]\npythonpath = .\nimportcache_rounds = 1\nimportcache_warmup = 0\n"
        "addopts = -p no:hypothesispytest\n"
    )
    return pytester


def _state(project: pytest.Pytester) -> dict[str, int]:
    return json.loads((project.path / "concurrency.json").read_text())  # type: ignore[no-any-return]


def test_counted_budgets_are_measured_at_once_with_the_same_verdicts_and_order(
    slow_project: pytest.Pytester,
) -> None:
    slow_project.makepyfile(test_imports=textwrap.dedent(FOUR_COUNTED))
    serial = slow_project.runpytest("--importcache-jobs=1", "-p", "no:cacheprovider")
    assert _state(slow_project)["most"] == 1
    concurrent = slow_project.runpytest("--importcache-jobs=4", "-p", "no:cacheprovider")
    state = _state(slow_project)
    assert state["most"] >= 3, state
    # Each count once, none started twice, and the failing one (m2) once more in
    # detail (per module) for its explanation.
    assert state["rounds"] == 5
    for result in (serial, concurrent):
        result.assert_outcomes(passed=3, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*m0*warm (instr)*100M*1G*PASS",
                "*m1*warm (instr)*200M*1G*PASS",
                "*m2*warm (instr)*300M*250M*FAIL",
                "*m3*warm (instr)*400M*1G*PASS",
            ]
        )
    assert [line for line in serial.outlines if "import budget exceeded" in line] == [
        line for line in concurrent.outlines if "import budget exceeded" in line
    ]


def test_a_failing_background_count_fails_only_its_own_test(
    slow_project: pytest.Pytester,
) -> None:
    slow_project.makepyfile(
        test_imports="""
        import pytest

        @pytest.mark.import_budget("m0", warm="1G", metric="instructions")
        def test_before():
            pass

        @pytest.mark.import_budget("broken0", warm="1G", metric="instructions")
        def test_broken():
            pass

        @pytest.mark.import_budget("m1", warm="1G", metric="instructions")
        def test_after():
            pass
        """
    )
    result = slow_project.runpytest("--importcache-jobs=3")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*import_budget('broken0'): importing 'broken0' raised RuntimeError: boom*"]
    )
    result.stdout.fnmatch_lines(["FAILED test_imports.py::test_broken*"])
    assert "Traceback" not in result.stdout.str()
    assert _state(slow_project)["most"] >= 2


def test_no_count_runs_while_a_round_is_timed(slow_project: pytest.Pytester) -> None:
    slow_project.makepyfile(
        test_imports="""
        import pytest

        @pytest.mark.import_budget("m0", warm="1G", metric="instructions")
        def test_counted_0():
            pass

        @pytest.mark.import_budget("m1", cold="10s", warm="10s")
        def test_timed():
            pass

        @pytest.mark.import_budget("m2", warm="1G", metric="instructions")
        def test_counted_2():
            pass

        @pytest.mark.import_budget("m3", warm="1G", metric="instructions")
        def test_counted_3():
            pass
        """
    )
    result = slow_project.runpytest("--importcache-jobs=4")
    result.assert_outcomes(passed=4)
    state = _state(slow_project)
    assert state["overlap"] == 0, state
    assert state["most"] >= 2, state


def test_workers_each_count_their_share_at_once(slow_project: pytest.Pytester) -> None:
    slow_project.makepyfile(test_imports=textwrap.dedent(FOUR_COUNTED))
    result = slow_project.runpytest_subprocess("-n", "2", "--importcache-jobs=2")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*m2*warm (instr)*300M*250M*FAIL"])


def test_a_long_wait_for_a_count_says_what_is_counted_unless_quiet(
    slow_project: pytest.Pytester,
) -> None:
    slow_project.makepyfile(
        test_imports="""
        import pytest

        @pytest.mark.import_budget("slow0", warm="1G", metric="instructions")
        def test_slow():
            pass

        @pytest.mark.import_budget("slow1", warm="1G", metric="instructions")
        def test_slow_too():
            pass
        """
    )
    result = slow_project.runpytest("--importcache-jobs=1")
    result.stdout.fnmatch_lines(
        ["importcache: counting slow0 (warm instructions): round 1 of 1, *s", "test_imports.py .*"]
    )
    concurrent = slow_project.runpytest("--importcache-jobs=2", "-v")
    concurrent.stdout.fnmatch_lines(
        [
            "importcache: counting slow0 (warm instructions): *; 1 more count under way*",
            "test_imports.py::test_slow PASSED*",
        ]
    )
    quiet = slow_project.runpytest("--importcache-jobs=2", "-q")
    assert "importcache: counting" not in quiet.stdout.str()


# -- the pool itself, on real rounds ------------------------------------------------------


def _round_pids() -> list[int]:
    """Children of this process that carry a round's token."""
    found = []
    marker = f"{ROUND_TOKEN_VARIABLE}=".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == os.getpid() and any(item.startswith(marker) for item in environ):
            found.append(int(entry))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_closing_the_pool_ends_its_rounds(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", {"sleeper.py": "import time\ntime.sleep(120)\n"})
    sys.path.insert(0, str(tree))
    try:
        pool = CountPool(1)
        spec = MeasurementSpec("sleeper", rounds=1, warmup=0, timeout=300)
        job = pool.submit("sleeper", spec)
        queued = pool.submit("queued", spec.replace(flavour="cold"))
        deadline = time.monotonic() + 60
        while not _round_pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _round_pids(), "the round never started"
        began = time.monotonic()
        pool.close()
        assert time.monotonic() - began < 30
    finally:
        sys.path.remove(str(tree))
    assert isinstance(job.future.exception(), ImportCacheError)
    assert queued.future.cancelled() or isinstance(queued.future.exception(), MeasurementStopped)
    assert _round_pids() == []


def _valgrind() -> bool:
    return which("valgrind") is not None


@pytest.mark.skipif(not _valgrind(), reason="needs valgrind")
def test_concurrent_counts_are_the_counts_of_a_serial_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = write_tree(
        tmp_path / "tree",
        {
            "alpha.py": "import json\nVALUES = [json.dumps(i) for i in range(50)]\n",
            "beta/__init__.py": "from . import inner\n",
            "beta/inner.py": "import textwrap\nTEXT = textwrap.dedent('  x')\n",
        },
    )
    cache = tmp_path / "cache"
    specs = [
        MeasurementSpec(module, flavour=flavour, rounds=1, warmup=0, metric="instructions")
        for module in ("alpha", "beta")
        for flavour in ("cold", "warm")
    ]
    # The tree alone: other tests may write into this worker's sys.path meanwhile.
    search_path = [str(tree)]
    # Nothing reused: every count below is taken afresh.
    serial = [
        Measurer(cache_dir=cache, search_path=search_path, count_store=False).measure(spec)
        for spec in specs
    ]
    # A count started ahead of its test runs while pytest names another test (or
    # phase) in the environment: the counts must not see it.
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "test_other.py::test_with_a_much_longer_name (setup)")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw12")
    concurrent = {}
    for module_counts in (True, False):
        pool = CountPool(
            4,
            cache_dir=cache,
            search_path=search_path,
            count_store=False,
            module_counts=module_counts,
        )
        try:
            for spec in specs:
                pool.submit(spec, spec)
            concurrent[module_counts] = [pool.take(spec).future.result() for spec in specs]
        finally:
            pool.close()
    expected = [result.instructions for result in serial]
    # Plain rounds (the import's count alone) count what detailed ones count.
    assert [result.instructions for result in concurrent[True]] == expected
    assert [result.instructions for result in concurrent[False]] == expected
    assert all(result.reused is None for result in concurrent[True] + concurrent[False])
    assert [
        {name: timing.self_cost for name, timing in result.modules.items()}
        for result in concurrent[True]
    ] == [{name: timing.self_cost for name, timing in result.modules.items()} for result in serial]
    # Detailed rounds count modules (not every one: from 3.14, `collections` puts
    # `collections.abc` in sys.modules without importing it, which costs nothing).
    assert any(timing.self_cost for timing in serial[0].modules.values())
    assert not any(timing.self_cost for timing in concurrent[False][0].modules.values())


@pytest.mark.skipif(not (sys.platform.startswith("linux") and _valgrind()), reason="valgrind")
def test_sigterm_during_background_counts_leaves_no_round_running(
    pytester: pytest.Pytester,
) -> None:
    write_tree(pytester.path, {"sleeper.py": "import time\ntime.sleep(120)\n"})
    write_tree(pytester.path, {"sleeper2.py": "import time\ntime.sleep(120)\n"})
    pytester.makeini(
        "[pytest]\npythonpath = .\nimportcache_rounds = 1\nimportcache_warmup = 0\n"
        "addopts = -p no:hypothesispytest\n"
    )
    pytester.makepyfile(
        test_sleep="""
        import pytest

        @pytest.mark.import_budget("sleeper", warm="1G", metric="instructions")
        def test_a():
            pass

        @pytest.mark.import_budget("sleeper2", warm="1G", metric="instructions")
        def test_b():
            pass
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--importcache-jobs=2", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_children_rounds(process.pid)) < 2:
            time.sleep(0.2)
        rounds = _children_rounds(process.pid)
        assert len(rounds) == 2, "both counts should run at once"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert all(not Path(f"/proc/{pid}").exists() for pid in rounds), output.decode()
    assert b"INTERNALERROR" not in output


def _children_rounds(parent: int) -> list[int]:
    """Round processes (carrying a token) whose parent is ``parent``."""
    marker = f"{ROUND_TOKEN_VARIABLE}=".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == parent and any(
            item.startswith(marker) for item in environ
        ):
            found.append(int(entry))
    return found
