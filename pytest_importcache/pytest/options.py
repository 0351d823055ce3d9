"""Every setting once: help text, ``--importcache-NAME`` flag, ``importcache_NAME`` ini key, parser.

Precedence is marker > command line > ini file > default. A bad value is a
``pytest.UsageError`` naming the setting and where its value came from.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from pytest_importcache.model.calibration import Calibration
from pytest_importcache.model.errors import BudgetError
from pytest_importcache.model.spec import (
    DEFAULT_INSTRUCTION_ROUNDS,
    DEFAULT_INSTRUCTION_WARMUP,
    DEFAULT_METRIC,
    DEFAULT_ROUNDS,
    DEFAULT_SLOWDOWN_THRESHOLD,
    DEFAULT_STATISTIC,
    DEFAULT_TIMEOUT,
    DEFAULT_WARMUP,
    LAZY_IMPORTS_MODES,
    METRICS,
    STATISTICS,
    LazyImportsMode,
    Metric,
    Statistic,
    as_metric,
    default_rounds,
    default_warmup,
)
from pytest_importcache.model.stats import as_statistic
from pytest_importcache.model.units import parse_duration, parse_percentage

#: The slowdown against ``importcache_baseline`` that fails a test, by default.
DEFAULT_BASELINE_FAIL = DEFAULT_SLOWDOWN_THRESHOLD

__all__ = [
    "DEFAULT_BASELINE_FAIL",
    "SETTINGS",
    "Setting",
    "Settings",
    "add_options",
    "argparse_help",
    "read_settings",
    "unwritable_reason",
]


def parse_whole_number(minimum: int) -> Callable[[str], int | None]:
    """A parser for whole numbers of at least ``minimum``; nothing reads as ``None``."""

    def parse(text: str) -> int | None:
        if not text.strip():
            return None
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise ValueError(f"expected a whole number >= {minimum}, got {text!r}")
        return value

    return parse


def parse_stat(text: str) -> Statistic:
    """One of the statistics a time budget may be compared with."""
    statistic = as_statistic(text)
    if statistic is None:
        raise ValueError(f"expected one of {', '.join(STATISTICS)}, got {text!r}")
    return statistic


def parse_metric(text: str) -> Metric:
    """``time`` or ``instructions``."""
    metric = as_metric(text.strip())
    if metric is not None:
        return metric
    raise ValueError(f"expected one of {', '.join(METRICS)}, got {text!r}")


def parse_lazy_imports(text: str) -> LazyImportsMode | None:
    """``normal`` or ``all`` (PEP 810's ``-X lazy_imports``); empty: the interpreter's default."""
    mode = text.strip()
    if not mode:
        return None
    for known in LAZY_IMPORTS_MODES:
        if mode == known:
            return known
    raise ValueError(f"expected one of {', '.join(LAZY_IMPORTS_MODES)}, got {text!r}")


def parse_jobs(text: str) -> int | Literal["auto"]:
    """A whole number >= 1, or ``auto``."""
    if text.strip() == "auto":
        return "auto"
    try:
        value = parse_whole_number(1)(text)
    except ValueError:
        value = None
    if value is None:
        raise ValueError(f"expected a whole number >= 1 or 'auto', got {text!r}")
    return value


def parse_seconds(text: str) -> float:
    """A positive duration: ``"60"``, ``"90s"``, ``"500ms"``."""
    try:
        return parse_duration(text)
    except BudgetError as exc:
        raise ValueError(str(exc)) from None


def parse_scale(text: str) -> float | Literal["auto"]:
    """A positive, finite factor, or ``auto`` (scale by the calibrated reference import)."""
    if text.strip() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a positive number or 'auto', got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"expected a positive number or 'auto', got {text!r}")
    return value


def parse_calibration(text: str) -> Calibration | None:
    """The line ``pytest-importcache calibrate`` prints, or nothing."""
    return Calibration.parse(text) if text.strip() else None


def parse_path(text: str) -> str | None:
    """A file or directory path, or nothing."""
    return text.strip() or None


def parse_file_path(text: str) -> str | None:
    """A path to write a file at (not an existing directory), or nothing."""
    path = parse_path(text)
    if path is not None and Path(path).is_dir():
        raise ValueError(f"{path!r} is a directory; give a file name such as imports.html")
    return path


def parse_directory_path(text: str) -> str | None:
    """A directory path (existing or not, but not a file), or nothing."""
    path = parse_path(text)
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise ValueError(f"{path!r} is a file, not a directory")
    return path


def parse_bool(text: str) -> bool:
    """An ini-style boolean: true/false, yes/no, on/off, 1/0."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_revision(text: str) -> str | None:
    """A git revision (branch, tag, commit id, ``HEAD~1``...), or nothing."""
    revision = text.strip()
    if revision.startswith("-") or any(character.isspace() for character in revision):
        raise ValueError(f"expected a git revision such as main or HEAD~1, got {text!r}")
    return revision or None


@dataclass(frozen=True)
class Setting:
    """One setting: its name, help text, parser and default (as ini text)."""

    name: str
    help: str
    parse: Callable[[str], Any]
    default: str
    is_flag: bool = False

    @property
    def flag(self) -> str:
        """The command-line flag, ``--importcache-NAME``."""
        return f"--importcache-{self.name}"

    @property
    def ini(self) -> str:
        """The ini key, ``importcache_NAME``."""
        return f"importcache_{self.name.replace('-', '_')}"


SETTINGS = (
    Setting(
        "rounds",
        "counted rounds (fresh interpreters) per import measurement (default: "
        f"{DEFAULT_ROUNDS} for time, {DEFAULT_INSTRUCTION_ROUNDS} for instructions)",
        parse_whole_number(1),
        "",
    ),
    Setting(
        "warmup",
        "uncounted rounds run before the counted ones (default: "
        f"{DEFAULT_WARMUP} for time, {DEFAULT_INSTRUCTION_WARMUP} for instructions)",
        parse_whole_number(0),
        "",
    ),
    Setting(
        "metric",
        "what cold and warm budgets measure: time (durations such as 25ms) or instructions "
        "(counts such as 45M, counted under valgrind's callgrind; the same on every machine "
        f"with the same Python build) (default: {DEFAULT_METRIC})",
        parse_metric,
        DEFAULT_METRIC,
    ),
    Setting(
        "jobs",
        "counted measurements (instruction counts) run at once in each pytest process, "
        "ahead of their tests; 'auto' shares the cores among pytest-xdist workers; 1 counts "
        "one at a time (default: auto)",
        parse_jobs,
        "auto",
    ),
    Setting(
        "stat",
        "statistic compared with time budgets: min, median, mean or max (default: "
        f"{DEFAULT_STATISTIC}, the steadiest on a shared machine)",
        parse_stat,
        DEFAULT_STATISTIC,
    ),
    Setting(
        "timeout",
        "seconds one round may take before it is killed, e.g. 60 or 90s "
        f"(default: {DEFAULT_TIMEOUT:g})",
        parse_seconds,
        f"{DEFAULT_TIMEOUT:g}",
    ),
    Setting(
        "budget-scale",
        "factor applied to every time budget, for slower machines; 'auto' scales by a "
        "reference import measured here against importcache_calibration (default: 1.0)",
        parse_scale,
        "1.0",
    ),
    Setting(
        "calibration",
        "the reference import measured where budgets were written, as printed by "
        "'pytest-importcache calibrate' (used by budget-scale auto)",
        parse_calibration,
        "",
    ),
    Setting(
        "report",
        "write an HTML report of every measured import tree to this file",
        parse_file_path,
        "",
    ),
    Setting(
        "markdown",
        "write the run's import budgets (and slower imports) as markdown tables to this "
        "file; they are also appended to $GITHUB_STEP_SUMMARY when it is set",
        parse_file_path,
        "",
    ),
    Setting(
        "raw-dir",
        "keep each round's stderr here (the raw -X importtime output of timed rounds), "
        "one file per round, in a directory per test",
        parse_directory_path,
        "",
    ),
    Setting(
        "disable",
        "skip the budgets' tests: import_budget, startup_budget and pyproject.toml budgets "
        "(fixtures keep working)",
        parse_bool,
        "false",
        is_flag=True,
    ),
    Setting(
        "baseline",
        "a git revision (main, HEAD~1, a tag) at which every cold and warm budget's import "
        "is also measured, in the same run with rounds interleaved",
        parse_revision,
        "",
    ),
    Setting(
        "baseline-fail",
        "with a baseline: fail a test whose import is slower than the baseline's by more than "
        f"this, the whole 95% interval of the ratio above it (default: "
        f"{DEFAULT_BASELINE_FAIL:.0%})",
        parse_percentage,
        f"{DEFAULT_BASELINE_FAIL:.0%}",
    ),
    Setting(
        "store",
        "keep instruction counts in this directory and reuse those whose inputs are unchanged "
        "(cache it between CI runs) (default: the per-user cache)",
        parse_directory_path,
        "",
    ),
    Setting(
        "fresh",
        "count instructions again instead of reusing stored counts (the new counts are stored)",
        parse_bool,
        "false",
        is_flag=True,
    ),
    Setting(
        "lazy-imports",
        "PEP 810 lazy imports mode of the rounds when a marker gives none: normal, or all "
        "(every import lazy, -X lazy_imports=all; CPython 3.15+) (default: normal)",
        parse_lazy_imports,
        "",
    ),
    Setting(
        "update-lock",
        "write the modules each pyproject.toml budget's import loads into importcache.lock "
        "(beside pyproject.toml) instead of checking them against it",
        parse_bool,
        "false",
        is_flag=True,
    ),
)


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one pytest run.

    ``rounds`` and ``warmup`` are ``None`` when not set: each metric has its own
    defaults (:meth:`rounds_for`, :meth:`warmup_for`).
    """

    rounds: int | None = None
    warmup: int | None = None
    metric: Metric = DEFAULT_METRIC
    jobs: int | Literal["auto"] = "auto"
    stat: Statistic = DEFAULT_STATISTIC
    timeout: float = DEFAULT_TIMEOUT
    budget_scale: float | Literal["auto"] = 1.0
    calibration: Calibration | None = None
    report: str | None = None
    markdown: str | None = None
    raw_dir: str | None = None
    disable: bool = False
    baseline: str | None = None
    baseline_fail: float = DEFAULT_BASELINE_FAIL
    store: str | None = None
    fresh: bool = False
    lazy_imports: LazyImportsMode | None = None
    update_lock: bool = False

    def rounds_for(self, metric: Metric) -> int:
        """Counted rounds for a measurement in ``metric``: the setting, or the metric's default."""
        return default_rounds(metric) if self.rounds is None else self.rounds

    def warmup_for(self, metric: Metric) -> int:
        """Warm-up rounds for a measurement in ``metric``: the setting, or the metric's default."""
        return default_warmup(metric) if self.warmup is None else self.warmup


def argparse_help(text: str) -> str:
    """``text`` as argparse must be given it: it %-formats help, so ``%`` is written ``%%``."""
    return text.replace("%", "%%")


def add_options(parser: pytest.Parser) -> None:
    """Register every setting as a command-line flag and an ini key.

    The table's help texts are plain text ("95% interval"): argparse formats a
    flag's help with ``%``, so it gets them escaped; pytest prints ini help as is.
    """
    group = parser.getgroup("importcache", "import-time budgets (pytest-importcache)")
    for setting in SETTINGS:
        flag_help = argparse_help(setting.help)
        if setting.is_flag:
            group.addoption(setting.flag, action="store_true", default=None, help=flag_help)
        else:
            group.addoption(
                setting.flag, default=None, metavar=setting.name.upper(), help=flag_help
            )
        if pytest.version_tuple >= (9, 2):
            # pytest's own TOML table ([tool.pytest]) keeps TOML's types: a flag may be
            # true, a number a number. The table's parser reads them as their text.
            if setting.is_flag:
                parser.addini(setting.ini, setting.help, type=str | bool, default=None)
            elif setting.name in _NUMBER_SETTINGS:
                parser.addini(setting.ini, setting.help, type=str | int | float, default=None)
            else:
                parser.addini(setting.ini, setting.help, type=str, default=None)
        else:
            parser.addini(setting.ini, setting.help, default=None)


def _ini_file(config: pytest.Config) -> str:
    """The name of the run's ini file, for messages."""
    return config.inipath.name if config.inipath else "the ini file"


def _override_source(config: pytest.Config, ini: str) -> str | None:
    """Where a ``-o ini=value`` in effect for ``ini`` came from, or ``None`` without one.

    pytest keeps the last ``-o``/``--override-ini`` given for a key; it may come
    from the command line, from ``PYTEST_ADDOPTS`` or from ``addopts`` in the
    ini file, which pytest merges into one list.
    """
    overrides = getattr(config.option, "override_ini", None) or getattr(
        config.known_args_namespace, "override_ini", None
    )
    entries = [entry for entry in overrides or () if entry.partition("=")[0].strip() == ini]
    if not entries:
        return None
    entry = entries[-1]
    if any(argument.endswith(entry) for argument in config.invocation_params.args):
        return f"-o {entry} on the command line"
    if entry in os.environ.get("PYTEST_ADDOPTS", ""):
        return f"-o {entry} in PYTEST_ADDOPTS"
    return f"-o {entry} in addopts in {_ini_file(config)}"


def _check_lazy_imports_here(source: str) -> None:
    """A run-wide ``lazy_imports='all'`` needs PEP 810 here: budgets measure this interpreter."""
    from pytest_importcache.engine.roundcommand import (  # noqa: PLC0415 - only when asked
        LAZY_IMPORTS_VERSION,
    )

    if sys.version_info[:2] < LAZY_IMPORTS_VERSION:
        version = ".".join(map(str, sys.version_info[:3]))
        raise pytest.UsageError(
            f"{source}: lazy_imports='all' needs PEP 810's lazy imports (Python 3.15 or newer); "
            f"this interpreter ({sys.executable}) is Python {version}"
        )


#: The settings whose value may be a number in pytest's own TOML table.
_NUMBER_SETTINGS = frozenset(
    ("rounds", "warmup", "jobs", "timeout", "budget-scale", "baseline-fail")
)


def _raw_value(config: pytest.Config, setting: Setting) -> tuple[str, str]:
    """A setting's text (command line > ini > default) and where it came from, for errors."""
    from_cli = config.getoption(setting.flag.lstrip("-").replace("-", "_"))
    if from_cli is not None:
        return str(from_cli), f"{setting.flag} on the command line"
    from_ini = config.getini(setting.ini)
    if from_ini not in (None, ""):  # false and 0 are values (a TOML table's)
        source = _override_source(config, setting.ini)
        if source is None:
            source = f"{setting.ini} in {_ini_file(config)}"
        if isinstance(from_ini, bool):  # as the TOML table has it, in a message
            return str(from_ini).lower(), source
        return str(from_ini).strip(), source
    return setting.default, "the default"


def unwritable_reason(directory: Path) -> str | None:
    """Why files cannot be written in ``directory`` (existing yet or not), or ``None``.

    Nothing is created: the nearest existing ancestor must be a directory in
    which this process can create a file, which a short-lived probe file
    checks (``os.access`` would not see a read-only file system).
    """
    existing = directory
    try:
        while not existing.exists():
            if existing.parent == existing:
                return f"{existing} does not exist"
            existing = existing.parent
        if not existing.is_dir():
            return f"{existing} is a file, not a directory"
    except OSError as exc:
        return f"{exc.filename or existing}: {exc.strerror or exc}"
    try:
        handle, probe = tempfile.mkstemp(prefix=".importcache-probe-", dir=existing)
    except OSError as exc:
        return f"cannot create files in {existing}: {exc.strerror or exc}"
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def _check_writable(config: pytest.Config, name: str, value: str, source: str) -> None:
    """Refuse, before any test runs, an output path the run could not write.

    ``benchmark-json`` is pytest-benchmark's ``--benchmark-json``: it opens the
    file only at the session's end, when this plugin's measurements give it
    something to write, and makes no directory for it.
    """
    path = config.invocation_params.dir / value
    if name in ("raw-dir", "store"):
        reason = unwritable_reason(path)
        what = f"cannot keep {'raw rounds' if name == 'raw-dir' else 'counts'} in {path}"
    else:
        reason = unwritable_reason(path.parent)
        if reason is None and name == "benchmark-json" and not path.parent.is_dir():
            reason = f"{path.parent} does not exist (pytest-benchmark does not make it)"
        if reason is None and path.is_dir():
            reason = f"{path} is a directory"
        if reason is None and path.exists() and not os.access(path, os.W_OK):
            reason = f"{path}: {os.strerror(errno.EACCES)}"
        document = {"markdown": "markdown", "benchmark-json": "benchmark run"}.get(name, "report")
        what = f"cannot write the {document} to {path}"
    if reason is not None:
        raise pytest.UsageError(f"{source}: {what}: {reason}")


def read_settings(config: pytest.Config) -> Settings:
    """Resolve every setting (command line > ini > default) or raise ``pytest.UsageError``.

    ``-o importcache_NAME=VALUE`` counts as the ini value it overrides, but a bad
    one is blamed on the ``-o``. The raw-rounds directory and the report's
    directory are resolved against the invocation directory and must be
    writable (or creatable), so a bad path fails the run at once, in one line.
    """
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw, source = _raw_value(config, setting)
        try:
            value = setting.parse(raw)
        except ValueError as exc:
            raise pytest.UsageError(f"{source}: {exc}") from None
        if setting.name in ("raw-dir", "report", "markdown", "store") and value is not None:
            _check_writable(config, setting.name, value, source)
        if setting.name == "lazy-imports" and value == "all":
            _check_lazy_imports_here(source)
        values[setting.name.replace("-", "_")] = value
    benchmark_json = config.getoption("benchmark_json", None)
    if benchmark_json is not None:
        _check_writable(config, "benchmark-json", str(benchmark_json), "--benchmark-json")
    if values["budget_scale"] == "auto" and values["calibration"] is None:
        raise pytest.UsageError(
            "importcache budget scale 'auto' needs importcache_calibration: run "
            "'pytest-importcache calibrate' and add the line it prints to your configuration"
        )
    return Settings(**values)
