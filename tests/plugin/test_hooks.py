"""The round runner hook: a conftest feeds fixed rounds, as the README shows."""

from __future__ import annotations

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
