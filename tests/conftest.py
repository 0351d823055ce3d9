"""Shared helpers: synthetic packages written into temporary directories."""

from __future__ import annotations

import copy
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_benchmark.plugin as benchmark_plugin
from process_audit import ProcessAudit

from pytest_importcache import ImportEnv
from pytest_importcache.engine.lifecycle import start_guardian
from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.model.records import RoundReport, TracedImport, TreeRow
from pytest_importcache.model.result import Flavour
from pytest_importcache.model.spec import StartupCommand

MakeTree = Callable[[dict[str, str]], Path]


_CPU_ONCE = pytest.MonkeyPatch()


def pytest_configure(config: pytest.Config) -> None:
    """Fail a test that starts a process unless marked ``slow``; once-per-process probes first."""
    config.pluginmanager.register(ProcessAudit(), "process-audit")
    # pytest-benchmark reads the CPU (py-cpuinfo: lscpu, dmesg, another interpreter;
    # a quarter of a second or more) at each save of each pytester run. The machine
    # does not change during the suite: read it once per process, before any test.
    cpu = benchmark_plugin.get_cpu_info()  # type: ignore[no-untyped-call]
    _CPU_ONCE.setattr(benchmark_plugin, "get_cpu_info", lambda: copy.deepcopy(cpu))
    # The engine's guardian is one process per test process, started by the first
    # measurement, fake rounds too: start it before any test, so that which test
    # comes first does not decide whether that test starts a process.
    start_guardian()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give pytest-benchmark back its own CPU reader."""
    _CPU_ONCE.undo()


@pytest.fixture(scope="session", autouse=True)
def _private_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the suite's TMPDIR (the per-user cache of copies, run directories) in basetemp.

    The suite never writes into the real per-user cache, and leaves nothing in
    the real TMPDIR beyond pytest's own basetemp.
    """
    temp = tmp_path_factory.mktemp("tmpdir")
    patch = pytest.MonkeyPatch()
    patch.setenv("TMPDIR", str(temp))
    patch.setattr(tempfile, "tempdir", None)
    yield
    patch.undo()


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> source text) under ``root``; returns ``root``."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


# A duration as reports show it (``850us``, ``31.2ms``, ``1.52s``): any size, any unit.
DURATION = r"\d+(?:\.\d+)?(?:ns|us|ms|s)"
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def seconds(shown: str) -> float:
    """The seconds a duration shown in a report stands for: ``"31.2ms"`` -> 0.0312."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s)", shown)
    assert match is not None, f"not a duration: {shown!r}"
    return float(match[1]) * _UNIT_SECONDS[match[2]]


def first_match(lines: Sequence[str], pattern: str) -> re.Match[str]:
    """The match of ``pattern`` at the start of the first line of ``lines`` it matches."""
    for line in lines:
        if (match := re.match(pattern, line)) is not None:
            return match
    raise AssertionError(f"no line matches {pattern!r}:\n" + "\n".join(lines))


def quick_ini(rounds: int = 2) -> str:
    """A pytest.ini for pytester projects: packages importable from the root, few rounds.

    Hypothesis' pytest plugin is left out: with ``PYTHONDONTWRITEBYTECODE`` set
    (as here) every inner run would rewrite it again, one or two seconds a run.
    """
    return (
        f"[pytest]\npythonpath = .\nimportcache_rounds = {rounds}\nimportcache_warmup = 0\n"
        "addopts = -p no:hypothesispytest\n"
    )


def heavy_source(functions: int) -> str:
    """Source text that is slow to compile and quick to execute."""
    return "\n".join(
        f"def function_{index}(a, b=1):\n"
        f"    value = [a * b + {index} for _ in range(3)]\n"
        f"    return {{'a': a, 'b': b, 'value': value, 'index': {index}}}\n"
        for index in range(functions)
    )


@pytest.fixture
def make_tree(tmp_path: Path) -> MakeTree:
    """Write a source tree into a fresh directory under ``tmp_path``."""
    counter = iter(range(1000))

    def make(files: dict[str, str]) -> Path:
        return write_tree(tmp_path / f"tree{next(counter)}", files)

    return make


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A private copy cache for one test."""
    return tmp_path / "cache"


@pytest.fixture
def env_for(cache_dir: Path) -> Callable[..., ImportEnv]:
    """Build an ``ImportEnv`` that finds packages in one tree, with few rounds."""

    def make(tree: Path, flavour: Flavour = "warm", **options: object) -> ImportEnv:
        settings: dict[str, object] = {"rounds": 2, "warmup": 0, "cache_dir": cache_dir}
        settings.update(options)
        return ImportEnv(flavour, search_path=[str(tree), *sys.path], **settings)  # type: ignore[arg-type]

    return make


def bytecode_files(root: Path) -> list[Path]:
    """Every ``__pycache__`` directory or ``.pyc`` file under ``root``."""
    return [path for path in root.rglob("*") if path.name == "__pycache__" or path.suffix == ".pyc"]


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` in ``/proc`` (``"Z"`` for a zombie), ``None`` when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return None


def is_alive(pid: int) -> bool:
    """Whether ``pid`` is running (a zombie waiting for its parent is not)."""
    return process_state(pid) not in (None, "Z")


class FakeRoundRunner:
    """A round runner that starts no interpreter: each round "takes" the next of ``seconds``.

    The report names the copy's module file as its origin and ``modules`` (in
    completion order, the measured module last) as loaded, each importing the next.
    An instructions round counts a billion instructions per second.
    """

    def __init__(self, seconds: list[float], modules: tuple[str, ...] = ()) -> None:
        self.seconds = list(seconds)
        self.modules = modules
        self.calls = 0
        self.metrics: list[tuple[str, bool]] = []

    def __call__(
        self,
        module: str,
        roots: Sequence[Path],
        workdir: Path,
        *,
        python: str,
        optimize: int,
        timeout: float,
        pycache_prefix: Path | None,
        description: str,
        metric: str = "time",
        module_costs: bool = True,
        import_path: Sequence[str] = (),
        source_only: Sequence[str] = (),
        command: StartupCommand | None = None,
        exit_code: int = 0,
        lazy_imports: str | None = None,
    ) -> RoundReport:
        """The next fixed round (a start-up round's figure split into four equal phases)."""
        wall = self.seconds[self.calls % len(self.seconds)]
        self.calls += 1
        self.metrics.append((metric, module_costs))
        loaded = (*self.modules, module)
        origin = next(roots[0].rglob("*.py"))
        counting = metric == "instructions"
        traced = tuple(
            TracedImport(
                index + 1,
                index + 2 if index + 1 < len(loaded) else 0,
                name,
                True,
                int(wall * 1e9 * (index + 1) / len(loaded)),
                int(wall * 1e9 * (index + 1) / len(loaded)) if counting and module_costs else None,
            )
            for index, name in enumerate(loaded)
        )
        return RoundReport(
            wall_ns=int(wall * 1e9),
            cpu_ns=int(wall * 1e9),
            origin=str(origin),
            loaded=loaded,
            python_version="3.11.7",
            traced=traced,
            stderr=description,
            instructions=int(wall * 1e9) if counting else None,
            peak_memory=None if counting else 20_000_000,
            command=command.label if command is not None else None,
            phases=_fake_phases(int(wall * 1e9)) if command is not None else (),
        )


def _fake_phases(total: int) -> tuple[tuple[str, int], ...]:
    """``total`` in four phases, the last taking what the rounding leaves."""
    quarter = total // 4
    return (
        ("start-up", quarter),
        ("site", quarter),
        ("import", quarter),
        ("run", total - 3 * quarter),
    )


# A pytester project's conftest that feeds fixed rounds to the plugin through its
# hook (pytest_importcache_round_runner): no interpreter starts, no import sleeps.
# Each module's round time and the submodules it loads (with their own time) are
# read from fake_rounds.json beside the conftest, at every round, so a test can
# make an import "slower" between two runs by rewriting that file.
FAKE_ROUNDS_CONFTEST = """
import json
from pathlib import Path


from pytest_importcache.model.records import RoundReport, TracedImport

TABLE = Path(__file__).with_name("fake_rounds.json")


def fake_round(
    module, roots, workdir, *, python, optimize, timeout, pycache_prefix, description,
    metric="time", module_costs=True, import_path=(), source_only=(), command=None, exit_code=0,
    lazy_imports=None,
):
    # An instructions round counts a billion instructions per second of the table.
    entry = json.loads(TABLE.read_text())[module]
    extras = {name: int(seconds * 1e9) for name, seconds in entry.get("modules", {}).items()}
    total = int(entry["seconds"] * 1e9) + sum(extras.values())
    counted = metric == "instructions"
    own_call = len(extras) + 1
    calls = [
        TracedImport(index, own_call, name, True, cost, cost if counted and module_costs else None)
        for index, (name, cost) in enumerate(extras.items(), start=1)
    ]
    calls.append(
        TracedImport(own_call, 0, module, True, total, total if counted and module_costs else None)
    )
    origin = sorted(Path(roots[0]).rglob("*.py"))[0]
    return RoundReport(
        wall_ns=total, cpu_ns=total, origin=str(origin), loaded=(*extras, module),
        python_version="3.11.7", traced=tuple(calls), stderr=description,
        instructions=total if counted else None,
        peak_memory=None if counted else 20_000_000,
        command=command.label if command is not None else None,
        phases=(
            (("start-up", total // 4), ("site", total // 4), ("import", total // 4),
             ("run", total - 3 * (total // 4)))
            if command is not None else ()
        ),
    )


def pytest_importcache_round_runner(config):
    return fake_round
"""


def run_tests(project: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    """Write ``source`` (dedented) as the project's test module and run pytest in-process."""
    project.makepyfile(test_imports=textwrap.dedent(source))
    return project.runpytest(*args)


def fake_rounds(project: Path, table: dict[str, dict[str, object]]) -> None:
    """Set what the fake rounds of ``project`` report: ``{module: {"seconds", "modules"}}``."""
    (project / "fake_rounds.json").write_text(json.dumps(table))


def tree(*rows: tuple[str, float, float, str | None]) -> tuple[TreeRow, ...]:
    """Tree rows from (module, self cost, cumulative cost, importer) tuples."""
    return tuple(TreeRow(*row) for row in rows)


def make_outcome(**changes: Any) -> MeasurementOutcome:
    """A fixed warm outcome of module ``m`` (10 ms, no budget), with ``changes`` applied.

    ``modules`` may be given as (module, self, cumulative, importer) tuples.
    """
    fields: dict[str, Any] = {
        "nodeid": "t.py::t",
        "test_name": "t",
        "module": "m",
        "flavour": "warm",
        "closure": False,
        "stat": "min",
        "statistic": 0.01,
        "budget": None,
        "passed": None,
        "values": (0.01,),
        "python_version": "3.11.7",
        "file": "m.py",
        "modules": (("m", 0.01, 0.01, None),),
    }
    fields.update(changes)
    fields["modules"] = tuple(
        row if isinstance(row, TreeRow) else TreeRow(*row) for row in fields["modules"]
    )
    return MeasurementOutcome(**fields)


# -- a real browser for the HTML pages ------------------------------------------------

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Injected first in <head>: errors of the page's own script land in a list.
_ERROR_CATCHER = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
var __consoleError = console.error;
console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, " "));
  __consoleError.apply(console, arguments); };
</script>"""


class Browser:
    """Headless chromium driven by its own command line: screenshots and scripted checks.

    :meth:`check` copies a page with a test script appended; the script runs
    after the page's own, stores a JSON-able result in ``<pre id="__result">``,
    and chromium's ``--dump-dom`` hands it back together with every error the
    page raised (window errors and ``console.error``) and chromium's console log.
    """

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir

    def _run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                self.executable,
                "--headless",
                "--no-sandbox",  # as root in a container
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={self.workdir / 'profile'}",
                "--enable-logging=stderr",
                "--window-size=1200,900",
                *arguments,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def check(self, page: Path, script: str) -> tuple[Any, list[str], str]:
        """Run ``script`` (a function body that returns a value) in ``page``.

        Returns the value, the errors the page raised, and chromium's stderr.
        """
        text = page.read_text(encoding="utf-8")
        runner = (
            "<script>window.addEventListener('load', function () { var out;"
            f" try {{ out = (function () {{ {script} }})(); }}"
            " catch (e) { window.__errors.push('test script: ' + e); }"
            " var pre = document.createElement('pre'); pre.id = '__result';"
            " pre.textContent = JSON.stringify({value: out, errors: window.__errors});"
            " document.body.appendChild(pre); });</script>"
        )
        head = text.index("<head>") + len("<head>")
        body_end = text.rindex("</body>")
        probe = self.workdir / f"probe-{page.stem}.html"
        probe.write_text(
            text[:head] + _ERROR_CATCHER + text[head:body_end] + runner + text[body_end:],
            encoding="utf-8",
        )
        completed = self._run("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
        match = re.search(r'<pre id="__result">(.*?)</pre>', completed.stdout, re.DOTALL)
        if match is None:
            raise AssertionError(f"no result from chromium:\n{completed.stderr[-3000:]}")
        result = json.loads(html.unescape(match[1]))
        return result["value"], result["errors"], completed.stderr

    def screenshot(self, page: Path, output: Path, size: str = "1200,900") -> Path:
        """A PNG of ``page`` as chromium draws it."""
        self._run(f"--window-size={size}", f"--screenshot={output}", page.as_uri())
        return output


def find_chromium() -> str | None:
    """The chromium (or Chrome) on this machine: ``$CHROMIUM``, else the first on ``PATH``."""
    named = os.environ.get("CHROMIUM")
    if named:
        return shutil.which(named)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Browser:
    """Headless chromium; the test skips, saying why, when the machine has none."""
    executable = find_chromium()
    if executable is None:
        named = os.environ.get("CHROMIUM")
        looked = f"$CHROMIUM={named}" if named else f"{', '.join(CHROMIUM_NAMES)} on PATH"
        pytest.skip(
            f"no chromium found (looked for {looked}): install Debian's chromium "
            "(apt-get install chromium) to run the browser tests"
        )
    return Browser(executable, tmp_path_factory.mktemp("browser"))
