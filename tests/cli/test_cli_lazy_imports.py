"""``pytest-importcache MODULE --lazy-imports all|compare``: PEP 810's saving, side by side.

Real rounds under CPython 3.15 (skipped elsewhere); the refusal without PEP 810
on older versions.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import MakeTree

PACKAGES = {
    # decimal: an eager import nothing uses, which -X lazy_imports=all defers.
    "eagerpkg/__init__.py": "import decimal\nlazy import fractions\nX = fractions.Fraction(1)\n",
}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_importcache", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(sys.version_info < (3, 15), reason="PEP 810 lazy imports need CPython 3.15+")
@pytest.mark.slow
def test_compare_shows_normal_and_all_side_by_side(make_tree: MakeTree) -> None:
    tree = make_tree(PACKAGES)
    common = ["eagerpkg", "--path", str(tree), "--rounds", "1", "--warmup", "0"]
    text = run_cli(*common, "--lazy-imports", "compare")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "  eagerpkg/__init__.py:3 reified lazy import fractions during the import" in lines
    assert "  -X lazy_imports=all (PEP 810), medians:" in lines
    table = lines[lines.index("  -X lazy_imports=all (PEP 810), medians:") + 2 :]
    assert [line.split()[0] for line in table] == ["cold", "warm"]
    assert any(line.strip().startswith("cold all") for line in lines)
    as_json = run_cli(*common, "--lazy-imports", "compare", "--json")
    assert as_json.returncode == 0, as_json.stderr
    (entry,) = json.loads(as_json.stdout)["modules"]
    assert entry["reified"] == [{"module": "fractions", "where": "eagerpkg/__init__.py:3"}]
    saving = entry["lazy_imports_saving"]["warm"]
    assert saving["modules_all"] < saving["modules_normal"]
    assert set(entry["flavours"]) == {"cold", "warm", "cold all", "warm all"}
    every = run_cli(*common, "--lazy-imports", "all", "--json")
    (entry,) = json.loads(every.stdout)["modules"]
    assert entry["lazy_imports"] == "all"
    assert "decimal" in entry["pending_lazy"]
    assert entry["suggested_marker"].endswith('lazy_imports="all")')


@pytest.mark.skipif(sys.version_info >= (3, 15), reason="this interpreter has PEP 810")
@pytest.mark.slow
def test_lazy_imports_all_without_pep_810_is_one_usage_line(make_tree: MakeTree) -> None:
    tree = make_tree({"plainpkg/__init__.py": "import decimal\n"})
    completed = run_cli("plainpkg", "--path", str(tree), "--lazy-imports", "all")
    assert completed.returncode == 2
    (line,) = completed.stderr.splitlines()
    assert "lazy_imports='all' needs PEP 810's lazy imports (Python 3.15 or newer)" in line
    assert completed.stdout == ""


@pytest.mark.slow
def test_compare_with_a_revision_too_is_one_usage_line() -> None:
    completed = run_cli("json", "--lazy-imports", "compare", "--against", "HEAD")
    assert completed.returncode == 2
    assert completed.stderr.splitlines()[-1].endswith(
        "--lazy-imports compare and --against compare two different things"
    )
    assert completed.stdout == ""


@pytest.mark.skipif(sys.version_info < (3, 15), reason="PEP 810 lazy imports need CPython 3.15+")
@pytest.mark.slow
def test_startup_lazy_imports_all_runs_the_command_with_every_import_lazy(
    make_tree: MakeTree,
) -> None:
    tree = make_tree(PACKAGES)
    # Under "all" the snippet's own import is lazy too: eagerpkg.X reifies it.
    common = [
        "startup",
        "--code",
        "import eagerpkg; eagerpkg.X",
        "--path",
        str(tree),
        "--rounds",
        "1",
    ]
    every = run_cli(*common, "--warmup", "0", "--lazy-imports", "all", "--json")
    assert every.returncode == 0, every.stderr
    document = json.loads(every.stdout)
    assert document["lazy_imports"] == "all"
    assert "decimal" in document["pending_lazy"]
    assert document["suggested_marker"].endswith('lazy_imports="all")')
    text = run_cli(*common, "--warmup", "0").stdout
    # fractions is reified by the snippet's run (a snippet has no import phase).
    assert "  first use reified lazy imports (run phase): fractions (eagerpkg/__init__.py:3)" in (
        text.splitlines()
    )


@pytest.mark.skipif(sys.version_info >= (3, 15), reason="this interpreter has PEP 810")
@pytest.mark.slow
def test_startup_lazy_imports_all_without_pep_810_is_one_usage_line() -> None:
    completed = run_cli("startup", "--code", "import json", "--lazy-imports", "all")
    assert completed.returncode == 2
    (line,) = completed.stderr.strip().splitlines()
    assert "lazy_imports='all' needs PEP 810's lazy imports (Python 3.15 or newer)" in line
