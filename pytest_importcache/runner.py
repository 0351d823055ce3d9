"""Run one round: a fresh interpreter that imports one module once and reports.

The child is started with ``-I`` (no ``PYTHON*`` variables, no user site, no
current directory on ``sys.path``), puts the import environment's roots first
on ``sys.path``, times exactly the import with ``perf_counter_ns`` and
``process_time_ns``, and runs under ``-X importtime`` with stderr sent to a
file (piping it would slow the import by several percent). Its report goes to
a JSON file of its own, which the imported code does not know about, so what
the module prints cannot corrupt it. Marker lines on stderr fence the rows of
the measured import off from the interpreter's start-up imports.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ImportRaisedError, RoundCrashedError, RoundTimeoutError, WrongOriginError

__all__ = ["RoundReport", "TracedImport", "run_round"]

BEGIN_MARKER = "importcache: begin"
END_MARKER = "importcache: end"

# Runs in the child around the measured import, compiled under importlib's own
# file name so that warnings' stack levels and import tracebacks skip its frames
# as they skip importlib's. It wraps `_find_and_load`, which the `import`
# statement and `importlib.import_module` both go through, to record every
# import call: an id, the id of the call it happened in (per thread), whether
# it loaded the module, and its nanoseconds. Unlike `-X importtime` it sees
# `import_module` imports and cannot be confused by what the imported code
# writes to stderr. It also wraps `_load_unlocked` to note which file each
# module was really loaded from, whatever the module later puts in sys.modules.
_TRACER = """\
import sys
from _thread import get_ident
from time import perf_counter_ns as _clock
import _frozen_importlib as _bootstrap

calls = []
origins = {}
_stacks = {}
_next_id = [0]
_find_and_load = _bootstrap._find_and_load
_load_unlocked = _bootstrap._load_unlocked


def traced_find_and_load(name, import_):
    stack = _stacks.setdefault(get_ident(), [])
    _next_id[0] += 1
    call = _next_id[0]
    parent = stack[-1] if stack else 0
    present = name in sys.modules
    stack.append(call)
    start = _clock()
    try:
        return _find_and_load(name, import_)
    finally:
        elapsed = _clock() - start
        stack.pop()
        calls.append((call, parent, name, not present and name in sys.modules, elapsed))


def traced_load_unlocked(spec):
    if spec.name not in origins:
        origin = spec.origin
        if origin in (None, "namespace"):
            origin = next(iter(spec.submodule_search_locations or ()), None)
        origins[spec.name] = origin if isinstance(origin, str) else None
    return _load_unlocked(spec)


def install():
    _bootstrap._find_and_load = traced_find_and_load
    _bootstrap._load_unlocked = traced_load_unlocked


def uninstall():
    _bootstrap._find_and_load = _find_and_load
    _bootstrap._load_unlocked = _load_unlocked
"""

# Runs in the child. Before the measured import it uses only modules every
# interpreter has loaded at start-up (`sys`, `time`, `os`, `_thread`,
# `_frozen_importlib`), so the list of modules the import loads is exact.
# `-X importtime` rows remain the fallback for an interpreter whose imports do
# not go through `_find_and_load`.
_CHILD_CODE = f"""\
import sys, time
_wall, _cpu = time.perf_counter_ns, time.process_time_ns
from os import write as _write
_module, _report_path = sys.argv[1], sys.argv[2]
sys.path[0:0] = sys.argv[3:]
sys.argv[:] = ["-c"]
_already_loaded = _module in sys.modules
_before = set(sys.modules)
_error = None
_tracer = {{}}
exec(compile({_TRACER!r}, "<frozen importlib._bootstrap>", "exec"), _tracer)
_write(2, b"\\n{BEGIN_MARKER}\\n")
_tracer["install"]()
_cpu_start = _cpu()
_wall_start = _wall()
try:
    __import__(_module)
except BaseException as exc:
    _error = exc
_wall_end = _wall()
_cpu_end = _cpu()
_tracer["uninstall"]()
_write(2, b"\\n{END_MARKER}\\n")
_loaded = [name for name in list(sys.modules) if name not in _before]
_origin = _tracer["origins"].get(_module)
if _origin is None:
    _imported = sys.modules.get(_module)
    _origin = getattr(_imported, "__file__", None)
    if _origin is None and hasattr(_imported, "__path__"):
        _origin = next(iter(_imported.__path__), None)
_report = {{
    "wall_ns": _wall_end - _wall_start,
    "cpu_ns": _cpu_end - _cpu_start,
    "origin": _origin if isinstance(_origin, str) else None,
    "loaded": _loaded,
    "traced": _tracer["calls"],
    "already_loaded": _already_loaded,
    "python_version": sys.version.split()[0],
    "error": None,
}}
if _error is not None:
    import traceback
    _report["error"] = {{
        "summary": "".join(traceback.format_exception_only(type(_error), _error)).strip(),
        "traceback": "".join(
            traceback.format_exception(type(_error), _error, _error.__traceback__.tb_next)
        ),
    }}
import json
with open(_report_path, "w", encoding="utf-8") as _file:
    json.dump(_report, _file)
import os
os._exit(0)
"""


@dataclass(frozen=True)
class TracedImport:
    """One import call the child saw.

    ``call_id`` numbers the calls; ``parent_id`` is the call it happened in
    (0 for none). ``loaded`` says whether this call loaded the module (it was
    not in ``sys.modules`` before and was after); ``cumulative_ns`` includes
    the calls made inside it.
    """

    call_id: int
    parent_id: int
    name: str
    loaded: bool
    cumulative_ns: int


@dataclass(frozen=True)
class RoundReport:
    """What one round measured: import wall and CPU time, origin, loaded modules, the tree.

    ``traced`` lists the imports in the order they completed; ``importtime_lines``
    holds the ``-X importtime`` rows of the measured import.
    """

    wall_ns: int
    cpu_ns: int
    origin: str
    loaded: tuple[str, ...]
    python_version: str
    traced: tuple[TracedImport, ...]
    importtime_lines: tuple[str, ...]


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
) -> list[str]:
    """The command line of one round's child interpreter."""
    command = [python, "-I", *_optimize_flags(optimize), "-X", "importtime"]
    if pycache_prefix is not None:
        command += ["-X", f"pycache_prefix={pycache_prefix}"]
    return [*command, "-c", _CHILD_CODE, module, str(report_path), *map(str, roots)]


# Variables that make start-up code import things before the measured import:
# Python's own (ignored under -I anyway, but the import's own subprocesses would
# see them) and coverage.py's subprocess measurement, which a .pth file starts.
_IMPORT_STEERING_PREFIXES = ("PYTHON", "COVERAGE_", "COV_CORE_")


def child_environment() -> dict[str, str]:
    """The caller's environment without the variables that steer imports."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_IMPORT_STEERING_PREFIXES)
    }


def _measured_section(stderr_text: str) -> tuple[str, ...]:
    """The stderr lines written between the begin and end markers."""
    lines = stderr_text.splitlines()
    try:
        start = lines.index(BEGIN_MARKER) + 1
    except ValueError:
        return ()
    end = lines.index(END_MARKER, start) if END_MARKER in lines[start:] else len(lines)
    return tuple(lines[start:end])


def _stderr_tail(stderr_text: str, limit: int = 20) -> str:
    """The child's last stderr lines that are not ``-X importtime`` rows."""
    lines = [
        line
        for line in stderr_text.splitlines()
        if line.strip() and "import time:" not in line and line not in (BEGIN_MARKER, END_MARKER)
    ]
    return "\n".join(lines[-limit:]) or "(nothing on stderr)"


def _is_within(path: Path, roots: Sequence[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(root.resolve()) for root in roots)


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
    raw_path: Path | None = None,
) -> RoundReport:
    """Import ``module`` once in a fresh interpreter whose ``sys.path`` starts with ``roots``.

    ``workdir`` is the child's current directory and holds its report and
    stderr files. ``description`` (e.g. ``"cold round 3 of 10"``) is added to
    error messages. ``raw_path``, when given, receives the child's whole stderr
    (the raw ``-X importtime`` output). Raises :class:`ImportRaisedError`,
    :class:`RoundTimeoutError`, :class:`RoundCrashedError` or :class:`WrongOriginError`.
    """
    __tracebackhide__ = True
    where = f" ({description})" if description else ""
    report_path = workdir / "report.json"
    stderr_path = workdir / "stderr.txt"
    report_path.unlink(missing_ok=True)
    command = child_command(
        python, module, roots, report_path, optimize=optimize, pycache_prefix=pycache_prefix
    )
    with stderr_path.open("w+b") as stderr_file:
        try:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=child_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr_file,
                start_new_session=True,
            )
        except OSError as exc:
            raise RoundCrashedError(f"cannot start interpreter {python!r}{where}: {exc}") from None
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise RoundTimeoutError(
                f"importing {module!r} did not finish within {timeout:g} s{where}; "
                "the interpreter and its child processes were killed"
            ) from None
        finally:
            # Whatever the import left running in the background goes with the round.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        stderr_file.seek(0)
        stderr_text = stderr_file.read().decode("utf-8", errors="replace")
    if raw_path is not None:
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        raw_path.write_text(stderr_text, encoding="utf-8")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise RoundCrashedError(
            f"the interpreter importing {module!r} exited with code {returncode} "
            f"before reporting{where}; its stderr ends with:\n{_stderr_tail(stderr_text)}"
        ) from None
    if report["error"] is not None:
        raise ImportRaisedError(
            f"importing {module!r} raised {report['error']['summary']}{where}",
            report["error"]["traceback"],
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
    return RoundReport(
        wall_ns=int(report["wall_ns"]),
        cpu_ns=int(report["cpu_ns"]),
        origin=origin,
        loaded=tuple(report["loaded"]),
        python_version=str(report["python_version"]),
        traced=tuple(
            TracedImport(int(call), int(parent), str(name), bool(loaded), int(nanoseconds))
            for call, parent, name, loaded, nanoseconds in report["traced"]
        ),
        importtime_lines=_measured_section(stderr_text),
    )
