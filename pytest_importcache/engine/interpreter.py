"""The interpreter that runs the rounds: is it this one, is it new enough, what does it find.

Another interpreter (``--python``, ``import_env_factory(python=...)``) has files
of its own: its standard library and its site-packages. Where a module lives is
asked of that interpreter, in a short probe that runs its start-up as usual
(so its ``.pth`` files and meta-path finders take part) and looks the module up
with ``importlib.util.find_spec``, which finds but executes nothing of the
package. The probe is written for any Python version, so that an interpreter
too old for the rounds is told so in one line instead of failing on syntax.
"""

from __future__ import annotations

import functools
import json
import os
import site
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_importcache.model.errors import InterpreterError

__all__ = [
    "MINIMUM_VERSION",
    "ProbedSpec",
    "check_interpreter",
    "installation_dirs",
    "interpreter_binary",
    "interpreter_build",
    "is_running_interpreter",
    "past_sibling_links",
    "probe_spec",
    "stdlib_module_names",
]

MINIMUM_VERSION = (3, 9)
"""The oldest Python that runs the rounds (compileall -o, the tracer and guards are 3.9+)."""
_PROBE_TIMEOUT = 60.0

# Python 2 syntax on purpose: the version is printed before anything else runs.
_PROBE = """\
import sys, json
if sys.path and sys.path[0] in ("", "."):
    del sys.path[0]
out = {"version": list(sys.version_info[:3]), "executable": sys.executable}
out["platform"] = sys.platform
out["abiflags"] = getattr(sys, "abiflags", "")
if hasattr(sys, "stdlib_module_names"):
    out["stdlib"] = sorted(sys.stdlib_module_names)
if tuple(sys.version_info[:2]) >= tuple(json.loads(sys.argv[1])) and len(sys.argv) > 2:
    name = sys.argv[2]
    sys.path[0:0] = sys.argv[3:]
    out["builtin"] = name in sys.builtin_module_names
    try:
        import importlib.util
        spec = importlib.util.find_spec(name)
    except Exception as exc:
        out["error"] = "%s: %s" % (type(exc).__name__, exc)
    else:
        if spec is not None:
            locations = spec.submodule_search_locations
            out["origin"] = spec.origin
            out["locations"] = None if locations is None else [str(p) for p in locations]
sys.stdout.write(json.dumps(out))
"""


@dataclass(frozen=True)
class ProbedSpec:
    """What another interpreter's import system says about a top-level module."""

    origin: str | None
    locations: tuple[str, ...] | None
    builtin: bool


def is_running_interpreter(python: str) -> bool:
    """Whether ``python`` is this process's interpreter, in this process's environment.

    A virtual environment's ``python`` links to the base interpreter's binary but
    has site-packages of its own, so both the directory and the file must match.
    """
    running = sys.executable
    return os.path.dirname(os.path.abspath(python)) == os.path.dirname(
        os.path.abspath(running)
    ) and os.path.realpath(python) == os.path.realpath(running)


@functools.lru_cache(maxsize=1)
def installation_dirs() -> tuple[str, ...]:
    """This interpreter's own trees: prefixes, the standard library, site-packages."""
    directories = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    directories.update(site.getsitepackages() if hasattr(site, "getsitepackages") else ())
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if user_site:
        directories.add(user_site)
    return tuple(os.path.join(os.path.realpath(directory), "") for directory in directories)


def _run_probe(python: str, arguments: Sequence[str]) -> dict[str, object]:
    __tracebackhide__ = True
    command = [python, "-E", "-s", "-c", _PROBE, json.dumps(MINIMUM_VERSION), *arguments]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=_PROBE_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InterpreterError(f"cannot run the interpreter {python}: {exc}") from None
    try:
        answer = json.loads(completed.stdout)
    except ValueError:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise InterpreterError(
            f"the interpreter {python} did not answer the version probe "
            f"(exit code {completed.returncode}): {last}"
        ) from None
    if not isinstance(answer, dict):
        raise InterpreterError(f"the interpreter {python} answered the probe with {answer!r}")
    return answer


@functools.cache
def check_interpreter(python: str) -> tuple[int, ...]:
    """The version of ``python``; :class:`InterpreterError` when it is too old for the rounds."""
    __tracebackhide__ = True
    if is_running_interpreter(python):
        return tuple(sys.version_info[:3])
    answer = _run_probe(python, [])
    version = tuple(int(part) for part in answer["version"])  # type: ignore[attr-defined]
    if version[:2] < MINIMUM_VERSION:
        minimum = ".".join(map(str, MINIMUM_VERSION))
        raise InterpreterError(
            f"{python} is Python {'.'.join(map(str, version))}: pytest-importcache's rounds "
            f"need Python {minimum} or newer"
        )
    return version


@functools.cache
def interpreter_binary(python: str) -> str:
    """The executable file ``python`` runs as (``sys.executable``), past launchers and shims.

    A tool that runs the interpreter itself (valgrind) must be given this file:
    given a shell-script shim (pyenv's), it would measure the shell.
    """
    __tracebackhide__ = True
    if is_running_interpreter(python):
        # Not sys.executable: `python -m pytest` and the pytest script (#!...python3)
        # name the same file differently, and the name is part of what is counted.
        return past_sibling_links(os.path.abspath(python))
    check_interpreter(python)
    executable = _run_probe(python, []).get("executable")
    return past_sibling_links(executable if isinstance(executable, str) and executable else python)


def past_sibling_links(path: str) -> str:
    """``path`` past the symbolic links to a file in its own directory (``python`` -> ``python3``).

    One interpreter, however it was named (``python -m pytest`` runs as
    ``python``, the pytest script as its ``#!`` line's ``python3``), runs
    the rounds and keys the copies by one path, so it counts the same. A link
    out of the directory is not followed: a virtual environment's ``python``
    is known by its directory.
    """
    seen = {path}
    while os.path.islink(path):
        target = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
        if os.path.dirname(target) != os.path.dirname(path) or target in seen:
            break
        seen.add(target)
        path = target
    return path


@functools.cache
def interpreter_build(python: str) -> tuple[str, bool]:
    """``python``'s platform (``sys.platform``) and whether it is a free-threaded build.

    What sets its standard library's modules apart, besides the version
    (``importcache.lock`` keys its sections by them).
    """
    __tracebackhide__ = True
    if is_running_interpreter(python):
        return sys.platform, "t" in getattr(sys, "abiflags", "")
    check_interpreter(python)
    answer = _run_probe(python, [])
    platform, abiflags = answer.get("platform"), answer.get("abiflags")
    return (
        platform if isinstance(platform, str) else sys.platform,
        isinstance(abiflags, str) and "t" in abiflags,
    )


@functools.lru_cache(maxsize=256)
def probe_spec(python: str, top_level: str, extra_entries: tuple[str, ...]) -> ProbedSpec | None:
    """Where ``python`` finds ``top_level`` with ``extra_entries`` first on its ``sys.path``.

    ``None`` when it does not find it. A finder that raises is an
    :class:`InterpreterError` naming the interpreter and the module.
    """
    __tracebackhide__ = True
    check_interpreter(python)
    answer = _run_probe(python, [top_level, *extra_entries])
    if "error" in answer:
        raise InterpreterError(f"looking up {top_level!r} with {python} raised {answer['error']}")
    if answer.get("builtin"):
        return ProbedSpec(origin="built-in", locations=None, builtin=True)
    if "origin" not in answer and "locations" not in answer:
        return None
    origin = answer.get("origin")
    locations = answer.get("locations")
    return ProbedSpec(
        origin=origin if isinstance(origin, str) else None,
        locations=tuple(map(str, locations)) if isinstance(locations, list) else None,
        builtin=False,
    )


@functools.cache
def stdlib_module_names(python: str) -> frozenset[str]:
    """The top-level names of ``python``'s standard library (its ``sys.stdlib_module_names``).

    Asked of that interpreter once per process: another version has another
    standard library. :class:`InterpreterError` for one older than 3.10, which
    does not know its own.
    """
    __tracebackhide__ = True
    if is_running_interpreter(python):
        return frozenset(sys.stdlib_module_names)
    check_interpreter(python)
    names = _run_probe(python, []).get("stdlib")
    if not isinstance(names, list):
        raise InterpreterError(
            f"{python} does not list its standard library (sys.stdlib_module_names, "
            "Python 3.10+): allow= cannot tell what is standard there"
        )
    return frozenset(map(str, names))
