"""PEP 810 in a pytest run: forbid and max_modules count what was executed, the run-wide mode.

Real rounds under CPython 3.15 (skipped elsewhere); the option's parser on every version.
"""

from __future__ import annotations

import json
import sys

import pytest

from conftest import quick_ini, run_tests, write_tree
from pytest_importcache.pytest.options import parse_lazy_imports

needs_pep_810 = pytest.mark.skipif(
    sys.version_info < (3, 15), reason="PEP 810 lazy imports need CPython 3.15+"
)

PACKAGES = {
    # decimal is never used (pending); fractions is used at import time (line 3).
    "lazypkg/__init__.py": (
        "lazy import decimal\nlazy import fractions\nHALF = fractions.Fraction(1, 2)\n"
    ),
    # An eager import nothing uses: under -X lazy_imports=all it is never executed.
    "eagerpkg/__init__.py": "import decimal\n",
}


@pytest.mark.parametrize(("text", "mode"), [("all", "all"), (" normal ", "normal"), ("", None)])
def test_the_lazy_imports_setting_is_normal_or_all(text: str, mode: str | None) -> None:
    assert parse_lazy_imports(text) == mode


@pytest.mark.parametrize("text", ["none", "ALL", "lazy"])
def test_any_other_lazy_imports_mode_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^expected one of normal, all, got "):
        parse_lazy_imports(text)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    write_tree(pytester.path, PACKAGES)
    pytester.makeini(quick_ini(rounds=1))
    return pytester


@needs_pep_810
@pytest.mark.slow
def test_forbid_and_max_modules_count_only_executed_lazy_imports(
    project: pytest.Pytester,
) -> None:
    result = run_tests(
        project,
        """
        import pytest

        @pytest.mark.import_budget("lazypkg", warm="10s", forbid=["decimal"], max_modules=40)
        def test_unused_lazy_import_is_not_loaded():
            pass

        @pytest.mark.import_budget("lazypkg", forbid=["fractions"])
        def test_used_lazy_import_is_loaded():
            pass
        """,
        "--benchmark-json=out.json",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "import budget exceeded: lazypkg loaded forbidden modules:",
            "    fractions: lazypkg -> fractions",
            "  lazy imports pending (not executed, not counted): *decimal*",
            "  lazypkg/__init__.py:3 reified lazy import fractions during the import",
        ]
    )
    result.stdout.fnmatch_lines(
        ["lazypkg: lazypkg/__init__.py:3 reified lazy import fractions during the import"]
    )
    saved = json.loads((project.path / "out.json").read_text())
    info = saved["benchmarks"][0]["extra_info"]
    assert "decimal" in info["pending_lazy"]
    assert info["reified"] == [{"module": "fractions", "where": "lazypkg/__init__.py:3"}]


@needs_pep_810
@pytest.mark.slow
def test_the_run_wide_lazy_imports_all_defers_unused_imports(project: pytest.Pytester) -> None:
    source = """
        import pytest

        @pytest.mark.import_budget("eagerpkg", forbid=["decimal"])
        def test_eagerpkg_without_decimal():
            pass
        """
    run_tests(project, source).assert_outcomes(failed=1)
    every = run_tests(project, source, "--importcache-lazy-imports", "all")
    every.assert_outcomes(passed=1)
    every.stdout.fnmatch_lines(["eagerpkg: lazy imports pending (not executed, not counted): *"])


@pytest.mark.skipif(sys.version_info >= (3, 15), reason="this interpreter has PEP 810")
@pytest.mark.parametrize(
    ("arguments", "source"),
    [
        (("--importcache-lazy-imports=all",), "--importcache-lazy-imports on the command line"),
        (
            ("-o", "importcache_lazy_imports=all"),
            "-o importcache_lazy_imports=all on the command line",
        ),
    ],
)
def test_the_run_wide_lazy_imports_all_without_pep_810_is_one_usage_error(
    project: pytest.Pytester, arguments: tuple[str, ...], source: str
) -> None:
    # Not a failure per test: the run cannot do what it was asked, whichever test runs.
    project.makepyfile(
        test_lazy="""
        import pytest

        @pytest.mark.import_budget("eagerpkg", max_modules=100)
        def test_eagerpkg():
            pass

        @pytest.mark.import_budget("lazypkg", max_modules=100)
        def test_lazypkg():
            pass
        """
    )
    result = project.runpytest(*arguments)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    version = ".".join(map(str, sys.version_info[:3]))
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert errors == [
        f"ERROR: {source}: lazy_imports='all' needs PEP 810's lazy imports (Python 3.15 or "
        f"newer); this interpreter ({sys.executable}) is Python {version}"
    ]
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@needs_pep_810
@pytest.mark.slow
def test_a_first_use_start_up_loads_what_the_import_left_pending(
    pytester: pytest.Pytester,
) -> None:
    write_tree(
        pytester.path,
        {
            # decimal is deferred by the import and reified by use() (line 4).
            "firstuse/__init__.py": "lazy import decimal\n\n\ndef use():\n"
            "    return decimal.Decimal(1)\n",
            "eagerpkg/__init__.py": "import decimal\nX = 1\n",
        },
    )
    pytester.makeini(quick_ini(rounds=1))
    result = run_tests(
        pytester,
        """
        import pytest

        @pytest.mark.import_budget("firstuse", forbid=["decimal"])
        def test_the_import_defers_decimal():
            pass

        @pytest.mark.startup_budget(
            code="import firstuse; firstuse.use()", warm="10s", forbid=["decimal"]
        )
        def test_the_first_use_loads_it():
            pass

        # Under "all" the snippet's own import is lazy too: eagerpkg.X reifies it.
        @pytest.mark.startup_budget(
            code="import eagerpkg; eagerpkg.X", warm="10s", lazy_imports="all", forbid=["decimal"]
        )
        def test_every_import_lazy_defers_it_past_the_exit():
            pass
        """,
        "--benchmark-json=out.json",
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_the_first_use_loads_it*",
            "*forbidden modules:*",
            "*decimal*",
            "  first use reified lazy imports (run phase): decimal (firstuse/__init__.py:5)",
        ]
    )
    assert "reified lazy import decimal during the import" not in result.stdout.str()
    saved = json.loads((pytester.path / "out.json").read_text())
    infos = {
        bench["extra_info"].get("command"): bench["extra_info"] for bench in saved["benchmarks"]
    }
    first_use = infos["code: import firstuse; firstuse.use()"]
    assert first_use["reified"] == []
    assert first_use["reified_in_run"] == [{"module": "decimal", "where": "firstuse/__init__.py:5"}]
    assert "decimal" in infos["code: import eagerpkg; eagerpkg.X"]["pending_lazy"]
