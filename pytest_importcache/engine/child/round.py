"""The round itself: start-up, the measured import between two fences, the report.

Executed by ``main.py`` in the main module's namespace, compiled under the
name ``<string>`` as ``python -c`` code is, never imported. Its arguments
(``sys.argv``), in order: the module to import, the report's path, the metric
(``time`` or ``instructions``), the number of roots and the roots, the number
of import path entries and the entries, then the directories whose modules
are compiled from source (``roundcommand.child_command`` writes them).

Before the measured import it uses only modules that a normal start-up loads
(``sys``, ``time``, ``os``, ``site``, ``_thread``, ``_frozen_importlib*``), so
the list of modules the import loads is exact; it imports nothing from
pytest_importcache. A module created by ``importlib.util.LazyLoader`` that
never executed is still a ``_LazyModule`` (looked at with ``type()``, which
does not trigger it): it is reported apart from the loaded ones.

The statements between the two fences are what a counted round counts: they
stay module-level code named ``<string>``, as they were when this was ``-c``
code (a warning pointing at them shows no source line, as under ``-c``).
"""

import sys
import time

_wall, _cpu = time.perf_counter_ns, time.process_time_ns
from os import write as _write  # noqa: E402

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_harness_path = sys.argv[0][: -len("main.py")] + "harness.py"
_module, _report_path, _metric = sys.argv[1], sys.argv[2], sys.argv[3]
_roots = sys.argv[5 : 5 + int(sys.argv[4])]
_rest = sys.argv[5 + int(sys.argv[4]) :]
_import_path, _source_only = _rest[1 : 1 + int(_rest[0])], _rest[1 + int(_rest[0]) :]
sys.argv[:] = ["-c"]
_harness: "dict[str, Any]" = {}
with open(_harness_path, "rb") as _harness_file:
    # Under importlib's own file name: warnings' stack levels and import
    # tracebacks skip the harness's frames as they skip importlib's.
    exec(compile(_harness_file.read(), "<frozen importlib._bootstrap>", "exec"), _harness)
if _metric == "instructions":
    # Without -I, the bytecode setting is the environment's: as -I would have it.
    sys.dont_write_bytecode = False
    from os import getpgrp as _mark_function
    from os import getppid as _fence_function

    _harness["count_with"](_fence_function, _mark_function)
_harness["start_up"](_roots, _import_path, _module.partition(".")[0])
_harness["guard_bytecode"](_roots)
_harness["compile_from_source"](_source_only)
_already_loaded = _module in sys.modules
_before = set(sys.modules)
_error = None
_saved = list(sys.path), list(sys.meta_path), open
from os import _exit as _exit_now  # noqa: E402
from os import getpid as _getpid  # noqa: E402

_pid, _repr = _getpid(), repr


def _mark(text: bytes) -> None:
    try:  # noqa: SIM105  (contextlib is not loaded at start-up)
        _write(2, text)
    except OSError:
        pass


_mark(b"\nimportcache: begin\n")
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
_mark(b"\nimportcache: end\n")
# What the import did to the import system must not stop the report's own imports.
sys.path[:], sys.meta_path[:], _open = _saved
_new = [name for name in list(sys.modules) if name not in _before]
_lazy = [name for name in _new if type(sys.modules.get(name)).__name__ == "_LazyModule"]
_origin = _harness["origins"].get(_module)
if _origin is None:
    try:
        _imported: "Any" = sys.modules.get(_module)  # whatever the import left there
        _origin = getattr(_imported, "__file__", None)
        if _origin is None and hasattr(_imported, "__path__"):
            _origin = next(iter(_imported.__path__), None)
    except BaseException:
        _origin = None
_excluded_wall, _excluded_cpu = _harness["excluded"]
_report: "dict[str, object]" = {
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
}
if _metric == "instructions":
    # What the count depends on besides the command line (countstore), gathered
    # after the last fence: modules' files and bytecode, the directories the
    # importer listed, the start-up's .pth files, every file mapped (binary,
    # libpython, extension modules, their libraries).
    _report["inputs"] = _harness["read_inputs"](_new, _open)
_report["peak_memory"] = _harness["peak_memory"](_open)
if _error is not None:
    _summary, _text = _harness["describe_error"](_error)
    _report["error"] = {"summary": _summary, "traceback": _text}
# A Python literal, written without importing anything the import may have replaced.
with _open(_report_path, "w", encoding="utf-8") as _file:
    _file.write(_repr(_report))
_exit_now(0)
