"""What pytest-importcache needs from pytest-xdist, in one place.

Measurements reach the xdist controller as an attribute of each test report
(xdist serialises a report's extra attributes), the same path a run without
xdist takes. The one xdist hook is here: the controller hands its run
directory to every worker it starts. The class is registered only when
pytest-xdist is installed, since pytest refuses hooks it does not know.
"""

from __future__ import annotations

from typing import Any

from .runpaths import WORKERINPUT_KEY, RunPaths

__all__ = ["RunDirectoryForWorkers"]


class RunDirectoryForWorkers:
    """Gives each xdist worker the controller's run directory."""

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths

    def pytest_configure_node(self, node: Any) -> None:
        """Put the run directory's path into the worker's ``workerinput`` (made when first used)."""
        node.workerinput[WORKERINPUT_KEY] = str(self.paths.chosen_dir)
