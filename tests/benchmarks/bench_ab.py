"""Same-run A/B against a git revision vs a stored baseline, on a loaded machine.

One core is kept busy (a busy loop this script starts) for the whole run. A
synthetic package is committed in a throwaway git repository, then:

1. ``pytest --benchmark-save`` stores a baseline of its warm import, once;
2. 10 trials on the unchanged package, each running one after the other
   (a) ``pytest --benchmark-compare --benchmark-compare-fail=min:5%`` against
   that stored run and (b) ``pytest --importcache-baseline=HEAD
   --importcache-baseline-fail=5%`` (rounds interleaved with HEAD's);
3. a +10% slowdown is injected into the working tree (uncommitted), and 10
   more trials of both.

Each trial also runs (c) the same-run A/B on instruction counts
(``metric="instructions"``, valgrind required; ``--no-instructions`` leaves it
out). Targets for A/B: 0 of 10 false alarms, 10 of 10 caught. The interval
widths of the A/B runs are reported, and the rounds' spread (the noise rule's
figure).

    python tests/benchmarks/bench_ab.py [--trials N] [--rounds N]

About 5 minutes with the defaults on a 2-core machine. ``--order`` instead
compares interleaved rounds with blocks of 5 rounds per side. ``--dump FILE`` keeps
every trial's rounds; ``--analyse FILE`` then compares estimators of the ratio
(minimums, medians, lower quartiles, pair ratios) on those same rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import PYTHON, busy_cores, cpu_count, make_package, print_table, stop, timed

from pytest_importcache import ImportEnv
from pytest_importcache.engine.against import measure_against
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.model.interval import ratio_interval
from pytest_importcache.model.noise import NOISY_SPREAD, relative_spread
from pytest_importcache.model.spec import MeasurementSpec

BUDGET_TEST = """\
import pytest

@pytest.mark.import_budget("abbench", warm="10s")
def test_abbench():
    pass

@pytest.mark.import_budget("abbench", warm="100G", metric="instructions")
def test_abbench_counted():
    pass
"""


def git(repo: Path, *arguments: str) -> None:
    """Run git in ``repo`` with a throwaway identity."""
    identity = {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    subprocess.run(
        ["git", "-C", str(repo), *arguments],
        check=True,
        capture_output=True,
        env={**os.environ, **identity},
    )


def busy_loop_iterations(seconds: float) -> int:
    """Iterations of a list comprehension that take about ``seconds`` here."""
    probe = 2_000_000
    elapsed = min(timed(lambda: [None for _ in range(probe)]) for _ in range(5))
    return int(probe * seconds / elapsed)


class Trials:
    """The project, and one trial of each method."""

    def __init__(self, project: Path, rounds: int) -> None:
        self.project = project
        self.rounds = rounds
        self.command = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
        self.timed_only = ["-k", "not counted"]
        self.rounds_option = f"--importcache-rounds={rounds}"

    def stored(self) -> bool:
        """One stored-baseline comparison; whether it failed."""
        completed = subprocess.run(
            [
                *self.command,
                *self.timed_only,
                self.rounds_option,
                "--benchmark-compare=0001",
                "--benchmark-compare-fail=min:5%",
            ],
            cwd=self.project,
            capture_output=True,
            check=False,
        )
        return completed.returncode != 0

    def same_run(self, *, counted: bool = False) -> tuple[bool, dict[str, float]]:
        """One same-run A/B against HEAD at 5%; whether it failed, and its figures.

        ``counted``: on instruction counts, with their default rounds.
        """
        out = self.project / "ab.json"
        completed = subprocess.run(
            [
                *self.command,
                *(["-k", "counted"] if counted else [*self.timed_only, self.rounds_option]),
                "--importcache-baseline=HEAD",
                "--importcache-baseline-fail=5%",
                f"--benchmark-json={out}",
            ],
            cwd=self.project,
            capture_output=True,
            check=False,
        )
        entry = json.loads(out.read_text())["benchmarks"][0]
        baseline = entry["extra_info"]["baseline"]
        figures = {
            "ratio": baseline["ratio"],
            "low": baseline["low"],
            "high": baseline["high"],
            "spread": max(
                relative_spread(baseline["head_values"]), relative_spread(baseline["base_values"])
            ),
            "head_values": baseline["head_values"],
            "base_values": baseline["base_values"],
        }
        return completed.returncode != 0, figures


def run_trials(
    trials: Trials, count: int, *, counted: bool
) -> tuple[int, int, list[dict[str, Any]], int, list[dict[str, Any]]]:
    """``count`` trials of each method, alternating.

    Stored failures, A/B failures, A/B figures, and (``counted``) the
    instruction A/B's failures and figures.
    """
    stored_failures = ab_failures = counted_failures = 0
    figures, counted_figures = [], []
    for _ in range(count):
        stored_failures += trials.stored()
        failed, figure = trials.same_run()
        ab_failures += failed
        figures.append(figure)
        if counted:
            failed, figure = trials.same_run(counted=True)
            counted_failures += failed
            counted_figures.append(figure)
    return stored_failures, ab_failures, figures, counted_failures, counted_figures


def describe_widths(figures: list[dict[str, Any]]) -> str:
    """Interval widths in points: min / median / max."""
    widths = sorted((figure["high"] - figure["low"]) * 100 for figure in figures)
    return f"{widths[0]:.1f} / {statistics.median(widths):.1f} / {widths[-1]:.1f}"


def describe_ratios(figures: list[dict[str, Any]]) -> str:
    """The ratios' range."""
    ratios = [figure["ratio"] for figure in figures]
    return f"{min(ratios):.3f}-{max(ratios):.3f}"


def _quantile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


ESTIMATORS: dict[str, Callable[[Sequence[float], Sequence[float]], float]] = {
    "ratio of medians": lambda h, b: statistics.median(h) / statistics.median(b),
    "ratio of lower quartiles": lambda h, b: _quantile(h, 0.25) / _quantile(b, 0.25),
    "ratio of minimums": lambda h, b: min(h) / min(b),
    "median of pair ratios": lambda h, b: statistics.median(
        x / y for x, y in zip(h, b, strict=True)
    ),
}


def bootstrap(
    head: Sequence[float],
    base: Sequence[float],
    estimator: Callable[[Sequence[float], Sequence[float]], float],
    paired: bool,
    resamples: int = 1000,
) -> tuple[float, float]:
    """A percentile 95% interval of ``estimator`` (pairs resampled together when ``paired``)."""
    generator = random.Random(1)
    count = len(head)
    ratios = []
    for _ in range(resamples):
        picks = [generator.randrange(count) for _ in range(count)]
        other = picks if paired else [generator.randrange(count) for _ in range(count)]
        ratios.append(estimator([head[i] for i in picks], [base[i] for i in other]))
    return _quantile(ratios, 0.025), _quantile(ratios, 0.975)


def analyse(dump: dict[str, Any], threshold: float = 0.05) -> None:
    """Each estimator's false alarms, catches and widths on the recorded rounds."""
    rows = []
    for name, estimator in ESTIMATORS.items():
        for paired in (True, False):
            if name == "median of pair ratios" and not paired:
                continue
            cells: list[object] = [name, "paired" if paired else "independent"]
            for trials in ("unchanged", "slowed"):
                intervals = [
                    bootstrap(trial["head_values"], trial["base_values"], estimator, paired)
                    for trial in dump[trials]
                ]
                points = [
                    estimator(trial["head_values"], trial["base_values"]) for trial in dump[trials]
                ]
                alarms = sum(low > 1 + threshold for low, _ in intervals)
                widths = sorted((high - low) * 100 for low, high in intervals)
                cells += [
                    f"{alarms} of {len(intervals)}",
                    f"{statistics.median(points):.3f}",
                    f"{statistics.median(widths):.1f}",
                ]
            rows.append(cells)
    print_table(
        f"estimators on the same rounds ({dump['rounds']} per side), 95% bootstrap, at "
        f"{threshold:.0%}",
        [
            "estimator",
            "resampling",
            "unchanged: alarms",
            "ratio",
            "width",
            "slowed: caught",
            "ratio",
            "width",
        ],
        rows,
    )


def analyse_spread(dumps: Sequence[dict[str, Any]], threshold: float = 0.05) -> None:
    """How the rounds' spread (the noise rule's figure) predicts an interval too wide to decide."""
    groups: dict[str, list[tuple[float, bool]]] = {"quiet": [], "noisy": []}
    for dump in dumps:
        for trials in ("unchanged", "slowed"):
            for trial in dump[trials]:
                spread = max(
                    relative_spread(trial["head_values"]), relative_spread(trial["base_values"])
                )
                interval = ratio_interval(trial["head_values"], trial["base_values"])
                undecided = interval.low <= 1 + threshold <= interval.high
                group = "noisy" if spread > NOISY_SPREAD else "quiet"
                groups[group].append((interval.width * 100, undecided))
    print_table(
        f"the noise rule: trials by rounds spread (IQR/median, either side) vs "
        f"{NOISY_SPREAD:.0%}; their A/B interval at {threshold:.0%}",
        [
            "rounds spread",
            "trials",
            "interval width median (points)",
            "interval holds the threshold",
        ],
        [
            [
                f"{'<=' if name == 'quiet' else '>'} {NOISY_SPREAD:.0%}",
                len(entries),
                f"{statistics.median(width for width, _ in entries):.1f}" if entries else "-",
                f"{sum(undecided for _, undecided in entries)} of {len(entries)}",
            ]
            for name, entries in groups.items()
        ],
    )


def order_experiment(project: Path, trials: int, rounds: int, block: int) -> None:
    """Interleaved rounds (A B A B) vs blocks (A*block B*block ...) on an unchanged package.

    Both sides are the same commit, so every ratio should be 1: the steadier
    order gives narrower intervals and ratios closer to 1. The two orders
    alternate trial by trial, so they see the same machine.
    """
    measurer = Measurer(search_path=[str(project)])
    spec = MeasurementSpec("abbench", rounds=rounds, warmup=1)
    results: dict[str, list[tuple[float, float]]] = {"interleaved": [], "blocks": []}
    for _ in range(trials):
        comparison = measure_against(measurer, spec, "HEAD")
        results["interleaved"].append((comparison.interval.ratio, comparison.interval.width))
        head: list[float] = []
        base: list[float] = []
        warmup = 1
        for _ in range(rounds // block):
            head += measurer.measure(spec.replace(rounds=block, warmup=warmup)).wall
            base += measurer.measure(spec.replace(rounds=block, warmup=warmup)).wall
            warmup = 0
        interval = ratio_interval(head, base)
        results["blocks"].append((interval.ratio, interval.width))
    print_table(
        f"round order on an unchanged package ({trials} trials each, {rounds} rounds per side, "
        f"blocks of {block}); the ideal ratio is 1",
        ["order", "ratios", "|ratio - 1| median", "width median (points)"],
        [
            [
                order,
                f"{min(r for r, _ in values):.3f}-{max(r for r, _ in values):.3f}",
                f"{statistics.median(abs(r - 1) for r, _ in values):.3f}",
                f"{statistics.median(w for _, w in values) * 100:.1f}",
            ]
            for order, values in results.items()
        ],
    )


def print_results(
    n: int,
    rounds: int,
    medians: tuple[float, float],
    unchanged: tuple[int, int, list[dict[str, Any]], int, list[dict[str, Any]]],
    slowed: tuple[int, int, list[dict[str, Any]], int, list[dict[str, Any]]],
) -> None:
    """The two tables: alarms per method, then the A/B intervals."""
    base, slowed_median = medians
    counted = bool(unchanged[4])
    print_table(
        f"same-run A/B vs stored baseline at 5%, {n} trials each, 1 of {cpu_count()} cores busy;\n"
        f"   injected slowdown +{(slowed_median - base) / base:.0%} "
        f"({base * 1e3:.2f} -> {slowed_median * 1e3:.2f} ms warm), {rounds} rounds "
        "(target for A/B: 0 false alarms, all caught)",
        ["method", "false alarms (unchanged)", "caught (slowed)"],
        [
            [
                "stored baseline, compare-fail=min:5%",
                f"{unchanged[0]} of {n}",
                f"{slowed[0]} of {n}",
            ],
            ["same-run A/B, baseline-fail=5%", f"{unchanged[1]} of {n}", f"{slowed[1]} of {n}"],
            *(
                [
                    [
                        "same-run A/B on instructions, 5%",
                        f"{unchanged[3]} of {n}",
                        f"{slowed[3]} of {n}",
                    ]
                ]
                if counted
                else []
            ),
        ],
    )
    print_table(
        "A/B intervals (95%, bootstrap of the median of pair ratios, rounds resampled in pairs)",
        ["trials", "ratios", "width min / median / max (points)", "rounds spread median"],
        [
            [
                label,
                describe_ratios(figures),
                describe_widths(figures),
                f"{statistics.median(f['spread'] for f in figures):.1%}",
            ]
            for label, figures in (
                ("unchanged", unchanged[2]),
                ("slowed", slowed[2]),
                *(
                    (("unchanged, instructions", unchanged[4]), ("slowed, instructions", slowed[4]))
                    if counted
                    else ()
                ),
            )
        ],
    )


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--dump", type=Path, help="write every trial's rounds here (JSON)")
    parser.add_argument(
        "--no-instructions", action="store_true", help="leave out the instruction-count A/B"
    )
    parser.add_argument(
        "--analyse", type=Path, nargs="+", help="only compare estimators on --dump files"
    )
    parser.add_argument(
        "--order",
        action="store_true",
        help="only compare interleaved rounds with blocks of 5 (unchanged package)",
    )
    arguments = parser.parse_args()
    if arguments.analyse:
        dumps = [json.loads(path.read_text()) for path in arguments.analyse]
        for path, dump in zip(arguments.analyse, dumps, strict=True):
            print(f"\n{path}:")
            analyse(dump)
        analyse_spread(dumps)
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as scratch:
        os.environ["TMPDIR"] = scratch  # a private cache of copies
        tempfile.tempdir = None
        project = Path(scratch) / "project"
        make_package(project, "abbench", modules=40, functions=150)
        (project / "test_abbench.py").write_text(BUDGET_TEST)
        (project / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
        git(project, "init", "-q", "-b", "main")
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "bench")
        busy = busy_cores(1)
        try:
            time.sleep(1)
            if arguments.order:
                order_experiment(project, arguments.trials, arguments.rounds, block=5)
                return
            trials = Trials(project, arguments.rounds)
            measure = ImportEnv("warm", search_path=[str(project)], rounds=20)
            base = measure.measure("abbench").median
            subprocess.run(
                [
                    *trials.command,
                    *trials.timed_only,
                    trials.rounds_option,
                    "--benchmark-save=baseline",
                ],
                cwd=project,
                check=True,
                capture_output=True,
            )
            counted = not arguments.no_instructions and shutil.which("valgrind") is not None
            unchanged = run_trials(trials, arguments.trials, counted=counted)
            init = project / "abbench" / "__init__.py"
            init.write_text(init.read_text() + "from . import extra\n")
            iterations = busy_loop_iterations(0.10 * base)
            (project / "abbench" / "extra.py").write_text(f"[None for _ in range({iterations})]\n")
            slowed_median = measure.measure("abbench").median
            slowed = run_trials(trials, arguments.trials, counted=counted)
        finally:
            stop(busy)
    print_results(arguments.trials, arguments.rounds, (base, slowed_median), unchanged, slowed)
    if arguments.dump:
        arguments.dump.write_text(
            json.dumps({"unchanged": unchanged[2], "slowed": slowed[2], "rounds": arguments.rounds})
        )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
