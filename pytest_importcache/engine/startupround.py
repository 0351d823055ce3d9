"""One start-up round: run a command in a fresh interpreter from exec to exit, and report.

:func:`run_startup_round` is what :func:`~pytest_importcache.engine.runner.run_round`
does for a spec with a command. The child is ``child/startup.py``, run by
path under the same flags, environment, clean start-up and tracer as an
import round (``-I -S`` timed, ``-s -S`` under callgrind counted), in the
copy's environment. The command's stdin is ``/dev/null``; its stdout and
stderr go to files in the rounds directory, never to the terminal, and only
their last :data:`KEPT_OUTPUT` bytes are ever read back. It runs in the
directory the measurement starts from (:func:`command_directory`).

The figure is the whole process. Timed: from just before the measuring
process starts it to the moment it has exited (seen through a pidfd), read on
``perf_counter_ns``, the clock the child reads too (``CLOCK_MONOTONIC``, one
per machine on Linux), so the child's points split it into phases:
``start-up`` (exec to the child's first statement), ``site`` (the clean
start-up), ``import`` (the entry module), ``run`` (the rest, to exit). The
harness's own work (reading itself, writing its reports) is measured and taken
off. Counted: every instruction of the process under callgrind, from its
first to its exit (callgrind's last dump), split at the child's fences the
same way.

An exit status other than the spec's ``exit_code`` is a
:class:`~pytest_importcache.model.errors.CommandExitError` naming the
command, the status and its last stderr lines; a command that reads its
standard input gets end-of-file, which the error points out.
"""

from __future__ import annotations

import ast
import re
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_importcache.model.errors import (
    CommandExitError,
    CommandNotFoundError,
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
from pytest_importcache.model.units import fit, one_line

from .callgrind import (
    VALGRIND_SLOWDOWN,
    MarkCosts,
    callgrind_command,
    find_valgrind,
    read_dump_counts,
    read_final_count,
)
from .child import STARTUP_SCRIPT
from .interpreter import interpreter_binary
from .processwait import Exited, ProcessStartError, exit_description, run_to_exit
from .roundcommand import (
    DUMPS_NAME,
    REPORT_NAME,
    check_lazy_imports,
    child_environment,
    interpreter_command,
)
from .startup import StartupTarget, resolve_target

__all__ = [
    "KEPT_OUTPUT",
    "PHASES",
    "counted_startup_command",
    "read_tail",
    "run_startup_round",
    "startup_child_command",
]

#: How much of the command's stdout and stderr is read back: their last 64 KiB.
KEPT_OUTPUT = 64 * 1024
#: The phases of a start-up figure, in order.
PHASES = ("start-up", "site", "import", "run")
_STDERR_LINES = 5
#: At most this many characters of each stderr line a failure shows.
_STDERR_LINE_WIDTH = 300


def startup_child_command(
    python: str,
    target: StartupTarget,
    top: str,
    roots: Sequence[Path],
    report_path: Path,
    *,
    optimize: int = 0,
    pycache_prefix: Path | None = None,
    metric: Metric = "time",
    import_path: Sequence[str] = (),
    source_only: Sequence[str] = (),
    lazy_imports: LazyImportsMode | None = None,
) -> list[str]:
    """The command line of a start-up round's interpreter (``top``: the package under test).

    ``lazy_imports="all"`` runs it under ``-X lazy_imports=all`` (PEP 810).
    """
    # As import rounds, without -X importtime: the tracer gives the tree.
    return [
        *interpreter_command(
            python,
            metric=metric,
            optimize=optimize,
            pycache_prefix=pycache_prefix,
            lazy_imports=lazy_imports,
        ),
        str(STARTUP_SCRIPT),
        str(report_path),
        metric,
        top,
        str(len(roots)),
        *map(str, roots),
        str(len(import_path)),
        *import_path,
        str(len(source_only)),
        *source_only,
        target.kind,
        target.target,
        target.wrapper or "",
        target.wrapper or target.argv0,
        *target.arguments,
    ]


def counted_startup_command(
    valgrind: str,
    binary: str,
    target: StartupTarget,
    *,
    top: str,
    roots: Sequence[Path],
    workdir: Path,
    optimize: int,
    pycache_prefix: Path | None,
    module_costs: bool,
    import_path: Sequence[str],
    source_only: Sequence[str],
    lazy_imports: LazyImportsMode | None = None,
) -> list[str]:
    """A counted start-up round's whole command line: callgrind, the child (one definition)."""
    return [
        *callgrind_command(valgrind, workdir / DUMPS_NAME, detailed=module_costs),
        *startup_child_command(
            binary,
            target,
            top,
            roots,
            workdir / REPORT_NAME,
            optimize=optimize,
            pycache_prefix=pycache_prefix,
            metric="instructions",
            import_path=import_path,
            source_only=source_only,
            lazy_imports=lazy_imports,
        ),
    ]


def read_tail(path: Path, limit: int = KEPT_OUTPUT) -> str:
    """The last ``limit`` bytes of the file at ``path``, decoded; ``""`` when it is missing."""
    try:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            file.seek(max(size - limit, 0))
            data = file.read(limit)
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size <= limit:
        return text
    cut, _, rest = text.partition("\n")
    # A line begun before the window is kept (marked as cut) when it is all there is to show.
    return rest if rest.strip() else "…" + cut + "\n" + rest


# valgrind's own lines on the command's stderr (a counted round): "==123== ...".
_VALGRIND_LINE = re.compile(r"==\d+== ")


def _last_lines(text: str, count: int = _STDERR_LINES) -> str:
    """The last ``count`` non-empty lines of the command's stderr, on one line.

    Each line is cut to :data:`_STDERR_LINE_WIDTH` characters and its control
    characters are escaped: the terminal shows them as text.
    """
    lines = [
        fit(one_line(line.rstrip()), _STDERR_LINE_WIDTH)
        for line in text.splitlines()
        if line.strip() and not _VALGRIND_LINE.match(line)
    ]
    return " | ".join(lines[-count:]) if lines else "nothing on stderr"


def run_startup_round(
    command: StartupCommand,
    top: str,
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
    exit_code: int = 0,
    lazy_imports: LazyImportsMode | None = None,
) -> RoundReport:
    """Run ``command`` once, from exec to exit, with the copy of ``top`` first on its path.

    Arguments as :func:`~pytest_importcache.engine.runner.run_round`'s;
    ``exit_code`` is the status the command must exit with. Raises
    :class:`CommandExitError`, :class:`RoundTimeoutError`,
    :class:`RoundCrashedError` or :class:`WrongOriginError`.
    """
    __tracebackhide__ = True
    where = f" ({description})" if description else ""
    check_lazy_imports(python, lazy_imports)
    target = resolve_target(command, python, tuple(import_path))
    report_path = workdir / REPORT_NAME
    report_path.unlink(missing_ok=True)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    dumps_dir = workdir / DUMPS_NAME
    shutil.rmtree(dumps_dir, ignore_errors=True)
    try:
        if metric == "time":
            argv = startup_child_command(
                python,
                target,
                top,
                roots,
                report_path,
                optimize=optimize,
                pycache_prefix=pycache_prefix,
                import_path=import_path,
                source_only=source_only,
                lazy_imports=lazy_imports,
            )
            allowed, allowed_text = timeout, f"{timeout:g} s"
        else:
            valgrind = find_valgrind()
            dumps_dir.mkdir()
            argv = counted_startup_command(
                valgrind,
                interpreter_binary(python),
                target,
                top=top,
                roots=roots,
                workdir=workdir,
                optimize=optimize,
                pycache_prefix=pycache_prefix,
                module_costs=module_costs,
                import_path=import_path,
                source_only=source_only,
                lazy_imports=lazy_imports,
            )
            allowed = timeout * VALGRIND_SLOWDOWN
            allowed_text = f"{timeout:g} s x {VALGRIND_SLOWDOWN} for valgrind"
        started_ns, pid, exited = _run(
            argv,
            workdir,
            home=home,
            metric=metric,
            label=command.label,
            allowed=allowed,
            allowed_text=allowed_text,
            where=where,
            python=python,
        )
        stderr = read_tail(workdir / "stderr.txt")
        if exited.returncode != exit_code:
            hint = (
                " (it read its standard input, which is /dev/null in a start-up round)"
                if "EOFError" in stderr
                else ""
            )
            missing = re.search(r"^importcache: entry point (.*)$", stderr, re.MULTILINE)
            if missing:  # the installed distribution's entry point, not in this copy
                raise CommandNotFoundError(
                    f"{command.label!r}: entry point {missing[1]}{where}: a console script's "
                    "entry point and wrapper come from the installed distribution"
                )
            raise CommandExitError(
                f"{command.label!r} exited with {exit_description(exited.returncode)}, "
                f"not {exit_code}{where}{hint}: {_last_lines(stderr)}"
            )
        report = _read_report(report_path, command.label, exited, stderr, where)
        _check_origin(report, top, roots, command.label, where)
        if metric == "time":
            values, costs = _timed_points(report, started_ns, exited), None
        else:
            costs, values = _counted_points(report, dumps_dir, pid, module_costs, where)
    finally:
        shutil.rmtree(dumps_dir, ignore_errors=True)
    wall_ns = exited.ended_ns - started_ns
    return _round_report(
        report,
        values,
        costs if module_costs else None,  # a plain round dumps at its fences only
        stderr=stderr,
        label=command.key,  # the result's command: its benchmark name
        exited=exited,
        metric=metric,
        wall_ns=wall_ns,
    )


def command_directory() -> Path:
    """Where a start-up round's command runs: the directory the measurement starts from.

    As the user types the command there (``mycli lint src/`` finds ``src``);
    the copy still comes first on the import path (rounds run with ``-I``/``-s``,
    so this directory is not on it). A counted round's ``HOME`` is the round's
    own empty directory (its environment is fixed: see
    :func:`~pytest_importcache.engine.roundcommand.child_environment`). A
    directory that is gone gives the filesystem root.
    """
    try:
        return Path.cwd()
    except OSError:
        return Path("/")


def _run(
    argv: list[str],
    workdir: Path,
    *,
    home: Path,
    metric: Metric,
    label: str,
    allowed: float,
    allowed_text: str,
    where: str,
    python: str,
) -> tuple[int, int, Exited]:
    """Run the round to its end or its timeout: its start (ns), its pid, how it ended."""
    __tracebackhide__ = True
    token = secrets.token_hex(8)
    with (
        (workdir / "stdout.txt").open("wb") as stdout,
        (workdir / "stderr.txt").open("wb") as stderr,
    ):
        try:
            # Whatever the command left running (daemons, a server) goes with the round.
            ended = run_to_exit(
                argv,
                cwd=command_directory(),
                environment=child_environment(token, metric=metric, home=home),
                token=token,
                timeout=allowed,
                stdout=stdout,
                stderr=stderr,
            )
        except ProcessStartError as exc:
            raise RoundCrashedError(f"cannot start interpreter {python!r}{where}: {exc}") from None
        except subprocess.TimeoutExpired:
            raise RoundTimeoutError(
                f"{label!r} did not finish within {allowed_text}{where}; it and the processes "
                "it started were killed"
            ) from None
    return ended.started_ns, ended.pid, ended.exited


def _read_report(
    report_path: Path, label: str, exited: Exited, stderr: str, where: str
) -> dict[str, Any]:
    """The child's last report (the first one when the command left by ``os._exit``).

    A timed round's final report ends with a line of its own: the ``report``
    point, taken once the report's text was written.
    """
    __tracebackhide__ = True
    try:
        text, _, report_point = report_path.read_text(encoding="utf-8").partition("\n")
        report: dict[str, Any] = ast.literal_eval(text)
        if report_point:
            report["points"]["report"] = int(report_point)
    except (OSError, ValueError, SyntaxError, MemoryError, RecursionError, KeyError):
        raise RoundCrashedError(
            f"the interpreter running {label!r} ended with "
            f"{exit_description(exited.returncode)} before it reached the command{where}: "
            f"{_last_lines(stderr)}"
        ) from None
    return report


def _check_origin(
    report: dict[str, Any], top: str, roots: Sequence[Path], label: str, where: str
) -> None:
    """Raise when the package under test was loaded from outside the copy."""
    __tracebackhide__ = True
    origin = report.get("origin")
    if origin is None:
        return  # the command never imported it: nothing came from elsewhere
    resolved = Path(origin).resolve()
    if not any(resolved.is_relative_to(root.resolve()) for root in roots):
        raise WrongOriginError(
            f"{label!r} imported {top!r} from {origin}, outside the import environment "
            f"({', '.join(map(str, roots))}){where}: an import hook or a stale copy took precedence"
        )


def _phases_from(points: dict[str, int], start: int, end: int) -> list[tuple[str, int]]:
    """The phases from the child's points, the figure running from ``start`` to ``end``.

    The harness's own stretches (loading itself, writing reports) are left out.
    """
    first, harness, site, imported = (
        points["first"],
        points["harness"],
        points["site"],
        points["import"],
    )
    after_import = points.get("prelim", imported)
    run = end - after_import
    if "end" in points and "report" in points:
        run -= points["report"] - points["end"]
    return [
        ("start-up", max(first - start, 0)),
        ("site", max(site - harness, 0)),
        ("import", max(imported - site, 0)),
        ("run", max(run, 0)),
    ]


def _timed_points(report: dict[str, Any], started_ns: int, exited: Exited) -> list[tuple[str, int]]:
    """A timed round's phases in nanoseconds."""
    return _phases_from(dict(report["points"]), started_ns, exited.ended_ns)


def _counted_points(
    report: dict[str, Any], dumps_dir: Path, pid: int, detailed: bool, where: str
) -> tuple[MarkCosts, list[tuple[str, int]]]:
    """A counted round's costs between marks, and its phases in instructions."""
    __tracebackhide__ = True
    dumped = list(range(1, int(report["marks"]) + 1)) if detailed else list(report["fences"])
    # The fence after the final report, announced in it (after every mark it holds).
    dumped += [mark for mark in report["points"].values() if mark > int(report["marks"])]
    counts = read_dump_counts(dumps_dir, pid)
    final = read_final_count(dumps_dir, pid)
    if len(counts) < len(dumped) or final is None:
        raise RoundCrashedError(
            f"callgrind counted {len(counts)} stretches where the round marked {len(dumped)}"
            f"{where}: the command itself calls os.getppid() or os.getpgrp(), which fence "
            "the count; measure it by time"
        )
    # Marks made after the last report (the command's own exit code) are not in it.
    costs = MarkCosts(
        dumped, counts[: len(dumped)], [tuple(pair) for pair in report["excluded_marks"]]
    )
    running = {mark: costs.upto(mark) for mark in dumped}
    total = sum(counts) + final
    points = {name: running.get(mark, 0) for name, mark in report["points"].items()}
    return costs, _phases_from(points, 0, total)


def _round_report(
    report: dict[str, Any],
    phases: list[tuple[str, int]],
    costs: MarkCosts | None,
    *,
    stderr: str,
    label: str,
    exited: Exited,
    metric: Metric,
    wall_ns: int,
) -> RoundReport:
    """The child's report and the phases as a :class:`RoundReport`; the figure is their sum.

    A counted round's ``wall_ns`` is the slowed-down time under valgrind.
    """
    traced = tuple(
        TracedImport(
            int(call),
            int(parent),
            str(name),
            bool(loaded),
            int(nanoseconds),
            costs.between(first_mark, last_mark)
            if costs is not None and first_mark and last_mark
            else None,
        )
        for call, parent, name, loaded, nanoseconds, first_mark, last_mark in report["traced"]
    )
    total = sum(value for _, value in phases)
    return RoundReport(
        wall_ns=total if metric == "time" else wall_ns,
        cpu_ns=0,
        origin=str(report.get("origin") or ""),
        loaded=tuple(report["loaded"]),
        python_version=str(report["python_version"]),
        traced=traced,
        stderr=stderr,
        lazy=tuple(report["lazy"]),
        startup_modules=int(report["startup_modules"]),
        instructions=total if metric == "instructions" else None,
        inputs=tuple((str(path), str(source)) for path, source in report.get("inputs", ())),
        peak_memory=(report.get("peak_memory") or exited.peak_memory) if metric == "time" else None,
        command=label,
        phases=tuple(phases),
        pending_lazy=pending_lazy_imports(report.get("pending_lazy", ()), report["loaded"]),
        reified=reified_lazy_imports(report.get("reified", ())),
        reified_in_run=reified_lazy_imports(report.get("reified_in_run", ())),
    )
