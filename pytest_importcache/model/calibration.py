"""``Calibration``: the reference import's cold and warm medians on one machine.

Written by ``pytest-importcache calibrate`` as an ini value
(``importcache_calibration = cold=52.31ms warm=16.12ms``), read by the
settings, and compared with the reference measured where the budgets run
(:mod:`pytest_importcache.engine.reference`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import BudgetError
from .units import format_significant, parse_duration

__all__ = ["Calibration"]

_CALIBRATION = re.compile(r"^\s*cold\s*=\s*(?P<cold>\S+)\s+warm\s*=\s*(?P<warm>\S+)\s*$")


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
