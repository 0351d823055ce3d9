"""The plugin's warm start-up figure for real commands against a loop of ``subprocess.run``.

A temporary venv gets, installed offline by pip, pip itself (from ensurepip's
bundled wheel: a real console script that imports a lot) and ``clipkg``
(the tests' small distribution with the console script ``clipkg-run``). For
each command, blocks alternate: the plugin measures it warm (``startup_spec``
and a ``Measurer``: a fresh interpreter per round, the package's warm copy,
exec to exit), then the same command runs as many times under
``subprocess.run`` (stdin from /dev/null, output discarded), each timed from
just before the call to its return, the way a user's loop or hyperfine would;
also ``hyperfine`` when it is installed. The table shows both figures (min
and median) and their ratio; the target is within 5%.

    python tests/benchmarks/bench_startup.py [--rounds N] [--blocks N]

Commands: ``pip --version``, ``clipkg-run --help`` (the venv's console
scripts) and ``python -m json.tool --help``. About a minute with the defaults.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

from _common import print_table
from startupworld import SCRIPT, make_venv_with_script

from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.engine.startup import startup_spec
from pytest_importcache.model.spec import StartupCommand


def install_pip(python: Path) -> None:
    """pip itself into the venv, from the wheel ensurepip bundles (offline, no setuptools)."""
    import ensurepip  # noqa: PLC0415

    wheels = glob.glob(str(Path(ensurepip.__file__).parent / "_bundled" / "pip-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-index", "--no-deps", "--disable-pip-version-check", wheels[0]],
        check=True,
    )  # fmt: skip


def reference_seconds(argv: list[str], rounds: int) -> list[float]:
    """Each run's seconds: ``subprocess.run`` from the call to its return."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=environment,
            check=True,
        )
        seconds.append(time.perf_counter() - started)
    return seconds


def hyperfine_seconds(argv: list[str], rounds: int) -> list[float] | None:
    """hyperfine's runs of the command (``None`` when it is not installed)."""
    hyperfine = shutil.which("hyperfine")
    if hyperfine is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".json") as export:
        subprocess.run(
            [hyperfine, "--warmup", "1", "--runs", str(rounds), "-N", "--export-json",
             export.name, "--input", "null", "--output", "null", " ".join(argv)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        return list(json.loads(Path(export.name).read_text())["results"][0]["times"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds per block and side")
    parser.add_argument("--blocks", type=int, default=3, help="blocks per command")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as directory:
        root = Path(directory)
        python = make_venv_with_script(root)
        install_pip(python)
        venv_bin = python.parent
        commands = [
            ("pip --version", python, [str(venv_bin / "pip"), "--version"]),
            (f"{SCRIPT} --help", python, [str(venv_bin / SCRIPT), "--help"]),
            ("python -m json.tool --help", Path(sys.executable),
             [sys.executable, "-m", "json.tool", "--help"]),
        ]  # fmt: skip
        measurer = Measurer(cache_dir=root / "cache")
        rows = []
        for label, interpreter, argv in commands:
            spec = startup_spec(
                StartupCommand.parse(label),
                python=str(interpreter),
                flavour="warm",
                rounds=arguments.rounds,
                warmup=1,
            )
            plugin: list[float] = []
            reference: list[float] = []
            phases: dict[str, list[float]] = {}
            reference_seconds(argv, 2)  # its own warm-up: the files in the page cache
            for _ in range(arguments.blocks):
                result = measurer.measure(spec)
                plugin += result.values
                for name, values in result.phases:
                    phases.setdefault(name, []).extend(values)
                reference += reference_seconds(argv, arguments.rounds)
            hyperfine = hyperfine_seconds(argv, arguments.rounds * arguments.blocks)
            rows.append(
                [
                    label,
                    f"{min(plugin) * 1e3:.1f}",
                    f"{min(reference) * 1e3:.1f}",
                    f"{min(plugin) / min(reference):.3f}",
                    f"{statistics.median(plugin) * 1e3:.1f}",
                    f"{statistics.median(reference) * 1e3:.1f}",
                    f"{statistics.median(plugin) / statistics.median(reference):.3f}",
                    f"{min(hyperfine) * 1e3:.1f}" if hyperfine else "-",
                    " ".join(
                        f"{name} {statistics.median(values) * 1e3:.1f}"
                        for name, values in phases.items()
                    ),
                ]
            )
        print_table(
            "warm start-up, plugin vs subprocess.run (ms)",
            ["command", "plugin min ms", "run min ms", "ratio", "plugin median", "run median",
             "ratio", "hyperfine min", "plugin phases (median ms)"],
            rows,
        )  # fmt: skip


if __name__ == "__main__":
    main()
