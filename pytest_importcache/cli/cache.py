"""``pytest-importcache cache``: list or clear the persistent cache of package copies.

It lists the cache (see :mod:`pytest_importcache.engine.cache`): its directory,
its bounds, one line per copy (package, environment, size, last use) and the
total; ``--clear`` removes every copy no process is using. ``--json`` prints
``{"schema": 1, "cache_dir", "max_age_days", "max_copies_per_package",
"copies": [{"path", "package", "environment", "size_bytes", "last_used"}],
"total_bytes"}`` (``last_used`` in epoch seconds), ``"revisions"`` (git
revisions extracted for ``--against`` and ``--importcache-baseline``), plus
``"removed"``, ``"freed_bytes"``, ``"kept"`` and ``"revisions_removed"`` with
``--clear``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pytest_importcache.engine.cache import (
    MAX_AGE_DAYS,
    MAX_COPIES_PER_PACKAGE,
    cached_copies,
    clear_cache,
    default_cache_dir,
)
from pytest_importcache.engine.countstore import MAX_ENTRIES, CountStore, default_store_path
from pytest_importcache.engine.revision import clear_revisions, revision_trees
from pytest_importcache.model.errors import ImportCacheError
from pytest_importcache.model.units import fit

from .common import JSON_SCHEMA_VERSION, PROG, WIDTH, Parser, UsageError, count

__all__ = ["cache_dir_argument", "format_age", "format_bytes", "make_parser", "run"]


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``cache``."""
    parser = Parser(
        prog=f"{PROG} cache",
        description="List the persistent cache of package copies and stored counts, or clear it.",
    )
    parser.add_argument(
        "--dir", metavar="DIR", help="the cache directory (default: the per-user cache)"
    )
    parser.add_argument(
        "--store",
        metavar="DIR",
        help="the instruction count store (default: 'counts' in the cache directory)",
    )
    parser.add_argument(
        "--clear", action="store_true", help="remove every copy not in use and every stored count"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def format_bytes(size: int) -> str:
    """A size for humans: ``512 B``, ``12.3 kB``, ``4.5 MB``, ``1.2 GB`` (powers of 1000)."""
    if size < 1000:
        return f"{size} B"
    amount, units = size / 1000, ["kB", "MB", "GB"]
    while round(amount, 1) >= 1000 and len(units) > 1:
        amount, units = amount / 1000, units[1:]
    return f"{amount:.1f} {units[0]}"


def format_age(seconds: float) -> str:
    """How long ago, coarsely: ``just now``, ``5 min``, ``3 h``, ``2 days``."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h"
    days = seconds // 86400
    return f"{days:.0f} day{'s' if days != 1 else ''}"


def cache_dir_argument(directory: str | None) -> Path:
    """The cache ``--dir`` names (a directory, if it exists), or the per-user one."""
    if directory is not None:
        cache_dir = Path(directory)
        if cache_dir.exists() and not cache_dir.is_dir():
            raise UsageError(f"--dir {cache_dir}: not a directory")
        return cache_dir
    try:
        return default_cache_dir()
    except (ImportCacheError, OSError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None


def _store_argument(directory: str | None, cache_dir: Path) -> CountStore:
    """The count store ``--store`` names (a directory, if it exists), or the cache's."""
    if directory is not None and Path(directory).exists() and not Path(directory).is_dir():
        raise UsageError(f"--store {directory}: not a directory")
    return CountStore(directory or default_store_path(cache_dir))


def _store_report(store: CountStore, *, clear: bool) -> tuple[dict[str, Any], str]:
    """The store's entries (cleared with ``clear``), as JSON and as lines of text for ``cache``."""
    counts = store.entries()
    removed = store.clear() if clear else 0
    directory = store.directory
    document: dict[str, Any] = {
        "store": str(directory),
        "entries": len(counts),
        "total_bytes": sum(count.size_bytes for count in counts),
        "max_entries": MAX_ENTRIES,
    }
    if clear:
        document["removed"] = removed
    lines = []
    if counts:
        lines.append(
            f"{count(len(counts), 'stored instruction count')}, "
            f"{format_bytes(sum(count.size_bytes for count in counts))}, in {directory} "
            f"(at most {MAX_ENTRIES}, unused ones removed after {MAX_AGE_DAYS} days)"
        )
    if removed:
        lines.append(f"removed {count(removed, 'stored instruction count')}")
    return document, "".join(f"{line}\n" for line in lines)


def run(arguments: argparse.Namespace) -> int:
    """List the cache (or clear it, with ``--clear``); 0."""
    cache_dir = cache_dir_argument(arguments.dir)
    store = _store_argument(arguments.store, cache_dir)
    try:
        counts_json, counts_text = _store_report(store, clear=arguments.clear)
        copies = cached_copies(cache_dir)
        revisions = len(revision_trees(cache_dir))
        removed = kept = freed = revisions_removed = 0
        if arguments.clear:
            revisions_removed = clear_revisions(cache_dir)
            removed = clear_cache(cache_dir)
            remaining = {copy.path for copy in cached_copies(cache_dir)}
            freed = sum(copy.size_bytes for copy in copies if copy.path not in remaining)
            kept = len(remaining)
    except OSError as exc:
        raise UsageError(f"cannot read the cache {cache_dir}: {exc}") from None
    bounds = (
        f"copies unused for {MAX_AGE_DAYS} days are removed; "
        f"at most {MAX_COPIES_PER_PACKAGE} per package and environment"
    )
    if arguments.json:
        document: dict[str, Any] = {
            "schema": JSON_SCHEMA_VERSION,
            "cache_dir": str(cache_dir),
            "max_age_days": MAX_AGE_DAYS,
            "max_copies_per_package": MAX_COPIES_PER_PACKAGE,
            "copies": [
                {
                    "path": str(copy.path),
                    "package": copy.package,
                    "environment": copy.environment,
                    "size_bytes": copy.size_bytes,
                    "last_used": copy.last_used,
                }
                for copy in copies
            ],
            "total_bytes": sum(copy.size_bytes for copy in copies),
            "revisions": revisions,
            "counts": counts_json,
        }
        if arguments.clear:
            document.update(
                removed=removed, freed_bytes=freed, kept=kept, revisions_removed=revisions_removed
            )
        print(json.dumps(document, indent=2))
        return 0
    print(f"cache: {cache_dir}{'' if cache_dir.is_dir() or copies else ' (does not exist)'}")
    print(bounds)
    if copies:
        now = time.time()
        package_width = min(max(len("package"), *(len(copy.package) for copy in copies)), 24)
        print(f"  {'package':<{package_width}} {'size':>9} {'last used':>10}  environment")
        for copy in copies:
            age = format_age(max(now - copy.last_used, 0.0))
            line = (
                f"  {copy.package:<{package_width}} {format_bytes(copy.size_bytes):>9} "
                f"{age:>10}  {copy.environment}"
            )
            print(fit(line, WIDTH))
        total = sum(copy.size_bytes for copy in copies)
        print(f"{count(len(copies), 'copy', 'copies')}, {format_bytes(total)}")
    else:
        print("no copies")
    if revisions:
        print(f"{count(revisions, 'git revision')} extracted for same-run comparisons")
    sys.stdout.write(counts_text)
    if arguments.clear:
        print(
            f"removed {count(removed, 'copy', 'copies')}, freed {format_bytes(freed)}"
            + (f"; kept {kept} in use" if kept else "")
        )
        if revisions_removed:
            print(f"removed {count(revisions_removed, 'git revision')}")
    return 0
