"""A fixed reference import, for budgets that hold on slower and faster machines.

``pytest-importcache calibrate`` measures the reference cold and warm on the
machine where budgets are written and prints an ini line recording it
(``importcache_calibration = cold=52.31ms warm=16.12ms``). With
``importcache_budget_scale = auto``, each run measures the same reference
once and multiplies cold budgets by (reference cold here / recorded cold) and
warm budgets likewise.

The reference is a generated package (the same source text on every machine
and Python version, using no module but its own), so it measures the machine
and the interpreter, not a library's version.
"""

from __future__ import annotations

from pathlib import Path

from pytest_importcache.model.calibration import Calibration
from pytest_importcache.model.spec import DEFAULT_ROUNDS, DEFAULT_WARMUP, MeasurementSpec

from .measurer import Measurer

__all__ = ["REFERENCE_PACKAGE", "measure_reference", "write_reference_package"]

REFERENCE_PACKAGE = "importcache_reference"
_MODULES = 12
_FUNCTIONS = 120


def _module_source(index: int) -> str:
    functions = "\n".join(
        f"def function_{index}_{number}(value, scale={number}):\n"
        f"    items = [value * scale + step for step in range({number % 7 + 1})]\n"
        f"    return {{'index': {index}, 'number': {number}, 'items': items}}\n"
        for number in range(_FUNCTIONS)
    )
    # Executing the module does some work too, so the warm import is not only unmarshalling.
    table = f"TABLE = {{number: function_{index}_0(number) for number in range(1500)}}\n"
    return f'"""Reference module {index}."""\n\n{functions}\n{table}'


def write_reference_package(directory: Path) -> Path:
    """Write the reference package under ``directory`` (idempotent); returns ``directory``."""
    package = directory / REFERENCE_PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    for index in range(_MODULES):
        path = package / f"module_{index}.py"
        source = _module_source(index)
        if not path.exists() or path.read_text(encoding="utf-8") != source:
            path.write_text(source, encoding="utf-8")
    init = "".join(f"from . import module_{index}\n" for index in range(_MODULES))
    init_path = package / "__init__.py"
    if not init_path.exists() or init_path.read_text(encoding="utf-8") != init:
        init_path.write_text(init, encoding="utf-8")
    return directory


def measure_reference(
    cache_dir: Path,
    *,
    python: str | None = None,
    rounds: int = DEFAULT_ROUNDS,
    warmup: int = DEFAULT_WARMUP,
) -> Calibration:
    """Measure the reference import cold and warm, with copies cached under ``cache_dir``."""
    search_path = [str(write_reference_package(cache_dir / "reference-source"))]
    measurer = Measurer(cache_dir=cache_dir, search_path=search_path)
    medians = {
        flavour: measurer.measure(
            MeasurementSpec(
                REFERENCE_PACKAGE, flavour=flavour, python=python, rounds=rounds, warmup=warmup
            )
        ).median
        for flavour in ("cold", "warm")
    }
    return Calibration(cold=medians["cold"], warm=medians["warm"])
