"""``MeasurementSpec``: one validated request to measure an import, with every default.

The settings, the marker, the fixtures, the command line and ``calibrate``
all build one and hand it to a :class:`~pytest_importcache.engine.measurer.Measurer`.
The defaults live here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex
from dataclasses import dataclass
from typing import Literal, get_args

from .errors import LocateError, SpecError
from .stats import STATISTICS, Statistic

__all__ = [
    "DEFAULT_INSTRUCTION_ROUNDS",
    "DEFAULT_INSTRUCTION_WARMUP",
    "DEFAULT_METRIC",
    "DEFAULT_ROUNDS",
    "DEFAULT_SLOWDOWN_THRESHOLD",
    "DEFAULT_STATISTIC",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WARMUP",
    "LAZY_IMPORTS_MODES",
    "METRICS",
    "STATISTICS",
    "Flavour",
    "InvalidationMode",
    "LazyImportsMode",
    "MeasurementSpec",
    "Metric",
    "StartupCommand",
    "Statistic",
    "as_metric",
    "check_module_name",
    "default_rounds",
    "default_warmup",
    "flavour_label",
    "measurement_suffix",
    "metric_label",
]

Flavour = Literal["cold", "warm"]
InvalidationMode = Literal["timestamp", "checked-hash", "unchecked-hash"]
Metric = Literal["time", "instructions"]
METRICS: tuple[Metric, ...] = get_args(Metric)
# PEP 810's ``-X lazy_imports`` modes (CPython 3.15+); ``None`` leaves the interpreter's default.
LazyImportsMode = Literal["normal", "all"]
LAZY_IMPORTS_MODES: tuple[LazyImportsMode, ...] = get_args(LazyImportsMode)


def as_metric(value: object) -> Metric | None:
    """``value`` as one of :data:`METRICS`, or ``None`` when it names none.

    The one check of a metric's name; callers say what was wrong, and where.
    """
    for metric in METRICS:
        if value == metric and isinstance(value, str):
            return metric
    return None


DEFAULT_ROUNDS = 10
DEFAULT_WARMUP = 1
DEFAULT_TIMEOUT = 60.0
# The fastest round moves least from run to run on a shared machine (README,
# "Measurement quality"): budgets, comparisons and suggestions all use it.
DEFAULT_STATISTIC: Statistic = "min"
DEFAULT_METRIC: Metric = "time"
# Instruction counts repeat exactly from round to round (README, "Measurement
# quality"), and a callgrind round costs 50-100 wall rounds: one round gives
# the count (more only show the same number again; rounds=3 checks it, and
# rounds that disagree are reported), and no warm-up round is needed to reach it.
DEFAULT_INSTRUCTION_ROUNDS = 1
DEFAULT_INSTRUCTION_WARMUP = 0
# The slowdown against a baseline revision that fails a test (pytest) or is
# reported as slower (the command line without --fail).
DEFAULT_SLOWDOWN_THRESHOLD = 0.10


def default_rounds(metric: Metric) -> int:
    """Counted rounds when none are asked for: 10 timed, 1 counted."""
    return DEFAULT_ROUNDS if metric == "time" else DEFAULT_INSTRUCTION_ROUNDS


def default_warmup(metric: Metric) -> int:
    """Warm-up rounds when none are asked for: 1 timed, none counted."""
    return DEFAULT_WARMUP if metric == "time" else DEFAULT_INSTRUCTION_WARMUP


def flavour_label(flavour: str, closure: bool) -> str:
    """``"cold"``, ``"warm"`` or ``"closure-cold"``: a flavour as shown to users."""
    return "closure-cold" if closure else flavour


def metric_label(label: str, metric: str) -> str:
    """``label`` with the metric after it for counts: ``"warm"``, ``"warm instructions"``."""
    return label if metric == DEFAULT_METRIC else f"{label} {metric}"


def measurement_suffix(
    module: str,
    label: str,
    metric: str,
    *,
    command: str | None = None,
    lazy_imports: str | None = None,
) -> str:
    """``mylib-warm`` or ``mylib-warm-instructions``: a measurement in a benchmark's name.

    Counts get their own names, so they are never compared with times; so do
    rounds under PEP 810's ``all`` mode (``mylib-warm-lazy-all``; ``normal`` is
    the default mode, named as without one). A start-up
    measurement is named by its ``command`` key (:attr:`StartupCommand.key`),
    made safe for a name (``mycli_--help-warm``): names are the keys runs are
    compared by.
    """
    what = module if command is None else _safe_name(command)
    suffix = f"{what}-{label}" if metric == DEFAULT_METRIC else f"{what}-{label}-{metric}"
    return suffix if lazy_imports in (None, "normal") else f"{suffix}-lazy-{lazy_imports}"


def _safe_name(label: str) -> str:
    """``label`` with runs of characters other than letters, digits and ``.,:=+/-`` as ``_``."""
    return re.sub(r"[^\w.,:=+/-]+", "_", label).strip("_") or "_"


def _check_count(value: object, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{name} must be a whole number >= {minimum}, not {value!r}")


def _check_import_path(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not all(
        isinstance(entry, str) and os.path.isabs(entry) and "\0" not in entry for entry in value
    ):
        raise SpecError(
            f"import_path must be a tuple of absolute directory paths, or None, not {value!r}"
        )


def check_module_name(module: object) -> None:
    """Raise :class:`LocateError` unless ``module`` is a dotted name of identifiers."""
    __tracebackhide__ = True
    if not isinstance(module, str) or not all(part.isidentifier() for part in module.split(".")):
        raise LocateError(f"{module!r} is not a valid dotted module name")


# The longest snippet a label shows whole.
_LABEL_TEXT = 50


@dataclass(frozen=True)
class StartupCommand:
    """What a start-up round runs from exec to exit: a command line or a ``code`` snippet.

    ``argv`` is the command as given (a string is split as a POSIX shell
    would): its first word is a console script of an installed distribution
    or ``python``. ``code`` is a snippet run as ``python -c`` would run it.
    Exactly one of the two is given.
    """

    argv: tuple[str, ...] = ()
    code: str | None = None

    def __post_init__(self) -> None:
        __tracebackhide__ = True
        if self.code is not None:
            if self.argv:
                raise SpecError("give a command or code=..., not both")
            if not isinstance(self.code, str) or not self.code.strip() or "\0" in self.code:
                raise SpecError(f"code must be a non-empty snippet of Python, not {self.code!r}")
            return
        if not self.argv:
            raise SpecError("a start-up budget needs a command or code=...")
        if not all(isinstance(word, str) and "\0" not in word for word in self.argv):
            raise SpecError(f"a command's words must be strings, not {self.argv!r}")
        if not self.argv[0]:
            # Later words may be empty (`mycli --sep ''`); the program's name may not.
            raise SpecError(f"a command's first word must name a program, not {self.argv!r}")
        for word in self.argv:
            try:
                os.fsencode(word)  # what starting the process does with each word
            except UnicodeEncodeError as exc:
                raise SpecError(
                    f"a command's word {word!r} cannot be passed to a process: {exc.reason}"
                ) from None

    @classmethod
    def parse(cls, command: object = None, code: object = None) -> StartupCommand:
        """The command from a string (split like a shell), a list of words, or ``code``."""
        __tracebackhide__ = True
        if command is None:
            return cls(code=code)  # type: ignore[arg-type]
        if code is not None:
            raise SpecError("give a command or code=..., not both")
        if isinstance(command, str):
            try:
                words = tuple(shlex.split(command))
            except ValueError as exc:
                raise SpecError(f"command {command!r} cannot be split into words: {exc}") from None
            found = _shell_syntax(command, words)
            if found is not None:
                raise SpecError(
                    f"command {command!r}: a start-up command is one program and its arguments: "
                    f"no pipes, redirections, substitutions or VAR=value (found {found!r}); "
                    "quote the character or give a list of words to pass it as an argument"
                )
            return cls(argv=words)
        if isinstance(command, list | tuple):
            return cls(argv=tuple(command))
        raise SpecError(f"a command is a string or a list of words, not {command!r}")

    @property
    def label(self) -> str:
        """How the command is shown: ``mycli --help``, or ``code: import mylib; ...``."""
        if self.code is not None:
            text = " ".join(self.code.split())
            return f"code: {text if len(text) <= _LABEL_TEXT else text[:47] + '...'}"
        return shlex.join(self.argv)

    @property
    def key(self) -> str:
        """The command in benchmark names and stored keys: :attr:`label`, whole.

        A snippet the label cuts short (two that begin alike would share it)
        gets the first 8 hex digits of its SHA-256 after it (its words
        joined by single spaces, so re-indenting keeps its key).
        """
        label = self.label
        if self.code is None:
            return label
        text = " ".join(self.code.split())
        if len(text) <= _LABEL_TEXT:
            return label
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{label} {digest[:8]}"


# What a shell would read as more than one program and its arguments, longest first.
_SHELL_OPERATORS = ("||", "&&", "|", ";", ">", "<", "&")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def _shell_syntax(command: str, words: tuple[str, ...]) -> str | None:
    """The first shell operator, substitution or leading ``VAR=value`` in ``command``, if any.

    Only what a POSIX shell would act on counts: operators outside quotes,
    substitutions outside single quotes.
    """
    if words and _ASSIGNMENT.match(words[0]) and _ASSIGNMENT.match(command.lstrip()):
        return words[0]
    quote = ""
    index = 0
    while index < len(command):
        char = command[index]
        if char == "\\" and quote != "'":
            index += 2
            continue
        substitution = "`" if char == "`" else "$(" if command.startswith("$(", index) else ""
        if quote == char:
            quote = ""
        elif substitution and quote != "'":
            return substitution
        elif not quote and char in "'\"":
            quote = char
        elif not quote:
            operator = next((op for op in _SHELL_OPERATORS if command.startswith(op, index)), None)
            if operator is not None:
                return operator
        index += 1
    return None


@dataclass(frozen=True)
class MeasurementSpec:
    """What to measure and how: module, flavour, interpreter, compilation, rounds.

    ``python`` is ``None`` for the running interpreter. ``closure=True`` (cold
    only) makes every module the import reaches compile. ``optimize`` (0, 1, 2)
    applies to the compilation and the rounds alike. ``metric`` is what a round
    measures: ``"time"`` (seconds) or ``"instructions"`` (the CPU instructions
    the import executes, counted under valgrind's callgrind). ``import_path``
    is what the round searches after the copy and before its own start-up path
    (standard library, site-packages): absolute directories, in order; ``None``
    (the default) is the measuring process's import path when the measurement
    starts (``sys.path``, or the measurer's search path), see
    :func:`~pytest_importcache.engine.measurer.round_import_path`.
    ``command`` makes the round a start-up round: it runs the command from
    exec to exit instead of importing ``module``, which is then the package
    under test (the one whose cold or warm copy the round uses); the command
    must exit with ``exit_code``. ``lazy_imports`` runs the round under
    ``-X lazy_imports=MODE`` (PEP 810, CPython 3.15+); ``None`` leaves the
    interpreter's default. An invalid value raises ``ValueError`` naming the field.
    """

    module: str
    flavour: Flavour = "warm"
    closure: bool = False
    python: str | None = None
    optimize: int = 0
    invalidation_mode: InvalidationMode = "timestamp"
    rounds: int = DEFAULT_ROUNDS
    warmup: int = DEFAULT_WARMUP
    timeout: float = DEFAULT_TIMEOUT
    metric: Metric = DEFAULT_METRIC
    import_path: tuple[str, ...] | None = None
    command: StartupCommand | None = None
    exit_code: int = 0
    lazy_imports: LazyImportsMode | None = None

    def __post_init__(self) -> None:
        __tracebackhide__ = True
        check_module_name(self.module)
        if self.flavour not in get_args(Flavour):
            raise SpecError(f"flavour must be 'cold' or 'warm', not {self.flavour!r}")
        if self.closure and self.flavour != "cold":
            raise SpecError("closure=True measures a cold import: use it with flavour='cold'")
        if isinstance(self.optimize, bool) or self.optimize not in (0, 1, 2):
            raise SpecError(f"optimize must be 0, 1 or 2, not {self.optimize!r}")
        if self.invalidation_mode not in get_args(InvalidationMode):
            choices = ", ".join(get_args(InvalidationMode))
            raise SpecError(
                f"invalidation_mode must be one of {choices}, not {self.invalidation_mode!r}"
            )
        if as_metric(self.metric) is None:
            raise SpecError(f"metric must be 'time' or 'instructions', not {self.metric!r}")
        _check_count(self.rounds, "rounds", 1)
        _check_count(self.warmup, "warmup", 0)
        timeout: object = self.timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise SpecError(f"timeout must be a positive number of seconds, not {timeout!r}")
        _check_import_path(self.import_path)
        if self.command is not None and not isinstance(self.command, StartupCommand):
            raise SpecError(f"command must be a StartupCommand or None, not {self.command!r}")
        exit_code: object = self.exit_code
        if isinstance(exit_code, bool) or not isinstance(exit_code, int):
            raise SpecError(f"exit_code must be a whole number, not {exit_code!r}")
        if self.lazy_imports is not None and self.lazy_imports not in LAZY_IMPORTS_MODES:
            raise SpecError(f"lazy_imports must be 'normal' or 'all', not {self.lazy_imports!r}")

    @property
    def label(self) -> str:
        """``"cold"``, ``"warm"`` or ``"closure-cold"``: the flavour as shown to users."""
        return flavour_label(self.flavour, self.closure)

    @property
    def total_rounds(self) -> int:
        """Warm-up and counted rounds together."""
        return self.warmup + self.rounds

    def counts_modules(self, index: int) -> bool:
        """Whether round ``index`` (0-based, warm-up rounds first) gives every module's cost.

        Timed rounds always do. Of instructions rounds only the first counted
        one does: the counts repeat, and per-module counting takes two to
        three times as long.
        """
        return self.metric == "time" or index == self.warmup

    def replace(self, **changes: object) -> MeasurementSpec:
        """A copy with ``changes`` applied, validated again."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
