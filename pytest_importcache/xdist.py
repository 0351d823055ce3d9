"""What pytest-importcache needs to know about pytest-xdist, in one place.

Measurements reach the xdist controller as an attribute of each test report
(xdist serialises a report's extra attributes), the same path a run without
xdist takes, so no xdist hook is needed: only the answers below.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["is_worker", "shared_temp_root"]


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker.

    xdist gives a worker's config a ``workerinput`` attribute. Unlike the
    ``PYTEST_XDIST_WORKER`` variable, this is not inherited by pytest runs a
    worker starts itself (pytester tests, nested sessions).
    """
    return hasattr(config, "workerinput")


def shared_temp_root(config: pytest.Config, basetemp: Path) -> Path:
    """The run's temporary directory, shared by the controller and every worker.

    A worker's ``basetemp`` is ``<run>/popen-gwN``; the run's is ``<run>``.
    """
    return basetemp.parent if is_worker(config) else basetemp
