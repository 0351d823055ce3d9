"""Run one round: a fresh interpreter that imports one module once and reports.

The child (:mod:`pytest_importcache.engine.child`, started as
:mod:`~pytest_importcache.engine.roundcommand` says) is started with ``-I -S``
(no ``PYTHON*`` variables, no user site, no script directory on ``sys.path``,
no ``site`` yet), runs a clean start-up of its own, puts the import
environment's roots first on ``sys.path`` and the measuring process's own
import path after them (sibling packages), times exactly the import with
``perf_counter_ns`` and ``process_time_ns``, and records every import call
with a tracer. It runs under ``-X importtime`` with stderr sent to a file
(piping it would slow the import by several percent), kept for users who ask
for the raw rows; marker lines on stderr fence the measured import off from
the start-up. Its report goes to a file of its own (a Python literal, written
with nothing the import may have replaced), which the imported code does not
know about, so what the module prints cannot corrupt it.

A round that counts instructions runs under valgrind's callgrind
(:mod:`~pytest_importcache.engine.callgrind`, reading no valgrind configuration) as
``-s -S`` instead of ``-I -S``, in a fixed environment with a fixed hash seed
(:func:`~pytest_importcache.engine.roundcommand.child_environment`), and reads
no clock inside the counted stretch.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_importcache.model.errors import (
    ImportRaisedError,
    RoundCrashedError,
    RoundTimeoutError,
    WrongOriginError,
)
from pytest_importcache.model.records import (
    RoundReport,
    TracedImport,
    pending_lazy_imports,
    reified_lazy_imports,
)
from pytest_importcache.model.spec import LazyImportsMode, Metric, StartupCommand

from .callgrind import MarkCosts, read_dump_counts
from .child import BEGIN_MARKER, END_MARKER
from .processwait import Exited, ProcessStartError, exit_description, run_to_exit
from .roundcommand import (
    COUNTED_ENVIRONMENT_VARIABLE,
    DUMPS_NAME,
    REPORT_NAME,
    RoundCommand,
    child_environment,
    round_command,
)
from .startupround import run_startup_round

__all__ = ["run_round"]


def _stderr_lines(stderr_text: str) -> list[str]:
    """The child's stderr lines that are not ``-X importtime`` rows or markers."""
    return [
        line
        for line in stderr_text.splitlines()
        if line.strip() and "import time:" not in line and line not in (BEGIN_MARKER, END_MARKER)
    ]


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
    metric: Metric = "time",
    module_costs: bool = True,
    import_path: Sequence[str] = (),
    source_only: Sequence[str] = (),
    command: StartupCommand | None = None,
    exit_code: int = 0,
    lazy_imports: LazyImportsMode | None = None,
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
    ``lazy_imports="all"`` runs the child under ``-X lazy_imports=all`` (PEP 810).
    Raises :class:`ImportRaisedError`, :class:`RoundTimeoutError`,
    :class:`RoundCrashedError`, :class:`WrongOriginError` or (no valgrind)
    :class:`~pytest_importcache.model.errors.MetricUnavailableError`.

    With ``command``, the round runs that start-up command from exec to exit
    instead (``module`` names the package under test; ``exit_code`` is the
    status it must exit with): :func:`~pytest_importcache.engine.startupround.run_startup_round`.
    """
    __tracebackhide__ = True
    if command is not None:
        return run_startup_round(
            command,
            module.partition(".")[0],
            roots,
            workdir,
            python=python,
            optimize=optimize,
            timeout=timeout,
            pycache_prefix=pycache_prefix,
            description=description,
            metric=metric,
            module_costs=module_costs,
            import_path=import_path,
            source_only=source_only,
            exit_code=exit_code,
            lazy_imports=lazy_imports,
        )
    where = f" ({description})" if description else ""
    report_path = workdir / REPORT_NAME
    report_path.unlink(missing_ok=True)
    # The child's own directory, apart from the report: an import may delete its cwd.
    child_cwd = workdir / "cwd"
    child_cwd.mkdir(exist_ok=True)
    dumps_dir = workdir / DUMPS_NAME
    shutil.rmtree(dumps_dir, ignore_errors=True)
    try:
        child = round_command(
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
            lazy_imports=lazy_imports,
        )
        pid, exited, stderr_text = _run_child(
            child,
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
                f"{exit_description(exited.returncode)} before reporting{where}: {last}{earlier}"
            ) from None
        _check_report(report, module, roots, where, metric=metric)
        costs = None
        if metric == "instructions":
            costs = _mark_costs(report, dumps_dir, pid, detailed=module_costs, where=where)
            _check_count(costs, report, module, where)
    finally:
        shutil.rmtree(dumps_dir, ignore_errors=True)
    round_report = _round_report(report, stderr_text, costs if module_costs else None, costs)
    if metric == "time":
        # The child's own peak (VmHWM); wait4's ru_maxrss where it has none.
        peak = report.get("peak_memory") or exited.peak_memory
        return dataclasses.replace(round_report, peak_memory=peak)
    return round_report


def _run_child(
    command: RoundCommand,
    *,
    child_cwd: Path,
    stderr_path: Path,
    module: str,
    python: str,
    metric: Metric,
    where: str,
) -> tuple[int, Exited, str]:
    """Run the round's child to its end or its timeout: its pid, how it ended, its stderr."""
    __tracebackhide__ = True
    round_token = secrets.token_hex(8)
    with stderr_path.open("w+b") as stderr_file:
        try:
            # Whatever the import left running (also a signal's unwinding) goes with the round.
            ended = run_to_exit(
                command.argv,
                cwd=child_cwd,
                environment=child_environment(round_token, metric=metric, home=child_cwd),
                token=round_token,
                timeout=command.timeout,
                stderr=stderr_file,
            )
        except ProcessStartError as exc:
            raise RoundCrashedError(f"cannot start interpreter {python!r}{where}: {exc}") from None
        except subprocess.TimeoutExpired:
            raise RoundTimeoutError(
                f"importing {module!r} did not finish within {command.timeout_text}{where}; "
                "the interpreter and its child processes were killed"
            ) from None
        stderr_file.seek(0)
        return ended.pid, ended.exited, stderr_file.read().decode("utf-8", errors="replace")


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
        pending_lazy=pending_lazy_imports(report.get("pending_lazy", ()), report["loaded"]),
        reified=reified_lazy_imports(report.get("reified", ())),
    )
