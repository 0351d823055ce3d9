"""Shared pieces of the benchmark scripts: synthetic packages, independent references, tables.

The references here use only the standard library and `python` itself, never
pytest-importcache's engine, so the engine is measured against something
independent of it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PYTHON = sys.executable


def heavy_module_source(index: int, functions: int) -> str:
    """A module that is slow to compile and quick to execute."""
    return "\n".join(
        f"def function_{index}_{number}(a, b=1):\n"
        f"    value = [a * b + {number} for _ in range(3)]\n"
        f"    return {{'a': a, 'b': b, 'value': value, 'number': {number}}}\n"
        for number in range(functions)
    )


def make_package(root: Path, name: str, modules: int, functions: int) -> Path:
    """Write package ``name``: ``modules`` submodules of ``functions`` functions each."""
    package = root / name
    if package.exists():
        shutil.rmtree(package)
    package.mkdir(parents=True)
    for index in range(modules):
        (package / f"module_{index}.py").write_text(heavy_module_source(index, functions))
    (package / "__init__.py").write_text(
        "".join(f"from . import module_{index}\n" for index in range(modules))
    )
    return root


def importtime_cumulative_us(stderr: str, module: str) -> int:
    """The cumulative microseconds of ``module``'s row in ``-X importtime`` output."""
    for line in stderr.splitlines():
        fields = [field.strip() for field in line.removeprefix("import time:").split("|")]
        if line.startswith("import time:") and len(fields) == 3 and fields[2] == module:
            return int(fields[1])
    raise RuntimeError(f"no -X importtime row for {module}")


def reference_importtime(
    module: str, rounds: int, *, path: Sequence[Path] = (), clean: Path | None = None
) -> list[float]:
    """Seconds of ``module``'s import per ``python -X importtime`` run.

    ``path`` entries go first on ``sys.path``; ``clean``, when given, has its
    ``__pycache__`` directories deleted before every run (a cold import).
    """
    code = f"import sys; sys.path[0:0] = {[str(entry) for entry in path]!r}; import {module}"
    seconds = []
    for _ in range(rounds):
        if clean is not None:
            for cache in list(clean.rglob("__pycache__")):
                shutil.rmtree(cache)
        completed = subprocess.run(
            [PYTHON, "-I", "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds.append(importtime_cumulative_us(completed.stderr, module) / 1e6)
    return seconds


def whole_process_difference(module: str, rounds: int, *, path: Sequence[Path] = ()) -> float:
    """Median wall of ``python -c "import M"`` minus that of ``python -c pass``, seconds.

    Both end with ``os._exit(0)``: otherwise the first would also count freeing
    the imported modules at interpreter exit, which is no part of the import.
    """
    prefix = f"import sys, os; sys.path[0:0] = {[str(entry) for entry in path]!r}"
    with_import: list[float] = []
    without: list[float] = []
    for _ in range(rounds):  # interleaved, so drifts hit both alike
        for code, into in (
            (f"{prefix}; import {module}; os._exit(0)", with_import),
            (f"{prefix}; os._exit(0)", without),
        ):
            start = time.perf_counter()
            subprocess.run([PYTHON, "-I", "-c", code], check=True)
            into.append(time.perf_counter() - start)
    return statistics.median(with_import) - statistics.median(without)


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Standard deviation over mean."""
    return statistics.stdev(values) / statistics.mean(values)


def timed(function: Callable[[], object]) -> float:
    """Wall seconds one call takes."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain-text table, columns sized to their content."""
    cells = [list(map(str, header))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print(
            "  "
            + "  ".join(
                cell.rjust(width) if column else cell.ljust(width)
                for column, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print("  " + "  ".join("-" * width for width in widths))
    sys.stdout.flush()


class ChildProcessClock:
    """Adds up the wall time (spawn to exit) of every child process started meanwhile.

    It swaps ``subprocess.Popen`` for a timing subclass while the block runs; the
    engine's runner starts its rounds through that module attribute.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self._original = subprocess.Popen

    def __enter__(self) -> ChildProcessClock:
        clock = self

        class TimedPopen(self._original):  # type: ignore[misc,name-defined]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self._started = time.perf_counter()
                self._counted = False
                super().__init__(*args, **kwargs)

            def wait(self, timeout: float | None = None) -> int:
                code: int = super().wait(timeout)
                if not self._counted:
                    self._counted = True
                    clock.total += time.perf_counter() - self._started
                return code

        subprocess.Popen = TimedPopen  # type: ignore[misc]
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.Popen = self._original  # type: ignore[misc]


def busy_cores(count: int) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` processes that spin a CPU core each (stop them with ``stop``)."""
    return [subprocess.Popen([PYTHON, "-c", "while True: pass"]) for _ in range(count)]


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Kill and reap processes."""
    for process in processes:
        process.kill()
        process.wait()


def cpu_count() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
