"""The key and the manifest of a stored count.

:mod:`~pytest_importcache.engine.countstore` finds a count in two steps (see
there): the **key** (:func:`count_key`), a digest of everything known before
the rounds run, and the **manifest**, the inputs the rounds reported, each
recorded by a digest (:func:`input_digest`) and checked again before an entry
is used. Round reports are kept as plain JSON (:func:`report_to_json`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from pytest_importcache.model.errors import MetricUnavailableError
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.spec import MeasurementSpec

from .callgrind import find_valgrind
from .child import child_digest
from .copying import file_sha256
from .interpreter import interpreter_binary, past_sibling_links
from .roundcommand import (
    child_environment,
    counted_round_command,
    round_pycache_prefix,
)
from .startup import resolve_target
from .startupround import command_directory, counted_startup_command

__all__ = [
    "STORE_FORMAT",
    "changed_since",
    "count_key",
    "files_clock_now",
    "input_digest",
    "manifest_inputs",
]

STORE_FORMAT = 1
_ROUND_TOKEN_PLACEHOLDER = "0" * 16  # the length of a real round's token
# Paths mapped into a process under valgrind that name the process, not an input.
_PROCESS_PATHS = re.compile(r"/vgdb-pipe-[^/]*$")
_EXISTS = "<exists>"
# How far a file's times may lag time.time_ns(): the kernel stamps files with a
# clock that advances once per tick (up to 10 ms).
_TIMESTAMP_LAG_NS = 10_000_000


# -- digests of inputs -----------------------------------------------------------


def _bytecode_digest(path: str, source: str) -> str:
    """What a count depends on in a ``.pyc``: its body, and whether it is valid for ``source``.

    A timestamp ``.pyc`` records its source's modification time and size: only
    whether they still match counts (a stale file is recompiled), not the
    time itself, so a checkout with new times but the same bytes still matches.
    """
    data = Path(path).read_bytes()
    if len(data) >= 16 and int.from_bytes(data[4:8], "little") == 0:
        try:
            status = os.stat(source)
            valid = (
                int.from_bytes(data[8:12], "little") == int(status.st_mtime) & 0xFFFFFFFF
                and int.from_bytes(data[12:16], "little") == status.st_size & 0xFFFFFFFF
            )
        except OSError:
            valid = False
        data = data[:8] + (b"valid" if valid else b"stale") + data[16:]
    return "pyc:" + hashlib.sha256(data).hexdigest()


def input_digest(path: str, source: str = "") -> str:
    """The digest of one input as the count depends on it; ``"absent"`` when it is not there.

    ``source`` is ``""`` (a file's bytes, a directory's names),
    ``"<exists>"`` (only whether it exists) or, for bytecode, the source file.
    """
    try:
        status = os.stat(path)
    except OSError:
        return "absent"
    digest = "other"
    try:
        if source == _EXISTS:
            digest = "exists"
        elif source:
            digest = _bytecode_digest(path, source)
        elif stat.S_ISDIR(status.st_mode):
            names = "\0".join(sorted(os.listdir(path)))
            digest = "dir:" + hashlib.sha256(os.fsencode(names)).hexdigest()
        elif stat.S_ISREG(status.st_mode):
            digest = "file:" + file_sha256(path, status).hex()
    except OSError:
        digest = "unreadable"
    return digest


def files_clock_now(directory: Path) -> int:
    """Now, in nanoseconds, as the clock that stamps files' times says: a file's time read back.

    Files are stamped by the kernel's coarse clock (one tick, up to 10 ms, behind
    :func:`time.time_ns`): compared with it, a file written just before the
    rounds would look written during them. Without a writable ``directory``,
    :func:`time.time_ns` a tick early.
    """
    probe = directory / ".files-clock"
    try:
        probe.touch()
        try:
            return probe.stat().st_mtime_ns
        finally:
            probe.unlink()
    except OSError:
        return time.time_ns() - _TIMESTAMP_LAG_NS


def changed_since(
    inputs: Iterable[tuple[str, str]], started_ns: int, own: Sequence[Path] = ()
) -> str | None:
    """An input changed (or replaced) at or after ``started_ns``, or ``None``.

    ``started_ns`` is :func:`files_clock_now` before the first round.
    ``own`` are directories the measurement itself writes (the package's copy,
    the rounds directory), which are not inputs a user edits. Times, not
    digests: the inputs are known only once a round has reported them, so
    digests before the first round cannot be taken, while a write during the
    rounds always leaves a modification or change time after their start
    (the change time cannot be set back). A file written just before the
    start, in the same tick of the files' clock, is taken for one written
    during the rounds: the count is then not stored, and counted again next
    time, which costs time, never truth.
    """
    exempt = tuple(os.path.join(directory, "") for directory in own)
    for path, source in inputs:
        if source == _EXISTS or path.startswith(exempt):
            continue
        for status_of in (os.lstat, os.stat):  # a re-pointed link, or its target
            try:
                status = status_of(path)
            except OSError:
                continue
            if max(status.st_mtime_ns, status.st_ctime_ns) >= started_ns:
                return path
    return None


def manifest_inputs(reports: Iterable[RoundReport]) -> list[tuple[str, str]]:
    """The rounds' inputs, each once, in a stable order; paths that name a process dropped."""
    found = {
        (path, source)
        for report in reports
        for path, source in report.inputs
        if os.path.isabs(path) and not _PROCESS_PATHS.search(path)
    }
    return sorted(found)


# -- the key ------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _valgrind_identity() -> tuple[str, str]:
    """valgrind's path and ``--version``; ("", "") without valgrind."""
    try:
        valgrind = find_valgrind()
    except MetricUnavailableError:
        return "", ""
    try:
        version = subprocess.run(
            [valgrind, "--version"],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=60,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        version = "unknown"
    return valgrind, version


def _round_commands(
    spec: MeasurementSpec,
    binary: str,
    valgrind: str,
    roots: Sequence[Path],
    workdir: Path,
    *,
    python: str = "",
    import_path: Sequence[str],
    source_only: Sequence[str],
    module_counts: bool = True,
) -> list[list[str]]:
    """Every round's command line, as the measurer's rounds run them."""
    if spec.command is not None:
        target = resolve_target(spec.command, python, tuple(import_path))
        return [
            counted_startup_command(
                valgrind,
                binary,
                target,
                top=spec.module.partition(".")[0],
                roots=roots,
                workdir=workdir,
                optimize=spec.optimize,
                pycache_prefix=round_pycache_prefix(workdir, index, closure=spec.closure),
                module_costs=spec.counts_modules(index) and module_counts,
                import_path=import_path,
                source_only=source_only,
                lazy_imports=spec.lazy_imports,
            )
            for index in range(spec.total_rounds)
        ]
    return [
        counted_round_command(
            valgrind,
            binary,
            spec.module,
            roots,
            workdir,
            optimize=spec.optimize,
            pycache_prefix=round_pycache_prefix(workdir, index, closure=spec.closure),
            module_costs=spec.counts_modules(index) and module_counts,
            import_path=import_path,
            source_only=source_only,
            lazy_imports=spec.lazy_imports,
        )
        for index in range(spec.total_rounds)
    ]


def count_key(
    spec: MeasurementSpec,
    python: str,
    roots: Sequence[Path],
    workdir: Path,
    *,
    runner: str,
    import_path: Sequence[str] = (),
    source_only: Sequence[str] = (),
    module_counts: bool = True,
) -> str:
    """The key of ``spec``'s count: a digest of what is known before its rounds run.

    ``python`` is the resolved interpreter, ``roots`` the copy's ``sys.path``
    entries, ``workdir`` the rounds directory, ``runner`` names the round runner;
    ``import_path`` and ``source_only`` are the round's (see ``run_round``);
    ``module_counts`` whether a round counts every module (the measurer's).
    """
    binary = interpreter_binary(python)
    valgrind, version = _valgrind_identity()
    material = {
        "format": STORE_FORMAT,
        "runner": runner,
        "child": child_digest(),  # the commands name the child's script; these are its bytes
        "spec": {
            "module": spec.module,
            "flavour": spec.flavour,
            "closure": spec.closure,
            "optimize": spec.optimize,
            "invalidation_mode": spec.invalidation_mode,
            "rounds": spec.rounds,
            "warmup": spec.warmup,
            "metric": spec.metric,
            # Start-up rounds only (imports keep their keys): the command and its status.
            **(
                {
                    "command": [list(spec.command.argv), spec.command.code],
                    "exit": spec.exit_code,
                    "directory": str(command_directory()),  # where the command runs
                }
                if spec.command is not None
                else {}
            ),
        },
        # One interpreter, however named (python, python3: python -m pytest, the pytest script).
        "python": past_sibling_links(python),
        "binary": [binary, input_digest(binary)],
        "valgrind": [valgrind, version],
        "commands": _round_commands(
            spec,
            binary,
            valgrind,
            roots,
            workdir,
            python=python,
            import_path=import_path,
            source_only=source_only,
            module_counts=module_counts,
        ),
        "environment": sorted(
            child_environment(_ROUND_TOKEN_PLACEHOLDER, metric=spec.metric).items()
        ),
    }
    encoded = json.dumps(material, sort_keys=True, ensure_ascii=True).encode()
    return hashlib.sha256(encoded).hexdigest()
