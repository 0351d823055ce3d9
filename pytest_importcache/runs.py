"""Read pytest-benchmark run files as plain JSON, and compare import entries between runs.

Needs neither pytest nor pytest-benchmark, so the command line can compare
saved runs quickly. A run file holds ``{"benchmarks": [entry, ...], ...}``;
import entries are the ones whose ``extra_info`` pytest-importcache wrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FailThreshold",
    "ImportComparison",
    "RunError",
    "compare_runs",
    "entry_self_seconds",
    "find_runs",
    "import_entries",
    "latest_runs",
    "load_run",
    "resolve_run",
    "runs_beside",
]

_THRESHOLD = re.compile(
    r"^(?P<stat>min|max|mean|median|stddev|iqr):(?P<value>\d+(?:\.\d+)?)(?P<percent>%?)$"
)


class RunError(ValueError):
    """A run cannot be found or read; the message names it."""


@dataclass(frozen=True)
class FailThreshold:
    """``median:10%`` (a relative slowdown) or ``median:0.005`` (seconds), as pytest-benchmark."""

    stat: str
    value: float
    percent: bool

    @classmethod
    def parse(cls, text: str) -> FailThreshold:
        """Parse pytest-benchmark's ``--benchmark-compare-fail`` syntax."""
        match = _THRESHOLD.match(text.strip())
        if match is None:
            raise ValueError(
                f"{text!r} is not a threshold: write STAT:PERCENT% or STAT:SECONDS with STAT one "
                "of min, max, mean, median, stddev, iqr (e.g. median:10%)"
            )
        return cls(match["stat"], float(match["value"]), bool(match["percent"]))

    def fails(self, before: float, after: float) -> bool:
        """Whether going from ``before`` to ``after`` seconds is a slowdown past the threshold."""
        if self.percent:
            return before > 0 and (after - before) / before * 100 > self.value
        return after - before > self.value

    def __str__(self) -> str:
        return f"{self.stat}:{self.value:g}{'%' if self.percent else ''}"


@dataclass(frozen=True)
class ImportComparison:
    """One import measurement in a baseline run and in a later run.

    ``regressed`` says whether the user's compare-fail thresholds flag it
    (``None`` when none were given).
    """

    name: str
    source: str
    stat: str
    before: float
    after: float
    before_self_seconds: Mapping[str, float]
    after_self_seconds: Mapping[str, float]
    regressed: bool | None = None

    @property
    def change(self) -> float:
        """Relative change of the statistic (0.1 is 10% slower)."""
        return (self.after - self.before) / self.before if self.before else 0.0


def entry_self_seconds(entry: Mapping[str, Any]) -> dict[str, float]:
    """Per-module self seconds an import entry recorded (its slowest modules, for old entries)."""
    info = entry.get("extra_info") or {}
    recorded = info.get("module_self_seconds")
    if isinstance(recorded, dict):
        return {str(name): float(value) for name, value in recorded.items()}
    return {
        str(item["module"]): float(item["self"])
        for item in info.get("slowest_modules", [])
        if isinstance(item, dict)
    }


def import_entries(run: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A run's import entries by full name."""
    return {
        str(entry["fullname"]): entry
        for entry in run.get("benchmarks", [])
        if isinstance(entry, dict) and "module_self_seconds" in (entry.get("extra_info") or {})
    }


def find_runs(storage: Path) -> list[Path]:
    """Every saved run under a pytest-benchmark storage directory, oldest number first."""
    runs = [path for path in storage.glob("*/[0-9][0-9][0-9][0-9]_*.json") if path.is_file()]
    return sorted(runs, key=lambda path: (path.name, str(path)))


def runs_beside(run: Path) -> list[Path]:
    """The runs saved in the same machine directory as ``run``, oldest number first.

    pytest-benchmark keeps one directory per interpreter and platform; runs are
    numbered, and compared, within one.
    """
    return sorted(path for path in run.parent.glob("[0-9][0-9][0-9][0-9]_*.json") if path.is_file())


def latest_runs(storage: Path, count: int = 2) -> list[Path]:
    """The ``count`` newest runs of the machine directory that saved last."""
    saved = find_runs(storage)
    if not saved:
        return []
    newest = max(saved, key=lambda path: path.stat().st_mtime_ns)
    return runs_beside(newest)[-count:]


def resolve_run(spec: str, storage: Path) -> Path:
    """A run file from a path, a run number (``0001``) or a name prefix (``0001_abc``)."""
    as_path = Path(spec)
    if as_path.suffix == ".json" and as_path.is_file():
        return as_path
    matches = [path for path in find_runs(storage) if path.name.startswith(spec)]
    if not matches:
        raise RunError(f"no saved run matches {spec!r} in {storage}")
    if len(matches) > 1:
        names = ", ".join(str(path.relative_to(storage)) for path in matches)
        raise RunError(f"{spec!r} matches several runs in {storage}: {names}")
    return matches[0]


def load_run(path: Path) -> dict[str, Any]:
    """A run file's JSON; :class:`RunError` names the file when it is unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"cannot read run file {path}: {exc}") from None
    except ValueError as exc:
        raise RunError(f"run file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise RunError(f"run file {path} has no 'benchmarks' list: not a pytest-benchmark run")
    return data


def compare_runs(
    before: Mapping[str, Any], after: Mapping[str, Any], source: str, stat: str = "median"
) -> list[ImportComparison]:
    """Import entries present in both runs, compared on ``stat``."""
    baseline = import_entries(before)
    comparisons = []
    for fullname, entry in import_entries(after).items():
        old = baseline.get(fullname)
        if old is None:
            continue
        if stat not in (old.get("stats") or {}) or stat not in (entry.get("stats") or {}):
            raise RunError(f"the entry {fullname!r} has no {stat!r} statistic in one of the runs")
        comparisons.append(
            ImportComparison(
                name=str(entry["name"]),
                source=source,
                stat=stat,
                before=float(old["stats"][stat]),
                after=float(entry["stats"][stat]),
                before_self_seconds=entry_self_seconds(old),
                after_self_seconds=entry_self_seconds(entry),
            )
        )
    return comparisons
