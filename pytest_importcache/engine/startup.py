"""Start-up commands: what a command runs, and which package's copy its rounds use.

A start-up budget names a command as a user types it (``mycli --help``,
``python -m mylib --version``) or a ``code=`` snippet.
:func:`resolve_target` works out, in the interpreter under test, what a round
runs:

- a **console script** of an installed distribution: its entry point
  (``mylib.cli:main``) is read from the distribution's metadata by
  ``importlib.metadata`` in that interpreter (the wrapper file on ``PATH`` is
  never executed: its ``#!`` line may name another interpreter), and the
  round calls it with the interpreter under test, ``sys.argv[0]`` being the
  script's name;
- ``python`` (``python3``, ``python3.12``, or the interpreter's path: each
  means the interpreter under test) followed by ``-m MODULE ...`` or
  ``-c CODE ...``; no other interpreter option;
- a ``code=`` snippet, run as ``python -c`` runs it.

The **package under test** (:func:`startup_spec` puts it in ``spec.module``)
is the top-level package of the entry module, of the ``-m`` module, or of the
first module the snippet imports (found with :mod:`ast`, in source order: the
first outside the standard library, else the first standard library module
that is not built in). A snippet that imports no such module (``pass``,
``import sys``) has no package whose copy could be cold or warm: that is a
:class:`~pytest_importcache.model.errors.SpecError` saying so, rather than a
measurement of nothing in particular.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pytest_importcache.model.errors import CommandNotFoundError, SpecError
from pytest_importcache.model.spec import MeasurementSpec, StartupCommand

__all__ = ["StartupTarget", "first_imported_package", "resolve_target", "startup_spec"]

TargetKind = Literal["entry", "module", "code"]
_PROBE_TIMEOUT = 60.0
# Installers' wrappers are a few hundred bytes; anything far larger is not one.
_WRAPPER_LIMIT = 64 * 1024
_PYTHON_WORD = re.compile(r"python(\d+(\.\d+)?)?")

# Runs in the interpreter under test: the console script's entry point, from metadata
# only, and the wrapper file its installer wrote (listed in the distribution's files,
# else in the interpreter's scripts directory), if there is one.
_ENTRY_POINT_PROBE = """\
import json, os, sys, sysconfig
sys.path[0:0] = sys.argv[2:]
from importlib.metadata import distributions
found = None
for dist in distributions():
    for entry in dist.entry_points:
        if entry.group == "console_scripts" and entry.name == sys.argv[1]:
            found = {"value": entry.value, "distribution": dist.metadata["Name"]}
            break
    if found:
        listed = [dist.locate_file(f) for f in dist.files or () if f.name == sys.argv[1]]
        listed.append(os.path.join(sysconfig.get_path("scripts"), sys.argv[1]))
        found["wrapper"] = next((str(p) for p in listed if os.path.isfile(p)), None)
        break
sys.stdout.write(json.dumps(found))
"""


@dataclass(frozen=True)
class StartupTarget:
    """What a start-up round runs: ``kind`` (``entry``, ``module``, ``code``) and ``target``.

    ``target`` is ``module:attr`` (an entry point), a module name, or a
    snippet; ``argv0`` is the ``sys.argv[0]`` the command sees and
    ``arguments`` follow it. ``package`` is the package under test's
    top-level name; ``distribution`` the console script's distribution.
    ``wrapper`` is the console script's file as its installer wrote it, when
    that is Python (see :func:`python_wrapper`): the round runs its code, so
    what the wrapper imports (an older pip's wrapper imports ``re``, a newer
    one does not) is counted as the user's command pays for it.
    """

    kind: TargetKind
    target: str
    argv0: str
    arguments: tuple[str, ...]
    package: str | None
    distribution: str | None = None
    wrapper: str | None = None


def python_wrapper(path: object) -> str | None:
    """``path`` when it is a console script wrapper made of Python source, else ``None``.

    A wrapper is a small text file (``#!`` line, imports, ``sys.exit(main())``);
    a binary launcher or a file that is not Python gives ``None``, and the
    round calls the entry point itself.
    """
    if not isinstance(path, str):
        return None
    try:
        with open(path, "rb") as file:
            source = file.read(_WRAPPER_LIMIT + 1)
        if len(source) > _WRAPPER_LIMIT:
            return None
        compile(source, path, "exec")
    except (OSError, SyntaxError, ValueError):
        return None
    return path


def _top(module: str) -> str:
    return module.strip().partition(".")[0].partition(":")[0]


def first_imported_package(code: str) -> str | None:
    """The top-level name of the first module ``code`` imports that has a package to copy.

    In source order (imports inside functions after the others), the first
    import outside the standard library; else the first standard library
    module that is not built into the interpreter; else ``None``. Relative
    imports are skipped. :class:`SpecError` when
    ``code`` is not Python.
    """
    __tracebackhide__ = True
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise SpecError(
            f"code {code!r} is not valid Python: {exc.msg} (line {exc.lineno})"
        ) from None
    executed: list[tuple[int, int, str]] = []  # run as the snippet runs
    deferred: list[tuple[int, int, str]] = []  # inside a function: run when it is called
    pending: list[tuple[ast.AST, bool]] = [(tree, False)]
    while pending:
        node, in_function = pending.pop()
        found = executed if not in_function else deferred
        if isinstance(node, ast.Import):
            found += [(node.lineno, node.col_offset, _top(alias.name)) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.col_offset, _top(node.module)))
        inside = in_function or isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        )
        pending += [(child, inside) for child in ast.iter_child_nodes(node)]
    names = [name for _, _, name in sorted(executed)] + [name for _, _, name in sorted(deferred)]
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    for name in names:
        if name not in stdlib and name not in sys.builtin_module_names:
            return name
    for name in names:
        if name not in sys.builtin_module_names:
            return name
    return None


def _is_python(word: str, python: str) -> bool:
    """Whether ``word`` names the interpreter under test (``python``, ``python3``, its path)."""
    if _PYTHON_WORD.fullmatch(os.path.basename(word)):
        return True
    found = shutil.which(word)
    return found is not None and os.path.realpath(found) == os.path.realpath(python)


def _python_target(command: StartupCommand) -> StartupTarget:
    """``python -m MODULE ...`` or ``python -c CODE ...``; one line for anything else."""
    __tracebackhide__ = True
    words = command.argv
    if len(words) >= 3 and words[1] == "-m":
        module = words[2]
        if not all(part.isidentifier() for part in module.split(".")):
            raise CommandNotFoundError(f"{command.label!r}: {module!r} is not a module name")
        return StartupTarget("module", module, "-m", words[3:], _top(module))
    if len(words) >= 3 and words[1] == "-c":
        return StartupTarget("code", words[2], "-c", words[3:], first_imported_package(words[2]))
    shown = " ".join(words[1:2]) or "nothing"
    raise CommandNotFoundError(
        f"{command.label!r}: a start-up command runs python with -m MODULE or -c CODE, "
        f"not {shown} (no other interpreter option: rounds start as rounds do)"
    )


def _entry_point(python: str, name: str, search_path: Sequence[str]) -> dict[str, Any] | None:
    """The console script ``name``'s entry point in ``python``'s distributions, or ``None``."""
    __tracebackhide__ = True
    try:
        completed = subprocess.run(
            [python, "-I", "-c", _ENTRY_POINT_PROBE, name, *search_path],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CommandNotFoundError(
            f"cannot ask {python} for the console script {name!r}: {exc}"
        ) from None
    try:
        found = json.loads(completed.stdout)
    except ValueError:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise CommandNotFoundError(
            f"cannot read {python}'s console scripts to find {name!r}: {last}"
        ) from None
    return found if isinstance(found, dict) else None


@functools.lru_cache(maxsize=128)
def resolve_target(
    command: StartupCommand, python: str, search_path: tuple[str, ...] = ()
) -> StartupTarget:
    """What a round of ``command`` runs under the interpreter ``python`` (an absolute path).

    ``search_path`` is searched for distributions before ``python``'s own
    site-packages. Raises :class:`CommandNotFoundError` (one line) for a
    command that is neither a console script of ``python``'s distributions
    nor ``python``, and :class:`SpecError` for a snippet that is not Python.
    Cached per process.
    """
    __tracebackhide__ = True
    if command.code is not None:
        return StartupTarget("code", command.code, "-c", (), first_imported_package(command.code))
    first = command.argv[0]
    if _is_python(first, python):
        return _python_target(command)
    name = os.path.basename(first)
    found = _entry_point(python, name, search_path)
    if found is None:
        on_path = shutil.which(first)
        where = (
            f"{first!r} is {on_path}, but no console script"
            if on_path
            else f"command {first!r} not found: no console script of that name"
        )
        raise CommandNotFoundError(
            f"{where} of a distribution installed for {python} (a start-up budget runs "
            "console scripts, python -m MODULE and python -c CODE)"
        )
    value = str(found["value"]).split("[")[0].strip()  # an old-style "mod:attr [extra]"
    return StartupTarget(
        "entry",
        value,
        name,
        command.argv[1:],
        _top(value),
        str(found.get("distribution") or "") or None,
        python_wrapper(found.get("wrapper")),
    )


def startup_spec(command: StartupCommand, **spec_fields: Any) -> MeasurementSpec:
    """A start-up round's spec: ``command``, resolved in the interpreter under test.

    ``spec_fields`` are :class:`MeasurementSpec`'s other fields (``python``,
    ``flavour``, ``rounds``, ``metric``, ``exit_code``, ...); ``module`` is
    filled in with the package under test (see the module's docstring).
    Raises :class:`CommandNotFoundError` for an unknown console script or
    command, :class:`SpecError` for a snippet that is not Python or has no
    package to copy.
    """
    __tracebackhide__ = True
    # Not at the top: the measurer's modules (count keys) import this one.
    from .measurer import resolve_python, round_import_path  # noqa: PLC0415

    if "module" in spec_fields or "command" in spec_fields:
        raise SpecError("startup_spec takes the command first, and finds the module itself")
    python = resolve_python(spec_fields.get("python"))
    import_path = spec_fields.get("import_path")
    search_path = tuple(import_path) if import_path is not None else round_import_path(sys.path)
    target = resolve_target(command, python, search_path)
    if target.package is None:
        raise SpecError(
            f"{command.label!r} imports no package: a start-up round runs a package's cold "
            "or warm copy, so the snippet must import it (code='import mylib; ...')"
        )
    return MeasurementSpec(target.package, command=command, **spec_fields)
