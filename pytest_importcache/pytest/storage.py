"""Import measurements as pytest-benchmark results: the only module that touches pytest_benchmark.

pytest-benchmark has no public hook for results measured elsewhere (its issue
#177). Of the two routes that work, driving its ``benchmark`` fixture with
``pedantic`` and a fake timer is off under pytest-xdist and records one
result per test; this module takes the other: in the controller process, just
before pytest-benchmark's own ``pytest_sessionfinish`` saves, compares and
builds its table, it appends one ``pytest_benchmark.stats.Metadata`` per
measurement to the benchmark session's results. Everything pytest-benchmark
does with results then applies to imports too: the table,
``--benchmark-autosave``/``--benchmark-save``/``--benchmark-json``,
``--benchmark-compare`` and ``--benchmark-compare-fail``, and its CLI.

Choices where pytest-benchmark's flags meet import measurements:

* ``--benchmark-disable``: budgets are still measured and enforced (they are
  assertions), but nothing is added to pytest-benchmark's table or files.
* ``--benchmark-skip``: tests with an ``import_budget`` marker or an import
  fixture are skipped, like benchmark tests.
* ``--benchmark-only``: those tests count as benchmarks and still run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.model.records import TreeRow
from pytest_importcache.model.spec import measurement_suffix
from pytest_importcache.render.runs import SELF_COST_KEYS, ImportComparison, RunError, compare_entry

__all__ = [
    "CompareFailCheck",
    "adjust_for_skip_and_only",
    "baseline_tree",
    "benchmark_names",
    "benchmark_session",
    "extra_info",
    "publish",
    "storage_problems",
    "user_disabled",
]

PLUGIN_NAME = "pytest-benchmark"
_ONLY_SKIP_REASON = "Skipping non-benchmark (--benchmark-only active)."


def benchmark_session(config: pytest.Config) -> Any | None:
    """pytest-benchmark's session object, or ``None`` when the plugin is not active."""
    return config.pluginmanager.get_plugin(PLUGIN_NAME)


def user_disabled(config: pytest.Config) -> bool:
    """Whether the user passed ``--benchmark-disable`` (not xdist's automatic disabling)."""
    return bool(
        config.getoption("benchmark_disable", False)
        and not config.getoption("benchmark_enable", False)
    )


def benchmark_names(records: Sequence[MeasurementOutcome]) -> list[tuple[str, str]]:
    """(name, fullname) per record: ``test[module-flavour]`` and ``nodeid[module-flavour]``.

    The full name is what ``--benchmark-compare`` matches runs by, so it depends
    only on the test and the measurement. Instruction counts end in
    ``-instructions`` (``test[mylib-warm-instructions]``), so they are never
    compared with times. A test that measures the same module, flavour and
    metric again gets ``-2``, ``-3``... on the later ones.
    """
    seen: dict[str, int] = {}
    names = []
    for record in records:
        suffix = measurement_suffix(record.module, record.label, record.metric)
        key = f"{record.nodeid}[{suffix}]"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            suffix += f"-{seen[key]}"
        names.append((f"{record.test_name}[{suffix}]", f"{record.nodeid}[{suffix}]"))
    return names


def extra_info(record: MeasurementOutcome) -> dict[str, Any]:
    """The ``extra_info`` of a measurement's benchmark entry.

    With a baseline revision, ``baseline`` holds the same-run comparison
    (:func:`~pytest_importcache.model.outcome.baseline_record`); ``noise`` says why
    the rounds cannot support the budget, when they cannot.
    """
    info = _plain_extra_info(record)
    if record.baseline is not None:
        info["baseline"] = record.baseline.to_json()
    if record.noise:
        info["noise"] = record.noise
    if record.reused is not None:
        # A count reused from the count store: when and where it was counted.
        info["reused"] = True
        info["counted_at"] = record.reused.counted_at
        info["counted_on"] = record.reused.counted_on
        info["count_store"] = record.reused.store
    return info


def _plain_extra_info(record: MeasurementOutcome) -> dict[str, Any]:
    return {
        "module": record.module,
        "flavour": record.flavour,
        "closure": record.closure,
        "label": record.label,
        "metric": record.metric,
        "stat": record.stat,
        "budget": record.budget,
        "modules_loaded": record.module_count,
        "slowest_modules": [
            {"module": row.name, "self": row.self_cost, "cumulative": row.cumulative_cost}
            for row in record.slowest
        ],
        SELF_COST_KEYS[record.metric]: record.self_costs,
        "python_version": record.python_version,
        # Enough to rebuild the outcome later (pytest-importcache report, history):
        # every module as [name, self, cumulative, importer], the verdict and the rounds.
        "import_tree": [row.to_json() for row in record.modules],
        "passed": record.verdict,
        "scale": record.scale,
        "values": list(record.values),  # each counted round's figure
        "file": record.file,
        "startup_modules": record.startup_modules,
        "lazy_modules": list(record.lazy_modules),
    }


def _metadata(record: MeasurementOutcome, name: str, fullname: str) -> Any:
    from pytest_benchmark.stats import Metadata

    # Metadata copies these attributes from the benchmark fixture it is given.
    source = SimpleNamespace(
        name=name,
        fullname=fullname,
        group=f"import {record.module}"
        + (f" ({record.metric})" if record.metric != "time" else ""),
        param=None,
        params=None,
        extra_info=extra_info(record),
        cprofile_stats=None,
        has_error=False,
    )
    metadata = Metadata(  # type: ignore[no-untyped-call]
        source,
        iterations=1,
        options={"timer": "pytest-importcache (one fresh interpreter per round)"},
    )
    # Instruction counts are stored as they are: pytest-benchmark's table shows
    # them in its "s" columns (README, "Instruction counts").
    for value in record.values:
        metadata.update(value)  # type: ignore[no-untyped-call]
    return metadata


# Lines about saved runs that could not be written or compared, one each, for the summary.
_STORAGE_PROBLEMS = pytest.StashKey[list[str]]()
RUN_PREFIX_GLOB = "[0-9][0-9][0-9][0-9]_"
# pytest-benchmark's table and compare read these statistics of a baseline entry as numbers.
_COMPARED_NUMBERS = ("min", "max", "mean", "median", "iqr", "stddev", "ops", "rounds", "iterations")


def storage_problems(config: pytest.Config) -> list[str]:
    """What went wrong saving the run or reading its compare baseline, one line each.

    A run that could not be saved is still shown (the summary and pytest-benchmark's
    table); a baseline entry that cannot be read is left out of the comparison.
    """
    return config.stash.setdefault(_STORAGE_PROBLEMS, [])


def _lock_saves(session: Any, problems: list[str]) -> None:
    """Serialise saves into the same storage directory across processes.

    pytest-benchmark's file storage picks the next ``NNNN_`` number and writes
    without a lock, so two runs saving at once (``tox -p``) can collide. A save
    that fails (a storage path that cannot be a directory) adds one line to
    ``problems`` instead of raising, so the run is still reported.
    """
    storage = session.storage
    if not isinstance(getattr(storage, "path", None), Path) or getattr(
        storage, "_importcache_locked", False
    ):
        return
    from filelock import FileLock

    from .options import unwritable_reason

    unlocked_save: Callable[..., Any] = storage.save

    def save(*args: Any, **kwargs: Any) -> Any:
        # Checked first: the lock would wait forever for a file it cannot create.
        reason = unwritable_reason(storage.path)
        if reason is None:
            try:
                storage.path.mkdir(parents=True, exist_ok=True)
                with FileLock(storage.path / ".importcache-save.lock"):
                    return unlocked_save(*args, **kwargs)
            except OSError as exc:
                reason = exc.strerror or str(exc)
        problems.append(f"--benchmark-storage {storage.path}: cannot save the run: {reason}")
        return None

    storage.save = save
    storage._importcache_locked = True


def baseline_tree(config: pytest.Config, fullname: str) -> tuple[str, tuple[TreeRow, ...]] | None:
    """The run file name and tree rows of ``fullname`` in the ``--benchmark-compare`` baseline.

    pytest-benchmark loads the baseline in every process (workers too) when it
    is configured, so a worker's failure text can say which import edges changed.
    ``None`` without a baseline, without the entry, or for an entry saved
    before trees were stored (or with a malformed one).
    """
    from pytest_importcache.render.runs import RunError, entry_tree

    session = benchmark_session(config)
    compared_mapping: dict[Any, dict[str, Any]] = getattr(session, "compared_mapping", None) or {}
    for path, baseline_entries in compared_mapping.items():
        entry = baseline_entries.get(fullname)
        if entry is not None:
            try:
                rows = entry_tree(entry)
            except RunError:
                return None
            return None if rows is None else (Path(path).name, rows)
    return None


def _unreadable_statistic(entry: object) -> str:
    """Why pytest-benchmark cannot compare with a baseline entry (``""`` when it can)."""
    stats = entry.get("stats") if isinstance(entry, dict) else None
    if not isinstance(stats, dict):
        return "has no stats"
    for name in _COMPARED_NUMBERS:
        value = stats.get(name)
        if not (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ):
            if name not in stats:
                return f"has no stats.{name}"
            return f"stats.{name} is {json.dumps(value, default=repr)[:40]}, not a number"
    if not isinstance(stats.get("outliers"), str):
        return "stats.outliers is not a text such as '0;1'"
    return ""


def _drop_unreadable_baselines(session: Any, problems: list[str]) -> None:
    """Take out of the comparison the baseline entries of this run's benchmarks it cannot read.

    pytest-benchmark loads the ``--benchmark-compare`` files whole and fails in
    its table (a ``TypeError``) on an entry whose statistic is not a number;
    each such entry is named in ``problems`` and compared with nothing.
    """
    compared_mapping: dict[Any, dict[str, Any]] = getattr(session, "compared_mapping", None) or {}
    current = {getattr(bench, "fullname", None) for bench in session.benchmarks}
    for path, baseline_entries in compared_mapping.items():
        for fullname in [name for name in baseline_entries if name in current]:
            reason = _unreadable_statistic(baseline_entries[fullname])
            if reason:
                del baseline_entries[fullname]
                problems.append(
                    f"--benchmark-compare: run file {_run_path(session, path)}: entry "
                    f"{fullname!r} {reason}: not compared"
                )


def _unloaded_baselines(session: Any, problems: list[str]) -> None:
    """Name each ``--benchmark-compare`` file pytest-benchmark could not load, with why.

    pytest-benchmark skips such a file with a warning of its own (and, asked for
    the latest run, compares with an older one); each is one line here, in the
    run's summary. With ``--benchmark-compare`` alone, only files newer than
    the run it did load are named: older ones were never wanted.
    """
    from pytest_importcache.render.runs import RunError, load_run

    compare = getattr(session, "compare", None)
    storage: Any = getattr(session, "storage", None)
    loaded: dict[Any, Any] = getattr(storage, "_cache", None) or {}
    if not compare or not hasattr(storage, "query"):
        return
    try:
        # The files pytest-benchmark's load() looks at: numbered runs, or those matching.
        candidates = storage.query(RUN_PREFIX_GLOB if compare is True else compare)
    except (OSError, ValueError):
        return
    failed = [path for path in candidates if path not in loaded]
    if compare is True and loaded:
        newest = max(loaded, key=lambda path: (path.name, path.parent))
        failed = [
            path for path in failed if (path.name, path.parent) > (newest.name, newest.parent)
        ]
    for path in failed:
        try:
            data = load_run(Path(path))
        except RunError as exc:
            reason = str(exc)
        else:
            bad = [
                entry
                for entry in data["benchmarks"]
                if not isinstance(entry, dict) or _unreadable_statistic(entry)
            ]
            reason = f"run file {path}: " + (
                f"entry {bad[0].get('fullname')!r} {_unreadable_statistic(bad[0])}"
                if bad and isinstance(bad[0], dict)
                else "an entry is not an object"
                if bad
                else "pytest-benchmark could not load it"
            )
        problems.append(f"--benchmark-compare: {reason}: not compared")


def _run_path(session: Any, path: Any) -> Path:
    """A baseline's path as pytest-benchmark keys it (relative to its storage), made whole."""
    root = getattr(getattr(session, "storage", None), "path", None)
    return Path(path) if Path(path).is_absolute() or not isinstance(root, Path) else root / path


class CompareFailCheck:
    """One ``--benchmark-compare-fail`` threshold, judged by pytest-benchmark's own check.

    The command line's ``compare --fail`` uses it too, so a threshold means the
    same in a pytest run and in ``pytest-importcache compare``.
    """

    def __init__(self, text: str) -> None:
        from pytest_benchmark.utils import parse_compare_fail

        try:
            self._check = parse_compare_fail(text)  # type: ignore[no-untyped-call]
        except Exception:
            raise ValueError(
                f"{text!r} is not a threshold: write STAT:PERCENT% or STAT:SECONDS with STAT one "
                "of min, max, mean, median, stddev, iqr (e.g. median:10%)"
            ) from None
        self.text = text
        self.stat = str(self._check.field)
        self.relative = text.strip().endswith("%")

    def fails(self, before: float, after: float) -> bool:
        """Whether going from ``before`` to ``after`` seconds of ``stat`` crosses the threshold."""
        return bool(self._check.fails({self.stat: after}, {self.stat: before}))

    def __str__(self) -> str:
        return self.text


def publish(
    config: pytest.Config, records: Sequence[MeasurementOutcome], *, stat: str
) -> list[ImportComparison]:
    """Add timed ``records`` to pytest-benchmark's results; return them against the baseline.

    Comparisons are on the first ``--benchmark-compare-fail`` threshold's
    statistic, else on ``stat`` (the run's budget statistic), as the command
    line's ``compare`` chooses; whether one regressed is decided by the user's
    thresholds, as pytest-benchmark decides.

    Records made only to count modules (one round) are left out: a single
    round's time would make ``--benchmark-compare-fail`` flaky.

    Call it in the controller before pytest-benchmark's ``pytest_sessionfinish``.
    Nothing happens when pytest-benchmark is inactive or ``--benchmark-disable`` is on.
    """
    session = benchmark_session(config)
    records = [record for record in records if record.timed]
    if session is None or user_disabled(config) or not records:
        return []
    problems = storage_problems(config)
    _lock_saves(session, problems)
    comparisons = []
    compared_mapping: dict[Any, dict[str, Any]] = getattr(session, "compared_mapping", None) or {}
    checks = config.getoption("benchmark_compare_fail", None) or []
    # As the command line's compare: the threshold's statistic when one is given.
    stat = str(getattr(checks[0], "field", stat)) if checks else stat
    published = []
    for record, (name, fullname) in zip(records, benchmark_names(records), strict=True):
        metadata = _metadata(record, name, fullname)
        session.benchmarks.append(metadata)
        published.append((record, metadata))
    _unloaded_baselines(session, problems)
    _drop_unreadable_baselines(session, problems)
    for record, metadata in published:
        for path, baseline_entries in compared_mapping.items():
            if metadata.fullname not in baseline_entries:
                continue
            baseline = baseline_entries[metadata.fullname]
            current = metadata.stats.as_dict()
            try:
                comparisons.append(
                    compare_entry(
                        metadata.name,
                        Path(path).name,
                        stat,
                        baseline,
                        after=float(current[stat]),
                        after_self_costs=record.self_costs,
                        after_modules=record.modules,
                        # pytest-benchmark's own checks, as its compare-fail applies them.
                        regressed=(
                            any(check.fails(current, baseline["stats"]) for check in checks)
                            if checks
                            else None
                        ),
                    )
                )
            except RunError as exc:
                problems.append(
                    f"--benchmark-compare: run file {_run_path(session, path)}: {exc}: "
                    "not explained"
                )
            break
    return comparisons


def adjust_for_skip_and_only(config: pytest.Config, items: Sequence[pytest.Item]) -> None:
    """Apply ``--benchmark-skip`` and ``--benchmark-only`` to import-measuring tests."""
    session = benchmark_session(config)
    if session is None:
        return
    for item in items:
        if getattr(session, "only", False):
            item.own_markers[:] = [
                mark
                for mark in item.own_markers
                if not (mark.name == "skip" and mark.kwargs.get("reason") == _ONLY_SKIP_REASON)
            ]
        elif getattr(session, "skip", False):
            item.add_marker(
                pytest.mark.skip(reason="Skipping import measurement (--benchmark-skip active).")
            )
