"""Read pytest-benchmark run files as plain JSON, and compare import entries between runs.

Needs neither pytest nor pytest-benchmark, so the command line can compare
saved runs quickly. A run file holds ``{"benchmarks": [entry, ...], ...}``;
import entries are the ones whose ``extra_info`` pytest-importcache wrote.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_importcache.model.errors import RecordError, RunError
from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.model.records import SameRunBaseline, TreeRow, cost_number

__all__ = [
    "ImportComparison",
    "compare_entry",
    "compare_runs",
    "describe_storage",
    "entry_metric",
    "entry_self_costs",
    "entry_statistic",
    "entry_tree",
    "find_runs",
    "import_entries",
    "latest_runs",
    "load_run",
    "machine_directories",
    "outcome_from_entry",
    "resolve_run",
    "run_outcomes",
    "runs_beside",
]

# Where an import entry's extra_info keeps its per-module self costs, by metric.
SELF_COST_KEYS = {"time": "module_self_seconds", "instructions": "module_self_instructions"}
# pytest-benchmark names saved runs NNNN_name.json, one directory per machine.
RUN_GLOB = "[0-9][0-9][0-9][0-9]_*.json"


@dataclass(frozen=True)
class ImportComparison:
    """One import measurement in a baseline run and in a later run.

    The figures and the per-module self costs are in ``metric``: seconds, or
    instructions. ``regressed`` says whether the user's compare-fail
    thresholds flag it (``None`` when none were given).
    """

    name: str
    source: str
    stat: str
    before: float
    after: float
    before_self_costs: Mapping[str, float]
    after_self_costs: Mapping[str, float]
    regressed: bool | None = None
    metric: str = "time"
    # Tree rows on each side; empty when a side did not record its tree (runs
    # saved before trees were stored).
    module: str = ""
    before_modules: tuple[TreeRow, ...] = ()
    after_modules: tuple[TreeRow, ...] = ()
    # The entry's full name (node id and measurement), unique where ``name`` is not.
    fullname: str = ""

    @property
    def change(self) -> float:
        """Relative change of the statistic (0.1 is 10% slower)."""
        return (self.after - self.before) / self.before if self.before else 0.0


def _number(value: object, what: str) -> float:
    """``value`` as a figure (seconds or a count), or :class:`RunError` saying ``what`` holds."""
    try:
        return cost_number(value, what)
    except RecordError as exc:
        raise RunError(str(exc)) from None


def entry_metric(entry: Mapping[str, Any]) -> str:
    """``"instructions"`` for an entry of instruction counts, else ``"time"``."""
    info = entry.get("extra_info")
    if isinstance(info, dict) and SELF_COST_KEYS["instructions"] in info:
        return "instructions"
    return "time"


def entry_self_costs(entry: Mapping[str, Any]) -> dict[str, float]:
    """Per-module self costs an import entry recorded (its slowest modules, for old entries).

    Seconds, or instructions for an instructions entry. :class:`RunError` names
    the entry and the module when a value is not a number.
    """
    where = f"entry {entry.get('fullname')!r}"
    info = entry.get("extra_info") or {}
    key = SELF_COST_KEYS[entry_metric(entry)]
    recorded = info.get(key) if isinstance(info, dict) else None
    if isinstance(recorded, dict):
        return {
            str(name): _number(value, f"{where}: {key}[{str(name)!r}]")
            for name, value in recorded.items()
        }
    slowest = info.get("slowest_modules") if isinstance(info, dict) else None
    return {
        str(item["module"]): _number(
            item.get("self"), f"{where}: slowest_modules[{str(item['module'])!r}].self"
        )
        for item in (slowest if isinstance(slowest, list) else [])
        if isinstance(item, dict) and "module" in item
    }


def _tree_row(row: object, where: str) -> TreeRow:
    """One stored tree row, or :class:`RunError` naming ``where``."""
    try:
        return TreeRow.from_json(row, where)
    except RecordError as exc:
        raise RunError(str(exc)) from None


def entry_tree(entry: Mapping[str, Any]) -> tuple[TreeRow, ...] | None:
    """Every module an import entry recorded, as tree rows.

    ``None`` for an entry saved before pytest-importcache stored the tree;
    :class:`RunError` names the entry and the row when the tree is malformed.
    """
    info = entry.get("extra_info")
    rows = info.get("import_tree") if isinstance(info, dict) else None
    if rows is None:
        return None
    where = f"entry {entry.get('fullname')!r}: import_tree"
    if not isinstance(rows, list):
        raise RunError(f"{where} is not a list")
    return tuple(_tree_row(row, where) for row in rows)


def import_entries(run: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A run's import entries by full name.

    Import entries are those whose ``extra_info`` has ``module_self_seconds``
    or ``module_self_instructions``; one without a ``fullname`` and ``name``
    string is a :class:`RunError`.
    """
    entries: dict[str, Mapping[str, Any]] = {}
    benchmarks = run.get("benchmarks")
    for index, entry in enumerate(benchmarks if isinstance(benchmarks, list) else []):
        info = entry.get("extra_info") if isinstance(entry, dict) else None
        if not (isinstance(info, dict) and any(key in info for key in SELF_COST_KEYS.values())):
            continue
        fullname, name = entry.get("fullname"), entry.get("name")
        if not (isinstance(fullname, str) and isinstance(name, str)):
            raise RunError(f"import entry {index} (benchmarks[{index}]) has no fullname or name")
        entries[fullname] = entry
    return entries


def _runs_in(directory: Path) -> list[Path]:
    """The run files directly in ``directory``, oldest number first."""
    return sorted(path for path in directory.glob(RUN_GLOB) if path.is_file())


def machine_directories(storage: Path) -> dict[Path, list[Path]]:
    """The directories holding saved runs under ``storage``, each with its runs, oldest first.

    ``storage`` is either a pytest-benchmark storage root (``.benchmarks``, one
    directory per machine: interpreter and platform) or one machine directory
    (``.benchmarks/Linux-CPython-3.11-64bit``). Directories without runs are left out.
    """
    if not storage.is_dir():
        return {}
    found: dict[Path, list[Path]] = {}
    for directory in [storage, *sorted(path for path in storage.iterdir() if path.is_dir())]:
        runs = _runs_in(directory)
        if runs:
            found[directory] = runs
    return found


def describe_storage(storage: Path) -> str:
    """Where runs were looked for under ``storage`` and what each place holds, for messages."""
    if not storage.exists():
        return f"{storage} does not exist"
    if not storage.is_dir():
        return f"{storage} is not a directory"
    found = machine_directories(storage)
    if not found:
        return f"no run file (NNNN_*.json) in {storage} or in its subdirectories"
    return "found " + ", ".join(
        f"{directory}: {len(runs)} run{'s' if len(runs) != 1 else ''}"
        for directory, runs in found.items()
    )


def find_runs(storage: Path) -> list[Path]:
    """Every saved run under a storage root or in a machine directory, oldest number first."""
    runs = [run for runs in machine_directories(storage).values() for run in runs]
    return sorted(runs, key=lambda path: (path.name, str(path)))


def runs_beside(run: Path) -> list[Path]:
    """The runs saved in the same machine directory as ``run``, oldest number first.

    pytest-benchmark keeps one directory per interpreter and platform; runs are
    numbered, and compared, within one.
    """
    return _runs_in(run.parent)


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
        raise RunError(f"no saved run matches {spec!r} in {storage} ({describe_storage(storage)})")
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
    except (ValueError, RecursionError) as exc:
        raise RunError(f"run file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise RunError(f"run file {path} has no 'benchmarks' list: not a pytest-benchmark run")
    return data


def _statistic(entry: Mapping[str, Any], fullname: str, stat: str) -> float:
    """An entry's ``stat``, or :class:`RunError` naming the entry and the stat."""
    stats = entry.get("stats")
    if not isinstance(stats, dict) or stat not in stats:
        raise RunError(f"entry {fullname!r} has no {stat!r} statistic")
    return _number(stats[stat], f"entry {fullname!r}: stats.{stat}")


def entry_statistic(entry: Mapping[str, Any], fullname: str, stat: str) -> float:
    """An entry's ``stat`` (seconds or a count); :class:`RunError` names the entry and it."""
    return _statistic(entry, fullname, stat)


def compare_entry(
    name: str,
    source: str,
    stat: str,
    before: Mapping[str, Any],
    *,
    after: float,
    after_self_costs: Mapping[str, float],
    regressed: bool | None = None,
    after_modules: Sequence[TreeRow] = (),
) -> ImportComparison:
    """A measurement (``after``, its ``stat``) against its entry ``before`` in a saved run.

    ``after_modules`` are the later measurement's tree rows; the baseline's come
    from its entry (none for an entry saved before trees were stored).
    """
    fullname = str(before.get("fullname", name))
    info = before.get("extra_info")
    module = str(info.get("module", "")) if isinstance(info, dict) else ""
    return ImportComparison(
        name=name,
        source=source,
        stat=stat,
        before=_statistic(before, fullname, stat),
        after=after,
        before_self_costs=entry_self_costs(before),
        after_self_costs=after_self_costs,
        regressed=regressed,
        module=module,
        before_modules=entry_tree(before) or (),
        after_modules=tuple(after_modules),
        metric=entry_metric(before),
        fullname=fullname,
    )


def compare_runs(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    source: str,
    stat: str = "min",
    *,
    before_name: str = "the first run",
    after_name: str = "the second run",
) -> list[ImportComparison]:
    """Import entries present in both runs, compared on ``stat``.

    A malformed entry (no name; in an entry present in both runs, a statistic
    or module time that is not a number) is a :class:`RunError` naming the run
    (``before_name`` or ``after_name``, e.g. its file), the entry and the value.
    """

    def entries(run: Mapping[str, Any], name: str) -> dict[str, Mapping[str, Any]]:
        try:
            return import_entries(run)
        except RunError as exc:
            raise RunError(f"{name}: {exc}") from None

    baseline = entries(before, before_name)
    comparisons = []
    for fullname, entry in entries(after, after_name).items():
        old = baseline.get(fullname)
        if old is None:
            continue
        try:
            after_seconds = _statistic(entry, fullname, stat)
            after_self = entry_self_costs(entry)
            after_tree = entry_tree(entry) or ()
        except RunError as exc:
            raise RunError(f"{after_name}: {exc}") from None
        try:
            comparison = compare_entry(
                str(entry["name"]),
                source,
                stat,
                old,
                after=after_seconds,
                after_self_costs=after_self,
                after_modules=after_tree,
            )
        except RunError as exc:
            raise RunError(f"{before_name}: {exc}") from None
        comparisons.append(comparison)
    return comparisons


def _without_suffix(text: str) -> str:
    """``t.py::test[a][mod-warm]`` -> ``t.py::test[a]``: the name without its measurement suffix."""
    return text[: text.rindex("[")] if text.endswith("]") and "[" in text else text


def outcome_from_entry(entry: Mapping[str, Any], where: str) -> MeasurementOutcome:
    """The outcome a saved import entry was made from, for reports rebuilt from storage.

    :class:`RunError` (prefixed with ``where``, e.g. the run file) for an entry
    saved before pytest-importcache stored the tree, or a malformed one.
    """
    fullname = str(entry.get("fullname"))
    try:
        tree = entry_tree(entry)
        if tree is None:
            raise RunError(
                f"entry {fullname!r} has no import tree (saved before pytest-importcache "
                "stored trees): measure and save again to report it"
            )
        info = entry["extra_info"]
        stat = str(info.get("stat") or "min")
        wall = info.get("values") or []
        budget = info.get("budget")
        return MeasurementOutcome(
            nodeid=_without_suffix(fullname),
            test_name=_without_suffix(str(entry.get("name"))),
            module=str(info.get("module", "")),
            flavour=str(info.get("flavour", "warm")),
            closure=bool(info.get("closure", False)),
            stat=stat,
            statistic=_statistic(entry, fullname, stat),
            budget=None if budget is None else _number(budget, f"entry {fullname!r}: budget"),
            passed=info.get("passed") if isinstance(info.get("passed"), bool) else None,
            values=tuple(_number(value, f"entry {fullname!r}: values") for value in wall),
            python_version=str(info.get("python_version", "")),
            file=str(info.get("file", "")),
            modules=tree,
            scale=float(info.get("scale") or 1.0),
            startup_modules=int(info.get("startup_modules") or 0),
            lazy_modules=tuple(map(str, info.get("lazy_modules") or ())),
            metric=entry_metric(entry),
            baseline=_same_run_record(info.get("baseline"), fullname),
            pending_lazy=tuple(map(str, info.get("pending_lazy") or ())),
            reified=tuple(
                (str(item.get("module")), str(item.get("where")))
                for item in info.get("reified") or ()
                if isinstance(item, dict)
            ),
            reified_in_run=tuple(
                (str(item.get("module")), str(item.get("where")))
                for item in info.get("reified_in_run") or ()
                if isinstance(item, dict)
            ),
            command=None if info.get("command") is None else str(info["command"]),
            peak_memory=_optional_int(info.get("peak_memory")),
            bare_peak_memory=_optional_int(info.get("bare_peak_memory")),
            phases=tuple(
                (
                    str(name),
                    tuple(_number(value, f"entry {fullname!r}: phases") for value in values),
                )
                for name, values in dict(info.get("phases") or {}).items()
            ),
            lazy_imports=None if info.get("lazy_imports") is None else str(info["lazy_imports"]),
        )
    except RunError as exc:
        raise RunError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise RunError(f"{where}: entry {fullname!r} is malformed: {exc}") from None


def _optional_int(value: object) -> int | None:
    """A whole number saved in an entry (peak memory), or ``None`` when absent or not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _same_run_record(record: object, fullname: str) -> SameRunBaseline | None:
    """An entry's same-run comparison (``extra_info["baseline"]``), or :class:`RunError`.

    ``None`` for an entry measured without a baseline revision.
    """
    if not isinstance(record, dict):
        return None
    try:
        return SameRunBaseline.from_json(record, f"entry {fullname!r}: baseline")
    except RecordError as exc:
        raise RunError(str(exc)) from None


def run_outcomes(path: Path) -> list[MeasurementOutcome]:
    """Every import measurement of the saved run ``path``, as outcomes."""
    where = f"run file {path}"
    try:
        entries = import_entries(load_run(path))
    except RunError as exc:
        raise RunError(f"{where}: {exc}" if str(path) not in str(exc) else str(exc)) from None
    return [outcome_from_entry(entry, where) for entry in entries.values()]
