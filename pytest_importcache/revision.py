"""The package under test as it was at a git revision, read from git objects.

A same-run comparison (``--against REV``, ``--importcache-baseline=REV``)
measures the working tree's package and the same package at ``REV``. The
revision's files come from ``git archive <commit> -- <paths>``, run in the
package's repository and extracted into the per-user cache, so:

- the user's checkout, index, stash and refs are never written (``git
  archive``, ``rev-parse`` and ``cat-file`` only read objects);
- a src layout or a package in a subdirectory of a larger repository works:
  the paths archived are the package's portions relative to the repository's
  top level;
- the tree is extracted once per (repository, paths, commit), under a file
  lock with a completion mark, and reused by later runs and xdist workers.
  Trees unused for :data:`~pytest_importcache.cache.MAX_AGE_DAYS` are removed,
  and ``pytest-importcache cache --clear`` removes them all.

Files that ``.gitattributes`` marks ``export-ignore`` are left out, as in a
release archive. Symbolic links that point outside the extracted tree are
left out too.

The extracted tree is then copied like any source (see
:mod:`pytest_importcache.copying`): the revision's copy has its own
fingerprint, flavour and compilation, exactly as the working tree's.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from .cache import MAX_AGE_DAYS, complete_marker, discard_copy, mark_used, remove_tree
from .errors import RevisionError
from .locate import PackageLocation

__all__ = [
    "REVISIONS_DIR",
    "Revision",
    "RevisionError",
    "clear_revisions",
    "find_repository",
    "resolve_revision",
    "revision_location",
    "revision_trees",
]

#: The cache's subdirectory holding extracted revisions.
REVISIONS_DIR = "revisions"
# Variables that would point git at another repository or index than the package's.
_GIT_REDIRECTS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX", "GIT_NAMESPACE")
_GIT_TIMEOUT = 120.0
_SHALLOW_HINT = (
    "this is a shallow clone: fetch the revision (git fetch --unshallow, or fetch-depth: 0 "
    "in actions/checkout)"
)


@dataclass(frozen=True)
class Revision:
    """A git revision as the user named it (``name``) and the commit it resolved to."""

    repository: Path
    name: str
    commit: str

    @property
    def short(self) -> str:
        """The commit's first 12 hex digits."""
        return self.commit[:12]

    def __str__(self) -> str:
        if self.name.lower() == self.commit.lower() or self.commit.startswith(self.name):
            return self.short
        return f"{self.name} ({self.short})"


def _git_environment() -> dict[str, str]:
    """This process's environment, minus what would redirect git to another repository."""
    return {key: value for key, value in os.environ.items() if key not in _GIT_REDIRECTS}


def _git(
    repository: Path, *arguments: str, binary: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git -C repository ARGUMENTS`` (read-only commands only); never raises on exit codes."""
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
            stdin=subprocess.DEVNULL,
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


def _relative_paths(location: PackageLocation, repository: Path) -> list[str]:
    """The package's portions relative to ``repository``'s top level (POSIX separators)."""
    __tracebackhide__ = True
    top = Path(os.path.realpath(repository))
    paths = []
    for portion in location.portions:
        real = Path(os.path.realpath(portion))
        if not real.is_relative_to(top):
            raise RevisionError(
                f"{portion} is outside the git repository {repository} that holds "
                f"{location.portions[0]}: its portions must share one repository"
            )
        relative = real.relative_to(top).as_posix()
        if relative == ".":
            raise RevisionError(
                f"{location.top_level!r} is the whole repository {repository}: a baseline "
                "revision needs the package in a subdirectory"
            )
        paths.append(relative)
    return paths


def _extraction_filter(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
    """Keep regular files, directories and links inside ``destination``; drop the rest."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is not None:
        try:
            kept: tarfile.TarInfo | None = data_filter(member, destination)
        except tarfile.FilterError:
            return None
        return kept
    # Interpreters without tarfile's filters (3.10 before 3.10.12): the same checks, by hand.
    parts = Path(member.name).parts
    if Path(member.name).is_absolute() or ".." in parts:
        return None
    if member.issym() or member.islnk():
        target = os.path.normpath(os.path.join(os.path.dirname(member.name), member.linkname))
        if os.path.isabs(member.linkname) or target.startswith(".."):
            return None
    elif not (member.isfile() or member.isdir()):
        return None
    return member


def _extract(repository: Path, commit: str, paths: Sequence[str], destination: Path) -> None:
    """``git archive commit -- paths`` extracted under ``destination``."""
    __tracebackhide__ = True
    completed = _git(repository, "archive", "--format=tar", commit, "--", *paths)
    if completed.returncode != 0:
        raise RevisionError(
            f"git archive {commit[:12]} failed in {repository}: {_first_line(completed.stderr)}"
        )
    with tarfile.open(fileobj=io.BytesIO(completed.stdout), mode="r:") as archive:
        for member in archive.getmembers():
            kept = _extraction_filter(member, str(destination))
            if kept is None:
                continue
            if hasattr(tarfile, "data_filter"):
                archive.extract(kept, destination, filter="fully_trusted")  # checked above
            else:
                archive.extract(kept, destination)


def _check_present(revision: Revision, location: PackageLocation, paths: Sequence[str]) -> None:
    """Raise :class:`RevisionError` when a path of the package is absent at ``revision``."""
    __tracebackhide__ = True
    for path in paths:
        completed = _git(revision.repository, "cat-file", "-e", f"{revision.commit}:{path}")
        if completed.returncode != 0:
            raise RevisionError(
                f"{location.top_level!r} is absent at revision {revision}: {path} does not "
                f"exist there in {revision.repository}"
            )


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

    Returns the extracted package's location (same name and kind) and the
    resolved revision. Raises :class:`RevisionError`, one line each, when git
    is missing, the package is in no repository, the revision is unknown (in
    a shallow clone: how to fetch it) or the package is absent at it.
    """
    __tracebackhide__ = True
    repository = find_repository(location.portions[0])
    revision = resolve_revision(repository, name)
    paths = _relative_paths(location, repository)
    _check_present(revision, location, paths)
    key = hashlib.sha256("\0".join([os.fsdecode(repository), *paths]).encode()).hexdigest()
    revisions_dir = cache_dir / REVISIONS_DIR
    revisions_dir.mkdir(parents=True, exist_ok=True)
    tree = revisions_dir / f"{location.top_level[:60]}-{key[:10]}-{revision.short}"
    with FileLock(f"{tree}.lock"):
        if not complete_marker(tree).exists():
            discard_copy(tree)
            staging = Path(tempfile.mkdtemp(prefix=f"{tree.name}.", dir=revisions_dir))
            try:
                _extract(repository, revision.commit, paths, staging / "tree")
                (staging / "tree").mkdir(exist_ok=True)
                (staging / "tree").rename(tree)
                complete_marker(tree).touch()
            finally:
                remove_tree(staging)
        mark_used(tree)
    _prune_revisions(revisions_dir, tree, time.time())
    portions = tuple(tree / path for path in paths)
    return PackageLocation(location.top_level, location.kind, portions), revision
