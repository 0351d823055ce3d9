"""Read a git repository without writing to it: revisions, trees, ignored files.

The plumbing under :mod:`~pytest_importcache.engine.revision`: ``git
rev-parse``, ``ls-tree -r -z``, ``cat-file --batch``, ``ls-files`` and
``check-ignore`` only, run with none of the variables a git hook or CI step
sets to point git elsewhere (``GIT_DIR``, ``GIT_INDEX_FILE``, ...). A tree is
written as ``git checkout`` would write it: committed bytes (no filters, no
export rules), executable bits and symbolic links as committed, submodules at
their recorded commits. A revision is named in the project's repository
(:func:`project_repository`): a package inside a submodule is read at the
commit the project's revision records for it, and what the working tree is
asked (ignored, tracked, served files) is asked of the repository that holds
each path, a checked-out submodule's own. Every failure is one
:class:`RevisionError` line.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_importcache.model.comparison import Revision
from pytest_importcache.model.errors import RevisionError

__all__ = [
    "GITLINK",
    "TreeEntry",
    "checkout_entries",
    "extract_tree",
    "find_repository",
    "first_line",
    "ignored_paths",
    "inside",
    "project_repository",
    "resolve_revision",
    "run_git",
    "served_digest",
    "served_files",
    "tracked_directories",
    "tracks_any",
    "tree_directories",
    "tree_entries",
    "unsafe_path",
    "work_tree_of",
]

#: The mode of a submodule's entry (a gitlink) in a tree.
GITLINK = "160000"

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


def run_git(
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


def first_line(output: bytes) -> str:
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
    completed = run_git(directory, "rev-parse", "--show-toplevel")
    top = completed.stdout.decode(errors="surrogateescape").strip()
    if completed.returncode != 0 or not top:
        raise RevisionError(
            f"{path} is not in a git repository: a baseline revision needs the package's "
            "git history (measure it from its checkout)"
        )
    return Path(top)


def _same_directory(one: Path, other: Path) -> bool:
    return os.path.realpath(one) == os.path.realpath(other)


def project_repository(repository: Path, project: Path) -> Path:
    """The repository whose history names a revision for a package in ``repository``.

    ``project``'s repository (pytest's rootdir, the command line's current
    directory) when ``repository`` is it or one of its submodules, nested ones
    too; otherwise ``repository`` itself (a package from another checkout).
    """
    __tracebackhide__ = True
    try:
        top = find_repository(project)
    except RevisionError:
        return repository
    current = repository
    while not _same_directory(current, top):
        completed = run_git(current, "rev-parse", "--show-superproject-working-tree")
        parent = completed.stdout.decode(errors="surrogateescape").strip()
        if completed.returncode != 0 or not parent or _same_directory(Path(parent), current):
            return repository
        current = Path(parent)
    return top


def _is_gitlink(repository: Path, relative: str) -> bool:
    """Whether the index of ``repository`` records ``relative`` as a submodule."""
    completed = run_git(repository, "ls-files", "--stage", "-z", "--", relative)
    return completed.stdout.startswith(f"{GITLINK} ".encode())


def work_tree_of(repository: Path, relative: str) -> tuple[Path, str]:
    """The work tree holding ``relative``: ``repository`` or a checked-out submodule in it.

    Nested submodules are followed. Returns the work tree and ``relative``'s
    path in it (``"."`` for its top).
    """
    __tracebackhide__ = True
    parts = [] if relative == "." else relative.split("/")
    top, start = repository, 0
    for end in range(1, len(parts) + 1):
        candidate = "/".join(parts[start:end])
        if (top / candidate / ".git").exists() and _is_gitlink(top, candidate):
            top, start = top / candidate, end
    return top, "/".join(parts[start:]) or "."


def _by_work_tree(repository: Path, relatives: Iterable[str]) -> dict[Path, dict[str, str]]:
    """``relatives`` grouped by the work tree holding each: {work tree: {its path: given}}."""
    __tracebackhide__ = True
    groups: dict[Path, dict[str, str]] = {}
    for relative in relatives:
        top, inner = work_tree_of(repository, relative)
        groups.setdefault(top, {})[inner] = relative
    return groups


def _is_shallow(repository: Path) -> bool:
    completed = run_git(repository, "rev-parse", "--is-shallow-repository")
    return completed.stdout.strip() == b"true"


@functools.lru_cache(maxsize=32)
def _resolve(repository: Path, name: str) -> str:
    __tracebackhide__ = True
    if not name or name.startswith("-") or "\0" in name:
        raise RevisionError(f"{name!r} is not a git revision")
    completed = run_git(repository, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
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


def inside(path: Path, repository: Path) -> str | None:
    """``path`` relative to ``repository`` (POSIX separators), or ``None`` outside it."""
    real = Path(os.path.realpath(path))
    top = Path(os.path.realpath(repository))
    if not real.is_relative_to(top):
        return None
    return real.relative_to(top).as_posix()


def ignored_paths(repository: Path, relatives: Sequence[str]) -> set[str]:
    """Which of ``relatives`` (work tree paths) git ignores, themselves or by a directory.

    A path inside a checked-out submodule is asked of the submodule's repository.
    """
    __tracebackhide__ = True
    ignored: set[str] = set()
    for top, given in _by_work_tree(repository, relatives).items():
        asked = [relative for relative in given if relative != "."]
        if not asked:
            continue
        completed = run_git(
            top,
            "check-ignore",
            "-z",
            "--stdin",
            stdin=b"".join(os.fsencode(relative) + b"\0" for relative in asked),
        )
        ignored |= {given[os.fsdecode(name)] for name in completed.stdout.split(b"\0") if name}
    return ignored


def tracks_any(repository: Path, relatives: Sequence[str]) -> bool:
    """Whether git tracks any file at or under ``relatives`` (work tree paths, submodules too)."""
    __tracebackhide__ = True
    return any(
        run_git(top, "ls-files", "-z", "--", *given).stdout
        for top, given in _by_work_tree(repository, relatives).items()
    )


def tracked_directories(repository: Path, relatives: Sequence[str]) -> set[str]:
    """Which of ``relatives`` (directories) hold files git tracks in the work tree's index.

    A checked-out submodule's top is one; a directory inside it is asked of its index.
    """
    __tracebackhide__ = True
    tracked: set[str] = set()
    for top, given in _by_work_tree(repository, relatives).items():
        if top != repository and "." in given:
            tracked.add(given["."])
        asked = [relative for relative in given if relative != "."]
        if not asked:
            continue
        completed = run_git(top, "ls-files", "-z", "--", *asked)
        files = [os.fsdecode(name) for name in completed.stdout.split(b"\0") if name]
        tracked |= {
            given[relative]
            for relative in asked
            if any(f.startswith(f"{relative}/") for f in files)
        }
    return tracked


def tree_directories(entries: Iterable[TreeEntry]) -> set[str]:
    """Every directory that holds an entry of a tree (relative, POSIX), the top excluded."""
    return {
        "/".join(entry.path.split("/")[:depth])
        for entry in entries
        for depth in range(1, entry.path.count("/") + 1)
    }


@dataclass(frozen=True)
class TreeEntry:
    """One entry of ``git ls-tree -r``: its mode, object id and path (POSIX, relative)."""

    mode: str
    object_id: str
    path: str


def unsafe_path(path: str) -> bool:
    """Whether a path from a tree could leave the destination or touch a ``.git``."""
    parts = path.split("/")
    return (
        not path
        or path.startswith("/")
        or any(part in ("", ".", "..") or part.lower() == ".git" for part in parts)
    )


@functools.lru_cache(maxsize=32)
def tree_entries(repository: Path, commit: str) -> tuple[TreeEntry, ...]:
    """Every blob and gitlink of ``commit``'s tree, recursively (read once per process)."""
    __tracebackhide__ = True
    completed = run_git(repository, "ls-tree", "-r", "-z", "--full-tree", commit)
    if completed.returncode != 0:
        raise RevisionError(
            f"git ls-tree {commit[:12]} failed in {repository}: {first_line(completed.stderr)}"
        )
    entries = []
    for record in completed.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, _, object_id = meta.decode().split(" ")
        path = os.fsdecode(raw_path)
        if not unsafe_path(path):
            entries.append(TreeEntry(mode, object_id, path))
    return tuple(entries)


def _write_blobs(repository: Path, entries: Sequence[TreeEntry], destination: Path) -> None:
    """Each blob entry's committed bytes at its path under ``destination``."""
    __tracebackhide__ = True
    git = shutil.which("git")
    assert git is not None  # run_git found it already
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


def _submodule_checkout(repository: Path, entry: TreeEntry, prefix: str = "") -> Path | None:
    """The working tree's checkout of the submodule ``entry`` (a gitlink), if checked out.

    ``None`` when it is not checked out (empty on both sides, as after ``git
    checkout``); :class:`RevisionError` when its repository lacks the recorded
    commit. ``prefix`` is the path of ``repository`` in the project, for the message.
    """
    __tracebackhide__ = True
    checkout = repository / entry.path
    if not (checkout / ".git").exists():
        return None
    present = run_git(checkout, "cat-file", "-e", f"{entry.object_id}^{{commit}}")
    if present.returncode != 0:
        raise RevisionError(
            f"submodule {prefix}{entry.path} is at commit {entry.object_id[:12]} in the "
            f"revision, which its repository {checkout} does not have: fetch it there "
            f"(git -C {checkout} fetch), then compare again"
        )
    return checkout


def checkout_entries(repository: Path, commit: str, prefix: str = "") -> tuple[TreeEntry, ...]:
    """``commit``'s entries with those of each checked-out submodule at its recorded commit.

    A submodule's entries follow its gitlink, their paths under its path
    (nested submodules likewise); a submodule not checked out is its gitlink
    alone. Raises :class:`RevisionError` when a recorded commit is missing.
    """
    __tracebackhide__ = True
    entries: list[TreeEntry] = []
    for entry in tree_entries(repository, commit):
        entries.append(TreeEntry(entry.mode, entry.object_id, f"{prefix}{entry.path}"))
        if entry.mode != GITLINK:
            continue
        checkout = _submodule_checkout(repository, entry, prefix)
        if checkout is not None:
            entries += checkout_entries(checkout, entry.object_id, f"{prefix}{entry.path}/")
    return tuple(entries)


def extract_tree(repository: Path, commit: str, destination: Path, prefix: str = "") -> None:
    """``commit``'s tree as ``git checkout`` writes it, under ``destination``; submodules too."""
    __tracebackhide__ = True
    destination.mkdir(parents=True, exist_ok=True)
    entries = tree_entries(repository, commit)
    _write_blobs(repository, [entry for entry in entries if entry.mode != GITLINK], destination)
    for entry in entries:
        if entry.mode != GITLINK:
            continue
        (destination / entry.path).mkdir(parents=True, exist_ok=True)
        checkout = _submodule_checkout(repository, entry, prefix)
        if checkout is not None:
            extract_tree(
                checkout, entry.object_id, destination / entry.path, f"{prefix}{entry.path}/"
            )


def served_files(
    repository: Path, directories: Sequence[str], entries: Sequence[TreeEntry]
) -> list[str]:
    """Files git ignores in ``directories`` (of the work tree) to serve to the revision's side.

    Only files whose directory holds committed files at the revision and whose
    path holds nothing there, and the files of a wholly ignored directory that
    is a Python package (a generated subpackage) in such a directory. Bytecode
    and other wholly ignored directories (a ``.venv``, ``build/``) are not served.
    ``entries`` are the revision's, submodules' included (:func:`checkout_entries`):
    a directory inside a checked-out submodule is asked of the submodule's repository.
    """
    __tracebackhide__ = True
    served: list[str] = []
    for top, given in _by_work_tree(repository, directories).items():
        prefix = inside(top, repository) or "."
        if prefix == ".":
            served += _served_in(top, list(given), entries)
            continue
        own = [
            TreeEntry(entry.mode, entry.object_id, entry.path[len(prefix) + 1 :])
            for entry in entries
            if entry.path.startswith(f"{prefix}/")
        ]
        served += [f"{prefix}/{relative}" for relative in _served_in(top, list(given), own)]
    return sorted(served)


def _served_in(
    repository: Path, directories: Sequence[str], entries: Sequence[TreeEntry]
) -> list[str]:
    """:func:`served_files` of one work tree (``directories`` and ``entries`` relative to it)."""
    __tracebackhide__ = True
    completed = run_git(
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
    committed_dirs = tree_directories(entries)
    served = []
    for raw in completed.stdout.split(b"\0"):
        relative = os.fsdecode(raw)
        if relative.endswith("/"):
            served += _ignored_package_files(repository, relative.rstrip("/"), committed_dirs)
            continue
        if not relative or unsafe_path(relative):
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
        unsafe_path(relative)
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


def served_digest(repository: Path, served: Iterable[str]) -> str:
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
