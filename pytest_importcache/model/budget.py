"""Budgets: parse ``"25ms"`` or ``"45M"``; the ``import_budget`` and ``startup_budget`` markers.

Everything here is a pure function of its arguments, so the parsing rules are
tested without running pytest; :mod:`.verdict` judges results against a budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .errors import BudgetError, ImportCacheError, LocateError
from .spec import (
    LAZY_IMPORTS_MODES,
    METRICS,
    LazyImportsMode,
    Metric,
    StartupCommand,
    as_metric,
    check_module_name,
)
from .stats import STATISTICS, as_statistic
from .units import cost_name, parse_cost, parse_memory, shorten

__all__ = [
    "ImportBudget",
    "StartupBudget",
]

MARKER_NAME = "import_budget"
MARKER_SIGNATURE = (
    "import_budget(module, *, cold=None, warm=None, max_modules=None, forbid=(), "
    "stat=None, rounds=None, closure=False, metric=None, allow=(), max_memory=None, "
    "lazy_imports=None)"
)
MARKER_KEYWORDS = (
    "cold",
    "warm",
    "max_modules",
    "forbid",
    "stat",
    "rounds",
    "closure",
    "metric",
    "allow",
    "max_memory",
    "lazy_imports",
)
STARTUP_MARKER_NAME = "startup_budget"
STARTUP_MARKER_SIGNATURE = (
    "startup_budget(command=None, *, code=None, cold=None, warm=None, max_modules=None, "
    "forbid=(), allow=(), max_memory=None, exit_code=0, stat=None, rounds=None, metric=None, "
    "lazy_imports=None)"
)
STARTUP_MARKER_KEYWORDS = (
    "code",
    "cold",
    "warm",
    "max_modules",
    "forbid",
    "allow",
    "max_memory",
    "exit_code",
    "stat",
    "rounds",
    "metric",
    "lazy_imports",
)

# How each pattern list is shown in a message that says how to write it.
_PATTERN_EXAMPLES = {
    "forbid": "forbid=['numpy', 'pandas.*']",
    "allow": "allow=['mylib', 'mylib.*']",
}


# One-shot iterators given as ``forbid``, by id, with what they yielded. A marker
# object is shared by every test it applies to (a class or module ``pytestmark``)
# and read once per test, so a generator must be read once per process and the
# same patterns returned every time. The iterator is kept alive alongside its
# patterns, so its id cannot be reused by another object. One that raised keeps
# its error (an exception), so every later read fails the same way.
_MATERIALISED: dict[int, tuple[Iterator[object], tuple[object, ...] | Exception]] = {}


def _read_once(iterator: Iterator[object]) -> tuple[object, ...]:
    """What ``iterator`` yields, read at its first call; later calls get the same (or raise)."""
    if id(iterator) not in _MATERIALISED:
        try:
            _MATERIALISED[id(iterator)] = (iterator, tuple(iterator))
        except Exception as exc:
            _MATERIALISED[id(iterator)] = (iterator, exc)
    read = _MATERIALISED[id(iterator)][1]
    if isinstance(read, Exception):
        raise read
    return read


def _patterns(prefix: str, value: object, name: str = "forbid") -> tuple[str, ...]:
    """The ``forbid`` (or ``allow``) argument as a tuple of non-empty glob patterns.

    A str is one pattern; any other iterable (a list, a tuple, a set, a
    generator, ``map(...)``, ``itertools.chain(...)``; a dict gives its keys)
    is read once and every element must be a non-empty str; bytes are refused.
    Raises :class:`BudgetError` naming the argument and the first bad element.
    """
    patterns: tuple[object, ...]
    if isinstance(value, str):
        patterns, shown = (value,), shorten(value)
    elif not isinstance(value, Iterable) or isinstance(value, bytes | bytearray):
        raise BudgetError(
            f"{prefix}: {name}={shorten(value)} is not a list of module name patterns "
            f"(write {_PATTERN_EXAMPLES[name]})"
        )
    else:
        try:
            patterns = _read_once(value) if isinstance(value, Iterator) else tuple(value)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {''.join(str(exc).splitlines()[:1])}"
            raise BudgetError(
                f"{prefix}: {name}={shorten(value)} could not be read: {detail}"
            ) from None
        if isinstance(value, Iterator):
            shown = f"{type(value).__name__} yielding {shorten(list(patterns))}"
        else:
            shown = shorten(value)
    for pattern in patterns:
        if not (isinstance(pattern, str) and pattern):
            raise BudgetError(
                f"{prefix}: {name}={shown} is not a list of module name patterns: "
                f"{shorten(pattern)} is not a non-empty str"
            )
    return tuple(str(pattern) for pattern in patterns)


def _marker_module(args: Sequence[object], arguments: dict[str, object]) -> str:
    """The marker's module, by position or keyword (taken out of ``arguments``), validated."""
    if len(args) > 1:
        raise BudgetError(
            f"{MARKER_NAME}: takes one positional argument (the module), got {len(args)}"
        )
    if args and "module" in arguments:
        raise BudgetError(f"{MARKER_NAME}: module given both by position and as keyword")
    if not args and "module" not in arguments:
        raise BudgetError(f"{MARKER_NAME}: the module to import is missing")
    module = args[0] if args else arguments["module"]
    arguments.pop("module", None)
    if not isinstance(module, str):
        raise BudgetError(f"{MARKER_NAME}: module={shorten(module)} is not a module name (a str)")
    try:
        check_module_name(module)
    except LocateError as exc:
        raise BudgetError(f"{MARKER_NAME}: module={exc}") from None
    return module


def _cost_argument(prefix: str, name: str, value: object, metric: Metric) -> float | None:
    """A cold or warm budget in ``metric`` (seconds or instructions), or ``None`` when not given."""
    if value is None:
        return None
    try:
        return parse_cost(value, metric)
    except BudgetError as exc:
        raise BudgetError(f"{prefix}: {name}={exc}") from None


_DURATION_UNIT = re.compile(r"\d\s*(?:ns|us|µs|ms|s)\s*$")
_COUNT_SUFFIX = re.compile(r"\d\s*[kKMG]\s*$")


def unit_metric(value: object) -> Metric | None:
    """The metric a budget's unit names: ``'25ms'`` time, ``'45M'`` instructions; else ``None``.

    A bare number (``0.025``, ``45_000_000``, ``"1200"``) names none: it is in
    the metric the budget is measured in.
    """
    if isinstance(value, str):
        if _DURATION_UNIT.search(value):
            return "time"
        if _COUNT_SUFFIX.search(value):
            return "instructions"
    return None


def _flavour_budget(
    prefix: str, name: str, value: object, metric: Metric, *, lenient: bool
) -> tuple[float | None, str]:
    """A cold or warm argument as (limit in ``metric`` or ``None``, budget in the other unit).

    The argument is one budget, or a duration and a count together
    (``("25ms", "45M")``): the one in ``metric``'s unit is judged, the other
    is kept as written (``"warm='25ms'"``), to be shown beside the suggestion
    in ``metric``. With ``lenient`` false (the marker names its metric), a
    single budget in the other unit is an error.
    """
    if value is None:
        return None, ""
    values = tuple(value) if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(values) <= 2:
        raise BudgetError(
            f"{prefix}: {name}={shorten(value)} is not a budget (one value, or a duration and "
            f"a count: {name}=('25ms', '45M'))"
        )
    limit: float | None = None
    other = ""
    units: list[Metric] = []
    for item in values:
        unit = unit_metric(item) or (metric if len(values) == 1 else None)
        if unit is None:
            raise BudgetError(
                f"{prefix}: {name}={shorten(value)}: write both budgets with their units "
                f"({name}=('25ms', '45M'))"
            )
        if unit in units:
            raise BudgetError(
                f"{prefix}: {name}={shorten(value)} gives two {cost_name(unit)} budgets "
                f"(write a duration and a count: {name}=('25ms', '45M'))"
            )
        units.append(unit)
        if unit == metric or (len(values) == 1 and not lenient):
            limit = _cost_argument(prefix, name, item, metric)
        else:
            _cost_argument(prefix, name, item, unit)
            other = f"{name}={item!r}"
    return limit, other


def _metric_argument(prefix: str, value: object, default: Metric) -> Metric:
    """The marker's ``metric``, or the run's ``default`` when not given."""
    if value is None:
        return default
    metric = as_metric(value)
    if metric is not None:
        return metric
    raise BudgetError(f"{prefix}: metric={shorten(value)} is not one of {', '.join(METRICS)}")


def _count_argument(prefix: str, name: str, value: object, minimum: int) -> int | None:
    """A whole-number argument of at least ``minimum``, or ``None`` when not given."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BudgetError(f"{prefix}: {name}={shorten(value)} is not a whole number >= {minimum}")
    return value


def _check_known(prefix: str, arguments: Mapping[str, object], known: Sequence[str]) -> None:
    """Raise :class:`BudgetError` naming the first argument not in ``known``."""
    unknown = sorted(set(arguments) - set(known))
    if unknown:
        raise BudgetError(
            f"{prefix}: unknown argument {unknown[0]}={shorten(arguments[unknown[0]])} "
            f"(expected {', '.join(known)})"
        )


def _memory_argument(prefix: str, value: object) -> int | None:
    """``max_memory`` in bytes, or ``None`` when not given."""
    if value is None:
        return None
    try:
        return parse_memory(value)
    except BudgetError as exc:
        raise BudgetError(f"{prefix}: max_memory={exc}") from None


def _lazy_imports_argument(prefix: str, value: object) -> LazyImportsMode | None:
    """``lazy_imports`` (``"normal"`` or ``"all"``), or ``None`` when not given."""
    if value is None:
        return None
    for mode in LAZY_IMPORTS_MODES:
        if value == mode and isinstance(value, str):
            return mode
    raise BudgetError(
        f"{prefix}: lazy_imports={shorten(value)} is not one of {', '.join(LAZY_IMPORTS_MODES)}"
    )


def _limits(prefix: str, arguments: Mapping[str, object], metric: Metric) -> dict[str, Any]:
    """The limits both markers share, validated, as :class:`ImportBudget` fields."""
    stat = arguments.get("stat")
    if stat is not None and as_statistic(stat) is None:
        raise BudgetError(f"{prefix}: stat={shorten(stat)} is not one of {', '.join(STATISTICS)}")
    chosen = _metric_argument(prefix, arguments.get("metric"), metric)
    # Only the run's metric switches leniently; a marker's own metric is meant.
    lenient = arguments.get("metric") is None
    cold, cold_other = _flavour_budget(
        prefix, "cold", arguments.get("cold"), chosen, lenient=lenient
    )
    warm, warm_other = _flavour_budget(
        prefix, "warm", arguments.get("warm"), chosen, lenient=lenient
    )
    return {
        "cold": cold,
        "warm": warm,
        "max_modules": _count_argument(prefix, "max_modules", arguments.get("max_modules"), 0),
        "forbid": _patterns(prefix, arguments.get("forbid", ())),
        "stat": stat if isinstance(stat, str) else None,
        "rounds": _count_argument(prefix, "rounds", arguments.get("rounds"), 1),
        "metric": chosen,
        "unjudged": tuple(
            (flavour, text)
            for flavour, text in (("cold", cold_other), ("warm", warm_other))
            if text and (cold if flavour == "cold" else warm) is None
        ),
        "allow": _patterns(prefix, arguments.get("allow", ()), "allow"),
        "max_memory": _memory_argument(prefix, arguments.get("max_memory")),
        "lazy_imports": _lazy_imports_argument(prefix, arguments.get("lazy_imports")),
    }


@dataclass(frozen=True)
class ImportBudget:
    """One ``import_budget`` marker: the module and the limits its import must keep.

    ``cold`` and ``warm`` are in ``metric``: seconds, or instruction counts.
    A budget the marker gives only in the other unit (``warm="25ms"`` in a run
    under ``--importcache-metric=instructions``) is in ``unjudged`` as
    (flavour, ``"warm='25ms'"``): that flavour is measured in ``metric`` and
    not judged. ``allow`` holds glob patterns of the modules the import may
    load besides the standard library (matched as ``forbid``'s are: whole
    dotted names, so ``"mylib"`` allows ``mylib`` alone and ``"mylib.*"`` its
    submodules). ``max_memory`` is the peak resident memory (bytes) the
    highest round may reach; ``lazy_imports`` the PEP 810 mode the rounds run
    under (``None``: the run's).
    """

    module: str
    cold: float | None = None
    warm: float | None = None
    max_modules: int | None = None
    forbid: tuple[str, ...] = ()
    stat: str | None = None
    rounds: int | None = None
    closure: bool = False
    metric: Metric = "time"
    unjudged: tuple[tuple[str, str], ...] = ()
    allow: tuple[str, ...] = ()
    max_memory: int | None = None
    lazy_imports: LazyImportsMode | None = None

    @classmethod
    def from_marker(
        cls, args: Sequence[object], kwargs: Mapping[str, object], *, metric: Metric = "time"
    ) -> ImportBudget:
        """Validate a marker's arguments; raises :class:`BudgetError` naming the bad one.

        ``metric`` is the run's, used when the marker names none.
        """
        arguments = dict(kwargs)
        module = _marker_module(args, arguments)
        prefix = f"{MARKER_NAME}({module!r})"
        _check_known(prefix, arguments, MARKER_KEYWORDS)
        closure = arguments.get("closure", False)
        if not isinstance(closure, bool):
            raise BudgetError(f"{prefix}: closure={shorten(closure)} is not True or False")
        budget = cls(module=module, closure=closure, **_limits(prefix, arguments, metric))
        if closure and "cold" not in budget.timed_flavours:
            raise BudgetError(f"{prefix}: closure=True applies to a cold budget; give cold=...")
        if not budget.has_limit:
            raise BudgetError(
                f"{prefix}: no budget given "
                "(set cold, warm, max_modules, forbid, allow or max_memory)"
            )
        return budget

    @property
    def has_limit(self) -> bool:
        """Whether the budget limits anything (a marker without one is malformed)."""
        return bool(
            self.timed_flavours
            or self.max_modules is not None
            or self.forbid
            or self.allow
            or self.max_memory is not None
        )

    @property
    def timed_flavours(self) -> tuple[Literal["cold", "warm"], ...]:
        """The flavours whose time (or count) is budgeted, judged or not, cold first."""
        unjudged = dict(self.unjudged)
        flavours: list[Literal["cold", "warm"]] = []
        if self.cold is not None or "cold" in unjudged:
            flavours.append("cold")
        if self.warm is not None or "warm" in unjudged:
            flavours.append("warm")
        return tuple(flavours)


# The dataclass needs a default after ImportBudget's; from_marker always gives the real one.
_EMPTY_COMMAND = StartupCommand(code="pass")


@dataclass(frozen=True)
class StartupBudget(ImportBudget):
    """One ``startup_budget`` marker: a command (or ``code=`` snippet) and its limits.

    The limits are an :class:`ImportBudget`'s, judged on the whole process
    from exec to exit: ``max_modules``, ``forbid`` and ``allow`` count every
    module the process loaded. ``module`` is empty: the package under test is
    found when the command is resolved (``engine.startup.startup_spec``).
    ``exit_code`` is the status the command must exit with.
    """

    command: StartupCommand = _EMPTY_COMMAND
    exit_code: int = 0

    @classmethod
    def from_marker(
        cls, args: Sequence[object], kwargs: Mapping[str, object], *, metric: Metric = "time"
    ) -> StartupBudget:
        """Validate a ``startup_budget`` marker's arguments; :class:`BudgetError` names the bad one.

        ``metric`` is the run's, used when the marker names none.
        """
        arguments = dict(kwargs)
        if len(args) > 1:
            raise BudgetError(
                f"{STARTUP_MARKER_NAME}: takes one positional argument (the command), "
                f"got {len(args)}; write a command as one string or one list"
            )
        if args and "command" in arguments:
            raise BudgetError(
                f"{STARTUP_MARKER_NAME}: command given both by position and as keyword"
            )
        given = args[0] if args else arguments.pop("command", None)
        try:
            command = StartupCommand.parse(given, arguments.get("code"))
        except ImportCacheError as exc:
            raise BudgetError(f"{STARTUP_MARKER_NAME}: {exc}") from None
        prefix = f"{STARTUP_MARKER_NAME}({command.label!r})"
        arguments.pop("code", None)
        _check_known(prefix, arguments, STARTUP_MARKER_KEYWORDS)
        exit_code = arguments.pop("exit_code", 0)
        if (
            isinstance(exit_code, bool)
            or not isinstance(exit_code, int)
            or not 0 <= exit_code <= 255
        ):
            raise BudgetError(
                f"{prefix}: exit_code={shorten(exit_code)} is not an exit status (0 to 255)"
            )
        budget = cls(
            module="", command=command, exit_code=exit_code, **_limits(prefix, arguments, metric)
        )
        if not budget.has_limit:
            raise BudgetError(
                f"{prefix}: no budget given "
                "(set cold, warm, max_modules, forbid, allow or max_memory)"
            )
        return budget

    @property
    def label(self) -> str:
        """How the budget is named in messages: ``startup_budget('mycli --help')``."""
        return f"{STARTUP_MARKER_NAME}({self.command.label!r})"
