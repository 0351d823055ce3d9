"""``importcache.lock``: the modules each configured budget's import loads, per Python build.

Written beside pyproject.toml by ``pytest-importcache check --update`` (or
``pytest --importcache-update-lock``) and committed, so that a module that
sneaks into an import shows up in code review as a diff, and fails ``check``
and the budget's pytest item until the lock is updated. The format is plain
text, one module per line, sorted::

    # comments
    [mylib]
    python = 3.11-linux 3.12-linux
    suggested = cold="150ms", warm="25ms"
      argparse
      mylib
      mylib.core

    [$ mycli --help]
    python = 3.11-linux
      ...

One section per budget (the module, or ``$`` and the command) and per set of
modules: Python builds whose imports load the same modules share a section
(``python = 3.11-linux 3.12-linux``); a build that loads another set has its
own. A build is the version (``major.minor``, ``t`` after it for a
free-threaded one) and the platform (``sys.platform``): the standard library's
extension modules (``_json``, ``_decimal``, ``_scproxy`` on macOS) and its
pure modules (``posixpath`` or ``ntpath``) differ by platform. The
``suggested`` line is the budgets to write, from the measurement that wrote
the section (kept while its modules are, so that an update that changes no
module changes no line): informative, never compared. Pure: parsing and formatting only
(and the one guarded read-modify-write, :func:`update_lock`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import LocateError, LockError
from .spec import DEFAULT_METRIC, DEFAULT_STATISTIC, check_module_name
from .units import suggest_cost_budget

if TYPE_CHECKING:
    from .result import ImportResult

__all__ = [
    "LAZY_ALL_SUFFIX",
    "LOCK_FILE",
    "UPDATE_HINT",
    "Lock",
    "LockCheck",
    "LockSection",
    "changes_text",
    "check_lock",
    "load_lock",
    "lock_changes",
    "lock_source",
    "lock_with",
    "python_key",
    "save_lock",
    "section_key",
    "suggested_budgets",
    "update_guard",
    "update_lock",
]

LOCK_FILE = "importcache.lock"
_HEADER = (
    "# importcache.lock: the modules each budget in pyproject.toml loads, per Python build.\n"
    "# Written by `pytest-importcache check --update` (or pytest --importcache-update-lock):\n"
    "# commit it. A module that appears or goes fails the budget until the lock is updated.\n"
)
_VERSION = re.compile(r"(?P<major>\d+)\.(?P<minor>\d+)(?P<t>t?)-(?P<platform>[a-z][a-z0-9_]*)")
#: The section key's suffix of a measurement under ``-X lazy_imports=all`` (PEP 810).
LAZY_ALL_SUFFIX = " lazy_imports=all"


def python_key(version: str, platform: str, *, free_threaded: bool = False) -> str:
    """The lock's key for a Python build: ``("3.11.7", "linux")`` -> ``"3.11-linux"``.

    A free-threaded build is ``"3.13t-linux"``: its standard library is built apart.
    """
    short = ".".join(version.split(".")[:2])
    return f"{short}{'t' if free_threaded else ''}-{platform}"


def section_key(budget_key: str, lazy_imports: str | None = None) -> str:
    """The section of a budget measured under ``lazy_imports``: ``all`` has sections apart."""
    if lazy_imports == "all" and not budget_key.endswith(LAZY_ALL_SUFFIX):
        return budget_key + LAZY_ALL_SUFFIX
    return budget_key


def _version_order(version: str) -> tuple[int, int, str, str]:
    match = _VERSION.fullmatch(version)
    if match is None:  # pragma: no cover - parse() refuses such a version
        return (0, 0, "", version)
    return (int(match["major"]), int(match["minor"]), match["platform"], match["t"])


@dataclass(frozen=True)
class LockSection:
    """The modules budget ``key``'s import loads under the Python versions ``pythons``."""

    key: str
    pythons: tuple[str, ...]
    modules: tuple[str, ...]
    suggested: str = ""

    def lines(self) -> list[str]:
        """The section as the file holds it."""
        lines = [f"[{self.key}]", f"python = {' '.join(self.pythons)}"]
        if self.suggested:
            lines.append(f"suggested = {self.suggested}")
        return lines + [f"  {module}" for module in self.modules]


@dataclass(frozen=True)
class Lock:
    """The whole lock file: its sections, sorted by budget and then Python version."""

    sections: tuple[LockSection, ...] = ()

    def modules_for(self, key: str, python: str) -> tuple[str, ...] | None:
        """The modules budget ``key`` loads under ``python`` (``3.11``); ``None``: not locked."""
        for section in self.sections:
            if section.key == key and python in section.pythons:
                return section.modules
        return None

    def with_modules(
        self, key: str, python: str, modules: Iterable[str], suggested: str = ""
    ) -> Lock:
        """The lock with budget ``key`` under ``python`` loading ``modules``.

        The version joins a section of the same budget holding the same
        modules, or gets its own; a section left without a version goes. A
        section whose modules stay keeps its ``suggested`` line: only a new
        section, or one whose modules changed, takes ``suggested``.
        """
        wanted = tuple(sorted(set(modules)))
        sections: list[LockSection] = []
        joined = False
        for section in self.sections:
            if section.key != key:
                sections.append(section)
                continue
            pythons = tuple(version for version in section.pythons if version != python)
            if section.modules == wanted and not joined:
                joined = True
                pythons = tuple(sorted((*pythons, python), key=_version_order))
                # Kept while the modules are: an update that changes no module changes no
                # line (suggestions move with the machine's noise at every measurement).
                suggested = section.suggested or suggested
            if pythons:
                sections.append(
                    replace(
                        section,
                        pythons=pythons,
                        suggested=suggested if section.modules == wanted else section.suggested,
                    )
                )
        if not joined:
            sections.append(LockSection(key, (python,), wanted, suggested))
        return Lock(_sorted(sections))

    def keeping(self, keys: Iterable[str]) -> Lock:
        """The lock without the sections of budgets not in ``keys`` (removed from pyproject)."""
        kept = set(keys)
        return Lock(
            tuple(
                section
                for section in self.sections
                if section.key in kept or section.key.removesuffix(LAZY_ALL_SUFFIX) in kept
            )
        )

    def format(self) -> str:
        """The file's text."""
        blocks = ["\n".join(section.lines()) for section in self.sections]
        return _HEADER + "".join(f"\n{block}\n" for block in blocks)

    @classmethod
    def parse(cls, text: str, source: str = LOCK_FILE) -> Lock:
        """Read a lock file's text; :class:`LockError` ``"importcache.lock:7: ..."`` otherwise."""
        sections: list[LockSection] = []
        current: LockSection | None = None
        start = 0
        seen: set[tuple[str, str]] = set()
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                if not line.endswith("]") or len(line) < 3:
                    raise LockError(f"{source}:{number}: {line!r} is not a section header [NAME]")
                _close(current, f"{source}:{start}", sections, seen)
                current, start = LockSection(line[1:-1].strip(), (), ()), number
            elif current is None:
                raise LockError(f"{source}:{number}: {line!r} comes before any [section]")
            else:
                current = _read_line(current, line, f"{source}:{number}")
        _close(current, f"{source}:{start}", sections, seen)
        return cls(_sorted(sections))


def _close(
    section: LockSection | None,
    where: str,
    sections: list[LockSection],
    seen: set[tuple[str, str]],
) -> None:
    """Add the section just read to ``sections``, checked: a version, each locked once."""
    if section is None:
        return
    if not section.pythons:
        raise LockError(f"{where}: section [{section.key}] has no python = line")
    for version in section.pythons:
        if (section.key, version) in seen:
            raise LockError(f"{where}: [{section.key}] is locked twice for Python {version}")
        seen.add((section.key, version))
    sections.append(section)


def _read_line(section: LockSection, line: str, where: str) -> LockSection:
    """``section`` with one more line of it read: ``python =``, ``suggested =`` or a module."""
    name, equals, value = (part.strip() for part in line.partition("="))
    if equals and name == "python":
        versions = tuple(value.split())
        if not versions or not all(_VERSION.fullmatch(version) for version in versions):
            raise LockError(
                f"{where}: python = {value!r}: expected Python builds such as 3.11-linux 3.12-linux"
            )
        return replace(section, pythons=versions)
    if equals and name == "suggested":
        return replace(section, suggested=value)
    if equals:
        raise LockError(f"{where}: unknown key {name!r} (expected python, suggested)")
    try:
        check_module_name(line)
    except LocateError:
        raise LockError(f"{where}: {line!r} is not a module name") from None
    return replace(section, modules=(*section.modules, line))


def _sorted(sections: Iterable[LockSection]) -> tuple[LockSection, ...]:
    """Sections in the file's order: by budget, then by first Python version."""
    return tuple(
        sorted(
            (replace(section, modules=tuple(sorted(set(section.modules)))) for section in sections),
            key=lambda section: (section.key, _version_order(section.pythons[0])),
        )
    )


def lock_changes(locked: Sequence[str], loaded: Iterable[str]) -> tuple[list[str], list[str]]:
    """The modules new since the lock (loaded, not locked) and gone (locked, not loaded), sorted."""
    loaded_set, locked_set = set(loaded), set(locked)
    return sorted(loaded_set - locked_set), sorted(locked_set - loaded_set)


def suggested_budgets(results: Mapping[str, ImportResult]) -> str:
    """The budgets to write for the measured flavours: ``cold="150ms", warm="25ms"``.

    30% above the fastest round (the budgets' default statistic), as the
    command line and failures suggest; ``results`` maps labels to results.
    """
    arguments = []
    metric = DEFAULT_METRIC
    for label in ("cold", "warm"):
        result = results.get(label)
        if result is not None and result.rounds:
            metric = result.metric
            figure = suggest_cost_budget(result.statistic(DEFAULT_STATISTIC), result.metric)
            arguments.append(f'{label}="{figure}"')
    if arguments and metric != DEFAULT_METRIC:
        arguments.append(f'metric="{metric}"')
    return ", ".join(arguments)


def load_lock(path: Path) -> Lock | None:
    """The lock file at ``path``, ``None`` when there is none; :class:`LockError` if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise LockError(f"{path}: cannot read: {reason or exc}") from None
    return Lock.parse(text, str(path))


def save_lock(path: Path, lock: Lock) -> None:
    """Write ``lock`` to ``path`` atomically: a reader sees the old file or the new one.

    The file keeps the old one's mode; a new one gets ``0o666`` less the umask,
    as any file the user writes.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    try:
        old_mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        old_mode = None
    # Created with 0o666, the umask applies: a new lock is as readable as the user's files.
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(lock.format())
        if old_mode is not None:
            os.chmod(temporary, old_mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def update_guard(path: Path, guard_dir: Path) -> Path:
    """The file lock in ``guard_dir`` that every update of the lock at ``path`` holds."""
    digest = hashlib.sha256(str(path.absolute()).encode()).hexdigest()[:16]
    return guard_dir / f"lock-update-{digest}.filelock"


def update_lock(path: Path, change: Callable[[Lock], Lock], guard_dir: Path) -> Lock:
    """Read the lock at ``path``, ``change`` it and write it back, one process at a time.

    Every process updating the same lock file (the workers of one run, two
    runs under two Python versions, ``check --update``) waits on one file lock
    in ``guard_dir`` (the per-user cache) named after the lock's absolute path,
    so that none loses the sections another wrote. Nothing is written beside
    the user's files but the lock itself. :class:`LockError` for a corrupt lock.
    """
    from filelock import FileLock  # noqa: PLC0415 - only an update pays for it

    with FileLock(update_guard(path, guard_dir)):
        updated = change(load_lock(path) or Lock())
        save_lock(path, updated)
    return updated


def changes_text(
    key: str,
    python: str,
    new: Sequence[tuple[str, Sequence[str]]],
    gone: Sequence[str],
    source: str = LOCK_FILE,
    *,
    update_hint: str = "",
) -> str:
    """The failure of a budget whose import loads other modules than the lock says.

    ``new`` holds each new module with its import chain; ``update_hint`` is
    how to update the lock (:data:`UPDATE_HINT` when empty).
    """
    lines = [f"{key} loads other modules than {source} says (Python {python}):"]
    lines += [f"    new: {name}: {' -> '.join(chain)}" for name, chain in new]
    lines += [f"    gone: {name}" for name in gone]
    lines.append(f"  {update_hint or UPDATE_HINT}")
    return "\n".join(lines)


def lock_source(results: Sequence[ImportResult]) -> ImportResult:
    """The measurement whose modules the lock holds: the warm one, else the first."""
    return next((result for result in results if result.label == "warm"), results[0])


@dataclass(frozen=True)
class LockCheck:
    """A budget's modules against the lock: what is new and gone, and the failure's text.

    ``failure`` is empty when the modules match; a budget the lock has no
    section for fails, its modules all ``new``.
    """

    python: str
    new: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()
    failure: str = ""

    def to_json(self) -> dict[str, object]:
        """The ``lock`` entry of ``check --json``."""
        return {"python": self.python, "new": list(self.new), "gone": list(self.gone)}


def check_lock(
    lock: Lock,
    key: str,
    python: str,
    results: Sequence[ImportResult],
    source: str = LOCK_FILE,
    *,
    update_hint: str = "",
) -> LockCheck:
    """Budget ``key``'s measurements (under the build ``python``) against ``lock``.

    ``update_hint`` says how to update the lock (:data:`UPDATE_HINT` when empty).
    """
    update_hint = update_hint or UPDATE_HINT
    result = lock_source(results)
    locked = lock.modules_for(key, python)
    if locked is None:
        return LockCheck(
            python,
            new=tuple(sorted(result.modules)),
            failure=f"{source} has no [{key}] section for Python {python}; {update_hint}",
        )
    new, gone = lock_changes(locked, result.modules)
    failure = ""
    if new or gone:
        failure = changes_text(
            key,
            python,
            [(name, result.chain(name)) for name in new],
            gone,
            source,
            update_hint=update_hint,
        )
    return LockCheck(python, tuple(new), tuple(gone), failure)


def lock_with(lock: Lock, key: str, python: str, results: Sequence[ImportResult]) -> Lock:
    """``lock`` with budget ``key``'s modules under ``python``, and its suggested budgets."""
    suggested = suggested_budgets({result.label: result for result in results})
    return lock.with_modules(key, python, lock_source(results).modules, suggested)


UPDATE_HINT = (
    "if that is intended, update the lock: pytest-importcache check --update "
    "(or pytest --importcache-update-lock)"
)
