"""The engine's headline figures, measured side by side in one run.

    python tests/benchmarks/bench_engine.py [--rounds N]

1. Cold/warm ratio of a synthetic source-heavy package (40 modules x 150 functions).
2. The engine's warm median against an independent reference: the median of
   ``python -X importtime`` cumulative time for the same module (target: within 5%).
3. The engine's overhead: wall time of a whole measurement (all rounds) over
   the sum of its child processes' wall time (target: <= 1.15).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import ChildProcessClock, make_package, print_table, reference_importtime, timed

from pytest_importcache import ImportEnv

PACKAGE = "heavypkg"


def main() -> None:
    """Print the three figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as scratch:
        root = make_package(Path(scratch) / "src", PACKAGE, modules=40, functions=150)
        envs = {
            flavour: ImportEnv(
                flavour, rounds=rounds, cache_dir=Path(scratch) / "cache", search_path=[str(root)]
            )
            for flavour in ("cold", "warm")
        }
        results = {flavour: env.measure(PACKAGE) for flavour, env in envs.items()}
        ratio = results["cold"].median / results["warm"].median
        print_table(
            "1. cold/warm ratio, 40 modules x 150 functions",
            ["flavour", "median", "min", "max"],
            [
                [
                    flavour,
                    f"{r.median * 1e3:.1f} ms",
                    f"{r.min * 1e3:.1f} ms",
                    f"{r.max * 1e3:.1f} ms",
                ]
                for flavour, r in results.items()
            ]
            + [["cold / warm", f"{ratio:.2f}x", "", ""]],
        )

        # The reference imports the engine's own warm copy, so both read the same bytecode.
        warm_copy = envs["warm"].copy_for(PACKAGE)
        reference = statistics.median(reference_importtime(PACKAGE, rounds, path=warm_copy.roots))
        engine = envs["warm"].measure(PACKAGE).median
        print_table(
            "2. accuracy: engine warm median vs python -X importtime cumulative (target within 5%)",
            ["module", "engine", "-X importtime", "difference"],
            [
                [
                    PACKAGE,
                    f"{engine * 1e3:.2f} ms",
                    f"{reference * 1e3:.2f} ms",
                    f"{(engine - reference) / reference:+.1%}",
                ]
            ],
        )

        rows = []
        for flavour, env in envs.items():
            with ChildProcessClock() as children:
                wall = timed(lambda env=env: env.measure(PACKAGE))  # type: ignore[misc]
            rows.append(
                [
                    flavour,
                    env.warmup + rounds,
                    f"{wall:.3f} s",
                    f"{children.total:.3f} s",
                    f"{wall / children.total:.3f}",
                ]
            )
        print_table(
            "3. overhead: measurement wall / sum of child process walls (target <= 1.15)",
            ["flavour", "processes", "measurement", "children", "ratio"],
            rows,
        )


if __name__ == "__main__":
    main()
