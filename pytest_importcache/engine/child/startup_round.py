"""The body of a start-up round, executed by ``startup.py`` in its namespace (never imported).

``startup.py`` has taken the first point (``_first``, and the first fence when
counting); this runs the rest, as ``startup.py``'s docstring describes.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sys
    from collections.abc import Callable

    _first: int
    _counting: bool
    _now: Callable[[], int]
    _fence_function: Callable[[], int]
else:
    import sys
# _first, _counting, _now and _fence_function are startup.py's (F821 below: ruff
# does not see names this file is given by the namespace it is executed in).

from os import _exit as _exit_now  # noqa: E402
from os import getpid as _getpid  # noqa: E402
from os import replace as _replace  # noqa: E402

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any

_open, _repr, _pid = open, repr, _getpid()
_harness: "dict[str, Any]" = {}
with _open(__file__[: -len("startup.py")] + "harness.py", "rb") as _harness_file:
    exec(compile(_harness_file.read(), "<frozen importlib._bootstrap>", "exec"), _harness)
_points: "dict[str, int]" = {}
if _counting:  # noqa: F821
    sys.dont_write_bytecode = False  # as -I would have it
    from os import getpgrp as _mark_function

    _harness["count_with"](_fence_function, _mark_function)  # noqa: F821
    _harness["marks"][0] = 1
    _harness["fences"].append(1)
    _points["first"] = 1
else:
    _points["first"] = _first  # noqa: F821


def _point(name: str) -> None:
    _points[name] = _harness["fence"]() if _counting else _now()  # noqa: F821


_arguments = sys.argv[1:]
_report_path, _metric, _top = _arguments[0], _arguments[1], _arguments[2]
_rest = _arguments[3:]
_roots = _rest[1 : 1 + int(_rest[0])]
_rest = _rest[1 + int(_rest[0]) :]
_import_path = _rest[1 : 1 + int(_rest[0])]
_rest = _rest[1 + int(_rest[0]) :]
_source_only = _rest[1 : 1 + int(_rest[0])]
_kind, _target, _wrapper, _argv0, *_command_arguments = _rest[1 + int(_rest[0]) :]
_round_files = (__file__, __file__[: -len("startup.py")] + "startup_round.py")


def _hide_round_frames(
    kind: "type[BaseException]",
    error: BaseException,
    trace: "TracebackType | None",
    shown_by: "Callable[..., object]" = sys.excepthook,
) -> None:
    """Show an uncaught exception without this round's own frames, as the command would."""
    frame = trace
    while frame is not None and frame.tb_frame.f_code.co_filename in _round_files:
        frame = frame.tb_next
    if frame is not None:  # the command's own frames; else the round's error, shown whole
        error.__traceback__ = trace = frame
    shown_by(kind, error, trace)


_point("harness")

_harness["start_up"](_roots, _import_path, _top)
_harness["guard_bytecode"](_roots)
_harness["compile_from_source"](_source_only)
_point("site")

_before = set(sys.modules)
# PEP 810 (3.15+): the names of lazy imports pending before the command (not modules).
_lazy_before = set(getattr(sys, "lazy_modules", ()))
sys.argv[:] = [_argv0, *_command_arguments]
_harness["install"]()
_entry: "Any" = None
if _kind == "entry":
    # The entry module first, for the import phase; the installer's wrapper (when it is
    # Python) then runs as __main__ and finds it imported, its own imports counted.
    _entry_module, _, _attribute = _target.partition(":")
    try:
        _entry = __import__(_entry_module, fromlist=["__name__"])
    except ModuleNotFoundError as _error:  # the entry module itself, not one it imports
        if not f"{_entry_module}.".startswith(f"{_error.name}."):
            raise
        sys.exit(f"importcache: entry point {_target}: no module {_error.name}")
    for _name in filter(None, _attribute.strip().split(".")):
        _entry = getattr(_entry, _name, _point)  # _point: a sentinel, never an entry point
        if _entry is _point:
            sys.exit(f"importcache: entry point {_target}: no attribute {_name}")
elif _kind == "module":
    import runpy as _runpy
    from importlib.util import find_spec as _find_spec

    # The package runpy runs from (-m pkg runs pkg.__main__), or the module's parent:
    # a plain module itself is executed once only, by runpy, as __main__.
    _spec = _find_spec(_target)
    if _spec is not None and _spec.submodule_search_locations is not None:
        __import__(_target)
_point("import")
# The lazy imports reified so far were reified by the entry module's import; the
# later ones by the command's run: the deferred cost landing at first use.
_import_notes = len(_harness["reifying"])


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
        "excluded_marks": list(_harness["excluded_marks"]),
        # Counted: none (valgrind's would be measured), and no read of /proc/self/status,
        # whose digits vary: the buffers they size leave the allocator in another state.
        "peak_memory": None if _counting else _harness["peak_memory"](_open),  # noqa: F821
        "pending_lazy": [
            name
            for name in getattr(sys, "lazy_modules", ())
            if name not in _lazy_before and name not in sys.modules
        ],
    }
    # reified() imports opcode: before the command runs, only when there is a note.
    if final or _harness["reifying"]:
        notes = _harness["reified"](_roots)
        report["reified"] = notes[:_import_notes]
        report["reified_in_run"] = notes[_import_notes:]
    if final and _counting:  # noqa: F821
        # The wrapper's code is run, not imported: its file is an input of the count too.
        report["inputs"] = _harness["read_inputs"](new, _open) + ([[_wrapper, ""]] * bool(_wrapper))
    # The marks last: reified() may have imported (a mark), and nothing below marks.
    marks: int = _harness["marks"][0]
    report["marks"], report["fences"] = marks, list(_harness["fences"])
    if final and _counting:  # noqa: F821
        # The fence just after this report is the next mark: the report cannot hold what
        # follows it, so its number is reported ahead and the parent leaves the report out.
        report["points"] = {**_points, "report": marks + 1}
    try:
        with _open(_report_path + ".new", "w", encoding="utf-8") as file:
            file.write(_repr(report))
            if final and not _counting:  # noqa: F821
                # A timed round's report point, on a last line after the report's text.
                file.flush()
                _point("report")
                file.write(f"\n{_points['report']}")
        _replace(_report_path + ".new", _report_path)
    except BaseException:
        pass


_report(final=False)
_point("prelim")
try:
    if _kind == "entry" and not _wrapper:
        sys.exit(_entry())
    # A __main__ of its own, as -m, -c and a script give: not this script's namespace.
    _main = type(sys)("__main__")
    _main.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = _main
    if _kind == "module":
        _runpy._run_module_as_main(_target, alter_argv=True)  # type: ignore[attr-defined]
    elif _kind == "entry":
        _main.__file__ = _wrapper
        with _open(_wrapper, "rb") as _wrapper_file:
            exec(compile(_wrapper_file.read(), _wrapper, "exec"), _main.__dict__)
    else:
        exec(compile(_target, "<string>", "exec"), _main.__dict__)
finally:
    _point("end")
    # Only now, and only over the interpreter's own hook: the command never sees it.
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _hide_round_frames
    _report(final=True)
    if _counting:  # noqa: F821
        _point("report")  # the fence the final report announced
if _getpid() != _pid:
    _exit_now(0)
