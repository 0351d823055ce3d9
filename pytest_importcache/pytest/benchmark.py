"""The pytest-benchmark adapter: the only module that touches pytest-benchmark's internals.

pytest-benchmark has no public hook for results measured elsewhere (its issue
#177). Of the two routes that work, driving its ``benchmark`` fixture with
``pedantic`` and a fake timer is off under pytest-xdist and records one
result per test; this module takes the other: in the controller process, just
before pytest-benchmark's own ``pytest_sessionfinish`` saves, compares and
builds its table, it appends one ``pytest_benchmark.stats.Metadata`` per
measurement to the benchmark session's results. Everything pytest-benchmark
does with results then applies to imports too: the table,
``--benchmark-autosave``/``--benchmark-save``/``--benchmark-json``,
``--benchmark-compare`` and ``--benchmark-compare-fail``, and its CLI. What an
entry holds (its names, its ``extra_info``) is :mod:`pytest_importcache.pytest.storage`'s.

Choices where pytest-benchmark's flags meet import measurements:

* ``--benchmark-disable``: budgets are still measured and enforced (they are
  assertions), but nothing is added to pytest-benchmark's table or files.
* ``--benchmark-skip``: tests with an ``import_budget`` marker or an import
  fixture are skipped, like benchmark tests.
* ``--benchmark-only``: those tests count as benchmarks and still run.
* Instruction counts are saved and compared, but kept out of pytest-benchmark's
  table, whose columns are seconds.

Imported when a run measured or a test asks for a baseline entry, not at
pytest's start-up (pytest-benchmark's storage and filelock are not cheap).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from filelock import FileLock
from pytest_benchmark.stats import Metadata
from pytest_benchmark.utils import parse_compare_fail

from pytest_importcache.model.errors import RunError
from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.model.records import TreeRow
from pytest_importcache.render.runs import (
    compare_entry,
    entry_tree,
    load_run,
)

from .options import unwritable_reason
from .storage import benchmark_names, extra_info

if TYPE_CHECKING:
    from pytest_importcache.render.runs import ImportComparison

__all__ = [
    "CompareFailCheck",
    "CountsOutOfBenchmarkTable",
    "adjust_for_skip_and_only",
    "baseline_tree",
    "benchmark_session",
    "keeps_module_rows",
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


def keeps_module_rows(config: pytest.Config) -> bool:
    """Whether this run writes pytest-benchmark files or compares with one (they hold modules).

    Its JSON (``--benchmark-json``), saved runs (``--benchmark-autosave``,
    ``--benchmark-save``) and comparisons (``--benchmark-compare``) keep every
    module's figure; a user's ``--benchmark-disable`` writes none of them.
    """
    options = ("benchmark_json", "benchmark_autosave", "benchmark_save", "benchmark_compare")
    stored = any(config.getoption(name, None) for name in options)
    return stored and not user_disabled(config)


def _metadata(record: MeasurementOutcome, name: str, fullname: str) -> Any:
    # Metadata copies these attributes from the benchmark fixture it is given.
    source = SimpleNamespace(
        name=name,
        fullname=fullname,
        group=(f"import {record.module}" if record.command is None else f"startup {record.command}")
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


class CountsOutOfBenchmarkTable:
    """Keeps instruction counts out of pytest-benchmark's table, which reads every figure as time.

    Only the table: the entries are saved, written to ``--benchmark-json`` and
    compared (``--benchmark-compare``, ``--benchmark-compare-fail``) as before.
    """

    def __init__(self) -> None:
        self.counts_left_out = 0
        self.emptied = False

    @pytest.hookimpl(wrapper=True)
    def pytest_benchmark_group_stats(
        self, config: pytest.Config, benchmarks: object, group_by: str
    ) -> Generator[None, list[tuple[str, list[Any]]], list[tuple[str, list[Any]]]]:
        """The groups pytest-benchmark will show, without instruction counts."""
        groups = yield
        kept = []
        for name, entries in groups:
            timed = [entry for entry in entries if not _is_count(entry)]
            self.counts_left_out += len(entries) - len(timed)
            if timed:
                kept.append((name, timed))
        self.emptied = bool(groups) and not kept
        return kept

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Judge ``--benchmark-compare-fail`` when only counts were measured.

        pytest-benchmark judges it while showing its table, and shows no table
        without groups.
        """
        if self.emptied:
            session = benchmark_session(terminalreporter.config)
            if session is not None:
                session.check_regressions()


def _is_count(entry: Any) -> bool:
    """Whether a benchmark (a dict, or pytest-benchmark's Metadata) holds instruction counts."""
    if isinstance(entry, dict):
        info = entry.get("extra_info")
    else:
        info = getattr(entry, "extra_info", None)
    return isinstance(info, dict) and info.get("metric") == "instructions"
