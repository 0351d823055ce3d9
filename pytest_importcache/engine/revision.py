"""The repository as it was at a git revision, read from git objects.

A same-run comparison (``--against REV``, ``--importcache-baseline=REV``)
measures the working tree and the repository at ``REV``, named in the
project's repository (pytest's rootdir, the command line's current
directory) when the package is in it or in one of its submodules, else in the
package's own repository: the base side's copy
of the package comes from ``REV``, and so does everything else its import
loads from inside the repository (a sibling package on the import path).
:func:`revision_side` gives the base side: the package's location in the
revision's tree and the import path mapped into it. An entry of the import
path inside the repository is read at ``REV`` (the same relative directory),
unless git ignores it (an in-project ``.venv``, ``build/``) or neither
tracks it nor has it at ``REV``; entries outside the repository (installed
dependencies) are the same on both sides.

The revision's tree is what ``git checkout REV`` gives, read with ``git
ls-tree -r -z`` and ``git cat-file --batch``
(:mod:`~pytest_importcache.engine.gittree`):

- no ``.gitattributes`` export rules (``export-subst``, ``export-ignore``,
  which ``git archive`` applies) and no filters: each file holds the committed
  bytes (no smudge or end-of-line conversion; a Git LFS file is its pointer),
  executable bits and symbolic links as committed;
- submodules at their recorded commits, read from the submodule's own
  repository in the working tree; a submodule not checked out in the working
  tree is an empty directory on both sides, as after a plain ``git checkout``.
  A package or path entry inside a submodule is read at the commit ``REV``
  records for it (nested submodules likewise);
- files git ignores but the working tree has inside the repository's
  directories on the path (a generated ``_version.py``, a built extension)
  are served to both sides: copied into the revision's tree where ``REV`` has
  no such file (:attr:`RevisionSide.served` names them);
- the user's checkout, index, stash and refs are never written (``ls-tree``,
  ``cat-file``, ``ls-files``, ``check-ignore`` and ``rev-parse`` only read),
  and variables a git hook or CI step sets (``GIT_DIR``, ``GIT_INDEX_FILE``,
  ...) are dropped from git's environment;
- the tree is extracted once per (repository, commit, served files), under a
  file lock with a completion mark, and reused by later runs and xdist
  workers. Trees unused for :data:`~pytest_importcache.engine.cache.MAX_AGE_DAYS` are
  removed, and ``pytest-importcache cache --clear`` removes them all.

The package's files are then copied like any source (see
:mod:`pytest_importcache.engine.copying`): the revision's copy has its own
fingerprint, flavour and compilation, exactly as the working tree's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path

from filelock import FileLock, Timeout

from pytest_importcache.model.comparison import Revision
from pytest_importcache.model.errors import RevisionError

from .cache import MAX_AGE_DAYS, complete_marker, discard_copy, mark_used, remove_tree
from .gittree import (
    checkout_entries,
    extract_tree,
    find_repository,
    ignored_paths,
    inside,
    project_repository,
    resolve_revision,
    served_digest,
    served_files,
    tracked_directories,
    tracks_any,
    tree_directories,
    work_tree_of,
)
from .locate import PackageLocation

__all__ = [
    "REVISIONS_DIR",
    "Revision",
    "RevisionError",
    "RevisionSide",
    "clear_revisions",
    "find_repository",
    "resolve_revision",
    "revision_location",
    "revision_side",
    "revision_trees",
]

#: The cache's subdirectory holding extracted revisions.
REVISIONS_DIR = "revisions"


def _refuse_untracked(location: PackageLocation, repository: Path) -> None:
    """Raise :class:`RevisionError` if git tracks no file of the package in ``repository``.

    Says whether git ignores the package or merely does not track it.
    """
    __tracebackhide__ = True
    relatives = [inside(portion, repository) or "." for portion in location.portions]
    if tracks_any(repository, relatives):
        return
    why = "git ignores it" if ignored_paths(repository, relatives) else "it is untracked"
    holder = work_tree_of(repository, relatives[0])[0]
    raise RevisionError(
        f"{location.top_level!r} ({location.portions[0]}) is not tracked by the git repository "
        f"{holder} ({why}): a same-run comparison needs the package under version control"
    )


def _base_location(
    location: PackageLocation, directories: Sequence[Path], revision: Revision
) -> PackageLocation:
    """The top-level name of ``location`` found in ``directories`` (of the revision's tree).

    A package that was a single-file module at the revision (or the reverse)
    is found as what it was there.
    """
    __tracebackhide__ = True
    top = location.top_level
    spec = PathFinder.find_spec(top, [str(directory) for directory in directories])
    if spec is None or (spec.origin is None and not spec.submodule_search_locations):
        raise RevisionError(
            f"{top!r} is absent at revision {revision}: neither {top}/ nor {top}.py exists "
            f"there in {revision.repository} where the working tree has it"
        )
    locations = spec.submodule_search_locations
    if locations is None:
        return PackageLocation(top, "module", (Path(str(spec.origin)),))
    if spec.origin in (None, "namespace"):
        return PackageLocation(top, "namespace", tuple(Path(entry) for entry in locations))
    return PackageLocation(top, "package", (Path(str(spec.origin)).parent,))


@dataclass(frozen=True)
class RevisionSide:
    """The base side of a same-run comparison: the repository at a revision.

    ``location`` is the package in the revision's tree, ``import_path`` the
    import path its rounds search after the copy (entries inside the
    repository mapped into the revision's tree), ``served`` the files git
    ignores that the working tree gives both sides (paths relative to the
    repository), ``mapped`` the (head, base) pairs of path entries read at the
    revision.
    """

    location: PackageLocation
    import_path: tuple[str, ...]
    revision: Revision
    served: tuple[str, ...] = ()
    mapped: tuple[tuple[str, str], ...] = ()


def _tree_dir(revisions_dir: Path, repository: Path, revision: Revision, served: str) -> Path:
    """Where the revision's tree of ``repository`` goes (no ``.`` in its name: revision_trees)."""
    key = hashlib.sha256(os.fsencode(repository)).hexdigest()[:10]
    name = "".join(char if char.isalnum() or char in "-_" else "_" for char in repository.name)
    suffix = f"-{served}" if served else ""
    return revisions_dir / f"{name[:40]}-{key}-{revision.short}{suffix}"


def revision_side(
    location: PackageLocation,
    import_path: Sequence[str],
    name: str,
    cache_dir: Path,
    project: Path | None = None,
) -> RevisionSide:
    """The base side for the package at ``location``: the repository at revision ``name``.

    ``name`` is resolved in ``project``'s repository when the package is in it
    or in one of its submodules (:func:`~pytest_importcache.engine.gittree.project_repository`),
    else (and without ``project``) in the package's own repository.
    ``import_path`` is the head's (absolute entries); each entry inside the
    repository and not ignored by git is mapped to the same directory of the
    revision's tree, extracted under ``cache_dir``. Raises
    :class:`RevisionError`, one line each, when git is missing, the package is
    in no repository, the revision is unknown (in a shallow clone: how to
    fetch it), the package is absent at it (or, git ignoring it or not tracking
    it, under no version control), or a submodule's commit is missing.
    """
    __tracebackhide__ = True
    repository = find_repository(location.portions[0])
    if project is not None:
        repository = project_repository(repository, project)
    revision = resolve_revision(repository, name)
    homes: list[str] = []
    for portion in location.portions:
        relative = inside(portion, repository)
        if relative is None:
            raise RevisionError(
                f"{portion} is outside the git repository {repository} that holds "
                f"{location.portions[0]}: its portions must share one repository"
            )
        if relative == ".":
            raise RevisionError(
                f"{location.top_level!r} is the whole repository {repository}: a baseline "
                "revision needs the package in a subdirectory"
            )
        homes.append(relative.rpartition("/")[0] or ".")
    entries = checkout_entries(repository, revision.commit)
    in_repository = {entry: inside(Path(entry), repository) for entry in import_path}
    relatives = [relative for relative in in_repository.values() if relative is not None]
    ignored = ignored_paths(repository, relatives)
    known = {
        ".",
        *tree_directories(entries),
        *tracked_directories(repository, relatives),
    }
    mapped = {
        entry: relative
        for entry, relative in in_repository.items()
        if relative is not None and relative not in ignored and relative in known
    }
    served = served_files(repository, list(dict.fromkeys([*homes, *mapped.values()])), entries)
    revisions_dir = cache_dir / REVISIONS_DIR
    revisions_dir.mkdir(parents=True, exist_ok=True)
    tree = _tree_dir(revisions_dir, repository, revision, served_digest(repository, served))
    with FileLock(f"{tree}.lock"):
        if not complete_marker(tree).exists():
            discard_copy(tree)
            staging = Path(tempfile.mkdtemp(prefix=f"{tree.name}.", dir=revisions_dir))
            try:
                extract_tree(repository, revision.commit, staging / "tree")
                for relative in served:
                    try:
                        (staging / "tree" / relative).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(repository / relative, staging / "tree" / relative)
                    except OSError as exc:
                        raise RevisionError(
                            f"cannot serve {repository / relative} (git ignores it) to the "
                            f"revision's side: {exc.strerror or exc}"
                        ) from None
                (staging / "tree").rename(tree)
                complete_marker(tree).touch()
            finally:
                remove_tree(staging)
        mark_used(tree)
    _prune_revisions(revisions_dir, tree, time.time())
    # Where the head found the package first, then the path: pathlib reads "." as the tree.
    places = [tree / relative for relative in dict.fromkeys([*homes, *mapped.values()])]
    try:
        base = _base_location(location, places, revision)
    except RevisionError:
        # Absent at the revision because git never held it: say that instead.
        _refuse_untracked(location, repository)
        raise
    base_path = tuple(
        str(tree / mapped[entry]) if entry in mapped else entry for entry in import_path
    )
    pairs = tuple((entry, str(tree / mapped[entry])) for entry in import_path if entry in mapped)
    return RevisionSide(base, base_path, revision, tuple(served), pairs)


def _prune_revisions(revisions_dir: Path, keep: Path, now: float) -> None:
    """Remove extracted revisions unused for ``MAX_AGE_DAYS`` (``keep`` stays)."""
    for entry in revisions_dir.iterdir():
        if entry == keep or "." in entry.name or not entry.is_dir():
            continue
        try:
            unused = now - entry.stat().st_mtime
        except OSError:
            continue
        if unused > MAX_AGE_DAYS * 86400:
            with FileLock(f"{entry}.lock"):
                discard_copy(entry)


def revision_trees(cache_dir: Path) -> list[Path]:
    """The extracted revisions under ``cache_dir``."""
    revisions_dir = cache_dir / REVISIONS_DIR
    if not revisions_dir.is_dir():
        return []
    return sorted(
        entry
        for entry in revisions_dir.iterdir()
        if "." not in entry.name and entry.is_dir() and not entry.is_symlink()
    )


def clear_revisions(cache_dir: Path) -> int:
    """Remove every extracted revision no process is extracting; returns how many."""
    removed = 0
    for tree in revision_trees(cache_dir):
        try:
            with FileLock(f"{tree}.lock").acquire(timeout=0):
                discard_copy(tree)
        except Timeout:
            continue
        removed += 1
    return removed


def revision_location(
    location: PackageLocation, name: str, cache_dir: Path
) -> tuple[PackageLocation, Revision]:
    """The package at ``location`` as it was at revision ``name``, extracted under ``cache_dir``.

    Returns the package's location in the revision's tree and the resolved
    revision: :func:`revision_side` with no import path.
    """
    __tracebackhide__ = True
    side = revision_side(location, (), name, cache_dir)
    return side.location, side.revision
