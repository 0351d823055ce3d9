"""Start-up commands: what a command runs, and which package's copy its rounds use.

A start-up budget names a command as a user types it (``mycli --help``,
``python -m mylib --version``) or a ``code=`` snippet.
:func:`resolve_target` works out, in the interpreter under test, what a round
runs:

- a **console script** of an installed distribution: its entry point
  (``mylib.cli:main``) is read from the distribution's metadata by
  ``importlib.metadata`` in that interpreter, and the round runs the wrapper
  file its installer wrote (the code of the file, run by the interpreter under
  test: its ``#!`` line, which may name another interpreter, is not followed),
  ``sys.argv[0]`` being the wrapper's path; without a wrapper made of Python
  source (a binary launcher), the round calls the entry point itself with the
  script's name as ``sys.argv[0]``. Both come from the installed distribution:
  an A/B run against a revision runs the same entry point and wrapper;
- ``python`` or ``python3`` (the interpreter under test), or a path or a
  versioned name (``python3.12``) that resolves to the interpreter under test,
  followed by ``-m MODULE ...`` or ``-c CODE ...``; no other interpreter
  option. A path or versioned name that is another interpreter is a
  :class:`~pytest_importcache.model.errors.CommandNotFoundError`: a round runs
  the interpreter under test only. In names and labels the interpreter's path
  is shown as ``python`` (a name must not depend on the machine);
- a ``code=`` snippet, run as ``python -c`` runs it.

The **package under test** (:func:`startup_spec` puts it in ``spec.module``)
is the top-level package of the entry module, of the ``-m`` module, or of the
first module the snippet imports (found with :mod:`ast`, in source order: the
first outside the standard library, else the first standard library module
that is not built in; a snippet in syntax the running interpreter does not
know, ``lazy import`` before 3.15, is read by the interpreter under test, and
the standard library is always that interpreter's). A snippet that imports no such module (``pass``,
``import sys``) has no package whose copy could be cold or warm: that is a
:class:`~pytest_importcache.model.errors.SpecError` saying so, rather than a
measurement of nothing in particular.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pytest_importcache.model.errors import CommandNotFoundError, SpecError
from pytest_importcache.model.spec import MeasurementSpec, StartupCommand

from .interpreter import check_interpreter, is_running_interpreter, stdlib_module_names
from .processwait import exit_description

__all__ = [
    "StartupTarget",
    "displayed_command",
    "first_imported_package",
    "resolve_target",
    "startup_spec",
]

TargetKind = Literal["entry", "module", "code"]
_PROBE_TIMEOUT = 60.0
# Snippets longer than this are parsed in a process of their own (see first_imported_package).
_IN_PROCESS_LIMIT = 20_000
# Installers' wrappers are a few hundred bytes; anything far larger is not one.
_WRAPPER_LIMIT = 64 * 1024
_PYTHON_WORD = re.compile(r"python(\d+(?:\.\d+)?)?")
# These always mean the interpreter under test, wherever it is.
_PLAIN_PYTHON = frozenset({"python", "python3"})

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
        found["wrapper"] = next((os.path.normpath(p) for p in listed if os.path.isfile(p)), None)
        break
sys.stdout.write(json.dumps(found))
"""


# The top-level names a snippet imports, in the order they run (imports inside functions
# after the others; relative imports skipped): run here, and as a probe by the interpreter
# under test for a snippet in syntax only it knows.
_IMPORT_ORDER_SOURCE = """\
import ast


def import_order(code):
    executed, deferred = [], []  # as the snippet runs; inside a function, when it is called
    pending = [(ast.parse(code), False)]
    while pending:
        node, in_function = pending.pop()
        found = deferred if in_function else executed
        if isinstance(node, ast.Import):
            found += [(node.lineno, node.col_offset, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.col_offset, node.module))
        function = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
        inside = in_function or isinstance(node, function)
        pending += [(child, inside) for child in ast.iter_child_nodes(node)]
    return [name.strip().partition(".")[0] for _, _, name in sorted(executed) + sorted(deferred)]
"""
_IMPORT_ORDER_PROBE = (
    _IMPORT_ORDER_SOURCE
    + """
import json, sys
try:
    answer = {"names": import_order(sys.stdin.buffer.read().decode("utf-8"))}
except SyntaxError as exc:
    answer = {"error": f"{exc.msg} (line {exc.lineno})"}
except (ValueError, MemoryError, RecursionError) as exc:
    answer = {"error": f"{type(exc).__name__}: {exc}", "unparsable": True}
else:
    answer["stdlib"] = sorted(getattr(sys, "stdlib_module_names", ()))
    answer["builtin"] = sorted(sys.builtin_module_names)
sys.stdout.write(json.dumps(answer))
"""
)


def _compile_import_order() -> Callable[[str], list[str]]:
    namespace: dict[str, Any] = {}
    exec(compile(_IMPORT_ORDER_SOURCE, __file__, "exec"), namespace)
    return namespace["import_order"]  # type: ignore[no-any-return]


_IMPORT_ORDER = _compile_import_order()


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


def first_imported_package(code: str, python: str | None = None) -> str | None:
    """The top-level name of the first module ``code`` imports that has a package to copy.

    In source order (imports inside functions after the others), the first
    import outside the standard library of ``python`` (the interpreter under
    test; ``None`` = the running one); else the first standard library module
    that is not built into the interpreter; else ``None``. Relative imports
    are skipped. A snippet the running interpreter cannot parse is read by
    ``python``, which may know newer syntax. :class:`SpecError` (one line)
    when ``code`` is not Python there either.
    """
    __tracebackhide__ = True
    host = python is None or is_running_interpreter(python)
    if len(code) > _IN_PROCESS_LIMIT:
        # A very long snippet can overflow the C stack of an older parser (3.10 on
        # 200,000 terms added up): read in a process of its own, a crash is one line.
        names, stdlib, builtin = _import_order_in(python or sys.executable, code)
        return _first_with_a_package(names, stdlib, builtin)
    try:
        names = _IMPORT_ORDER(code)
    except SyntaxError as exc:
        if host:
            raise SpecError(
                f"code {code!r} is not valid Python: {exc.msg} (line {exc.lineno})"
            ) from None
        assert python is not None
        names, stdlib, builtin = _import_order_in(python, code)
    except (ValueError, MemoryError, RecursionError) as exc:  # a surrogate, NUL, deep nesting
        raise SpecError(f"code {_shown(code)} cannot be parsed: {_problem(exc)}") from None
    else:
        stdlib = frozenset(sys.stdlib_module_names) if host else stdlib_module_names(python or "")
        builtin = frozenset(sys.builtin_module_names)
    return _first_with_a_package(names, stdlib, builtin)


def _first_with_a_package(
    names: list[str], stdlib: frozenset[str], builtin: frozenset[str]
) -> str | None:
    """The first of ``names`` outside the standard library, else the first not built in."""
    for name in names:
        if name not in stdlib and name not in builtin:
            return name
    for name in names:
        if name not in builtin:
            return name
    return None


def _shown(code: str) -> str:
    """``code`` for a message: one line, cut when long."""
    text = repr(code)
    return text if len(text) <= 80 else text[:77] + "..."


def _problem(exc: BaseException) -> str:
    """``exc`` in a few words, for a one-line message."""
    text = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import_order_in(python: str, code: str) -> tuple[list[str], frozenset[str], frozenset[str]]:
    """``code``'s imports in run order, as ``python`` parses it, and its standard library."""
    __tracebackhide__ = True
    try:
        completed = subprocess.run(
            [python, "-I", "-c", _IMPORT_ORDER_PROBE],
            input=code.encode("utf-8", "surrogatepass"),
            capture_output=True,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpecError(
            f"code {_shown(code)}: cannot ask {python} to parse it: {_problem(exc)}"
        ) from None
    if completed.returncode < 0:  # the parser itself crashed (3.10 on a very deep snippet)
        raise SpecError(
            f"code {_shown(code)} cannot be parsed: the parser of {python} crashed "
            f"({exit_description(completed.returncode)})"
        )
    try:
        answer = json.loads(completed.stdout)
    except ValueError as exc:
        raise SpecError(
            f"code {_shown(code)}: cannot ask {python} to parse it: {_problem(exc)}"
        ) from None
    if not isinstance(answer, dict) or "error" in answer:
        problem = answer.get("error") if isinstance(answer, dict) else answer
        if isinstance(answer, dict) and answer.get("unparsable"):
            raise SpecError(f"code {_shown(code)} cannot be parsed: {problem}")
        raise SpecError(f"code {_shown(code)} is not valid Python for {python}: {problem}")
    return (
        [str(name) for name in answer["names"]],
        frozenset(map(str, answer["stdlib"])),
        frozenset(map(str, answer["builtin"])),
    )


def _is_python(word: str, python: str) -> bool:
    """Whether ``word`` names the interpreter under test (``python``, ``python3``, its path).

    A path, or a versioned name (``python3.9``, ``python2``), that is another
    interpreter is a :class:`CommandNotFoundError`: rounds run the interpreter
    under test only, and running it silently in that one's place would measure
    something else than the command says.
    """
    __tracebackhide__ = True
    if word in _PLAIN_PYTHON:
        return True
    found = shutil.which(word)
    if found is not None and os.path.realpath(found) == os.path.realpath(python):
        return True
    matched = _PYTHON_WORD.fullmatch(os.path.basename(word))
    if matched is None:
        return False
    if os.sep not in word and matched.group(1):
        wanted = tuple(int(part) for part in matched.group(1).split("."))
        if check_interpreter(python)[: len(wanted)] == wanted:
            return True  # the version under test, by name (a pyenv shim, or not on PATH)
    raise CommandNotFoundError(
        f"{word!r} is {found or 'not found'}, not the interpreter under test ({python}): "
        "a start-up round runs the interpreter under test (write python: in pytest, the "
        "interpreter running pytest; pytest-importcache startup and check take --python PATH)"
    )


def displayed_command(command: StartupCommand, python: str) -> StartupCommand:
    """``command`` with a path to the interpreter under test as ``python``.

    Benchmark names and labels are built from the command: ``sys.executable``'s
    path differs from machine to machine, ``python`` does not.
    """
    __tracebackhide__ = True
    if command.code is not None or os.sep not in command.argv[0]:
        return command
    if not _is_python(command.argv[0], python):
        return command
    return StartupCommand(argv=("python", *command.argv[1:]))


def _python_target(command: StartupCommand, python: str) -> StartupTarget:
    """``python -m MODULE ...`` or ``python -c CODE ...``; one line for anything else."""
    __tracebackhide__ = True
    words = command.argv
    if len(words) >= 3 and words[1] == "-m":
        module = words[2]
        if not all(part.isidentifier() for part in module.split(".")):
            raise CommandNotFoundError(f"{command.label!r}: {module!r} is not a module name")
        return StartupTarget("module", module, "-m", words[3:], _top(module))
    if len(words) >= 3 and words[1] == "-c":
        package = first_imported_package(words[2], python)
        return StartupTarget("code", words[2], "-c", words[3:], package)
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
        package = first_imported_package(command.code, python)
        return StartupTarget("code", command.code, "-c", (), package)
    first = command.argv[0]
    if _is_python(first, python):
        return _python_target(command, python)
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
    command = displayed_command(command, python)
    if target.package is None:
        raise SpecError(
            f"{command.label!r} imports no package: a start-up round runs a package's cold "
            "or warm copy, so the snippet must import it (code='import mylib; ...')"
        )
    return MeasurementSpec(target.package, command=command, **spec_fields)
