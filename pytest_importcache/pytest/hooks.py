"""The hook pytest-importcache adds to pytest: where a test suite plugs in its own rounds.

Registered by the plugin (``pytest_addhooks``); a ``conftest.py`` or a plugin
implements it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_importcache.engine.measurer import RoundRunner


@pytest.hookspec(firstresult=True)
def pytest_importcache_round_runner(config: pytest.Config) -> RoundRunner | None:
    """The function that runs every measurement round of this run, or ``None`` for the real one.

    A test suite returns one to feed fixed rounds (no interpreter starts), so
    budgets, reports and storage are tested without real measurements. It is
    called with the arguments of
    :func:`pytest_importcache.engine.runner.run_round` and returns a
    :class:`~pytest_importcache.model.records.RoundReport`. Asked once per
    process, at the first measurement; the first answer that is not ``None`` wins.
    """
