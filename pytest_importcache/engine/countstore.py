"""Reuse instruction counts whose inputs are unchanged: a content-addressed store.

A count is a function of its inputs (the key and the manifest are
:mod:`~pytest_importcache.engine.countkey`'s), so a count whose inputs have not changed
need not be counted again (each counted round costs seconds under valgrind).
An entry is found in two steps, as a build system finds a cached artefact:

1. The **key**, a digest of everything known before the rounds run: the
   measurement's settings (module, flavour, closure, optimisation level,
   invalidation mode, rounds, metric), the interpreter's binary (its bytes),
   valgrind's version and its option files, the exact command line of every
   round (valgrind's options, the child's script and arguments, the copy's
   and the rounds directory's paths), the child's code (its bytes), the
   environment the child is given, and which round runner counts.
2. The **manifest**, the inputs the rounds themselves reported
   (:attr:`~pytest_importcache.model.records.RoundReport.inputs`): every module's
   file (sources, extension modules), its bytecode, the directories the
   importer listed, the sys.path entries, the ``.pth`` files start-up read,
   and every file mapped into the process (the binary, libpython, extension
   modules and the libraries they load, valgrind's tool). Each is recorded
   by a digest of what the count depends on (a file's bytes; a directory's
   names; a bytecode file's body and whether it is valid for its source; an
   entry's existence) and checked again, by hashing, before an entry is used.

The round's environment is part of the key as it is given to the child:
counted rounds get a fixed one (``roundcommand.child_environment``), so nothing of
the caller's reaches it but ``LD_LIBRARY_PATH`` and the variables named in
``IMPORTCACHE_COUNTED_ENV``, which count by value.

Limits: a file the import opens itself (``open()`` on a data file of a
dependency) is not seen, nor is anything read over the network or from the
clock; ``--importcache-fresh`` counts again. The package under test is
covered whole, data files included, because its copy's path carries the
digest of all its files.

Entries are JSON files ``<store>/<key[:2]>/<key>-<manifest digest>.json``,
written to a temporary file and renamed into place, so concurrent writers
(xdist workers, threads) never leave half an entry; the last writer wins. An
entry that cannot be read (truncated, not ours, another format) is skipped
with one warning per store, kind of problem and process. The store is
bounded: entries unused for :data:`MAX_AGE_DAYS` days go, at most
:data:`MAX_VARIANTS` manifests are kept per key and :data:`MAX_ENTRIES`
entries in all, the least recently used going first. Using an entry refreshes its modification time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pytest_importcache.model.records import RoundReport, typed
from pytest_importcache.model.result import ReusedCount
from pytest_importcache.model.spec import MeasurementSpec

from .cache import MAX_AGE_DAYS
from .countkey import (
    STORE_FORMAT,
    changed_since,
    count_key,
    files_clock_now,
    input_digest,
    manifest_inputs,
)

__all__ = [
    "MAX_ENTRIES",
    "MAX_VARIANTS",
    "STORE_FORMAT",
    "CountStore",
    "ReusedCount",
    "StoreFolder",
    "StoreWarning",
    "StoredCount",
    "changed_since",
    "default_store_path",
    "files_clock_now",
    "input_digest",
]

MAX_ENTRIES = 2000
MAX_VARIANTS = 4
# The names the store writes, and the only ones it lists, prunes or clears.
_FOLDER_NAME = re.compile(r"[0-9a-f]{2}")
_ENTRY_NAME = re.compile(r"[0-9a-f]{64}-[0-9a-f]{16}\.json")
_LEFTOVER_NAME = re.compile(r"\.tmp-[A-Za-z0-9_]+\.json")
_LEFTOVER_AGE = 3600

# (store, kind of problem) said already in this process.
_warned_stores: set[tuple[Path, str]] = set()


class StoreWarning(UserWarning):
    """An entry of the count store could not be used (it is skipped, never fatal)."""


@dataclass(frozen=True)
class StoredCount:
    """One entry of the store, as ``pytest-importcache cache`` lists it."""

    path: Path
    module: str
    label: str
    size_bytes: int
    last_used: float


def default_store_path(cache_dir: Path) -> Path:
    """The store inside the per-user cache directory ``cache_dir``."""
    return cache_dir / "counts"


# -- the store -----------------------------------------------------------------------


def _default_warn(message: str) -> None:
    warnings.warn(message, StoreWarning, stacklevel=4)


class StoreFolder:
    """The folder of a count store: its entries listed, bounded and cleared.

    Only names the store writes are touched. ``warn`` receives the one line
    said about a problem of the folder (default: a :class:`StoreWarning`).
    """

    def __init__(self, directory: Path | str, *, warn: Callable[[str], None] | None = None) -> None:
        self.directory = Path(directory).absolute()
        self._warn = warn or _default_warn

    def _skip(self, path: Path, reason: str) -> None:
        """Say once per store and process that an entry is skipped, and why."""
        self._say_once(
            "entry", f"importcache: ignoring the unusable count store entry {path}: {reason}"
        )

    def _say_once(self, kind: str, message: str) -> None:
        """``message``, unless this ``kind`` of problem of this store was said in this process.

        Never raises: a store that cannot be used must not stop a measurement,
        not even where warnings are errors (``-W error``).
        """
        if (self.directory, kind) in _warned_stores:
            return
        _warned_stores.add((self.directory, kind))
        with contextlib.suppress(Exception):
            self._warn(message)

    def _entry_paths(self) -> list[Path]:
        """The store's own files: entries and leftover temporary files, by their names.

        Only names the store writes are listed (``ab/<64 hex>-<16 hex>.json``
        and ``.tmp-*.json`` beside them), so pruning and ``clear`` never touch
        a user's file in a directory named as the store by mistake. A folder
        that cannot be listed (a shared CI cache another user made
        unreadable) is said and skipped.
        """
        paths: list[Path] = []
        try:
            if not self.directory.is_dir():
                return []
            folders = list(self.directory.iterdir())
        except OSError as exc:
            self._cannot_list(self.directory, exc)
            return []
        for folder in folders:
            try:
                if (
                    _FOLDER_NAME.fullmatch(folder.name)
                    and folder.is_dir()
                    and not folder.is_symlink()
                ):
                    paths += (
                        path
                        for path in folder.iterdir()
                        if _is_leftover(path)
                        or (_ENTRY_NAME.fullmatch(path.name) and path.name[:2] == folder.name)
                    )
            except OSError as exc:
                self._cannot_list(folder, exc)
        return paths

    def _cannot_list(self, folder: Path, error: OSError) -> None:
        self._say_once(
            "list",
            f"importcache: cannot list the count store's {folder}: {error.strerror or error}",
        )

    def prune(self, *, keep: Path | None = None, now: float | None = None) -> int:
        """Apply the store's bounds (``keep`` stays); returns how many entries were removed."""
        now = time.time() if now is None else now
        removed = 0
        entries: list[tuple[float, Path]] = []
        for path in self._entry_paths():
            used = _mtime(path)
            if _is_leftover(path):
                if now - used > _LEFTOVER_AGE:
                    with contextlib.suppress(OSError):
                        path.unlink(missing_ok=True)
                continue
            entries.append((used, path))
        entries.sort(reverse=True)
        per_key: dict[str, int] = {}
        for rank, (used, path) in enumerate(entries):
            key = path.name.rpartition("-")[0]
            per_key[key] = per_key.get(key, 0) + 1
            if path == keep:
                continue
            if (
                now - used > MAX_AGE_DAYS * 86400
                or per_key[key] > MAX_VARIANTS
                or rank >= MAX_ENTRIES
            ):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
        return removed

    def entries(self) -> list[StoredCount]:
        """The store's entries, most recently used first (unreadable ones by file name)."""
        found = []
        for path in self._entry_paths():
            if _is_leftover(path):
                continue
            module, label = "?", "?"
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                entry = json.loads(path.read_text(encoding="utf-8"))
                module, label = str(entry["module"]), str(entry["label"])
            with contextlib.suppress(OSError):
                status = path.stat()
                found.append(StoredCount(path, module, label, status.st_size, status.st_mtime))
        return sorted(found, key=lambda entry: -entry.last_used)

    def clear(self) -> int:
        """Remove every entry; returns how many."""
        removed = 0
        for path in self._entry_paths():
            with contextlib.suppress(OSError):
                path.unlink()
                removed += not _is_leftover(path)
        return removed


class CountStore(StoreFolder):
    """Counts kept under ``directory``, reused while their inputs are unchanged.

    With ``fresh``, nothing is reused but every new count is still saved
    (replacing the entry it would have reused). ``warn`` receives the one
    line said about unusable entries (default: a :class:`StoreWarning`).
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        fresh: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(directory, warn=warn)
        self.fresh = fresh

    def key(
        self,
        spec: MeasurementSpec,
        python: str,
        roots: Sequence[Path],
        workdir: Path,
        *,
        runner: str = "",
        import_path: Sequence[str] = (),
        source_only: Sequence[str] = (),
        module_counts: bool = True,
    ) -> str:
        """:func:`count_key`."""
        return count_key(
            spec,
            python,
            roots,
            workdir,
            runner=runner,
            import_path=import_path,
            source_only=source_only,
            module_counts=module_counts,
        )

    def _entries_for(self, key: str) -> list[Path]:
        """``key``'s entries, most recently used first."""
        folder = self.directory / key[:2]
        try:
            candidates = [entry for entry in folder.glob(f"{key}-*.json") if entry.is_file()]
        except OSError:
            return []
        return sorted(candidates, key=_mtime, reverse=True)

    def lookup(self, key: str) -> tuple[list[RoundReport], ReusedCount] | None:
        """The counted rounds stored for ``key`` whose inputs all match today's, or ``None``."""
        if self.fresh:
            return None
        for path in self._entries_for(key):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(entry, dict) or entry.get("format") != STORE_FORMAT:
                    raise ValueError("not an entry of this version's count store")
                if entry["key"] != key:
                    raise ValueError("its key does not match its name")
                inputs = [
                    (
                        typed(p, str, "path"),
                        typed(s, str, "kind"),
                        typed(d, str, "digest"),
                    )
                    for p, s, d in typed(entry["inputs"], list, "inputs")
                ]
                reports = [
                    RoundReport.from_json(item) for item in typed(entry["reports"], list, "reports")
                ]
                origin = ReusedCount(
                    typed(entry["counted_at"], str, "counted_at"),
                    typed(entry["counted_on"], str, "counted_on"),
                    str(self.directory),
                )
            except FileNotFoundError:
                continue  # pruned by another process meanwhile
            except (OSError, ValueError, TypeError, KeyError, RecursionError) as exc:
                self._skip(path, str(exc) or type(exc).__name__)
                continue
            if not reports:
                self._skip(path, "it holds no rounds")
                continue
            if all(input_digest(p, s) == digest for p, s, digest in inputs):
                with contextlib.suppress(OSError):
                    os.utime(path)
                return reports, origin
        return None

    def save(
        self,
        key: str,
        spec: MeasurementSpec,
        reports: Sequence[RoundReport],
        *,
        rounds_started_ns: int | None = None,
        own: Sequence[Path] = (),
    ) -> None:
        """Store ``reports`` (the counted rounds of ``spec``) under ``key``, atomically.

        The manifest is the rounds' inputs hashed now; a store that cannot be
        written is said once and skipped: counting goes on without it. With
        ``rounds_started_ns`` (:func:`files_clock_now` before the first round),
        nothing is stored when an input outside ``own`` (the directories the
        measurement writes itself) changed since then: the digests taken now
        would pair its new content with a count made (partly) with the old.
        """
        reported = manifest_inputs(reports)
        if (
            rounds_started_ns is not None
            and changed_since(reported, rounds_started_ns, own) is not None
        ):
            return
        inputs = [[path, source, input_digest(path, source)] for path, source in reported]
        manifest = hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:16]
        entry = {
            "format": STORE_FORMAT,
            "key": key,
            "module": spec.module,
            "label": spec.label,
            "counted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "counted_on": socket.gethostname(),
            "inputs": inputs,
            "reports": [report.to_json() for report in reports],
        }
        folder = self.directory / key[:2]
        target = folder / f"{key}-{manifest}.json"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as file:
                    json.dump(entry, file)
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            self._say_once(
                "save",
                f"importcache: cannot save counts in {self.directory}: {exc.strerror or exc}",
            )
            return
        self.prune(keep=target)


def _is_leftover(path: Path) -> bool:
    """Whether ``path`` is a temporary file a save left behind (as :meth:`save` names them)."""
    return _LEFTOVER_NAME.fullmatch(path.name) is not None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
