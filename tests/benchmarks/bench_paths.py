"""Counts of an unchanged tree against HEAD: where the two trees lie must not decide the ratio.

Run from the repository root (valgrind and git must be installed):

    python tests/benchmarks/bench_paths.py [--python PYTHON ...]

A small package importing a few standard library modules is committed in a
repository at a short path (``/tmp/...``) and counted against HEAD, with a
cache directory whose path is short or long, the repository's root or its
``src`` on the path. Every ratio should read 1.0000 (to 0.02%); before the
fix, a short working tree against a longer cache read 0.998.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table

from pytest_importcache.engine.against import measure_against
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.model.spec import MeasurementSpec

SOURCE = "import collections, decimal, functools, json, operator\n"


def make_repository(root: Path, prefix: str) -> Path:
    """A git repository at ``root`` with ``mypkg`` under ``prefix`` committed."""
    (root / prefix / "mypkg").mkdir(parents=True)
    (root / prefix / "mypkg" / "__init__.py").write_text(SOURCE)
    identity = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b"}
    environment = {**os.environ, **identity, "GIT_COMMITTER_EMAIL": "b@b"}
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", "-C", str(root), *command], check=True, env=environment)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", nargs="*", default=[sys.executable], help="interpreters")
    arguments = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir="/tmp") as scratch:
        base = Path(scratch)
        for prefix in ("", "src"):
            repository = make_repository(base / f"r{prefix}", prefix)
            for cache in (base / "c", base / ("a-cache-directory-with-a-long-name" * 2)):
                measurer = Measurer(
                    cache_dir=cache,
                    search_path=[str(repository / prefix), *sys.path],
                    count_store=False,
                )
                for python in arguments.python:
                    spec = MeasurementSpec(
                        "mypkg", metric="instructions", rounds=1, warmup=0, python=python
                    )
                    comparison = measure_against(measurer, spec, "HEAD")
                    head, base_count = comparison.head.values[0], comparison.base.values[0]
                    rows.append(
                        [
                            prefix or "root",
                            len(str(cache)),
                            Path(python).name,
                            f"{head:,.0f}",
                            f"{base_count:,.0f}",
                            f"{head - base_count:+,.0f}",
                            f"{comparison.interval.ratio:.5f}",
                        ]
                    )
    print_table(
        "An unchanged tree counted against HEAD",
        ["on path", "cache path length", "python", "head", "base", "head-base", "ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
