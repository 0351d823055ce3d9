"""Throwaway git repositories for the tests of same-run comparisons."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import write_tree

_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(repo: Path, *arguments: str) -> str:
    """Run git in ``repo``; its stdout."""
    completed = subprocess.run(
        ["git", "-C", str(repo), *arguments],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **_GIT_IDENTITY},
    )
    return completed.stdout


def commit_all(repo: Path, message: str) -> str:
    """Commit everything in ``repo``; the commit id."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def forget_last_commit(repo: Path) -> None:
    """Move ``repo`` back one commit and drop its objects, as a clone that never had it."""
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")


def make_repo(root: Path, files: dict[str, str]) -> Path:
    """A git repository at ``root`` with ``files`` committed as its first commit."""
    write_tree(root, files)
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "first")
    return root


def tree_state(repo: Path) -> tuple[str, str, str]:
    """What a comparison must leave unchanged: status, stash list, HEAD."""
    return (
        git(repo, "status", "--porcelain", "--untracked-files=all"),
        git(repo, "stash", "list"),
        git(repo, "rev-parse", "HEAD"),
    )
