"""A start-up round: run a command from its first statement to its exit, and report.

Run by path (``python -I -S startup.py REPORT METRIC TOP ...``) as a console
script's wrapper is; it imports nothing from pytest_importcache. Its
arguments, in order: the report's path, the metric (``time`` or
``instructions``), the package under test's top-level name, the number of
roots and the roots, the number of import path entries and the entries, the
number of source-only directories and the directories, then what to run:
``entry MODULE:ATTR``, ``module MODULE`` or ``code SNIPPET``, then the
``sys.argv[0]`` the command sees and its arguments
(``startupround.startup_command`` writes them).

It runs the same clean start-up and tracer as an import round (``harness.py``,
read and executed as ``main.py`` does), then imports the entry module (for
``-m``, its package, and ``runpy``), then runs the command: the entry point
called as its console script would call it (``sys.exit(main())``), the
module run as ``__main__`` by ``runpy``, or the snippet executed as ``-c``
runs it. The tracer stays in for the whole process, so imports made while
running are in the tree.

It records *points* (``perf_counter_ns`` in a timed round, the number of a
callgrind fence in a counted one, which reads no clock): ``first`` (its
first statement), ``harness`` (the harness loaded: overhead), ``site`` (the
clean start-up done), ``import`` (the entry module imported), ``prelim``
(the first report written: overhead), ``end`` (the command returned or
raised) and ``report`` (the last report written: overhead). The measuring
side turns them into the phases. The first report, written before the command
runs, stands in when the command leaves by ``os._exit``; the last one is
written as the command's exception (``SystemExit`` too) leaves, which then
goes on to end the interpreter as it would have.
"""

import sys
from time import perf_counter_ns as _now

_first = _now()
_counting = sys.argv[2] == "instructions"
if _counting:
    from os import getppid as _fence_function

    _fence_function()  # the first fence: callgrind's first dump is the interpreter's start-up
    # Without -I (a counted round): no script directory first on the path (3.10).
    if not getattr(sys.flags, "safe_path", False):
        del sys.path[0]

from os import _exit as _exit_now  # noqa: E402
from os import getpid as _getpid  # noqa: E402
from os import replace as _replace  # noqa: E402

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_open, _repr, _pid = open, repr, _getpid()
_harness: "dict[str, Any]" = {}
with _open(__file__[: -len("startup.py")] + "harness.py", "rb") as _harness_file:
    exec(compile(_harness_file.read(), "<frozen importlib._bootstrap>", "exec"), _harness)
_points: "dict[str, int]" = {}
if _counting:
    sys.dont_write_bytecode = False  # as -I would have it
    from os import getpgrp as _mark_function

    _harness["count_with"](_fence_function, _mark_function)
    _harness["marks"][0] = 1
    _harness["fences"].append(1)
    _points["first"] = 1
else:
    _points["first"] = _first


def _point(name: str) -> None:
    _points[name] = _harness["fence"]() if _counting else _now()


_arguments = sys.argv[1:]
_report_path, _metric, _top = _arguments[0], _arguments[1], _arguments[2]
_rest = _arguments[3:]
_roots = _rest[1 : 1 + int(_rest[0])]
_rest = _rest[1 + int(_rest[0]) :]
_import_path = _rest[1 : 1 + int(_rest[0])]
_rest = _rest[1 + int(_rest[0]) :]
_source_only = _rest[1 : 1 + int(_rest[0])]
_kind, _target, _argv0, *_command_arguments = _rest[1 + int(_rest[0]) :]
_point("harness")

_harness["start_up"](_roots, _import_path, _top)
_harness["guard_bytecode"](_roots)
_harness["compile_from_source"](_source_only)
_point("site")

_before = set(sys.modules)
sys.argv[:] = [_argv0, *_command_arguments]
_harness["install"]()
_entry: "Any" = None
if _kind == "entry":
    _entry_module, _, _attribute = _target.partition(":")
    _entry = __import__(_entry_module, fromlist=["__name__"])
    for _name in filter(None, _attribute.strip().split(".")):
        _entry = getattr(_entry, _name)
elif _kind == "module":
    import runpy as _runpy
    from importlib.util import find_spec as _find_spec

    # The package runpy runs from (-m pkg runs pkg.__main__), or the module's parent:
    # a plain module itself is executed once only, by runpy, as __main__.
    _spec = _find_spec(_target)
    if _spec is not None and _spec.submodule_search_locations is not None:
        __import__(_target)
_point("import")


def _report(final: bool) -> None:
    """Write the report (a Python literal) beside its final name, then move it there."""
    if _getpid() != _pid:
        return  # a process the command forked: only the round's own reports
    new = [name for name in list(sys.modules) if name not in _before]
    lazy = [name for name in new if type(sys.modules.get(name)).__name__ == "_LazyModule"]
    report: dict[str, object] = {
        "final": final,
        "points": dict(_points),
        "origin": _harness["origins"].get(_top),
        "loaded": [name for name in new if name not in lazy],
        "lazy": lazy,
        "startup_modules": len(_before),
        "traced": list(_harness["calls"]),
        "python_version": sys.version.split()[0],
        "marks": _harness["marks"][0],
        "fences": list(_harness["fences"]),
        "excluded_marks": list(_harness["excluded_marks"]),
        "peak_memory": _harness["peak_memory"](_open),
    }
    if final and _counting:
        report["inputs"] = _harness["read_inputs"](new, _open)
    try:
        with _open(_report_path + ".new", "w", encoding="utf-8") as file:
            file.write(_repr(report))
        _replace(_report_path + ".new", _report_path)
    except BaseException:
        pass


_report(final=False)
_point("prelim")
try:
    if _kind == "entry":
        sys.exit(_entry())
    # A __main__ of its own, as -m and -c give: not this script's namespace.
    _main = type(sys)("__main__")
    _main.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = _main
    if _kind == "module":
        _runpy._run_module_as_main(_target, alter_argv=True)  # type: ignore[attr-defined]
    else:
        exec(compile(_target, "<string>", "exec"), _main.__dict__)
finally:
    _point("end")
    _report(final=True)
    _point("report")
if _getpid() != _pid:
    _exit_now(0)
