"""The round's hooks into the import system: start-up, tracer, fences, bytecode guard.

Not imported: the child's script (``main.py``) reads this file and executes it
under importlib's own file name, so that warnings' stack levels and import
tracebacks skip its frames as they skip importlib's. It imports only modules
a start-up has loaded already, and ``typing`` never (``TYPE_CHECKING`` is a
plain name here): annotations naming its types are strings.

``start_up`` rebuilds what ``site`` does at start-up (the child runs with
-S), minus what would make a round depend on unrelated software: ``.pth``
lines that *import* something (an editable install's meta-path finder,
coverage's subprocess hook, distutils-precedence) are kept aside instead of
run, and ``sitecustomize`` is not run. The ``.pth`` path lines still extend
``sys.path``. Then the copy's roots go first, followed by the import path the
measuring process sees (pytest's ``pythonpath``, rootdir and conftest
insertions, ``PYTHONPATH``, ``--path``) minus what this start-up already put
on it, so that sibling packages import as in the tests. ``MeasuredPackage``,
the first meta-path finder, finds the measured top-level name in the copy's
roots only: the directory on that path which holds the original package
(searched for its siblings) never serves it, not even as a namespace portion.
The kept-aside lines run only if an import misses everywhere else (a
dependency that only such a finder makes importable), through
``DeferredStartup``, the last meta-path finder: paused from the tracer, their
time taken off the round's figures, and the modules they loaded dropped from
``sys.modules`` again, so the measured import loads and pays for them itself.

``guard_bytecode`` makes the importer write bytecode only inside the import
environment (and a closure-cold round's pycache prefix): a dependency without
bytecode is compiled in every round and never gets a ``__pycache__``, whatever
the caller's bytecode settings.

The tracer wraps ``_find_and_load``, which the ``import`` statement and
``importlib.import_module`` both go through, to record every import call: an
id, the id of the call it happened in (per thread), whether it loaded the
module, and its nanoseconds; on 3.15, where importlib is asked for a name
still pending as a PEP 810 lazy import, it notes the first frame outside
importlib (``reified``). It also wraps ``_load_unlocked`` to note which
file each module was really loaded from, whatever the module later puts in
sys.modules.

The bodies of the functions that run during the measured import (the tracer,
the fences, the finders, the bytecode hooks) are what a counted round counts:
change them and every stored count is counted again.
"""

import _frozen_importlib as _bootstrap
import _frozen_importlib_external as _external
import os
import site
import sys
from _thread import get_ident
from time import perf_counter_ns as _clock
from time import process_time_ns as _cpu_clock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import FrameType, ModuleType
    from typing import Any

# (call, parent call, name, loaded, nanoseconds, first mark, last mark) per import call.
calls: "list[tuple[int, int, str, bool, int, int, int]]" = []
origins: "dict[str, str | None]" = {}
# Modules the deferred start-up lines load (editable installs' finders): not the
# import's, but their finders' find_spec runs during it, so their files are inputs.
paused_specs: "list[tuple[str | None, str | None]]" = []
deferred: "list[tuple[str, str, str]]" = []
excluded = [0, 0]
marks = [0]
fences: "list[int]" = []
excluded_marks: "list[tuple[int, int]]" = []
_counting = [False]
# Replaced by count_with before any call (int() reads nothing and returns 0).
_fence_function: "list[Callable[[], object]]" = [int]
_mark_function: "list[Callable[[], object]]" = [int]
_stacks: "dict[int, list[int]]" = {}
_next_id = [0]
_paused = [False]
_deferred_ran = [False]
# PEP 810 (3.15+): a lazy import reified during the measured import, as
# (name, file, line, instruction), noted when importlib is asked for a name
# still pending in sys.lazy_modules; reified() keeps the real reifications.
reifying: "list[tuple[str, str, int, int]]" = []
_has_lazy_imports = hasattr(sys, "lazy_modules")
# Private functions of importlib, which typeshed does not describe.
_find_and_load = _bootstrap._find_and_load  # type: ignore[attr-defined]
_load_unlocked = _bootstrap._load_unlocked  # type: ignore[attr-defined]
_gcd_import = _bootstrap._gcd_import  # type: ignore[attr-defined]


def count_with(
    fence_function: "Callable[[], object]", mark_function: "Callable[[], object]"
) -> None:
    """Count instructions: fence with ``fence_function``, mark imports with ``mark_function``."""
    global _clock, _cpu_clock  # noqa: PLW0603
    # Reading a clock executes a varying number of instructions: counted rounds
    # read none, so that they count the same every time.
    _clock = _cpu_clock = int
    _counting[0] = True
    _fence_function[0] = fence_function
    _mark_function[0] = mark_function


def fence() -> int:
    """Call the fence function (callgrind dumps there); its number, 0 when not counting."""
    if not _counting[0]:
        return 0
    marks[0] += 1
    number = marks[0]
    fences.append(number)
    _fence_function[0]()
    return number


def import_mark() -> int:
    """Call the mark function (a per-module dump), the mark's number."""
    marks[0] += 1
    number = marks[0]
    _mark_function[0]()
    return number


def _read_pth_file(sitedir: str, name: str, known_paths: "set[str] | None") -> "set[str] | None":
    reset = known_paths is None
    # site's own helper, which typeshed does not describe.
    known = site._init_pathinfo() if known_paths is None else known_paths  # type: ignore[attr-defined]
    fullname = os.path.join(sitedir, name)
    try:
        with open(fullname, "rb") as handle:
            raw = handle.read()
    except OSError:
        return None if reset else known
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith(("import ", "import\t")):
            deferred.append((sitedir, fullname, line))
            continue
        directory, case = site.makepath(sitedir, line.rstrip())
        if case not in known and os.path.exists(directory):
            sys.path.append(directory)
            known.add(case)
    return None if reset else known


class DeferredStartup:
    """The last meta-path finder: runs the kept-aside ``.pth`` import lines once, if needed."""

    @classmethod
    def find_spec(  # noqa: C901  (one stretch, fenced as a whole)
        cls,
        name: str,
        path: "Sequence[str] | None" = None,
        target: "ModuleType | None" = None,
    ) -> "ModuleSpec | None":
        """The spec a finder the deferred lines install gives ``name``, if any."""
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
                try:  # noqa: SIM105  (contextlib is not loaded at start-up)
                    exec(
                        line,
                        {
                            "__builtins__": __builtins__,
                            "sitedir": sitedir,
                            "fullname": fullname,
                            "site": site,
                            "sys": sys,
                        },
                    )
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
    """The first meta-path finder: the measured top-level name, from the copy's roots only."""

    top = ""
    roots: "list[str]" = []  # noqa: RUF012  (the class itself is the finder: start_up sets it)

    @classmethod
    def find_spec(
        cls,
        name: str,
        path: "Sequence[str] | None" = None,
        target: "ModuleType | None" = None,
    ) -> "ModuleSpec | None":
        """``name``'s spec in the roots when it is the measured top-level name, else ``None``."""
        if path is not None or name != cls.top:
            return None
        return _external.PathFinder.find_spec(name, cls.roots, target)


def _defer_pth_imports(state: "Any") -> None:
    """3.15's start-up state: keep its ``.pth`` import lines aside (as ``_read_pth_file``)."""
    entrypoints = getattr(state, "_entrypoints", {})
    for fullname, lines in getattr(state, "_importexecs", {}).items():
        if fullname.rpartition(".")[0] + ".start" not in entrypoints:
            deferred.extend((os.path.dirname(fullname), fullname, line) for line in lines)


def _defer_start_entrypoints(state: "Any") -> None:
    """3.15's start-up state: keep its ``.start`` entry points aside, as import lines."""
    for fullname, entrypoints in getattr(state, "_entrypoints", {}).items():
        for entrypoint in entrypoints:
            line = f"import pkgutil; pkgutil.resolve_name({entrypoint!r}, strict=True)()"
            deferred.append((os.path.dirname(fullname), fullname, line))


def start_up(roots: "list[str]", import_path: "list[str]", top: str) -> None:
    """A clean ``site`` start-up, then ``roots`` and ``import_path`` on the path, finders in."""
    # site's undocumented functions, replaced as site's own tests do.
    site.addpackage = _read_pth_file  # type: ignore[assignment]
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


def compile_from_source(directories: "list[str]") -> None:
    """Make modules found through ``directories`` neither read nor write bytecode."""
    # Each round compiles them (both sides of a same-run comparison alike). A
    # file belongs to the longest path entry that holds it, so an environment
    # inside a source-only directory (site-packages in a project's .venv) keeps
    # its bytecode.
    if not directories:
        return
    chosen = list(dict.fromkeys(os.path.join(directory, "") for directory in directories))
    entries = {os.path.join(entry, "") for entry in sys.path if isinstance(entry, str) and entry}
    # Per source-only directory (in the caller's order), the path entries inside
    # it, longest first. Every module pays one test per source-only directory,
    # whatever the lengths of the paths: the revision's tree lies at a longer
    # path than the working tree, and sorting all entries by length made every
    # standard library module of the base side test one entry more (0.1-0.2%).
    owners = [
        (
            directory,
            [
                (entry, entry in chosen)
                for entry in sorted(entries, key=lambda entry: (-len(entry), entry))
                if entry != directory and entry.startswith(directory)
            ],
        )
        for directory in chosen
    ]
    cache_from_source = _external.cache_from_source

    # The caller's arguments as they are: 3.15 has no debug_override.
    def source_only_cache(path: str, *arguments: "Any", **keywords: "Any") -> str:
        for directory, inner in owners:
            if path.startswith(directory):
                source_only = True
                for entry, entry_source_only in inner:
                    if path.startswith(entry):
                        source_only = entry_source_only
                        break
                if source_only:
                    raise NotImplementedError(path)
                break
        return cache_from_source(path, *arguments, **keywords)

    # An importlib function whose overloads typeshed keeps for callers, not replacements.
    _external.cache_from_source = source_only_cache  # type: ignore[assignment]


def guard_bytecode(roots: "list[str]") -> None:
    """Let the importer write bytecode only under ``roots`` and the pycache prefix."""
    allowed = tuple(os.path.join(root, "") for root in roots)
    if sys.pycache_prefix:
        allowed += (os.path.join(sys.pycache_prefix, ""),)
    set_data = _external.SourceFileLoader.set_data

    def guarded_set_data(
        self: "_external.SourceFileLoader", path: str, data: bytes, *, _mode: int = 0o666
    ) -> None:
        if path.startswith(allowed):
            return set_data(self, path, data, _mode=_mode)
        return None

    # importlib's own method, replaced for the round (typeshed's data type is a Buffer).
    _external.SourceFileLoader.set_data = guarded_set_data  # type: ignore[method-assign,assignment]


def traced_find_and_load(name: str, import_: "Callable[..., object]", **keywords: "Any") -> "Any":
    """importlib's ``_find_and_load``, the call recorded (and marked when counting).

    ``keywords``: 3.15's ``lazy_submodule=True``, from ``_find_and_load_lazy_submodule``
    (a PEP 810 ``lazy from package import name`` resolved).
    """
    if _paused[0]:
        return _find_and_load(name, import_, **keywords)
    stack = _stacks.setdefault(get_ident(), [])
    _next_id[0] += 1
    call = _next_id[0]
    parent = stack[-1] if stack else 0
    present = name in sys.modules
    if _has_lazy_imports and not present and import_ is not _gcd_import and name in _lazy_names():
        _note_reification(name)
    stack.append(call)
    excluded_before = excluded[0]
    first_mark = import_mark() if _counting[0] else 0
    start = _clock()
    try:
        return _find_and_load(name, import_, **keywords)
    finally:
        elapsed = _clock() - start - (excluded[0] - excluded_before)
        last_mark = import_mark() if _counting[0] else 0
        stack.pop()
        loaded = not present and name in sys.modules
        calls.append((call, parent, name, loaded, elapsed, first_mark, last_mark))


def _lazy_names() -> "set[str]":
    """``sys.lazy_modules`` (3.15+), which typeshed does not describe yet."""
    names: set[str] = sys.lazy_modules  # type: ignore[attr-defined]
    return names


def _note_reification(name: str) -> None:
    """Note where pending lazy ``name`` is imported: the first frame outside importlib."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
        frame = frame.f_back
    if frame is not None:
        code = frame.f_code
        instruction = code.co_code[frame.f_lasti] if 0 <= frame.f_lasti < len(code.co_code) else -1
        reifying.append((name, code.co_filename, frame.f_lineno or 0, instruction))


def reified(roots: "list[str]") -> "list[list[str]]":
    """The noted imports as [name, "file:line", instruction name]; called after the import.

    A file under ``roots`` is named relative to its root. The instruction tells
    an ``import`` statement (``IMPORT_NAME``) or a call apart from a use that
    reified a lazy import (``LOAD_NAME``, ``LOAD_GLOBAL``, ``LOAD_ATTR``...).
    """
    if not reifying:
        return []
    names: list[str] = []
    try:
        from opcode import opname  # noqa: PLC0415 - loaded only after the measured import is over

        names = list(opname)
    except BaseException:
        pass
    prefixes = [os.path.join(root, "") for root in roots]
    noted = []
    for name, path, line, instruction in reifying:
        shown = path
        for prefix in prefixes:
            if path.startswith(prefix):
                shown = path[len(prefix) :]
                break
        known = 0 <= instruction < len(names)
        noted.append([name, f"{shown}:{line}", names[instruction] if known else str(instruction)])
    return noted


def traced_load_unlocked(spec: "ModuleSpec") -> "Any":
    """importlib's ``_load_unlocked``, the file each module is loaded from noted."""
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


_NO_SITE_HINT = (
    ". Site initialization is disabled, did you forget to add the site-packages directory "
    "to sys.path or to enable your virtual environment?"
)


def describe_error(error: BaseException) -> "tuple[str, str]":
    """The import's error: its one-line summary and its traceback (the child's frame left out)."""
    skipped = error.__traceback__.tb_next if error.__traceback__ is not None else None
    try:
        import traceback  # noqa: PLC0415 - loaded only after the measured import is over

        summary = "".join(traceback.format_exception_only(type(error), error)).strip()
        text = "".join(traceback.format_exception(type(error), error, skipped))
        # 3.15's traceback blames -S for any ModuleNotFoundError; the round ran site itself.
        return summary.replace(_NO_SITE_HINT, ""), text.replace(_NO_SITE_HINT, "")
    except BaseException:
        pass
    try:
        message = str(error)
    except BaseException:
        message = ""
    summary = type(error).__name__ + (": " + message if message else "")
    lines = ["Traceback (most recent call last):"]
    frame = skipped
    while frame is not None:
        code = frame.tb_frame.f_code
        where = (code.co_filename, frame.tb_lineno, code.co_name)
        lines.append('  File "%s", line %s, in %s' % where)  # noqa: UP031
        frame = frame.tb_next
    return summary, "\n".join([*lines, summary]) + "\n"


def read_inputs(new_modules: "list[str]", opener: "Callable[..., Any]") -> "list[list[str]]":
    """What a count depends on: modules' files, bytecode, listed directories, mapped files."""
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
    return inputs + _mapped_files(opener)


def _mapped_files(opener: "Callable[..., Any]") -> "list[list[str]]":
    """Every file mapped into this process: binary, libpython, extension modules, libraries."""
    mapped = []
    try:
        with opener("/proc/self/maps", "rb") as maps:
            for line in maps.read().decode("utf-8", "surrogateescape").splitlines():
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].startswith("/"):
                    mapped.append([fields[5], ""])
    except OSError:
        pass
    return mapped


def peak_memory(opener: "Callable[..., Any]") -> "int | None":
    """This process's peak resident set since its exec, bytes (``VmHWM``); ``None`` without /proc.

    Not ``getrusage``/``wait4``'s ``ru_maxrss``: Linux carries the resident set
    of the process that forked this one (the measuring process, pytest) into
    it across exec, so a round started from a 200 MB parent would peak at 200 MB.
    """
    try:
        with opener("/proc/self/status", "rb") as status:
            for line in status.read().splitlines():
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def install() -> None:
    """Put the tracer in importlib's place."""
    _bootstrap._find_and_load = traced_find_and_load  # type: ignore[attr-defined]
    _bootstrap._load_unlocked = traced_load_unlocked  # type: ignore[attr-defined]


def uninstall() -> None:
    """Give importlib its own functions back."""
    _bootstrap._find_and_load = _find_and_load  # type: ignore[attr-defined]
    _bootstrap._load_unlocked = _load_unlocked  # type: ignore[attr-defined]
