"""Measurement quality: accuracy, noise, sensitivity, overhead, scale, calibration.

    python tests/benchmarks/bench_quality.py [--quick] [--only SECTION ...]

Every figure is a ratio of things measured side by side in this one run, so
the tables compare across machines even though the absolute times do not.
Sections: accuracy, noise, sensitivity, overhead, scale, calibration.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import (
    PYTHON,
    ChildProcessClock,
    busy_cores,
    coefficient_of_variation,
    cpu_count,
    make_package,
    print_table,
    reference_importtime,
    stop,
    timed,
    whole_process_difference,
)

from pytest_importcache import ImportEnv
from pytest_importcache.engine.copying import prepare_copy
from pytest_importcache.engine.locate import locate_package
from pytest_importcache.engine.reference import REFERENCE_PACKAGE, write_reference_package

SYNTHETIC = "heavypkg"


class Bench:
    """The run's scratch directory, settings and the modules under study."""

    def __init__(self, scratch: Path, quick: bool) -> None:
        self.scratch = scratch
        self.quick = quick
        self.repeats = 4 if quick else 10
        self.cache = scratch / "cache"
        self.synthetic_root = make_package(scratch / "src", SYNTHETIC, modules=40, functions=150)
        # A stdlib package, a third-party package every install has (pytest needs
        # pygments), and a synthetic source-heavy package.
        self.modules = ["email.mime.text", "pygments.lexers.python", SYNTHETIC]

    def env(self, flavour: str, **options: object) -> ImportEnv:
        """An engine environment that also finds the synthetic package."""
        settings: dict[str, object] = {
            "cache_dir": self.cache,
            "search_path": [str(self.synthetic_root), *sys.path],
        }
        settings.update(options)
        return ImportEnv(flavour, **settings)  # type: ignore[arg-type]

    def private_copy(self, module: str) -> Path:
        """A plain copy of the module's top-level package, for the independent cold reference."""
        top = module.partition(".")[0]
        spec = importlib.util.find_spec(top) if module != SYNTHETIC else None
        source = Path(spec.origin).parent if spec and spec.origin else self.synthetic_root / top
        destination = self.scratch / "reference" / top
        if not destination.exists():
            shutil.copytree(source, destination / top, ignore=shutil.ignore_patterns("__pycache__"))
        return destination


def _interleaved(
    engine: Callable[[], list[float]], reference: Callable[[], list[float]], batches: int = 5
) -> tuple[float, float]:
    """Medians of the engine's and the reference's rounds, taken in alternating batches.

    Alternating keeps a drift in the machine's speed (a neighbour on a shared
    host) from landing on one side only.
    """
    engine_rounds: list[float] = []
    reference_rounds: list[float] = []
    for _ in range(batches):
        engine_rounds += engine()
        reference_rounds += reference()
    return statistics.median(engine_rounds), statistics.median(reference_rounds)


def accuracy(bench: Bench) -> None:
    """The engine's medians against independent references measured in the same run."""
    batch = 4
    rows = []
    for module in bench.modules:
        warm_env = bench.env("warm", rounds=batch)
        roots = warm_env.copy_for(module).roots
        warm, warm_reference = _interleaved(
            lambda: list(warm_env.measure(module).wall),  # noqa: B023
            lambda: reference_importtime(module, batch, path=roots),  # noqa: B023
        )
        process = whole_process_difference(module, 20, path=roots)
        cold_env = bench.env("cold", rounds=batch)
        copy = bench.private_copy(module)
        cold, cold_reference = _interleaved(
            lambda: list(cold_env.measure(module).wall),  # noqa: B023
            lambda: reference_importtime(module, batch, path=[copy], clean=copy),  # noqa: B023
        )
        rows.append(
            [
                module,
                f"{warm * 1e3:.2f}",
                f"{(warm - warm_reference) / warm_reference:+.1%}",
                f"{(warm - process) / process:+.1%}",
                f"{cold * 1e3:.2f}",
                f"{(cold - cold_reference) / cold_reference:+.1%}",
            ]
        )
    print_table(
        "1. accuracy: engine median vs independent references (target: within 5%)\n"
        "   vs -X importtime = python -X importtime cumulative row of the module\n"
        "   (20 rounds each, taken in alternating batches of 4);\n"
        "   vs process = python -c 'import M' minus python -c pass (whole processes,\n"
        "   20 each, interleaved; both leave through os._exit(0))",
        ["module", "warm ms", "vs -X importtime", "vs process", "cold ms", "vs -X importtime"],
        rows,
    )


def noise(bench: Bench) -> None:
    """Coefficient of variation of each statistic over repeated measurements."""
    rows = []
    for module in bench.modules:
        for flavour in ("warm", "cold"):
            env = bench.env(flavour)
            results = [env.measure(module) for _ in range(bench.repeats)]
            wall_median = [result.median for result in results]
            wall_min = [result.min for result in results]
            cpu_median = [statistics.median(result.cpu) for result in results]
            rows.append(
                [
                    module,
                    flavour,
                    f"{statistics.mean(wall_median) * 1e3:.2f}",
                    f"{coefficient_of_variation(wall_median):.1%}",
                    f"{coefficient_of_variation(wall_min):.1%}",
                    f"{coefficient_of_variation(cpu_median):.1%}",
                ]
            )
    print_table(
        f"2. noise: CV of the statistic over {bench.repeats} measurements of 10 rounds "
        "(target: <= 3% warm)",
        ["module", "flavour", "median ms", "wall median", "wall min", "cpu median"],
        rows,
    )


SENSITIVITY_TEST = """\
import pytest

@pytest.mark.import_budget("sensepkg", warm="10s")
def test_sensepkg():
    pass
"""


def _busy_loop_iterations(seconds: float) -> int:
    """Iterations of ``for _ in range(n): pass`` that take about ``seconds`` here."""
    probe = 2_000_000
    elapsed = min(timed(lambda: [None for _ in range(probe)]) for _ in range(5))
    return int(probe * seconds / elapsed)


def sensitivity(bench: Bench) -> None:
    """Compare-fail at 5% with and without a +10% slowdown, 10 runs each, per statistic."""
    project = bench.scratch / "sensitivity"
    make_package(project, "sensepkg", modules=40, functions=150)
    (project / "test_sense.py").write_text(SENSITIVITY_TEST)
    (project / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    measure = bench.env("warm", search_path=[str(project)], rounds=20)
    base = measure.measure("sensepkg").median
    iterations = _busy_loop_iterations(0.10 * base)
    command = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"]

    def failures(stat: str, runs: int) -> int:
        compare = ("--benchmark-compare=0001", f"--benchmark-compare-fail={stat}:5%")
        completed = [
            subprocess.run([*command, *compare], cwd=project, capture_output=True, check=False)
            for _ in range(runs)
        ]
        return sum(run.returncode != 0 for run in completed)

    subprocess.run(
        [*command, "--benchmark-save=baseline"], cwd=project, check=True, capture_output=True
    )
    runs = 4 if bench.quick else 10
    stats = ("median", "min")
    false_alarms = {stat: failures(stat, runs) for stat in stats}
    init = project / "sensepkg" / "__init__.py"
    init.write_text(init.read_text() + "from . import extra\n")
    (project / "sensepkg" / "extra.py").write_text(f"[None for _ in range({iterations})]\n")
    slowed = measure.measure("sensepkg").median
    caught = {stat: failures(stat, runs) for stat in stats}
    print_table(
        "3. sensitivity: --benchmark-compare-fail=STAT:5%, 10 runs unchanged and 10 with an\n"
        f"   injected slowdown (+{(slowed - base) / base:.0%}: {base * 1e3:.2f} -> "
        f"{slowed * 1e3:.2f} ms) (target: all caught, no false alarm)",
        ["statistic", "false alarms (unchanged)", "caught (slowed)"],
        [[stat, f"{false_alarms[stat]} of {runs}", f"{caught[stat]} of {runs}"] for stat in stats],
    )


def overhead(bench: Bench) -> None:
    """Wall of a measurement over its children's wall; the plugin's own import cost."""
    rows = []
    for module in bench.modules:
        for flavour in ("warm", "cold"):
            env = bench.env(flavour)
            env.measure(module)  # builds the copy outside the timed call
            with ChildProcessClock() as children:
                wall = timed(lambda env=env, module=module: env.measure(module))  # type: ignore[misc]
            rows.append(
                [
                    module,
                    flavour,
                    f"{wall:.3f}",
                    f"{children.total:.3f}",
                    f"{wall / children.total:.3f}",
                ]
            )
    print_table(
        "4a. overhead: measurement wall / sum of child process walls (target <= 1.15)",
        ["module", "flavour", "measurement s", "children s", "ratio"],
        rows,
    )
    completed = subprocess.run(
        [
            PYTHON,
            "-X",
            "importtime",
            "-c",
            "import pytest; import pytest_importcache.pytest.plugin",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = [
        line.rsplit("|", 1)[1].strip()
        for line in completed.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    plugin_index = loaded.index("pytest_importcache.pytest.plugin")
    plugin_row = next(
        line
        for line in completed.stderr.splitlines()
        if line.endswith("| pytest_importcache.pytest.plugin")
    )
    pulled_in = loaded[loaded.index("pytest") + 1 : plugin_index + 1]
    heavy = [
        name
        for name in pulled_in
        if name.split(".")[0] in ("pytest_benchmark", "filelock")
        or name
        in (
            "pytest_importcache.engine.environment",
            "pytest_importcache.engine.measurer",
            "pytest_importcache.engine.runner",
            "pytest_importcache.model.result",
        )
    ]
    print_table(
        "4b. the plugin's own import, after pytest\n"
        "    (target: it pulls in no pytest-benchmark, filelock or engine module)",
        ["modules pulled in", "cumulative", "heavy modules among them"],
        [
            [
                ", ".join(pulled_in),
                f"{int(plugin_row.split('|')[1]) / 1e3:.2f} ms",
                ", ".join(heavy) or "none",
            ]
        ],
    )


def scale(bench: Bench) -> None:
    """Building a 2,000-module environment; measurement time against module count."""
    big = make_package(bench.scratch / "big", "bigpkg", modules=2000, functions=8)
    location = locate_package("bigpkg", [str(big)])
    ours = timed(
        lambda: prepare_copy(location, bench.scratch / "big-env", flavour="warm", python=PYTHON)
    )
    reference_dir = bench.scratch / "big-reference"

    def copy_and_compile(*jobs: str) -> None:
        shutil.rmtree(reference_dir, ignore_errors=True)
        subprocess.run(["cp", "-r", str(big / "bigpkg"), str(reference_dir)], check=True)
        subprocess.run([PYTHON, "-m", "compileall", "-q", *jobs, str(reference_dir)], check=True)

    serial = timed(copy_and_compile)
    parallel = timed(lambda: copy_and_compile("-j", "0"))
    print_table(
        "5a. building a warm environment of 2,000 modules (target: <= 1.2x cp -r + compileall)",
        ["method", "seconds", "ours / it"],
        [
            ["pytest-importcache (copy + compileall)", f"{ours:.2f}", ""],
            ["cp -r + python -m compileall", f"{serial:.2f}", f"{ours / serial:.2f}x"],
            ["cp -r + python -m compileall -j 0", f"{parallel:.2f}", f"{ours / parallel:.2f}x"],
        ],
    )

    project = bench.scratch / "xdist"
    project.mkdir()
    shutil.copytree(big / "bigpkg", project / "bigpkg")
    (project / "pytest.ini").write_text(
        "[pytest]\npythonpath = .\nimportcache_rounds = 2\nimportcache_warmup = 0\n"
    )
    (project / "test_big.py").write_text(
        "".join(
            f"def test_{index}(warm_import_env):\n    warm_import_env.measure('bigpkg')\n\n"
            for index in range(4)
        )
    )
    basetemp = bench.scratch / "xdist-basetemp"
    subprocess.run(
        [
            PYTHON,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            f"--basetemp={basetemp}",
        ],
        cwd=project,
        check=True,
        capture_output=True,
    )
    copies = [
        path
        for path in (basetemp / "importcache" / "envs").glob("warm-*/bigpkg-*")
        if path.is_dir()
    ]
    print(
        f"   4 tests under -n 2 built {len(copies)} warm cop{'y' if len(copies) == 1 else 'ies'}"
        " of the 2,000-module package (target: 1)"
    )

    rows = []
    for modules in (250, 500, 1000, 2000):
        root = make_package(bench.scratch / f"linear-{modules}", f"linear{modules}", modules, 8)
        env = bench.env("warm", rounds=5, search_path=[str(root)])
        env.measure(f"linear{modules}", rounds=1)
        result = env.measure(f"linear{modules}")
        rows.append([modules, f"{result.median * 1e3:.1f}", f"{result.median / modules * 1e6:.1f}"])
    print_table(
        "5b. warm measurement against module count (linear: constant time per module)",
        ["modules", "median ms", "us per module"],
        rows,
    )


def calibration(bench: Bench) -> None:
    """How budget-scale auto narrows a budget's headroom spread, quiet vs loaded machine."""
    module = "email.mime.text"
    env = bench.env("warm")
    reference_env = bench.env(
        "warm", search_path=[str(write_reference_package(bench.scratch / "reference-source"))]
    )

    def sample() -> tuple[float, float]:
        return _interleaved(
            lambda: list(env.measure(module).wall),
            lambda: list(reference_env.measure(REFERENCE_PACKAGE).wall),
            batches=3,
        )

    quiet_median, quiet_reference = sample()
    budget = 1.3 * quiet_median
    rows = []
    for busy_count in (1, cpu_count()):
        busy = busy_cores(busy_count)
        time.sleep(0.5)
        try:
            loaded_median, loaded_reference = sample()
        finally:
            stop(busy)
        factor = loaded_reference / quiet_reference
        quiet_headroom = 1 - quiet_median / budget
        fixed = 1 - loaded_median / budget
        scaled = 1 - loaded_median / (budget * factor)
        load = f"{busy_count} of {cpu_count()} cores busy"
        slowdown = f"x{loaded_median / quiet_median:.2f}"
        rows.append(
            [
                load,
                slowdown,
                "1.0 (fixed)",
                f"{quiet_headroom:+.1%}",
                f"{fixed:+.1%}",
                f"{abs(quiet_headroom - fixed):.1%}",
            ]
        )
        rows.append(
            [
                "",
                "",
                f"auto (x{factor:.2f})",
                f"{quiet_headroom:+.1%}",
                f"{scaled:+.1%}",
                f"{abs(quiet_headroom - scaled):.1%}",
            ]
        )
    print_table(
        f"6. calibrated budgets: headroom of a warm budget of {budget * 1e3:.1f} ms on {module},\n"
        "   quiet machine vs cores loaded with busy loops (target: auto narrows the spread)",
        ["load", "module", "budget scale", "quiet headroom", "loaded headroom", "spread"],
        rows,
    )


SECTIONS: dict[str, Callable[[Bench], None]] = {
    "accuracy": accuracy,
    "noise": noise,
    "sensitivity": sensitivity,
    "overhead": overhead,
    "scale": scale,
    "calibration": calibration,
}


def main() -> None:
    """Run the chosen sections and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", nargs="*", choices=list(SECTIONS), default=list(SECTIONS))
    arguments = parser.parse_args()
    print(f"Python {sys.version.split()[0]} on {sys.platform}; {json.dumps(arguments.only)}")
    with tempfile.TemporaryDirectory() as scratch:
        bench = Bench(Path(scratch), arguments.quick)
        for name in arguments.only:
            started = time.perf_counter()
            SECTIONS[name](bench)
            print(f"   ({name}: {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
