"""Instruction counts against wall time, side by side in one run: steadiness, sensitivity, cost.

Run from the repository root (valgrind must be installed; rich is measured
when it is importable):

    python tests/benchmarks/bench_instructions.py [--quick]

1. Steadiness: spread (max-min)/min and CV of 10 rounds, cold and warm, for
   email.mime.text, rich.console and a synthetic package, on a quiet machine
   and with both cores busy.
2. Sensitivity: extra work of +1%, +2% and +3% of the synthetic import
   injected; 10 runs each with and without it, each judged against the first
   unchanged run with pytest-benchmark's own compare-fail check: min:1% on
   instructions, min:5% on time.
3. Agreement: the change each injection makes in instructions and in time,
   and what instructions miss (the cold import's file-system work).
4. Cost: wall time of one default instruction measurement (3 rounds) against
   one default time measurement (1 warm-up + 10 rounds) of the same import.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import busy_cores, coefficient_of_variation, make_package, print_table, stop

from pytest_importcache import ImportEnv
from pytest_importcache.pytest.benchmark import CompareFailCheck

SYNTHETIC = "benchpkg"


def spread(values: Sequence[float]) -> float:
    """(max - min) / min."""
    return (max(values) - min(values)) / min(values)


def environment(
    flavour: str, metric: str, root: Path, cache: Path, rounds: int | None = None
) -> ImportEnv:
    """An environment over ``root`` (then sys.path) with the metric's default rounds."""
    return ImportEnv(
        flavour,  # type: ignore[arg-type]
        metric=metric,  # type: ignore[arg-type]
        rounds=rounds,
        cache_dir=cache,
        search_path=[str(root), *sys.path],
    )


def write_synthetic(root: Path, extra_iterations: int) -> None:
    """The synthetic package, with ``extra_iterations`` of injected loop work in its __init__."""
    make_package(root, SYNTHETIC, modules=6, functions=40)
    init = root / SYNTHETIC / "__init__.py"
    body = init.read_text()
    # The same instructions per iteration, however many: no growing integers or lists.
    init.write_text(body + f"for _ in range({extra_iterations}):\n    pass\n")


def steadiness(modules: list[str], root: Path, cache: Path, rounds: int) -> None:
    rows = []
    for load in ("quiet", "both cores busy"):
        busy = busy_cores(2) if load != "quiet" else []
        try:
            for module in modules:
                for flavour in ("cold", "warm"):
                    counts = environment(flavour, "instructions", root, cache, rounds).measure(
                        module
                    )
                    times = environment(flavour, "time", root, cache, rounds).measure(module)
                    rows.append(
                        [
                            module,
                            flavour,
                            load,
                            f"{counts.min:,.0f}",
                            f"{max(counts.values) - min(counts.values):,.0f}",
                            f"{spread(counts.values):.4%}",
                            f"{coefficient_of_variation(counts.values):.4%}",
                            f"{spread(times.values):.1%}",
                            f"{coefficient_of_variation(times.values):.1%}",
                        ]
                    )
        finally:
            stop(busy)
    print_table(
        f"1. Steadiness over {rounds} rounds",
        ["module", "flavour", "machine", "instructions (min)", "max - min", "instr spread",
         "instr CV", "time spread", "time CV"],
        rows,
    )  # fmt: skip


def calibrate_injection(root: Path, cache: Path) -> tuple[float, float]:
    """The synthetic warm import's instructions, and instructions per injected iteration."""
    write_synthetic(root, 0)
    base = environment("warm", "instructions", root, cache, 1).measure(SYNTHETIC).min
    write_synthetic(root, 100_000)
    loaded = environment("warm", "instructions", root, cache, 1).measure(SYNTHETIC).min
    return base, (loaded - base) / 100_000


def judged_runs(
    measure: Callable[[], float], check: CompareFailCheck, baseline: float, runs: int
) -> tuple[int, list[float]]:
    """How many of ``runs`` measurements ``check`` fails against ``baseline``; their changes."""
    flagged, changes = 0, []
    for _ in range(runs):
        figure = measure()
        flagged += check.fails(baseline, figure)
        changes.append(figure / baseline - 1)
    return flagged, changes


def sensitivity(root: Path, cache: Path, runs: int) -> None:
    base, per_iteration = calibrate_injection(root, cache)
    checks = {"instructions": CompareFailCheck("min:1%"), "time": CompareFailCheck("min:5%")}
    rows = []
    baselines: dict[str, float] = {}
    for injected in (0.0, 0.01, 0.02, 0.03):
        write_synthetic(root, round(base * injected / per_iteration))
        for metric, check in checks.items():

            def measure(metric: str = metric) -> float:
                return environment("warm", metric, root, cache).measure(SYNTHETIC).min

            if injected == 0.0:
                baselines[metric] = measure()
            flagged, changes = judged_runs(measure, check, baselines[metric], runs)
            rows.append(
                [
                    f"+{injected:.0%}",
                    metric,
                    str(check),
                    f"{flagged}/{runs}",
                    f"{min(changes):+.2%} .. {max(changes):+.2%}",
                ]
            )
    print_table(
        f"2. Sensitivity and 3. agreement: injected work in {SYNTHETIC} (warm), "
        f"{runs} runs each against the first unchanged run",
        ["injected", "metric", "compare-fail", "flagged", "change of min (range)"],
        rows,
    )


def what_instructions_miss(root: Path, cache: Path) -> None:
    write_synthetic(root, 0)
    rows = []
    for metric in ("instructions", "time"):
        cold = environment("cold", metric, root, cache).measure(SYNTHETIC).min
        warm = environment("warm", metric, root, cache).measure(SYNTHETIC).min
        rows.append([metric, f"{cold:,.6g}", f"{warm:,.6g}", f"{cold / warm:.2f}"])
    print_table(
        "3. Agreement: cold against warm (compiling and writing bytecode)",
        ["metric", "cold (min)", "warm (min)", "cold / warm"],
        rows,
    )


def cost(modules: list[str], root: Path, cache: Path) -> None:
    rows = []
    for module in modules:
        started = time.perf_counter()
        environment("warm", "time", root, cache).measure(module)
        timed = time.perf_counter() - started
        started = time.perf_counter()
        environment("warm", "instructions", root, cache).measure(module)
        counted = time.perf_counter() - started
        rows.append([module, f"{timed:.1f} s", f"{counted:.1f} s", f"{counted / timed:.1f}x"])
    print_table(
        "4. Cost: one default warm measurement (time: 1 + 10 rounds; instructions: 3 rounds)",
        ["module", "time", "instructions", "ratio"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds and 3 runs (a smoke run)")
    arguments = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind")
    rounds = runs = 3 if arguments.quick else 10
    with tempfile.TemporaryDirectory() as scratch:
        root, cache = Path(scratch) / "src", Path(scratch) / "cache"
        write_synthetic(root, 0)
        modules = ["email.mime.text", SYNTHETIC]
        if importlib.util.find_spec("rich") is not None:
            modules.insert(1, "rich.console")
        else:
            print("rich is not installed: rich.console left out (pip install rich)")
        steadiness(modules, root, cache, rounds)
        sensitivity(root, cache, runs)
        what_instructions_miss(root, cache)
        cost(modules, root, cache)


if __name__ == "__main__":
    main()
