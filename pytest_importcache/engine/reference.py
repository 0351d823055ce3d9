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

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pytest_importcache.model.spec import DEFAULT_ROUNDS, DEFAULT_WARMUP, MeasurementSpec
from pytest_importcache.model.units import BudgetError, format_significant, parse_duration

from .measurer import Measurer

__all__ = ["REFERENCE_PACKAGE", "Calibration", "measure_reference", "write_reference_package"]

REFERENCE_PACKAGE = "importcache_reference"
_MODULES = 12
_FUNCTIONS = 120
_CALIBRATION = re.compile(r"^\s*cold\s*=\s*(?P<cold>\S+)\s+warm\s*=\s*(?P<warm>\S+)\s*$")


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


@dataclass(frozen=True)
class Calibration:
    """Median cold and warm seconds of the reference import on one machine."""

    cold: float
    warm: float

    def to_text(self) -> str:
        """The ini value: ``cold=52.31ms warm=16.12ms``."""
        cold = format_significant(self.cold * 1e3, 4)
        warm = format_significant(self.warm * 1e3, 4)
        return f"cold={cold}ms warm={warm}ms"

    @classmethod
    def parse(cls, text: str) -> Calibration:
        """Read :meth:`to_text`'s format; raises ``ValueError`` naming the expected form."""
        match = _CALIBRATION.match(text)
        if match is None:
            raise ValueError(f"expected 'cold=DURATION warm=DURATION', got {text!r}")
        try:
            return cls(parse_duration(match["cold"]), parse_duration(match["warm"]))
        except BudgetError as exc:
            raise ValueError(str(exc)) from None

    @classmethod
    def read(cls, path: Path) -> Calibration:
        """A calibration saved by :meth:`write`."""
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def write(self, path: Path) -> None:
        """Save to ``path``, aside and then renamed, so no reader ever sees half a file."""
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({"cold": self.cold, "warm": self.warm}), encoding="utf-8")
        os.replace(partial, path)

    def scales(self, recorded: Calibration) -> dict[str, float]:
        """Budget factors for this machine against a ``recorded`` calibration."""
        return {"cold": self.cold / recorded.cold, "warm": self.warm / recorded.warm}


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
