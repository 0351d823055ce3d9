"""pyproject.toml budgets as pytest items: one per entry of ``[tool.importcache] budgets``.

As pytest-mypy and pytest-ruff collect their checks from files, the plugin's
``pytest_collect_file`` hands the rootdir's pyproject.toml to
:class:`BudgetsFile`, which yields one :class:`BudgetItem` per entry, named
``pyproject.toml::importcache[mylib]`` (stable, so ``-k``, ``--lf`` and xdist
work on them). Each item carries the marker its entry stands for
(:mod:`pytest_importcache.model.config`), so the worker's role
(:mod:`~pytest_importcache.pytest.enforcer`) measures and judges it exactly as
a marked test: the same failure texts, summary, storage, A/B, report and
markdown. A malformed entry is an item that errors at setup in one line naming
the entry and the key; the other budgets still run (a collection error would
stop the whole session). A table that cannot be read at all (not TOML, an
unknown key in ``[tool.importcache]``, ``budgets`` not an array) is one
:class:`TableErrorItem` erring at setup the same way. The body of an item checks (or, with
``--importcache-update-lock``, writes) ``importcache.lock``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_importcache.model.config import PYPROJECT, ConfigBudget, load_budgets
from pytest_importcache.model.errors import ConfigError, ImportCacheError, LockError
from pytest_importcache.model.lock import (
    LOCK_FILE,
    Lock,
    check_lock,
    load_lock,
    lock_source,
    lock_with,
    python_key,
    section_key,
    update_lock,
)

from .enforcer import ENFORCER_KEY
from .recording import DEFERRED_FAILURE_KEY, fail_recorded, recorded

if TYPE_CHECKING:
    from pytest_importcache.model.result import ImportResult

__all__ = ["BudgetItem", "BudgetsFile", "TableErrorItem", "budgets_file", "lock_place"]

#: The name of the item standing for a ``[tool.importcache]`` table that cannot be read.
TABLE_ITEM_NAME = "importcache[tool.importcache]"


def budgets_file(file_path: Path, parent: pytest.Collector) -> BudgetsFile | None:
    """The collector of ``file_path`` when it is the rootdir's pyproject.toml with budgets."""
    if file_path.name != PYPROJECT or file_path.parent != parent.config.rootpath:
        return None
    try:
        # A cheap look before parsing: most projects' pyproject.toml has no budgets.
        if b"importcache" not in file_path.read_bytes():
            return None
    except OSError:
        return None
    return BudgetsFile.from_parent(parent, path=file_path)


class BudgetsFile(pytest.File):
    """pyproject.toml as a collector: one item per budget of ``[tool.importcache]``."""

    def collect(self) -> Iterator[pytest.Item]:
        """One item per entry, malformed ones included (they error at setup)."""
        try:
            budgets = load_budgets(self.path)
        except ConfigError as exc:
            # The table itself is unusable: one item says so, and the session goes on
            # (a collection error would interrupt it).
            yield TableErrorItem.from_parent(
                self,
                name=TABLE_ITEM_NAME,
                nodeid=f"{self.nodeid}::{TABLE_ITEM_NAME}",
                problem=str(exc).replace(str(self.path), self.path.name),
            )
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for budget in budgets:
            # Given whole, the node id is parsed as --lf parses the ids it saved
            # (pytest 9 reads "importcache[mylib]" as a name and its parameters).
            nodeid = f"{self.nodeid}::{budget.name}"
            yield BudgetItem.from_parent(
                self,
                name=budget.name,
                nodeid=nodeid,
                budget=budget,
                line=_entry_line(lines, budget),
            )


class TableErrorItem(pytest.Item):
    """A ``[tool.importcache]`` table no budget can be read from: errors at setup in one line."""

    def __init__(self, *, problem: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problem = problem

    def setup(self) -> None:
        """Fail with the table's problem, naming the file."""
        pytest.fail(self.problem, pytrace=False)

    def runtest(self) -> None:
        """Never reached: setup fails."""

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where the problem is: pyproject.toml's ``[tool.importcache]`` table."""
        return self.path, 0, "[tool.importcache]"


def _entry_line(lines: list[str], budget: ConfigBudget) -> int:
    """The line (0-based) of ``budget``'s entry, near enough for reports: where its target is."""
    start = next(
        (index for index, line in enumerate(lines) if line.strip().startswith("budgets")), 0
    )
    if budget.target:
        quoted = (f'"{budget.target}"', f"'{budget.target}'")
        for index in range(start, len(lines)):
            if any(text in lines[index] for text in quoted):
                return index
    return start


class BudgetItem(pytest.Item):
    """One budget of pyproject.toml, judged like a test carrying its marker."""

    def __init__(self, *, budget: ConfigBudget, line: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.line = line
        self.budget = budget
        if not budget.problem:
            marker = getattr(pytest.mark, budget.marker)
            self.add_marker(marker(*budget.args, **budget.kwargs))

    def setup(self) -> None:
        """A malformed entry errors here, in one line naming it and the key."""
        if self.budget.problem:
            pytest.fail(f"{PYPROJECT} {self.budget.problem}", pytrace=False)

    #: The enforcer hands this item its budgets' failure instead of failing it before
    #: the body: the body checks the lock too, and fails with both.
    defers_budget_failure = True

    def runtest(self) -> None:
        """Check the modules the budget's import loaded against ``importcache.lock``.

        The budget itself was measured and judged before (as a marked test's);
        an overspent budget fails here, with the lock's failure beside it, as
        ``check`` reports both. With ``--importcache-update-lock`` the lock is
        written instead, for an overspent budget too.
        """
        failures = [self.stash.get(DEFERRED_FAILURE_KEY, "")]
        if DEFERRED_FAILURE_KEY in self.stash:  # a rerun judges afresh
            del self.stash[DEFERRED_FAILURE_KEY]
        results = [entry.result for entry in recorded(self)]
        if results:
            enforcer = self.config.stash[ENFORCER_KEY]
            lock_path = self.path.with_name(LOCK_FILE)
            try:
                key, python = lock_place(self.budget, results, enforcer.settings.lazy_imports)
            except ImportCacheError as exc:  # the interpreter's build cannot be asked
                failures.append(f"{LOCK_FILE}: {str(exc).splitlines()[0]}")
            else:
                if enforcer.settings.update_lock:
                    failures.append(_update_lock(lock_path, key, python, results))
                else:
                    lock_failure, modules_differ = _check_lock(lock_path, key, python, results)
                    if modules_differ:  # the measurements' own failure; an unreadable lock is not
                        fail_recorded(self)
                    failures.append(lock_failure)
        text = "\n\n".join(failure for failure in failures if failure)
        if text:
            pytest.fail(text, pytrace=False)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> Any:
        """A one-line error names the entry first; budget-exceeded texts stay as tests show them."""
        failed = excinfo.value
        if isinstance(failed, pytest.fail.Exception) and not failed.pytrace:
            text = str(failed.msg)
            if "\n" not in text and not text.startswith(PYPROJECT):
                return f"{PYPROJECT} {self.budget.where}: {text}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where the budget is: pyproject.toml, the entry's line, and the entry."""
        return self.path, self.line, f"[tool.importcache] {self.budget.where}"


def lock_place(
    budget: ConfigBudget, results: Sequence[ImportResult], lazy_imports: str | None = None
) -> tuple[str, str]:
    """Where ``budget``'s measurements go in the lock: its section key and the Python build.

    ``lazy_imports`` is the run's mode (``--importcache-lazy-imports``), for a
    budget without its own: a lazy-all measurement has sections apart.
    """
    from pytest_importcache.engine.interpreter import interpreter_build  # noqa: PLC0415

    result = lock_source(results)
    platform, free_threaded = interpreter_build(result.python)
    mode = budget.kwargs.get("lazy_imports") or lazy_imports
    python = python_key(result.python_version, platform, free_threaded=free_threaded)
    return section_key(budget.lock_key, mode if isinstance(mode, str) else None), python


def _update_lock(lock_path: Path, key: str, python: str, results: list[ImportResult]) -> str:
    """Write the budget's modules into the lock (other budgets, builds kept); or a problem."""
    from pytest_importcache.engine.cache import default_cache_dir  # noqa: PLC0415 - start-up cost

    def change(lock: Lock) -> Lock:
        return lock_with(lock, key, python, results)

    try:
        # Every process updating this lock (xdist workers, other runs) waits its turn.
        update_lock(lock_path, change, default_cache_dir())
    except LockError as exc:
        return f"{exc} (fix or remove it to update it)"
    except OSError as exc:
        return f"{lock_path}: cannot write: {exc.strerror or exc}"
    return ""


def _check_lock(
    lock_path: Path, key: str, python: str, results: list[ImportResult]
) -> tuple[str, bool]:
    """The lock's failure for the budget's modules (or ``""``), and whether the modules differ.

    A corrupt lock is a failure too, but its modules were not checked.
    """
    try:
        lock = load_lock(lock_path)
    except LockError as exc:
        return str(exc), False
    if lock is None:  # no lock, no lock check
        return "", False
    failure = check_lock(lock, key, python, results).failure
    return failure, bool(failure)
