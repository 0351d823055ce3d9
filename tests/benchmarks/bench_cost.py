"""What a counted run costs against a timed one, side by side in one run.

    python tests/benchmarks/bench_cost.py [--modules json,argparse,...]

One pytest project with the same budgets (cold and warm, stdlib modules) is
run in real pytest processes, one after the other, on one cache of copies
(built by a run before them):

1. timed (the default metric);
2. counted (``metric="instructions"``), a first run: an empty count store;
3. counted again, nothing changed: the same store (reuses counts where the
   plugin can: ``--importcache-store``; without that flag every count is
   taken again);
4. counted with ``-n 2``, an empty store again;
5. counted one at a time (``--importcache-jobs=1``), an empty store: the
   serial run that ``-n 2`` is measured against (the first counted run
   already counts one measurement per core in one process).

It prints each run's wall time and its ratio to the timed run, against the
targets of issue 18 (first counted run <= 3x timed; unchanged second run <=
timed; ``-n 2`` <= 0.6x the run that counts one at a time), and the share of the
timed run's wall time spent inside the measured imports themselves (every
counted round's import time, from pytest-benchmark's JSON). Only the timed
run writes that JSON: counted runs keep no pytest-benchmark files, so their
rounds count the import alone, as a CI gate's would (a run that keeps them,
or writes a report, counts every module: two to three times the rounds' cost).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import PYTHON, print_table

MODULES = ("json", "argparse", "decimal", "http.client")

TEST_FILE = """\
import pytest

{tests}
"""


def test_functions(modules: list[str], metric: str) -> str:
    """One test per module, budgeted cold and warm far from failing (xdist can share them)."""
    if metric == "time":
        budgets = 'cold="10s", warm="10s"'
    else:
        budgets = 'cold="100G", warm="100G", metric="instructions"'
    return "\n\n".join(
        f'@pytest.mark.import_budget("{module}", {budgets})\n'
        f"def test_{module.replace('.', '_')}():\n    pass\n"
        for module in modules
    )


def has_count_store(project: Path) -> bool:
    """Whether this pytest-importcache reuses counts from a store (``--importcache-store``)."""
    completed = subprocess.run(
        [PYTHON, "-m", "pytest", "--help"], cwd=project, capture_output=True, text=True, check=False
    )
    return "--importcache-store" in completed.stdout


def run_pytest(
    project: Path, test_file: str, *extra: str, save_json: bool = False
) -> tuple[float, dict[str, object]]:
    """Wall seconds of one pytest run of ``test_file``, and its pytest-benchmark JSON if saved.

    Only the timed run saves one (its import share is read from it): a counted
    run that keeps pytest-benchmark files counts every module, as a report does.
    """
    output = project / "out.json"
    output.unlink(missing_ok=True)
    saving = [f"--benchmark-json={output}"] if save_json else []
    command = [
        PYTHON, "-m", "pytest", test_file, "-q", "-p", "no:cacheprovider",
        "-p", "no:hypothesispytest", *saving, *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        sys.exit(f"pytest {' '.join(extra)} failed:\n{completed.stdout[-3000:]}{completed.stderr}")
    return wall, json.loads(output.read_text()) if save_json else {}


def import_seconds(document: dict[str, object]) -> float:
    """The measured imports' own seconds in a timed run: every counted round's, summed."""
    benchmarks = document["benchmarks"]
    assert isinstance(benchmarks, list)
    return sum(float(entry["stats"]["total"]) for entry in benchmarks)


def main() -> None:
    """Run the five runs and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modules", default=",".join(MODULES), help="comma-separated")
    modules = parser.parse_args().modules.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch) / "project"
        project.mkdir()
        (project / "pytest.ini").write_text("[pytest]\n")
        for metric in ("time", "instructions"):
            (project / f"test_{metric}.py").write_text(
                TEST_FILE.format(tests=test_functions(modules, metric))
            )
        # One cache of copies for every run, apart from the user's.
        os.environ["TMPDIR"] = str(Path(scratch) / "tmp")
        Path(os.environ["TMPDIR"]).mkdir()
        count_store = has_count_store(project)

        def store(name: str) -> list[str]:
            return [f"--importcache-store={Path(scratch) / name}"] if count_store else []

        # The copies are built once, before the runs compared: each run finds them.
        run_pytest(
            project, "test_time.py", "-o", "importcache_rounds=1", "-o", "importcache_warmup=0"
        )
        timed, timed_document = run_pytest(project, "test_time.py", save_json=True)
        first, _ = run_pytest(project, "test_instructions.py", *store("store"))
        again, _ = run_pytest(project, "test_instructions.py", *store("store"))
        parallel, _ = run_pytest(project, "test_instructions.py", "-n", "2", *store("store-n2"))
        # One count at a time in one process: what -n 2 is measured against.
        one_at_a_time, _ = run_pytest(
            project, "test_instructions.py", "--importcache-jobs=1", *store("store-serial")
        )
        inside = import_seconds(timed_document)

    reuse = "with --importcache-store" if count_store else "no count store in this version"
    print(f"budgets: {', '.join(modules)} (cold and warm); {reuse}; {os.cpu_count()} cores")
    print_table(
        "cost of a run (wall seconds of the whole pytest process)",
        ["run", "wall s", "vs timed", "target"],
        [
            ["timed", f"{timed:.1f}", "1.00x", ""],
            ["counted, first run", f"{first:.1f}", f"{first / timed:.2f}x", "<= 3x timed"],
            ["counted again, unchanged", f"{again:.1f}", f"{again / timed:.2f}x", "<= 1x timed"],
            [
                "counted, one at a time",
                f"{one_at_a_time:.1f}",
                f"{one_at_a_time / timed:.2f}x",
                "(--importcache-jobs=1)",
            ],
            [
                "counted, -n 2",
                f"{parallel:.1f}",
                f"{parallel / timed:.2f}x",
                f"<= 0.6x one at a time: {parallel / one_at_a_time:.2f}x",
            ],
        ],
    )
    print(
        f"\nthe timed run spent {inside:.2f} s of its {timed:.1f} s inside measured imports "
        f"({inside / timed:.1%})"
    )


if __name__ == "__main__":
    main()
