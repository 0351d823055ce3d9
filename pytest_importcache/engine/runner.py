"""Run one round: a fresh interpreter that imports one module once and reports.

The child is started with ``-I -S`` (no ``PYTHON*`` variables, no user site,
no current directory on ``sys.path``, no ``site`` yet), runs a clean start-up
of its own, puts the import environment's roots first on ``sys.path`` and the
measuring process's own import path after them (sibling packages), times
exactly the import with ``perf_counter_ns`` and ``process_time_ns``, and
records every import call with a tracer. It runs under ``-X importtime`` with
stderr sent to a file (piping it would slow the import by several percent),
kept for users who ask for the raw rows; marker lines on stderr fence the
measured import off from the start-up. Its report goes to a file of its own
(a Python literal, written with nothing the import may have replaced), which
the imported code does not know about, so what the module prints cannot
corrupt it.

A round that counts instructions runs under valgrind's callgrind
(:mod:`~pytest_importcache.engine.callgrind`, reading no valgrind configuration) as
``-s -S`` instead of ``-I -S``, in a fixed environment with a fixed hash seed
(:func:`child_environment`), and reads no clock inside the counted stretch.
"""

from __future__ import annotations

import ast
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_importcache.model.errors import (
    ImportRaisedError,
    RoundCrashedError,
    RoundTimeoutError,
    WrongOriginError,
)
from pytest_importcache.model.records import RoundReport, TracedImport
from pytest_importcache.model.spec import Metric

from .callgrind import (
    VALGRIND_SLOWDOWN,
    MarkCosts,
    callgrind_command,
    find_valgrind,
    read_dump_counts,
)
from .interpreter import interpreter_binary
from .lifecycle import (
    ROUND_TOKEN_VARIABLE,
    clock_ticks_now,
    kill_round_processes,
    round_running,
)

__all__ = ["COUNTED_ENVIRONMENT_VARIABLE", "run_round"]

BEGIN_MARKER = "importcache: begin"
END_MARKER = "importcache: end"

# Runs in the child, compiled under importlib's own file name so that warnings'
# stack levels and import tracebacks skip its frames as they skip importlib's.
#
# `start_up` rebuilds what `site` does at start-up (the child runs with -S),
# minus what would make a round depend on unrelated software: `.pth` lines
# that *import* something (an editable install's meta-path finder, coverage's
# subprocess hook, distutils-precedence) are kept aside instead of run, and
# `sitecustomize` is not run. The `.pth` path lines still extend `sys.path`.
# Then the copy's roots go first, followed by the import path the measuring
# process sees (pytest's `pythonpath`, rootdir and conftest insertions,
# `PYTHONPATH`, `--path`) minus what this start-up already put on it, so that
# sibling packages import as in the tests. `MeasuredPackage`, the first
# meta-path finder, finds the measured top-level name in the copy's roots only:
# the directory on that path which holds the original package (searched for
# its siblings) never serves it, not even as a namespace portion.
# The kept-aside lines run only if an import misses everywhere else (a
# dependency that only such a finder makes importable), through
# `DeferredStartup`, the last meta-path finder: paused from the tracer, their
# time taken off the round's figures, and the modules they loaded dropped from
# `sys.modules` again, so the measured import loads and pays for them itself.
#
# `guard_bytecode` makes the importer write bytecode only inside the import
# environment (and a closure-cold round's pycache prefix): a dependency without
# bytecode is compiled in every round and never gets a `__pycache__`, whatever
# the caller's bytecode settings.
#
# The tracer wraps `_find_and_load`, which the `import` statement and
# `importlib.import_module` both go through, to record every import call: an
# id, the id of the call it happened in (per thread), whether it loaded the
# module, and its nanoseconds. It also wraps `_load_unlocked` to note which
# file each module was really loaded from, whatever the module later puts in
# sys.modules.
_HARNESS = """\
import os
import site
import sys
from _thread import get_ident
from time import perf_counter_ns as _clock, process_time_ns as _cpu_clock
import _frozen_importlib as _bootstrap
import _frozen_importlib_external as _external

calls = []
origins = {}
# Modules the deferred start-up lines load (editable installs' finders): not the
# import's, but their finders' find_spec runs during it, so their files are inputs.
paused_specs = []
deferred = []
excluded = [0, 0]
marks = [0]
fences = []
excluded_marks = []
_counting = [False]
_fence_function = [None]
_mark_function = [None]
_stacks = {}
_next_id = [0]
_paused = [False]
_deferred_ran = [False]
_find_and_load = _bootstrap._find_and_load
_load_unlocked = _bootstrap._load_unlocked


def count_with(fence_function, mark_function):
    global _clock, _cpu_clock
    # Reading a clock executes a varying number of instructions: counted rounds
    # read none, so that they count the same every time.
    _clock = _cpu_clock = int
    _counting[0] = True
    _fence_function[0] = fence_function
    _mark_function[0] = mark_function


def fence():
    if not _counting[0]:
        return 0
    marks[0] += 1
    number = marks[0]
    fences.append(number)
    _fence_function[0]()
    return number


def import_mark():
    marks[0] += 1
    number = marks[0]
    _mark_function[0]()
    return number


def _read_pth_file(sitedir, name, known_paths):
    reset = known_paths is None
    if reset:
        known_paths = site._init_pathinfo()
    fullname = os.path.join(sitedir, name)
    try:
        with open(fullname, "rb") as handle:
            raw = handle.read()
    except OSError:
        return None if reset else known_paths
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith(("import ", "import\\t")):
            deferred.append((sitedir, fullname, line))
            continue
        directory, case = site.makepath(sitedir, line.rstrip())
        if case not in known_paths and os.path.exists(directory):
            sys.path.append(directory)
            known_paths.add(case)
    return None if reset else known_paths


class DeferredStartup:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if path is not None or not deferred or _deferred_ran[0]:
            return None
        _deferred_ran[0] = True
        modules_before = set(sys.modules)
        finders_before = list(sys.meta_path)
        _paused[0] = True
        first_fence = fence()
        wall_start, cpu_start = _clock(), _cpu_clock()
        spec = None
        try:
            for sitedir, fullname, line in deferred:
                try:
                    exec(line, {"__builtins__": __builtins__, "sitedir": sitedir,
                                "fullname": fullname, "site": site, "sys": sys})
                except Exception:
                    pass
            for finder in list(sys.meta_path):
                if finder is cls or any(finder is old for old in finders_before):
                    continue
                find = getattr(finder, "find_spec", None)
                try:
                    spec = find(name, None, target) if find is not None else None
                except Exception:
                    spec = None
                if spec is not None:
                    break
            if spec is None:
                spec = _external.PathFinder.find_spec(name, None, target)
            for extra in [key for key in list(sys.modules) if key not in modules_before]:
                del sys.modules[extra]
        finally:
            excluded[0] += _clock() - wall_start
            excluded[1] += _cpu_clock() - cpu_start
            if _counting[0]:
                excluded_marks.append((first_fence, fence()))
            _paused[0] = False
        return spec


class MeasuredPackage:
    top = ""
    roots = []

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if path is not None or name != cls.top:
            return None
        return _external.PathFinder.find_spec(name, cls.roots, target)


def _defer_pth_imports(state):
    entrypoints = getattr(state, "_entrypoints", {})
    for fullname, lines in getattr(state, "_importexecs", {}).items():
        if fullname.rpartition(".")[0] + ".start" not in entrypoints:
            deferred.extend((os.path.dirname(fullname), fullname, line) for line in lines)


def _defer_start_entrypoints(state):
    for fullname, entrypoints in getattr(state, "_entrypoints", {}).items():
        for entrypoint in entrypoints:
            line = "import pkgutil; pkgutil.resolve_name(%r, strict=True)()" % entrypoint
            deferred.append((os.path.dirname(fullname), fullname, line))


def start_up(roots, import_path, top):
    site.addpackage = _read_pth_file
    state = getattr(site, "StartupState", None)
    if state is not None:
        # 3.15 (PEP 829): site.main() reads .pth and .start files into a
        # StartupState, which runs their import lines and entry points itself.
        state._exec_imports = _defer_pth_imports
        state._execute_start_entrypoints = _defer_start_entrypoints
    site.execsitecustomize = lambda: None
    site.execusercustomize = lambda: None
    site.main()
    provided = set(sys.path)
    extra = [entry for entry in import_path if entry not in provided and entry not in roots]
    sys.path[0:0] = [*roots, *dict.fromkeys(extra)]
    MeasuredPackage.top = top
    MeasuredPackage.roots = list(roots)
    sys.meta_path.insert(0, MeasuredPackage)
    sys.meta_path.append(DeferredStartup)


def compile_from_source(directories):
    # Modules found through these path entries neither read nor write bytecode:
    # each round compiles them (both sides of a same-run comparison alike). A
    # file belongs to the longest path entry that holds it, so an environment
    # inside a source-only directory (site-packages in a project's .venv) keeps
    # its bytecode.
    if not directories:
        return
    chosen = {os.path.join(directory, "") for directory in directories}
    entries = sorted(
        {os.path.join(entry, "") for entry in sys.path if isinstance(entry, str) and entry},
        key=len,
        reverse=True,
    )
    cache_from_source = _external.cache_from_source

    # The caller's arguments as they are: 3.15 has no debug_override.
    def source_only_cache(path, *arguments, **keywords):
        for entry in entries:
            if path.startswith(entry):
                if entry in chosen:
                    raise NotImplementedError(path)
                break
        return cache_from_source(path, *arguments, **keywords)

    _external.cache_from_source = source_only_cache


def guard_bytecode(roots):
    allowed = tuple(os.path.join(root, "") for root in roots)
    if sys.pycache_prefix:
        allowed += (os.path.join(sys.pycache_prefix, ""),)
    set_data = _external.SourceFileLoader.set_data

    def guarded_set_data(self, path, data, *, _mode=0o666):
        if path.startswith(allowed):
            return set_data(self, path, data, _mode=_mode)
        return None

    _external.SourceFileLoader.set_data = guarded_set_data


def traced_find_and_load(name, import_):
    if _paused[0]:
        return _find_and_load(name, import_)
    stack = _stacks.setdefault(get_ident(), [])
    _next_id[0] += 1
    call = _next_id[0]
    parent = stack[-1] if stack else 0
    present = name in sys.modules
    stack.append(call)
    excluded_before = excluded[0]
    first_mark = import_mark() if _counting[0] else 0
    start = _clock()
    try:
        return _find_and_load(name, import_)
    finally:
        elapsed = _clock() - start - (excluded[0] - excluded_before)
        last_mark = import_mark() if _counting[0] else 0
        stack.pop()
        loaded = not present and name in sys.modules
        calls.append((call, parent, name, loaded, elapsed, first_mark, last_mark))


def traced_load_unlocked(spec):
    if _paused[0]:
        try:
            paused_specs.append((spec.origin, spec.cached))
        except Exception:
            paused_specs.append((spec.origin, None))
    elif spec.name not in origins:
        origin = spec.origin
        if origin in (None, "namespace"):
            origin = next(iter(spec.submodule_search_locations or ()), None)
        origins[spec.name] = origin if isinstance(origin, str) else None
    return _load_unlocked(spec)


def describe_error(error):
    try:
        import traceback

        summary = "".join(traceback.format_exception_only(type(error), error)).strip()
        text = "".join(
            traceback.format_exception(type(error), error, error.__traceback__.tb_next)
        )
        return summary, text
    except BaseException:
        pass
    try:
        message = str(error)
    except BaseException:
        message = ""
    summary = type(error).__name__ + (": " + message if message else "")
    lines = ["Traceback (most recent call last):"]
    frame = error.__traceback__.tb_next if error.__traceback__ is not None else None
    while frame is not None:
        code = frame.tb_frame.f_code
        where = (code.co_filename, frame.tb_lineno, code.co_name)
        lines.append('  File "%s", line %s, in %s' % where)
        frame = frame.tb_next
    return summary, "\\n".join(lines + [summary]) + "\\n"


def read_inputs(new_modules, opener):
    inputs = [[path, ""] for path in origins.values() if isinstance(path, str)]
    for name in new_modules:
        spec = getattr(sys.modules.get(name), "__spec__", None)
        cached, origin = getattr(spec, "cached", None), getattr(spec, "origin", None)
        if isinstance(cached, str) and isinstance(origin, str):
            inputs.append([cached, origin])
    for origin, cached in paused_specs:
        if isinstance(origin, str):
            inputs.append([origin, ""])
            if isinstance(cached, str):
                inputs.append([cached, origin])
    inputs += [[path, "<exists>"] for path in sys.path if isinstance(path, str)]
    inputs += [[path, ""] for path in sys.path_importer_cache if isinstance(path, str)]
    for directory in site.getsitepackages():
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        inputs += [[os.path.join(directory, n), ""] for n in names if n.endswith(".pth")]
    try:
        with opener("/proc/self/maps", "rb") as maps:
            for line in maps.read().decode("utf-8", "surrogateescape").splitlines():
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].startswith("/"):
                    inputs.append([fields[5], ""])
    except OSError:
        pass
    return inputs


def install():
    _bootstrap._find_and_load = traced_find_and_load
    _bootstrap._load_unlocked = traced_load_unlocked


def uninstall():
    _bootstrap._find_and_load = _find_and_load
    _bootstrap._load_unlocked = _load_unlocked
"""

# Runs in the child (`python -I -S`). Before the measured import it uses only
# modules that a normal start-up loads (`sys`, `time`, `os`, `site`, `_thread`,
# `_frozen_importlib*`), so the list of modules the import loads is exact.
# A module created by `importlib.util.LazyLoader` that never executed is still
# a `_LazyModule` (looked at with `type()`, which does not trigger it): it is
# reported apart from the loaded ones.
_CHILD_CODE = f"""\
import sys
if sys.argv[3] == "instructions" and not sys.flags.isolated:
    # Counted rounds run without -I, so that PYTHONHASHSEED reaches them, and
    # with PYTHONSAFEPATH (3.11+), so that no current directory is put first.
    # 3.10 puts it there: drop it before any import can list it (3.10 imports
    # `os` from the path here, where later versions have it frozen).
    if not getattr(sys.flags, "safe_path", False):
        del sys.path[0]
import time
_wall, _cpu = time.perf_counter_ns, time.process_time_ns
from os import write as _write
_module, _report_path, _metric = sys.argv[1], sys.argv[2], sys.argv[3]
_roots = sys.argv[5 : 5 + int(sys.argv[4])]
_rest = sys.argv[5 + int(sys.argv[4]) :]
_import_path, _source_only = _rest[1 : 1 + int(_rest[0])], _rest[1 + int(_rest[0]) :]
sys.argv[:] = ["-c"]
_harness = {{}}
exec(compile({_HARNESS!r}, "<frozen importlib._bootstrap>", "exec"), _harness)
if _metric == "instructions":
    # Without -I, the bytecode setting is the environment's: as -I would have it.
    sys.dont_write_bytecode = False
    from os import getppid as _fence_function, getpgrp as _mark_function
    _harness["count_with"](_fence_function, _mark_function)
_harness["start_up"](_roots, _import_path, _module.partition(".")[0])
_harness["guard_bytecode"](_roots)
_harness["compile_from_source"](_source_only)
_already_loaded = _module in sys.modules
_before = set(sys.modules)
_error = None
_saved = list(sys.path), list(sys.meta_path), open
from os import getpid as _getpid, _exit as _exit_now
_pid, _repr = _getpid(), repr


def _mark(text):
    try:
        _write(2, text)
    except OSError:
        pass


_mark(b"\\n{BEGIN_MARKER}\\n")
_harness["install"]()
_cpu_start = _cpu()
_wall_start = _wall()
_first_fence = _harness["fence"]()
try:
    __import__(_module)
except BaseException as exc:
    _error = exc
_last_fence = _harness["fence"]()
_wall_end = _wall()
_cpu_end = _cpu()
if _getpid() != _pid:
    _exit_now(0)  # a process the import forked went on: only the round's own reports
_harness["uninstall"]()
_mark(b"\\n{END_MARKER}\\n")
# What the import did to the import system must not stop the report's own imports.
sys.path[:], sys.meta_path[:], _open = _saved
_new = [name for name in list(sys.modules) if name not in _before]
_lazy = [name for name in _new if type(sys.modules.get(name)).__name__ == "_LazyModule"]
_origin = _harness["origins"].get(_module)
if _origin is None:
    try:
        _imported = sys.modules.get(_module)
        _origin = getattr(_imported, "__file__", None)
        if _origin is None and hasattr(_imported, "__path__"):
            _origin = next(iter(_imported.__path__), None)
    except BaseException:
        _origin = None
_excluded_wall, _excluded_cpu = _harness["excluded"]
_report = {{
    "wall_ns": _wall_end - _wall_start - _excluded_wall,
    "cpu_ns": max(_cpu_end - _cpu_start - _excluded_cpu, 0),
    "origin": _origin if isinstance(_origin, str) else None,
    "loaded": [name for name in _new if name not in _lazy],
    "lazy": _lazy,
    "startup_modules": len(_before),
    "traced": _harness["calls"],
    "already_loaded": _already_loaded,
    "python_version": sys.version.split()[0],
    "error": None,
    "marks": _harness["marks"][0],
    "fences": _harness["fences"],
    "excluded_marks": _harness["excluded_marks"],
    "import_fences": (_first_fence, _last_fence),
}}
if _metric == "instructions":
    # What the count depends on besides the command line (countstore), gathered
    # after the last fence: modules' files and bytecode, the directories the
    # importer listed, the start-up's .pth files, every file mapped (binary,
    # libpython, extension modules, their libraries).
    _report["inputs"] = _harness["read_inputs"](_new, _open)
if _error is not None:
    _summary, _text = _harness["describe_error"](_error)
    _report["error"] = {{"summary": _summary, "traceback": _text}}
# A Python literal, written without importing anything the import may have replaced.
with _open(_report_path, "w", encoding="utf-8") as _file:
    _file.write(_repr(_report))
_exit_now(0)
"""


# A process group of its own, so the round and what it spawns can be killed together;
# not a session of its own, so an import may still call os.setpgrp() as under a shell.
_OWN_PROCESS_GROUP: dict[str, Any] = (
    {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
)


def _optimize_flags(optimize: int) -> list[str]:
    return ["-" + "O" * optimize] if optimize else []


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
) -> list[str]:
    """The command line of one round's child interpreter.

    ``import_path`` is searched after ``roots``; modules under ``source_only``
    are compiled in every round (see :func:`run_round`).
    """
    # -S: start-up without .pth import lines or sitecustomize; the child runs `site` itself.
    if metric == "time":
        command = [python, "-I", "-S", *_optimize_flags(optimize), "-X", "importtime"]
    else:
        # Not -I, which would ignore PYTHONHASHSEED: the environment is cleaned
        # instead (child_environment), and the child drops the current directory.
        # No -X importtime: its rows would be counted with the import.
        command = [python, "-s", "-S", *_optimize_flags(optimize)]
    if pycache_prefix is not None:
        command += ["-X", f"pycache_prefix={pycache_prefix}"]
    return [
        *command,
        "-c",
        _CHILD_CODE,
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
        # No current directory on the path: 3.13 imports linecache (for -c's
        # source) before the child's first line, and listed the round's directory.
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


def _stderr_lines(stderr_text: str) -> list[str]:
    """The child's stderr lines that are not ``-X importtime`` rows or markers."""
    return [
        line
        for line in stderr_text.splitlines()
        if line.strip() and "import time:" not in line and line not in (BEGIN_MARKER, END_MARKER)
    ]


def _exit_description(returncode: int) -> str:
    """``exit code 3``, or ``signal SIGSEGV`` for a child killed by a signal."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def _is_within(path: Path, roots: Sequence[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(root.resolve()) for root in roots)


REPORT_NAME = "report.json"
DUMPS_NAME = "callgrind"


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
) -> list[str]:
    """The whole command line of an instructions round run in ``workdir``: callgrind, the child.

    The one definition both the round (:func:`run_round`) and the key of its
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
        ),
    ]


@dataclass(frozen=True)
class _RoundCommand:
    """How one round is started, and how long it may take."""

    argv: list[str]
    timeout: float
    timeout_text: str


def _round_command(
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
) -> _RoundCommand:
    """The round's command line: the interpreter, under callgrind for instructions."""
    __tracebackhide__ = True
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
        )
        return _RoundCommand(argv, timeout, f"{timeout:g} s")
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
    )
    return _RoundCommand(
        argv, timeout * VALGRIND_SLOWDOWN, f"{timeout:g} s x {VALGRIND_SLOWDOWN} for valgrind"
    )


def run_round(
    module: str,
    roots: Sequence[Path],
    workdir: Path,
    *,
    python: str,
    optimize: int = 0,
    timeout: float = 60.0,
    pycache_prefix: Path | None = None,
    description: str = "",
    metric: Metric = "time",
    module_costs: bool = True,
    import_path: Sequence[str] = (),
    source_only: Sequence[str] = (),
) -> RoundReport:
    """Import ``module`` once in a fresh interpreter whose ``sys.path`` starts with ``roots``.

    ``import_path`` (absolute directories) follows ``roots``, minus the entries
    the child's own start-up puts on its path; the measured top-level name is
    found in ``roots`` only. Modules under the ``source_only`` directories
    neither read nor write bytecode: they are compiled in every round.

    ``workdir`` is the child's current directory and holds its report and
    stderr files. ``description`` (e.g. ``"cold round 3 of 10"``) is added to
    error messages. With ``metric="instructions"`` the child runs under
    callgrind (``timeout`` is then multiplied by valgrind's slowdown), and
    ``module_costs`` asks for every module's count, not only the import's.
    Raises :class:`ImportRaisedError`, :class:`RoundTimeoutError`,
    :class:`RoundCrashedError`, :class:`WrongOriginError` or (no valgrind)
    :class:`~pytest_importcache.model.errors.MetricUnavailableError`.
    """
    __tracebackhide__ = True
    where = f" ({description})" if description else ""
    report_path = workdir / REPORT_NAME
    report_path.unlink(missing_ok=True)
    # The child's own directory, apart from the report: an import may delete its cwd.
    child_cwd = workdir / "cwd"
    child_cwd.mkdir(exist_ok=True)
    dumps_dir = workdir / DUMPS_NAME
    shutil.rmtree(dumps_dir, ignore_errors=True)
    try:
        command = _round_command(
            module,
            roots,
            workdir,
            python=python,
            optimize=optimize,
            timeout=timeout,
            pycache_prefix=pycache_prefix,
            metric=metric,
            module_costs=module_costs,
            import_path=import_path,
            source_only=source_only,
        )
        pid, returncode, stderr_text = _run_child(
            command,
            child_cwd=child_cwd,
            stderr_path=workdir / "stderr.txt",
            module=module,
            python=python,
            metric=metric,
            where=where,
        )
        try:
            report = ast.literal_eval(report_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, SyntaxError, MemoryError, RecursionError):
            stderr_lines = _stderr_lines(stderr_text)
            last = stderr_lines[-1].strip() if stderr_lines else "nothing on stderr"
            tail = "\n".join(stderr_lines[-20:-1])
            earlier = f"\nits stderr before that:\n{tail}" if tail else ""
            raise RoundCrashedError(
                f"the interpreter importing {module!r} ended with "
                f"{_exit_description(returncode)} before reporting{where}: {last}{earlier}"
            ) from None
        _check_report(report, module, roots, where, metric=metric)
        costs = None
        if metric == "instructions":
            costs = _mark_costs(report, dumps_dir, pid, detailed=module_costs, where=where)
            _check_count(costs, report, module, where)
    finally:
        shutil.rmtree(dumps_dir, ignore_errors=True)
    return _round_report(report, stderr_text, costs if module_costs else None, costs)


def _run_child(
    command: _RoundCommand,
    *,
    child_cwd: Path,
    stderr_path: Path,
    module: str,
    python: str,
    metric: Metric,
    where: str,
) -> tuple[int, int, str]:
    """Run the round's child to its end or its timeout: its pid, exit code and stderr."""
    __tracebackhide__ = True
    round_token = secrets.token_hex(8)
    with stderr_path.open("w+b") as stderr_file:
        try:
            started = clock_ticks_now()
            process = subprocess.Popen(
                command.argv,
                cwd=child_cwd,
                env=child_environment(round_token, metric=metric, home=child_cwd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr_file,
                **_OWN_PROCESS_GROUP,
            )
        except OSError as exc:
            raise RoundCrashedError(f"cannot start interpreter {python!r}{where}: {exc}") from None
        try:
            with round_running(process.pid, round_token, started):
                returncode = process.wait(timeout=command.timeout)
        except subprocess.TimeoutExpired:
            # The finally below kills the round before this error leaves.
            raise RoundTimeoutError(
                f"importing {module!r} did not finish within {command.timeout_text}{where}; "
                "the interpreter and its child processes were killed"
            ) from None
        finally:
            # Whatever the import left running (also a signal's unwinding) goes with the round.
            kill_round_processes(process.pid, round_token, started)
            if process.returncode is None:
                process.wait()
        stderr_file.seek(0)
        return process.pid, returncode, stderr_file.read().decode("utf-8", errors="replace")


def _withheld_variables(summary: str) -> list[str]:
    """The caller's variables an error names that a counted round was not given."""
    given = child_environment(metric="instructions")
    return [
        name
        for name in sorted(os.environ)
        if len(name) >= 4 and name not in given and re.search(rf"\b{re.escape(name)}\b", summary)
    ]


def _check_report(
    report: dict[str, Any], module: str, roots: Sequence[Path], where: str, *, metric: Metric
) -> None:
    """Raise when the round's import raised, had nothing to import, or used another file."""
    __tracebackhide__ = True
    if report["error"] is not None:
        summary = report["error"]["summary"]
        hint = ""
        if metric == "instructions" and (withheld := _withheld_variables(summary)):
            hint = (
                "; counted rounds get a fixed environment: pass what the import needs with "
                f"{COUNTED_ENVIRONMENT_VARIABLE}={','.join(withheld)}"
            )
        raise ImportRaisedError(
            f"importing {module!r} raised {summary}{where}{hint}", report["error"]["traceback"]
        )
    if report["already_loaded"]:
        raise ImportRaisedError(
            f"{module!r} is already imported when the interpreter starts (a frozen or "
            "start-up module): there is no import of it to measure",
            "",
        )
    origin = report["origin"]
    if origin is None or not _is_within(Path(origin), roots):
        raise WrongOriginError(
            f"{module!r} was imported from {origin or 'a module without a file'}, outside the "
            f"import environment ({', '.join(map(str, roots))}){where}: an import hook "
            "(an editable install's finder, a .pth file) or a stale copy took precedence"
        )


def _mark_costs(
    report: dict[str, Any], dumps_dir: Path, pid: int, *, detailed: bool, where: str
) -> MarkCosts:
    """The instructions between the child's marks, from callgrind's dumps of the round."""
    __tracebackhide__ = True
    dumped = list(range(1, int(report["marks"]) + 1)) if detailed else list(report["fences"])
    counts = read_dump_counts(dumps_dir, pid)
    if len(counts) != len(dumped):
        raise RoundCrashedError(
            f"callgrind counted {len(counts)} stretches where the round marked {len(dumped)}"
            f"{where}: the import itself calls os.getppid() or os.getpgrp(), which fence "
            "the count; measure this import by time"
        )
    return MarkCosts(dumped, counts, [tuple(pair) for pair in report["excluded_marks"]])


# An import of an empty module counts some 370,000 instructions (3.11), and an
# hour of CPU some 10**13: a count outside these bounds was not an import's.
_PLAUSIBLE_IMPORT_COUNTS = (10_000, 10**13)


def _check_count(costs: MarkCosts, report: dict[str, Any], module: str, where: str) -> None:
    """Raise when the import's count cannot be one: callgrind did not count it."""
    __tracebackhide__ = True
    first_fence, last_fence = report["import_fences"]
    count = costs.between(first_fence, last_fence)
    low, high = _PLAUSIBLE_IMPORT_COUNTS
    if not low <= count <= high:
        raise RoundCrashedError(
            f"callgrind counted {count:,} instructions for importing {module!r}{where}, "
            f"outside what any import executes ({low:,} to {high:.0e}): its counters were "
            "not counting the import, so the round is not used"
        )


def _round_report(
    report: dict[str, Any],
    stderr_text: str,
    module_costs: MarkCosts | None,
    import_costs: MarkCosts | None,
) -> RoundReport:
    """The child's checked report as a :class:`RoundReport`, instruction counts added."""
    traced = tuple(
        TracedImport(
            int(call),
            int(parent),
            str(name),
            bool(loaded),
            int(nanoseconds),
            module_costs.between(first_mark, last_mark) if module_costs is not None else None,
        )
        for call, parent, name, loaded, nanoseconds, first_mark, last_mark in report["traced"]
    )
    first_fence, last_fence = report["import_fences"]
    return RoundReport(
        wall_ns=int(report["wall_ns"]),
        cpu_ns=int(report["cpu_ns"]),
        origin=report["origin"],
        loaded=tuple(report["loaded"]),
        python_version=str(report["python_version"]),
        traced=traced,
        stderr=stderr_text,
        lazy=tuple(report["lazy"]),
        startup_modules=int(report["startup_modules"]),
        instructions=(
            import_costs.between(first_fence, last_fence) if import_costs is not None else None
        ),
        inputs=tuple((str(path), str(source)) for path, source in report.get("inputs", ())),
    )
