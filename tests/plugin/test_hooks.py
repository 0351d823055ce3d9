"""The round runner hook: a conftest feeds fixed rounds, as the README shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import quick_ini

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_conftest() -> str:
    """The README's example conftest for fixed rounds."""
    blocks = re.findall(r"```python\n(# conftest\.py\n.*?)```", README.read_text(), re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


@pytest.mark.slow
def test_the_readmes_conftest_feeds_every_round(pytester: pytest.Pytester) -> None:
    pytester.makeini(quick_ini())
    pytester.makeconftest(readme_conftest())
    pytester.makepyfile(mylib="")
    pytester.makepyfile(
        test_budgets="""
        import pytest

        @pytest.mark.import_budget("mylib", warm="100ms")
        def test_within():
            pass

        @pytest.mark.import_budget("mylib", cold="10ms")
        def test_over():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    # Every round "takes" 30 ms: no interpreter decides.
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines(
        [r"mylib +warm +30ms +100ms .* PASS", r"mylib +cold +30ms +10ms .* FAIL"]
    )


def test_an_optional_hook_is_harmless_with_the_plugin_off(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(optionalhook=True)
        def pytest_importcache_round_runner(config):
            raise AssertionError("never asked")
        """
    )
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.runpytest("-p", "no:importcache", "-p", "no:randomly").assert_outcomes(passed=1)


@pytest.mark.slow
def test_the_readmes_conftest_keeps_a_start_up_budgets_identity(pytester: pytest.Pytester) -> None:
    pytester.makeini(quick_ini())
    pytester.makeconftest(readme_conftest())
    pytester.makepyfile(mylib="")
    pytester.makepyfile(
        test_startup="""
        import pytest

        @pytest.mark.startup_budget(["python", "-m", "mylib", "--help"], warm="10ms")
        def test_s():
            pass

        @pytest.mark.startup_budget(["python", "-m", "mylib"], max_memory="1kB")
        def test_m():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--benchmark-json=out.json")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "start-up budget exceeded: python -m mylib --help (warm)",
            "*start-up budget exceeded: python -m mylib (warm): peak memory 20MB > max_memory=1kB",
        ]
    )
    result.stdout.no_fnmatch_line("*import budget exceeded*")
    stored = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert [(entry["name"], entry["group"]) for entry in stored] == [
        ("test_s[python_-m_mylib_--help-warm]", "startup python -m mylib --help")
    ]


@pytest.mark.slow
def test_a_round_runner_without_peaks_says_so(pytester: pytest.Pytester) -> None:
    pytester.makeini(quick_ini())
    # A round runner written before peak memory was reported.
    without_peaks = re.sub(r"\n *peak_memory=.*", "", readme_conftest())
    assert "peak_memory" not in without_peaks
    pytester.makeconftest(without_peaks)
    pytester.makepyfile(mylib="")
    pytester.makepyfile(
        test_runner_without_peaks="""
        import pytest

        @pytest.mark.import_budget("mylib", max_memory="60MB")
        def test_m():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*peak memory was not measured: the round runner reported none*"])
    result.stdout.no_fnmatch_line("*needs timed rounds*")
