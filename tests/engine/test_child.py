"""The round's child: a real module run by path, importing nothing it would measure."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from conftest import MakeTree
from pytest_importcache.engine import countkey
from pytest_importcache.engine.child import (
    BEGIN_MARKER,
    CHILD_SCRIPT,
    END_MARKER,
    HARNESS,
    ROUND,
)
from pytest_importcache.engine.runner import run_round
from pytest_importcache.model.errors import ImportRaisedError
from pytest_importcache.model.spec import MeasurementSpec

# What a start-up has loaded before the child's first line (3.10-3.13, with -S),
# and `site`, which the child runs itself: importing anything else would put it
# in every round's start-up instead of in the measured import.
STARTUP_MODULES = {"sys", "os", "time", "site", "_thread", "_frozen_importlib"}
STARTUP_MODULES |= {"_frozen_importlib_external"}


def _runtime_imports(path: Path) -> set[str]:
    """The modules ``path`` imports when it runs: ``if TYPE_CHECKING:`` blocks left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If)
        and isinstance(block.test, ast.Name)
        and block.test.id == "TYPE_CHECKING"
        for statement in block.body
        for node in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def test_the_child_imports_only_what_start_up_has_loaded() -> None:
    assert _runtime_imports(CHILD_SCRIPT) == {"sys"}
    assert _runtime_imports(ROUND) <= STARTUP_MODULES
    # traceback too, only to describe the import's error once it is over, and
    # opcode to name the instruction that reified a lazy import (PEP 810), then too.
    assert _runtime_imports(HARNESS) <= {*STARTUP_MODULES, "traceback", "opcode"}
    assert "time" in _runtime_imports(ROUND), "the check reads the imports"


def test_the_child_writes_the_markers_the_runner_looks_for() -> None:
    source = ROUND.read_text(encoding="utf-8")
    assert f'_mark(b"\\n{BEGIN_MARKER}\\n")' in source
    assert f'_mark(b"\\n{END_MARKER}\\n")' in source


@pytest.mark.slow
def test_a_stored_count_is_keyed_on_the_childs_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = MeasurementSpec("json", metric="instructions")

    def key() -> str:
        return countkey.count_key(spec, sys.executable, [tmp_path], tmp_path, runner="real")

    before = key()
    assert key() == before
    monkeypatch.setattr(countkey, "child_digest", lambda: "another child")
    assert key() != before


@pytest.mark.slow
def test_the_import_sees_a_main_module_as_under_dash_c(make_tree: MakeTree, tmp_path: Path) -> None:
    # The measured import sees what `python -c` would show it: argv ["-c"], no
    # program file, and neither the child's directory nor the round's on its path.
    root = make_tree(
        {
            "seer.py": (
                "import sys, __main__\n"
                "raise RuntimeError((sys.argv, hasattr(__main__, '__file__'), sys.path))\n"
            )
        }
    )
    workdir = tmp_path / "rounds"
    workdir.mkdir()
    with pytest.raises(ImportRaisedError) as raised:
        run_round("seer", [root], workdir, python=sys.executable)
    summary = str(raised.value).splitlines()[0].partition("RuntimeError: ")[2]
    argv, has_file, path = ast.literal_eval(summary)
    assert (argv, has_file) == (["-c"], False)
    assert str(CHILD_SCRIPT.parent) not in path
    assert not [entry for entry in path if entry in ("", ".") or entry.startswith(str(workdir))]
    assert path[0] == str(root)
    assert "main.py" not in raised.value.child_traceback, "the child's frames are left out"


INTERPRETERS = [
    path
    for version in ("3.10", "3.11", "3.12", "3.13", "3.14", "3.15")
    for path in sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}"))[:1]
]


@pytest.mark.parametrize(
    "python", INTERPRETERS or [Path(sys.executable)], ids=lambda path: path.parent.parent.name
)
@pytest.mark.slow
def test_start_up_leaves_what_the_import_uses_to_the_import(
    python: Path, make_tree: MakeTree, tmp_path: Path
) -> None:
    # 3.13's `-c` start-up loads linecache (to show -c's source in tracebacks);
    # a script's does not, so an import using linecache pays for it everywhere.
    root = make_tree({"lines.py": "import linecache\n"})
    report = run_round("lines", [root], tmp_path, python=str(python))
    assert "linecache" in report.loaded
    assert not [name for name in report.loaded if name.startswith("pytest_importcache")]


@pytest.mark.slow
def test_a_warning_aimed_at_the_importer_points_at_dash_c_code(
    make_tree: MakeTree, tmp_path: Path
) -> None:
    # As under `python -c`, the frame that imports is `<string>`: no file of the
    # child's is read (and paid for by the import) to show a source line.
    root = make_tree(
        {"warns.py": "import warnings\nwarnings.warn('moved', DeprecationWarning, stacklevel=2)\n"}
    )
    report = run_round("warns", [root], tmp_path, python=sys.executable)
    assert "<string>:" in report.stderr
    assert "DeprecationWarning: moved" in report.stderr
    assert "__import__(_module)" not in report.stderr
    assert "child" not in report.stderr
