"""PEP 810 lazy imports measured: pending ones apart, reified ones located, ``-X lazy_imports=all``.

The measurements need CPython 3.15 (``lazy import`` is a syntax error before
it) and skip elsewhere; the command lines and the refusal of
``lazy_imports="all"`` without PEP 810 are checked on every version.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import MakeTree
from pytest_importcache import ImportEnv, ImportResult
from pytest_importcache.engine.roundcommand import (
    check_lazy_imports,
    child_command,
    counted_round_command,
)
from pytest_importcache.model.errors import InterpreterError
from pytest_importcache.model.spec import LazyImportsMode

PEP_810 = sys.version_info >= (3, 15)
needs_pep_810 = pytest.mark.skipif(
    not PEP_810, reason="PEP 810 lazy imports (lazy import, -X lazy_imports) need CPython 3.15+"
)

MODES: tuple[LazyImportsMode | None, ...] = ("all", "normal", None)

LAZY_PACKAGE = {
    # decimal is never used: it stays pending. fractions is used at import
    # time (line 3), so its lazy import is reified during the import itself.
    "lazypkg/__init__.py": (
        "lazy import decimal\nlazy import fractions\nHALF = fractions.Fraction(1, 2)\n"
    ),
    # A plain import that nothing uses: -X lazy_imports=all defers it.
    "eagerpkg/__init__.py": "import decimal\nimport json\nVALUE = json.dumps(1)\n",
}


def measure(tree: Path, module: str, **options: object) -> ImportResult:
    env = ImportEnv(
        "warm",
        rounds=1,
        warmup=0,
        cache_dir=tree.parent / "cache",
        search_path=[str(tree), *sys.path],
        **options,  # type: ignore[arg-type]
    )
    return env.measure(module)


def test_lazy_imports_all_runs_the_round_under_x_lazy_imports_all(tmp_path: Path) -> None:
    def flags(lazy_imports: LazyImportsMode | None) -> list[str]:
        argv = child_command(
            "python3.15", "m", [tmp_path], tmp_path / "report", lazy_imports=lazy_imports
        )
        return argv[: argv.index(next(word for word in argv if word.endswith("main.py")))]

    assert flags("all")[-2:] == ["-X", "lazy_imports=all"]
    # normal is what a round does anyway: the same command, the same stored count.
    assert flags("normal") == flags(None)
    assert "lazy_imports=all" not in " ".join(flags(None))
    counted = {
        mode: counted_round_command(
            "valgrind",
            "python3.15",
            "m",
            [tmp_path],
            tmp_path,
            optimize=0,
            pycache_prefix=None,
            module_costs=True,
            import_path=(),
            source_only=(),
            lazy_imports=mode,
        )
        for mode in MODES
    }
    assert counted["all"] != counted["normal"] == counted[None]


@pytest.mark.skipif(PEP_810, reason="this interpreter has PEP 810")
def test_lazy_imports_all_without_pep_810_is_one_line() -> None:
    check_lazy_imports(sys.executable, "normal")
    check_lazy_imports(sys.executable, None)
    with pytest.raises(InterpreterError) as raised:
        check_lazy_imports(sys.executable, "all")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("lazy_imports='all' needs PEP 810's lazy imports (Python 3.15")
    assert message.endswith(f"is Python {'.'.join(map(str, sys.version_info[:3]))}")


@needs_pep_810
@pytest.mark.slow
def test_pending_lazy_imports_are_reported_apart_and_reified_ones_with_their_line(
    make_tree: MakeTree,
) -> None:
    result = measure(make_tree(LAZY_PACKAGE), "lazypkg")
    assert "decimal" in result.pending_lazy
    assert "decimal" not in result.modules
    assert "fractions" in result.modules
    assert "fractions" not in result.pending_lazy
    assert result.reified == (("fractions", "lazypkg/__init__.py:3"),)


@needs_pep_810
@pytest.mark.slow
def test_lazy_imports_all_defers_what_the_import_does_not_use(make_tree: MakeTree) -> None:
    tree = make_tree(LAZY_PACKAGE)
    normal = measure(tree, "eagerpkg")
    every = measure(tree, "eagerpkg", lazy_imports="all")
    assert "decimal" in normal.modules
    # The standard library's own lazy imports (copy, heapq...) may be pending: not decimal.
    assert "decimal" not in normal.pending_lazy
    assert "decimal" not in every.modules
    assert "decimal" in every.pending_lazy
    # json is used at import time: under "all" its lazy import is reified there.
    assert "json" in every.modules
    assert ("json", "eagerpkg/__init__.py:3") in every.reified
    assert len(every.modules) < len(normal.modules)
