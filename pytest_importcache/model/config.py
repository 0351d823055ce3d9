"""``[tool.importcache] budgets`` in pyproject.toml: budgets without a test file.

Each entry of the ``budgets`` array is the keyword arguments of a marker:
``module = "mylib"`` makes an ``import_budget("mylib", **rest)``, ``command =
"mycli --help"`` (or ``code = "..."``) a ``startup_budget(command, **rest)``.
:func:`read_budgets` turns the table into :class:`ConfigBudget` values, one per
entry, a malformed entry included: it carries its one-line ``problem``, so the
other budgets still run. A file that cannot be read at all, or a ``budgets``
that is not an array, is a :class:`~pytest_importcache.model.errors.ConfigError`.
Pure: the pytest items and ``pytest-importcache check`` both read budgets here.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .budget import (
    MARKER_KEYWORDS,
    MARKER_NAME,
    STARTUP_MARKER_KEYWORDS,
    STARTUP_MARKER_NAME,
    ImportBudget,
    StartupBudget,
)
from .errors import BudgetError, ConfigError, SpecError
from .spec import StartupCommand
from .units import shorten

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10 reads TOML with the tomli backport
    import tomli as tomllib

__all__ = [
    "IMPORT_KEYS",
    "PYPROJECT",
    "STARTUP_KEYS",
    "VARIANT_KEYS",
    "ConfigBudget",
    "find_pyproject",
    "load_budgets",
    "read_budgets",
]

PYPROJECT = "pyproject.toml"
# What an entry may hold: the markers' keyword arguments (DESIGN.md section 3).
IMPORT_KEYS: tuple[str, ...] = ("module", *MARKER_KEYWORDS)
STARTUP_KEYS: tuple[str, ...] = ("command", *STARTUP_MARKER_KEYWORDS)
_EXAMPLE = '{ module = "mylib", warm = "25ms" }'
#: The keys that make two entries of one target different budgets (lazy_imports last: the
#: lock's lazy-all sections end with it).
VARIANT_KEYS: tuple[str, ...] = ("closure", "metric", "lazy_imports")


@dataclass(frozen=True)
class ConfigBudget:
    """One entry of ``[tool.importcache] budgets``: the marker it stands for, or its problem.

    ``target`` is the module (``"mylib"``) or the command's label
    (``"mycli --help"``, ``"code: import mylib"``); ``marker`` the marker's
    name, ``args`` and ``kwargs`` its arguments. A malformed entry has
    ``problem``: one line naming the entry (its index and target) and the key.
    """

    index: int
    target: str = ""
    kind: str = ""
    marker: str = ""
    args: tuple[object, ...] = ()
    kwargs: Mapping[str, object] = field(default_factory=dict)
    problem: str = ""

    @property
    def where(self) -> str:
        """``budgets[2] (module 'mylib')``, ``budgets[3] (code 'import mylib')``: the entry."""
        # A snippet's label already says "code: ": the kind is not said twice.
        target = self.target.removeprefix("code: ") if self.kind == "code" else self.target
        shown = f" ({self.kind} {target!r})" if self.target else ""
        return f"budgets[{self.index}]{shown}"

    @property
    def variant(self) -> str:
        """What sets this budget apart from another of the same target: ``closure``,
        ``metric=instructions``, ``lazy_imports=all`` (in that order); ``""`` for a plain one.

        Two entries for one module may differ in these: they measure different imports.
        """
        parts = ["closure"] if self.kwargs.get("closure") is True else []
        parts += [
            f"{name}={self.kwargs[name]}"
            for name in VARIANT_KEYS
            if name != "closure" and isinstance(self.kwargs.get(name), str)
        ]
        return " ".join(parts)

    @property
    def name(self) -> str:
        """The pytest item's name: ``importcache[mylib]``, ``importcache[mylib closure]``;
        ``importcache[budgets[2]]`` without a target. A plain entry's name never changes:
        it is a key across commits (``--lf``, stored runs)."""
        label = " ".join(part for part in (self.target, self.variant) if part)
        return f"importcache[{label or f'budgets[{self.index}]'}]"

    @property
    def lock_key(self) -> str:
        """The budget's section name in ``importcache.lock``: the module, or ``$ COMMAND``,
        and its variant (``mylib lazy_imports=all``)."""
        key = self.target if self.kind == "module" else f"$ {self.target}"
        return " ".join(part for part in (key, self.variant) if part)


def _bad(index: int, text: str, target: str = "", kind: str = "") -> ConfigBudget:
    """A malformed entry, its problem prefixed with where it is."""
    entry = ConfigBudget(index, target=target, kind=kind)
    return ConfigBudget(index, target=target, kind=kind, problem=f"{entry.where}: {text}")


def _import_entry(index: int, entry: Mapping[str, Any]) -> ConfigBudget:
    """An entry with ``module = ...``: an ``import_budget`` marker."""
    module = entry["module"]
    target = module if isinstance(module, str) else ""
    unknown = sorted(set(entry) - set(IMPORT_KEYS))
    if unknown:
        return _bad(
            index,
            f"unknown key {unknown[0]!r} (an import budget takes {', '.join(IMPORT_KEYS)})",
            target,
            "module",
        )
    rest = {key: value for key, value in entry.items() if key != "module"}
    try:
        ImportBudget.from_marker((module,), rest)
    except BudgetError as exc:
        message = str(exc)
        for prefix in (f"{MARKER_NAME}({module!r}): ", f"{MARKER_NAME}: "):
            message = message.removeprefix(prefix)
        return _bad(index, message.replace("argument", "key"), target, "module")
    return ConfigBudget(index, module, "module", MARKER_NAME, (module,), rest)


def _startup_entry(index: int, entry: Mapping[str, Any]) -> ConfigBudget:
    """An entry with ``command = ...`` or ``code = ...``: a ``startup_budget`` marker."""
    kind = "command" if "command" in entry else "code"
    try:
        command = StartupCommand.parse(entry.get("command"), entry.get("code"))
    except SpecError as exc:
        return _bad(index, f"{kind}: {exc}")
    unknown = sorted(set(entry) - set(STARTUP_KEYS))
    if unknown:
        return _bad(
            index,
            f"unknown key {unknown[0]!r} (a start-up budget takes {', '.join(STARTUP_KEYS)})",
            command.label,
            kind,
        )
    rest = {key: value for key, value in entry.items() if key != "command"}
    args = (entry["command"],) if "command" in entry else ()
    try:
        StartupBudget.from_marker(args, rest)
    except BudgetError as exc:
        message = str(exc).removeprefix(f"{STARTUP_MARKER_NAME}({command.label!r}): ")
        return _bad(index, message.replace("argument", "key"), command.label, kind)
    return ConfigBudget(index, command.key, kind, STARTUP_MARKER_NAME, args, rest)


def _entry(index: int, entry: object) -> ConfigBudget:
    """One entry of the array, read."""
    if not isinstance(entry, dict):
        return _bad(index, f"{shorten(entry)} is not a table (write {_EXAMPLE})")
    if "module" in entry and ("command" in entry or "code" in entry):
        return _bad(index, "give module (an import budget) or command/code (a start-up budget)")
    if "module" in entry:
        return _import_entry(index, entry)
    if "command" in entry or "code" in entry:
        return _startup_entry(index, entry)
    return _bad(
        index,
        f'no module, command or code key (write {_EXAMPLE}, or command = "mycli --help")',
    )


def read_budgets(table: Mapping[str, Any], source: str = PYPROJECT) -> list[ConfigBudget]:
    """The budgets of a ``[tool.importcache]`` table, one per entry, in order.

    Raises :class:`ConfigError` (one line naming ``source``) for a table with
    unknown keys or a ``budgets`` that is not an array. A malformed entry, or
    a second entry for the same module or command, carries its ``problem``.
    """
    unknown = sorted(set(table) - {"budgets"})
    if unknown:
        raise ConfigError(
            f"{source}: [tool.importcache]: unknown key {unknown[0]!r} (expected budgets)"
        )
    entries = table.get("budgets", [])
    if not isinstance(entries, list):
        raise ConfigError(
            f"{source}: [tool.importcache] budgets = {shorten(entries)} is not an array of tables "
            f"(write budgets = [{_EXAMPLE}])"
        )
    budgets: list[ConfigBudget] = []
    first: dict[tuple[str, str, str], int] = {}
    for index, entry in enumerate(entries):
        budget = _entry(index, entry)
        key = ("module" if budget.kind == "module" else "startup", budget.target, budget.variant)
        if budget.target and key in first:
            same = (
                f"{budget.target!r} ({budget.variant})" if budget.variant else repr(budget.target)
            )
            if not budget.problem:  # the entry's own problem first: a merge would keep it
                budget = _bad(
                    index,
                    f"duplicate budget: budgets[{first[key]}] budgets {same} already "
                    "(merge the two entries)",
                    budget.target,
                    budget.kind,
                )
            # Its item needs a name of its own.
            budget = ConfigBudget(index, problem=budget.problem)
        elif budget.target:
            first[key] = index
        budgets.append(budget)
    return budgets


def load_budgets(path: Path) -> list[ConfigBudget]:
    """The budgets of the pyproject.toml at ``path``; ``[]`` without ``[tool.importcache]``.

    Raises :class:`ConfigError` naming the file for one that cannot be read
    or parsed, or whose table is malformed (see :func:`read_budgets`).
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    tool = data.get("tool", {})
    table = tool.get("importcache") if isinstance(tool, dict) else None
    if table is None:
        return []
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: tool.importcache = {shorten(table)} is not a table")
    return read_budgets(table, str(path))


def pytest_pythonpath(path: Path) -> list[str]:
    """The absolute directories of pytest's ``pythonpath`` in the pyproject.toml at ``path``.

    From ``[tool.pytest.ini_options]`` (a list, or words separated by spaces)
    or pytest 9's ``[tool.pytest]``, relative to the file's directory, in
    order; ``[]`` when there is none or the file cannot be read (its budgets
    say why).
    """
    try:
        tool = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    tables = [tool.get("pytest", {}), (tool.get("pytest") or {}).get("ini_options", {})]
    for table in tables:
        value = table.get("pythonpath") if isinstance(table, dict) else None
        entries = value.split() if isinstance(value, str) else value
        if isinstance(entries, list) and all(isinstance(entry, str) for entry in entries):
            return [str((path.parent / entry).absolute()) for entry in entries]
    return []


def find_pyproject(start: Path, names: Sequence[str] = (PYPROJECT,)) -> Path | None:
    """The nearest ``pyproject.toml`` in ``start`` or a directory above it, or ``None``."""
    for directory in (start, *start.parents):
        for name in names:
            if (directory / name).is_file():
                return directory / name
    return None
