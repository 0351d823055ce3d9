"""A round's command line and environment: what starts the child, and with what.

The child is :mod:`pytest_importcache.engine.child`'s script, run by path:
``python -I -S main.py MODULE REPORT METRIC ...`` for a timed round (under
``-X importtime``), ``-s -S`` instead of ``-I -S`` under valgrind's callgrind
for a counted one, in a fixed environment with a fixed hash seed
(:func:`child_environment`). :func:`counted_round_command` is the one
definition both the round and the key of its stored count use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_importcache.model.errors import InterpreterError
from pytest_importcache.model.spec import LazyImportsMode, Metric

from .callgrind import VALGRIND_SLOWDOWN, callgrind_command, find_valgrind
from .child import CHILD_SCRIPT
from .interpreter import check_interpreter, interpreter_binary
from .lifecycle import ROUND_TOKEN_VARIABLE

__all__ = [
    "COUNTED_ENVIRONMENT_VARIABLE",
    "DUMPS_NAME",
    "LAZY_IMPORTS_VERSION",
    "REPORT_NAME",
    "RoundCommand",
    "check_lazy_imports",
    "child_command",
    "child_environment",
    "counted_round_command",
    "interpreter_command",
    "round_command",
    "round_pycache_prefix",
]

REPORT_NAME = "report.json"
DUMPS_NAME = "callgrind"


def _optimize_flags(optimize: int) -> list[str]:
    """The interpreter flags of an optimisation level: none, ``-O`` or ``-OO``."""
    return ["-" + "O" * optimize] if optimize else []


def interpreter_command(
    python: str,
    *,
    metric: Metric,
    optimize: int,
    pycache_prefix: Path | None,
    lazy_imports: LazyImportsMode | None,
    importtime: bool = False,
) -> list[str]:
    """A round's interpreter and its flags, before the child's script (import and start-up rounds).

    ``importtime`` adds ``-X importtime`` to a timed round (never to a counted
    one: its rows would be counted with the import).
    """
    # -S: start-up without .pth import lines or sitecustomize; the child runs `site` itself.
    if metric == "time":
        command = [python, "-I", "-S", *_optimize_flags(optimize)]
        command += ["-X", "importtime"] if importtime else []
    else:
        # Not -I, which would ignore PYTHONHASHSEED: the environment is cleaned
        # instead (child_environment), and the child drops its script's directory (3.10).
        command = [python, "-s", "-S", *_optimize_flags(optimize)]
    if pycache_prefix is not None:
        command += ["-X", f"pycache_prefix={pycache_prefix}"]
    if lazy_imports == "all":
        command += ["-X", "lazy_imports=all"]
    return command


def child_command(
    python: str,
    module: str,
    roots: Sequence[Path],
    report_path: Path,
    *,
    optimize: int = 0,
    pycache_prefix: Path | None = None,
    metric: Metric = "time",
    import_path: Sequence[str] = (),
    source_only: Sequence[str] = (),
    lazy_imports: LazyImportsMode | None = None,
) -> list[str]:
    """The command line of one round's child interpreter.

    ``import_path`` is searched after ``roots``; modules under ``source_only``
    are compiled in every round (see :func:`~pytest_importcache.engine.runner.run_round`).
    ``lazy_imports="all"`` runs it under ``-X lazy_imports=all`` (PEP 810);
    ``"normal"`` is what a round does without the option (its environment
    holds no ``PYTHON_LAZY_IMPORTS``), so it adds nothing and keys a stored count
    as no mode does.
    """
    return [
        *interpreter_command(
            python,
            metric=metric,
            optimize=optimize,
            pycache_prefix=pycache_prefix,
            lazy_imports=lazy_imports,
            importtime=True,
        ),
        str(CHILD_SCRIPT),
        module,
        str(report_path),
        metric,
        str(len(roots)),
        *map(str, roots),
        str(len(import_path)),
        *import_path,
        *source_only,
    ]


# Variables that make start-up code import things before the measured import:
# Python's own (ignored under -I anyway, but the import's own subprocesses would
# see them) and coverage.py's subprocess measurement, which a .pth file starts.
# VALGRIND_OPTS would change what callgrind counts and where it writes.
_IMPORT_STEERING_PREFIXES = ("PYTHON", "COVERAGE_", "COV_CORE_", "VALGRIND_")
# What pytest and pytest-xdist set per test and per worker, left out of timed
# rounds too: the child's start-up decodes its whole environment, so a test's
# name must not reach what a round measures (counted rounds keep none of it).
_PER_TEST_VARIABLES = ("PYTEST_CURRENT_TEST", "PYTEST_XDIST_")


# What a counted round's interpreter is given of the caller's environment:
# only what may be needed to start it at all, and the variables the user names
# in COUNTED_ENVIRONMENT_VARIABLE (an import that reads one to import at all).
# Everything else (pytest's PYTEST_CURRENT_TEST, a CI job's run number, the
# shell's PWD and `_`) moved counts by thousands between the command line and
# pytest: the environment's size and contents reach the heap and dictionaries.
_COUNTED_PASSED_THROUGH = ("LD_LIBRARY_PATH",)
COUNTED_ENVIRONMENT_VARIABLE = "IMPORTCACHE_COUNTED_ENV"


def child_environment(
    round_token: str | None = None, *, metric: Metric = "time", home: Path | None = None
) -> dict[str, str]:
    """The environment of a round's interpreter.

    A timed round gets the caller's environment without the variables that
    steer imports. An instructions round gets a fixed one instead, so that an
    import counts the same wherever it is measured: ``PATH`` is
    :data:`os.defpath`, ``HOME`` is ``home`` (the round's own directory: no
    user configuration is read), the hash seed is fixed (with random ones the
    count varies by a few tenths of a percent), ``PYTHONSAFEPATH`` keeps the
    current directory off the path, and nothing else of the
    caller's is kept but ``LD_LIBRARY_PATH`` and the variables named in
    ``IMPORTCACHE_COUNTED_ENV`` (comma- or space-separated: what an import
    needs to import at all, such as ``DJANGO_SETTINGS_MODULE``). With ``round_token``, the
    environment also carries the round's token, by which whatever the round
    starts is found and ended afterwards.
    """
    if metric == "instructions":
        named = os.environ.get(COUNTED_ENVIRONMENT_VARIABLE, "").replace(",", " ").split()
        environment = {
            key: os.environ[key]
            for key in (*_COUNTED_PASSED_THROUGH, *sorted(set(named)))
            if key in os.environ
        }
        environment["PATH"] = os.defpath
        environment["HOME"] = str(home) if home is not None else os.devnull
        environment["PYTHONHASHSEED"] = "0"
        # No script directory on the path (3.11+): whatever start-up imports
        # before the child's first line must not list the child's directory.
        environment["PYTHONSAFEPATH"] = "1"
    else:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_IMPORT_STEERING_PREFIXES + _PER_TEST_VARIABLES)
            and key != ROUND_TOKEN_VARIABLE
        }
    if round_token is not None:
        environment[ROUND_TOKEN_VARIABLE] = round_token
    # The round itself writes bytecode as configured (-I ignores this, and an
    # instructions round resets it); the interpreters the import starts write none.
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment


# The first CPython with PEP 810's lazy imports and -X lazy_imports.
LAZY_IMPORTS_VERSION = (3, 15)


def check_lazy_imports(python: str, lazy_imports: LazyImportsMode | None) -> None:
    """Raise :class:`InterpreterError` in one line when ``python`` cannot run ``lazy_imports``.

    ``"all"`` needs PEP 810 (CPython 3.15+): an older interpreter ignores an
    unknown ``-X`` option and would measure normal imports under that name.
    """
    __tracebackhide__ = True
    if lazy_imports != "all":
        return
    version = check_interpreter(python)
    if tuple(version[:2]) < LAZY_IMPORTS_VERSION:
        raise InterpreterError(
            f"lazy_imports='all' needs PEP 810's lazy imports (Python 3.15 or newer); "
            f"{python} is Python {'.'.join(map(str, version))}"
        )


def round_pycache_prefix(workdir: Path, index: int, *, closure: bool) -> Path | None:
    """Round ``index``'s bytecode directory in its rounds directory ``workdir`` (closure only)."""
    return workdir / f"pycache-{index}" if closure else None


def counted_round_command(
    valgrind: str,
    binary: str,
    module: str,
    roots: Sequence[Path],
    workdir: Path,
    *,
    optimize: int,
    pycache_prefix: Path | None,
    module_costs: bool,
    import_path: Sequence[str],
    source_only: Sequence[str],
    lazy_imports: LazyImportsMode | None = None,
) -> list[str]:
    """The whole command line of an instructions round run in ``workdir``: callgrind, the child.

    The one definition both the round
    (:func:`~pytest_importcache.engine.runner.run_round`) and the key of its
    stored count (:mod:`~pytest_importcache.engine.countstore`) use.
    """
    return [
        *callgrind_command(valgrind, workdir / DUMPS_NAME, detailed=module_costs),
        *child_command(
            binary,
            module,
            roots,
            workdir / REPORT_NAME,
            optimize=optimize,
            pycache_prefix=pycache_prefix,
            metric="instructions",
            import_path=import_path,
            source_only=source_only,
            lazy_imports=lazy_imports,
        ),
    ]


@dataclass(frozen=True)
class RoundCommand:
    """How one round is started, and how long it may take."""

    argv: list[str]
    timeout: float
    timeout_text: str


def round_command(
    module: str,
    roots: Sequence[Path],
    workdir: Path,
    *,
    python: str,
    optimize: int,
    timeout: float,
    pycache_prefix: Path | None,
    metric: Metric,
    module_costs: bool,
    import_path: Sequence[str],
    source_only: Sequence[str],
    lazy_imports: LazyImportsMode | None = None,
) -> RoundCommand:
    """The round's command line: the interpreter, under callgrind for instructions.

    A counted round's dumps directory is created in ``workdir``; raises
    :class:`~pytest_importcache.model.errors.MetricUnavailableError` without valgrind,
    :class:`~pytest_importcache.model.errors.InterpreterError` for ``lazy_imports="all"``
    under an interpreter without PEP 810 (:func:`check_lazy_imports`).
    """
    __tracebackhide__ = True
    check_lazy_imports(python, lazy_imports)
    if metric == "time":
        argv = child_command(
            python,
            module,
            roots,
            workdir / REPORT_NAME,
            optimize=optimize,
            pycache_prefix=pycache_prefix,
            import_path=import_path,
            source_only=source_only,
            lazy_imports=lazy_imports,
        )
        return RoundCommand(argv, timeout, f"{timeout:g} s")
    valgrind = find_valgrind()
    (workdir / DUMPS_NAME).mkdir()
    argv = counted_round_command(
        valgrind,
        interpreter_binary(python),
        module,
        roots,
        workdir,
        optimize=optimize,
        pycache_prefix=pycache_prefix,
        module_costs=module_costs,
        import_path=import_path,
        source_only=source_only,
        lazy_imports=lazy_imports,
    )
    return RoundCommand(
        argv, timeout * VALGRIND_SLOWDOWN, f"{timeout:g} s x {VALGRIND_SLOWDOWN} for valgrind"
    )
