"""The repository as it was at a git revision, read from git objects.

A same-run comparison (``--against REV``, ``--importcache-baseline=REV``)
measures the working tree and the repository at ``REV``: the base side's copy
of the package comes from ``REV``, and so does everything else its import
loads from inside the repository (a sibling package on the import path).
:func:`revision_side` gives the base side: the package's location in the
revision's tree and the import path mapped into it. An entry of the import
path inside the repository is read at ``REV`` (the same relative directory),
unless git ignores it (an in-project ``.venv``, ``build/``) or neither
tracks it nor has it at ``REV``; entries outside the repository (installed
dependencies) are the same on both sides.

The revision's tree is what ``git checkout REV`` gives, read with ``git
ls-tree -r -z`` and ``git cat-file --batch``:

- no ``.gitattributes`` export rules (``export-subst``, ``export-ignore``,
  which ``git archive`` applies) and no filters: each file holds the committed
  bytes (no smudge or end-of-line conversion; a Git LFS file is its pointer),
  executable bits and symbolic links as committed;
- submodules at their recorded commits, read from the submodule's own
  repository in the working tree; a submodule not checked out in the working
  tree is an empty directory on both sides, as after a plain ``git checkout``;
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

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path

from filelock import FileLock, Timeout

from pytest_importcache.model.comparison import Revision
from pytest_importcache.model.errors import RevisionError

from .cache import MAX_AGE_DAYS, complete_marker, discard_copy, mark_used, remove_tree
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
# Variables that would point git at another repository, index or object store than
# the package's: what a hook or a CI step may have set. The list is git's own
# (`git rev-parse --local-env-vars`), which git clears itself when it enters a
# submodule, plus GIT_NAMESPACE.
_GIT_REDIRECTS = (
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_CONFIG",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_PARAMETERS",
    "GIT_DIR",
    "GIT_GRAFT_FILE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_NAMESPACE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_OBJECT_DIRECTORY",
    "GIT_PREFIX",
    "GIT_REPLACE_REF_BASE",
    "GIT_SHALLOW_FILE",
    "GIT_WORK_TREE",
)
_GIT_TIMEOUT = 120.0
_SHALLOW_HINT = (
    "this is a shallow clone: fetch the revision (git fetch --unshallow, or fetch-depth: 0 "
    "in actions/checkout)"
)


def _git_environment() -> dict[str, str]:
    """This process's environment, minus what would redirect git to another repository."""
    return {key: value for key, value in os.environ.items() if key not in _GIT_REDIRECTS}


def _git(
    repository: Path, *arguments: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git -C repository ARGUMENTS`` (read-only commands only); never raises on exit codes.

    ``stdin`` is what git reads (nothing by default).
    """
    __tracebackhide__ = True
    git = shutil.which("git")
    if git is None:
        raise RevisionError(
            "git is not installed (not found on PATH): a baseline revision is read from git"
        )
    try:
        return subprocess.run(
            [git, "-C", str(repository), *arguments],
            capture_output=True,
            check=False,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            env=_git_environment(),
            timeout=_GIT_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RevisionError(f"running git in {repository} failed: {exc}") from None


def _first_line(output: bytes) -> str:
    """The first non-empty line of git's stderr, for one-line messages."""
    for line in output.decode(errors="replace").splitlines():
        if line.strip():
            return line.strip()
    return "no message"


def find_repository(path: Path) -> Path:
    """The top level of the git work tree holding ``path`` (a file or directory).

    Raises :class:`RevisionError` when ``path`` is in no git work tree.
    """
    __tracebackhide__ = True
    directory = path if path.is_dir() else path.parent
    completed = _git(directory, "rev-parse", "--show-toplevel")
    top = completed.stdout.decode(errors="surrogateescape").strip()
    if completed.returncode != 0 or not top:
        raise RevisionError(
            f"{path} is not in a git repository: a baseline revision needs the package's "
            "git history (measure it from its checkout)"
        )
    return Path(top)


def _is_shallow(repository: Path) -> bool:
    completed = _git(repository, "rev-parse", "--is-shallow-repository")
    return completed.stdout.strip() == b"true"


@functools.lru_cache(maxsize=32)
def _resolve(repository: Path, name: str) -> str:
    __tracebackhide__ = True
    if not name or name.startswith("-") or "\0" in name:
        raise RevisionError(f"{name!r} is not a git revision")
    completed = _git(repository, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
    commit = completed.stdout.decode().strip()
    if completed.returncode == 0 and commit:
        return commit
    where = f"unknown revision {name!r} in {repository}"
    if _is_shallow(repository):
        raise RevisionError(f"{where}: {_SHALLOW_HINT}")
    raise RevisionError(f"{where}: no commit of that name (try a branch, tag or commit id)")


def resolve_revision(repository: Path, name: str) -> Revision:
    """``name`` (a branch, tag, commit id, ``HEAD~1``...) resolved to a commit, once per process.

    Raises :class:`RevisionError` for an unknown revision; in a shallow clone,
    the message says how to fetch the history.
    """
    __tracebackhide__ = True
    return Revision(repository, name, _resolve(repository, name))


def _inside(path: Path, repository: Path) -> str | None:
    """``path`` relative to ``repository`` (POSIX separators), or ``None`` outside it."""
    real = Path(os.path.realpath(path))
    top = Path(os.path.realpath(repository))
    if not real.is_relative_to(top):
        return None
    return real.relative_to(top).as_posix()


def _ignored(repository: Path, relatives: Sequence[str]) -> set[str]:
    """Which of ``relatives`` (work tree paths) git ignores, themselves or by a directory."""
    __tracebackhide__ = True
    asked = [relative for relative in relatives if relative != "."]
    if not asked:
        return set()
    completed = _git(
        repository,
        "check-ignore",
        "-z",
        "--stdin",
        stdin=b"".join(os.fsencode(relative) + b"\0" for relative in asked),
    )
    return {os.fsdecode(name) for name in completed.stdout.split(b"\0") if name}


def _tracked(repository: Path, relatives: Sequence[str]) -> set[str]:
    """Which of ``relatives`` (directories) hold files git tracks in the work tree's index."""
    __tracebackhide__ = True
    asked = [relative for relative in relatives if relative != "."]
    if not asked:
        return set()
    completed = _git(repository, "ls-files", "-z", "--", *asked)
    files = [os.fsdecode(name) for name in completed.stdout.split(b"\0") if name]
    return {relative for relative in asked if any(f.startswith(f"{relative}/") for f in files)}


def _refuse_untracked(location: PackageLocation, repository: Path) -> None:
    """Raise :class:`RevisionError` if git tracks no file of the package in ``repository``.

    Says whether git ignores the package or merely does not track it.
    """
    __tracebackhide__ = True
    relatives = [_inside(portion, repository) or "." for portion in location.portions]
    if _git(repository, "ls-files", "-z", "--", *relatives).stdout:
        return
    why = "git ignores it" if _ignored(repository, relatives) else "it is untracked"
    raise RevisionError(
        f"{location.top_level!r} ({location.portions[0]}) is not tracked by the git repository "
        f"{repository} ({why}): a same-run comparison needs the package under version control"
    )


def _directories(entries: Iterable[_TreeEntry]) -> set[str]:
    """Every directory that holds an entry of a tree (relative, POSIX), the top excluded."""
    return {
        "/".join(entry.path.split("/")[:depth])
        for entry in entries
        for depth in range(1, entry.path.count("/") + 1)
    }


@dataclass(frozen=True)
class _TreeEntry:
    """One entry of ``git ls-tree -r``: its mode, object id and path (POSIX, relative)."""

    mode: str
    object_id: str
    path: str


def _unsafe(path: str) -> bool:
    """Whether a path from a tree could leave the destination or touch a ``.git``."""
    parts = path.split("/")
    return (
        not path
        or path.startswith("/")
        or any(part in ("", ".", "..") or part.lower() == ".git" for part in parts)
    )


@functools.lru_cache(maxsize=8)
def _tree_entries(repository: Path, commit: str) -> tuple[_TreeEntry, ...]:
    """Every blob and gitlink of ``commit``'s tree, recursively (read once per process)."""
    __tracebackhide__ = True
    completed = _git(repository, "ls-tree", "-r", "-z", "--full-tree", commit)
    if completed.returncode != 0:
        raise RevisionError(
            f"git ls-tree {commit[:12]} failed in {repository}: {_first_line(completed.stderr)}"
        )
    entries = []
    for record in completed.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, _, object_id = meta.decode().split(" ")
        path = os.fsdecode(raw_path)
        if not _unsafe(path):
            entries.append(_TreeEntry(mode, object_id, path))
    return tuple(entries)


def _write_blobs(repository: Path, entries: Sequence[_TreeEntry], destination: Path) -> None:
    """Each blob entry's committed bytes at its path under ``destination``."""
    __tracebackhide__ = True
    git = shutil.which("git")
    assert git is not None  # _git found it already
    try:
        process = subprocess.Popen(
            [git, "-C", str(repository), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_git_environment(),
        )
    except OSError as exc:
        raise RevisionError(f"running git in {repository} failed: {exc}") from None
    assert process.stdin is not None
    assert process.stdout is not None
    stdin = process.stdin

    def ask() -> None:
        try:
            for entry in entries:
                stdin.write(entry.object_id.encode() + b"\n")
            stdin.close()
        except OSError:
            pass

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    try:
        for entry in entries:
            header = process.stdout.readline().split()
            if len(header) != 3:
                raise RevisionError(
                    f"git cat-file cannot read {entry.path} ({entry.object_id[:12]}) in "
                    f"{repository}: {b' '.join(header).decode(errors='replace') or 'no answer'}"
                )
            content = process.stdout.read(int(header[2]))
            process.stdout.read(1)
            target = destination / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.mode == "120000":
                os.symlink(os.fsdecode(content), target)
                continue
            target.write_bytes(content)
            target.chmod(0o755 if entry.mode == "100755" else 0o644)
    finally:
        process.stdout.close()
        asking.join()
        process.wait()


def _extract(repository: Path, commit: str, destination: Path) -> None:
    """``commit``'s tree as ``git checkout`` writes it, under ``destination``; submodules too."""
    __tracebackhide__ = True
    destination.mkdir(parents=True, exist_ok=True)
    entries = _tree_entries(repository, commit)
    _write_blobs(repository, [entry for entry in entries if entry.mode != "160000"], destination)
    for entry in entries:
        if entry.mode != "160000":
            continue
        checkout = repository / entry.path
        (destination / entry.path).mkdir(parents=True, exist_ok=True)
        if not (checkout / ".git").exists():
            continue  # not checked out here either: empty on both sides
        present = _git(checkout, "cat-file", "-e", f"{entry.object_id}^{{commit}}")
        if present.returncode != 0:
            raise RevisionError(
                f"submodule {entry.path} is at commit {entry.object_id[:12]} in the revision, "
                f"which its repository {checkout} does not have: fetch it there "
                f"(git -C {checkout} fetch), then compare again"
            )
        _extract(checkout, entry.object_id, destination / entry.path)


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


def _served_files(
    repository: Path, directories: Sequence[str], entries: Sequence[_TreeEntry]
) -> list[str]:
    """Files git ignores in ``directories`` (of the work tree) to serve to the revision's side.

    Only files whose directory holds committed files at the revision and whose
    path holds nothing there, and the files of a wholly ignored directory that
    is a Python package (a generated subpackage) in such a directory. Bytecode
    and other wholly ignored directories (a ``.venv``, ``build/``) are not served.
    """
    __tracebackhide__ = True
    completed = _git(
        repository,
        "ls-files",
        "-z",
        "--others",
        "--ignored",
        "--exclude-standard",
        "--directory",
        "--",
        *directories,
    )
    if completed.returncode != 0:
        return []
    committed = {entry.path for entry in entries}
    committed_dirs = _directories(entries)
    served = []
    for raw in completed.stdout.split(b"\0"):
        relative = os.fsdecode(raw)
        if relative.endswith("/"):
            served += _ignored_package_files(repository, relative.rstrip("/"), committed_dirs)
            continue
        if not relative or _unsafe(relative):
            continue
        parent = relative.rpartition("/")[0]
        if "__pycache__" in relative.split("/") or relative.endswith((".pyc", ".pyo")):
            continue
        if relative in committed or relative in committed_dirs:
            continue
        if (parent and parent not in committed_dirs) or not (repository / relative).is_file():
            continue
        served.append(relative)
    return sorted(served)


def _ignored_package_files(repository: Path, relative: str, committed_dirs: set[str]) -> list[str]:
    """The files of ``relative``, a directory git ignores, if it is a package to serve."""
    parent = relative.rpartition("/")[0]
    directory = repository / relative
    if (
        _unsafe(relative)
        or (parent and parent not in committed_dirs)
        or relative in committed_dirs
        or "__pycache__" in relative.split("/")
        or not (directory / "__init__.py").is_file()
    ):
        return []
    files = []
    for root, subdirectories, names in os.walk(directory):
        subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
        for name in names:
            path = Path(root) / name
            if path.is_file() and not name.endswith((".pyc", ".pyo")):
                files.append(path.relative_to(repository).as_posix())
    return files


def _served_digest(repository: Path, served: Iterable[str]) -> str:
    """A digest of the served files' paths and contents ("" when none)."""
    __tracebackhide__ = True
    digest = hashlib.sha256()
    count = 0
    for relative in served:
        count += 1
        digest.update(os.fsencode(relative) + b"\0")
        try:
            content = (repository / relative).read_bytes()
        except OSError as exc:
            raise RevisionError(
                f"cannot read {repository / relative}, which git ignores and the revision's "
                f"side needs: {exc.strerror or exc}"
            ) from None
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()[:10] if count else ""


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
    location: PackageLocation, import_path: Sequence[str], name: str, cache_dir: Path
) -> RevisionSide:
    """The base side for the package at ``location``: the repository at revision ``name``.

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
    revision = resolve_revision(repository, name)
    homes: list[str] = []
    for portion in location.portions:
        relative = _inside(portion, repository)
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
    entries = _tree_entries(repository, revision.commit)
    in_repository = {entry: _inside(Path(entry), repository) for entry in import_path}
    relatives = [relative for relative in in_repository.values() if relative is not None]
    ignored = _ignored(repository, relatives)
    known = {".", *_directories(entries), *_tracked(repository, relatives)}
    mapped = {
        entry: relative
        for entry, relative in in_repository.items()
        if relative is not None and relative not in ignored and relative in known
    }
    served = _served_files(repository, list(dict.fromkeys([*homes, *mapped.values()])), entries)
    revisions_dir = cache_dir / REVISIONS_DIR
    revisions_dir.mkdir(parents=True, exist_ok=True)
    tree = _tree_dir(revisions_dir, repository, revision, _served_digest(repository, served))
    with FileLock(f"{tree}.lock"):
        if not complete_marker(tree).exists():
            discard_copy(tree)
            staging = Path(tempfile.mkdtemp(prefix=f"{tree.name}.", dir=revisions_dir))
            try:
                _extract(repository, revision.commit, staging / "tree")
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
