"""Building cold and warm copies of the package under test."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from conftest import MakeTree, bytecode_files
from pytest_importcache.engine.cache import (
    MAX_AGE_DAYS,
    MAX_COPIES_PER_PACKAGE,
    cached_copies,
    complete_marker,
    default_cache_dir,
    prune_cache,
)
from pytest_importcache.engine.copying import PackageCopy, prepare_copy, source_fingerprint
from pytest_importcache.engine.locate import locate_package
from pytest_importcache.model.errors import EnvironmentBuildError

PACKAGE = {
    "pkg/__init__.py": "from . import core\n",
    "pkg/core.py": "VALUE = 1\n",
    "pkg/data/table.csv": "a,b\n1,2\n",
    "pkg/__pycache__/stale.cpython-311.pyc": "not bytecode",
}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
    }


def warm_copy(tree: Path, tmp_path: Path, **options: Any) -> PackageCopy:
    """A warm copy of ``pkg`` from ``tree``, built under ``tmp_path``."""
    location = locate_package("pkg", [str(tree)])
    return prepare_copy(
        location, tmp_path / "env", flavour="warm", python=sys.executable, **options
    )


def test_a_cold_copy_has_sources_and_data_but_no_bytecode(
    make_tree: MakeTree, tmp_path: Path
) -> None:
    tree = make_tree(PACKAGE)
    copy = prepare_copy(
        locate_package("pkg", [str(tree)]), tmp_path / "env", flavour="cold", python=sys.executable
    )
    copied = copy.roots[0] / "pkg"
    assert (copied / "data" / "table.csv").read_text() == "a,b\n1,2\n"
    assert bytecode_files(copy.roots[0]) == []
    assert (copied / "core.py").stat().st_mtime_ns == (tree / "pkg" / "core.py").stat().st_mtime_ns


@pytest.mark.parametrize(
    ("optimize", "suffix"), [(0, ".pyc"), (1, ".opt-1.pyc"), (2, ".opt-2.pyc")]
)
@pytest.mark.slow
def test_a_warm_copy_is_compiled_at_the_rounds_optimisation_level(
    make_tree: MakeTree, tmp_path: Path, optimize: int, suffix: str
) -> None:
    copy = warm_copy(make_tree(PACKAGE), tmp_path, optimize=optimize)
    compiled = sorted(path.name for path in bytecode_files(copy.roots[0]) if path.suffix == ".pyc")
    tag = sys.implementation.cache_tag
    assert compiled == [f"__init__.{tag}{suffix}", f"core.{tag}{suffix}"]


@pytest.mark.parametrize(
    ("mode", "flags"), [("timestamp", 0), ("checked-hash", 3), ("unchecked-hash", 1)]
)
@pytest.mark.slow
def test_the_invalidation_mode_is_written_into_the_bytecode(
    make_tree: MakeTree, tmp_path: Path, mode: str, flags: int
) -> None:
    copy = warm_copy(make_tree(PACKAGE), tmp_path, invalidation_mode=mode)
    (pyc,) = (copy.roots[0] / "pkg" / "__pycache__").glob("core.*.pyc")
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == flags


@pytest.mark.slow
def test_bytecode_is_written_even_when_the_caller_forbids_it(
    make_tree: MakeTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    tree = make_tree(PACKAGE)
    copy = prepare_copy(
        locate_package("pkg", [str(tree)]), tmp_path / "env", flavour="warm", python=sys.executable
    )
    assert bytecode_files(copy.roots[0])


def test_a_copy_is_reused_until_the_source_changes(make_tree: MakeTree, tmp_path: Path) -> None:
    tree = make_tree(PACKAGE)
    location = locate_package("pkg", [str(tree)])
    first = prepare_copy(location, tmp_path / "env", flavour="cold", python=sys.executable)
    marker = first.directory / "built-once"
    marker.touch()
    again = prepare_copy(location, tmp_path / "env", flavour="cold", python=sys.executable)
    assert again.directory == first.directory
    assert marker.exists()
    (tree / "pkg" / "core.py").write_text("VALUE = 2\n")
    changed = prepare_copy(location, tmp_path / "env", flavour="cold", python=sys.executable)
    assert changed.directory != first.directory
    assert (changed.roots[0] / "pkg" / "core.py").read_text() == "VALUE = 2\n"


def test_the_fingerprint_ignores_bytecode_beside_the_sources(make_tree: MakeTree) -> None:
    tree = make_tree(PACKAGE)
    location = locate_package("pkg", [str(tree)])
    before = source_fingerprint(location)
    (tree / "pkg" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"x")
    assert source_fingerprint(location) == before


def test_namespace_portions_are_copied_side_by_side(make_tree: MakeTree, tmp_path: Path) -> None:
    first = make_tree({"ns/one.py": ""})
    second = make_tree({"ns/two.py": ""})
    location = locate_package("ns", [str(first), str(second)])
    copy = prepare_copy(location, tmp_path / "env", flavour="cold", python=sys.executable)
    assert [sorted(p.name for p in (root / "ns").iterdir()) for root in copy.roots] == [
        ["one.py"],
        ["two.py"],
    ]


@pytest.mark.slow
def test_concurrent_builders_share_one_copy(make_tree: MakeTree, tmp_path: Path) -> None:
    tree = make_tree(
        {f"pkg/mod{index}.py": "X = 1\n" for index in range(300)} | {"pkg/__init__.py": ""}
    )
    script = (
        "import sys; from pathlib import Path\n"
        "from pytest_importcache.engine.copying import prepare_copy\n"
        "from pytest_importcache.engine.locate import locate_package\n"
        "copy = prepare_copy(locate_package('pkg', [sys.argv[1]]), Path(sys.argv[2]),"
        " flavour='warm', python=sys.executable)\n"
        "print(copy.directory)\n"
    )
    builders = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tree), str(tmp_path / "env")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    directories = {builder.communicate()[0].strip() for builder in builders}
    assert all(builder.returncode == 0 for builder in builders)
    (directory,) = directories
    leftovers = [
        name for name in os.listdir(tmp_path / "env") if not name.endswith((".lock", ".complete"))
    ]
    assert leftovers == [Path(directory).name]


@pytest.mark.slow
def test_the_source_tree_is_never_written(make_tree: MakeTree, tmp_path: Path) -> None:
    tree = make_tree(PACKAGE)
    before = snapshot(tree)
    location = locate_package("pkg", [str(tree)])
    for flavour in ("cold", "warm"):
        prepare_copy(location, tmp_path / flavour, flavour=flavour, python=sys.executable)
    assert snapshot(tree) == before


@pytest.mark.slow
def test_a_read_only_source_tree_gives_a_writable_copy(make_tree: MakeTree, tmp_path: Path) -> None:
    tree = make_tree(PACKAGE)
    for path in [*(tree / "pkg").rglob("*"), tree / "pkg"]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    try:
        location = locate_package("pkg", [str(tree)])
        copy = prepare_copy(location, tmp_path / "env", flavour="warm", python=sys.executable)
    finally:
        for path in [tree / "pkg", *(tree / "pkg").rglob("*")]:
            path.chmod(stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
    for path in [copy.roots[0] / "pkg", *(copy.roots[0] / "pkg").rglob("*")]:
        assert path.stat().st_mode & stat.S_IWUSR, path


def test_a_dangling_symbolic_link_is_left_out(make_tree: MakeTree, tmp_path: Path) -> None:
    tree = make_tree(PACKAGE)
    (tree / "pkg" / "dangling").symlink_to(tree / "nowhere")
    location = locate_package("pkg", [str(tree)])
    copy = prepare_copy(location, tmp_path / "env", flavour="cold", python=sys.executable)
    assert not (copy.roots[0] / "pkg" / "dangling").is_symlink()
    assert (copy.roots[0] / "pkg" / "core.py").exists()


def test_a_default_cache_directory_others_can_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    planted = tmp_path / f"pytest-importcache-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)
    with pytest.raises(EnvironmentBuildError, match="refusing the cache directory") as refused:
        default_cache_dir()
    # What really chooses another directory (pytest has no cache_dir= nor --dir).
    assert str(refused.value).endswith(
        "remove it, or set TMPDIR to choose another directory (the cache is "
        "$TMPDIR/pytest-importcache-UID; from Python, ImportEnv(cache_dir=...); "
        "pytest-importcache cache takes --dir)"
    )
    planted.chmod(0o700)
    assert default_cache_dir() == planted


@pytest.mark.slow
def test_an_edit_that_keeps_size_and_mtime_still_gets_a_new_copy(
    make_tree: MakeTree, tmp_path: Path
) -> None:
    tree = make_tree(PACKAGE)
    core = tree / "pkg" / "core.py"
    status = core.stat()
    first = warm_copy(tree, tmp_path)
    core.write_text("VALUE = 9\n")  # same size as "VALUE = 1\n"
    os.utime(core, ns=(status.st_atime_ns, status.st_mtime_ns))  # as `touch -d` would
    second = warm_copy(tree, tmp_path)
    assert second.directory != first.directory
    assert (second.roots[0] / "pkg" / "core.py").read_text() == "VALUE = 9\n"


def cached_warm_copy(tree: Path, cache: Path) -> PackageCopy:
    """A warm copy of ``pkg`` in an environment directory of the cache under ``cache``."""
    location = locate_package("pkg", [str(tree)])
    return prepare_copy(location, cache / "warm-test", flavour="warm", python=sys.executable)


@pytest.mark.slow
def test_the_cache_keeps_a_few_copies_per_package(make_tree: MakeTree, tmp_path: Path) -> None:
    tree = make_tree(PACKAGE)
    for edit in range(MAX_COPIES_PER_PACKAGE + 3):
        (tree / "pkg" / "core.py").write_text(f"VALUE = {edit}\n")
        newest = cached_warm_copy(tree, tmp_path)
    copies = cached_copies(tmp_path)
    assert len(copies) == MAX_COPIES_PER_PACKAGE
    assert copies[0].path == newest.directory
    # No staging or trash directory is left; lock files stay (removing one that another
    # process waits on would let two processes hold it) until they are long stale.
    directories = sorted(path.name for path in (tmp_path / "warm-test").iterdir() if path.is_dir())
    assert directories == sorted(copy.path.name for copy in copies)


@pytest.mark.slow
def test_copies_unused_for_long_are_pruned_but_a_copy_in_use_is_not(
    make_tree: MakeTree, tmp_path: Path
) -> None:

    old = cached_warm_copy(make_tree({"pkg/__init__.py": "A = 1\n"}), tmp_path)
    busy = cached_warm_copy(make_tree({"pkg/__init__.py": "B = 1\n"}), tmp_path)
    long_ago = time.time() - (MAX_AGE_DAYS + 1) * 86400
    for copy in (old, busy):
        os.utime(copy.directory, (long_ago, long_ago))
    with FileLock(f"{busy.directory}.measure.lock"):
        assert prune_cache(tmp_path) == 1
    assert [copy.path for copy in cached_copies(tmp_path)] == [busy.directory]


@pytest.mark.slow
def test_a_copy_without_its_completion_mark_is_built_again(
    make_tree: MakeTree, tmp_path: Path
) -> None:
    tree = make_tree(PACKAGE)
    first = cached_warm_copy(tree, tmp_path)
    # What a process that died halfway through deleting (or building) it leaves.
    (first.roots[0] / "pkg" / "core.py").unlink()
    complete_marker(first.directory).unlink()
    again = cached_warm_copy(tree, tmp_path)
    assert again.directory == first.directory
    assert (again.roots[0] / "pkg" / "core.py").read_text() == "VALUE = 1\n"


@pytest.mark.slow
def test_leftovers_of_dead_processes_are_pruned(make_tree: MakeTree, tmp_path: Path) -> None:
    copy = cached_warm_copy(make_tree(PACKAGE), tmp_path)
    staging = copy.directory.with_name(f"{copy.directory.name}.abc123")
    (staging / "copy").mkdir(parents=True)
    recent = copy.directory.with_name(f"{copy.directory.name}.trash-0001")
    recent.mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(staging, (two_hours_ago, two_hours_ago))
    prune_cache(tmp_path)
    assert not staging.exists()
    assert recent.exists()  # it may belong to a process still at work
    assert copy.directory.is_dir()
