"""The run's shared directory: one per pytest run, the same in the controller and every worker.

It holds what processes of one run share: the cross-process measurement lock
and the reference import measured for ``budget_scale = auto``. The process
that starts the run (the only process without xdist, the controller with it)
creates it and removes it when the run ends; pytest-xdist workers receive its
path in their ``workerinput`` (see :mod:`pytest_importcache.pytest.xdist`). Package
copies are kept in the persistent, bounded cache instead, so runs reuse them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

__all__ = ["WORKERINPUT_KEY", "RunPaths"]

WORKERINPUT_KEY = "importcache_run_dir"


class RunPaths:
    """Where this run's processes meet: the run directory and the files in it."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    @classmethod
    def from_config(cls, config: pytest.Config) -> RunPaths:
        """The run's paths: a worker's come from its controller, others are made here."""
        workerinput = getattr(config, "workerinput", None)
        if isinstance(workerinput, dict) and WORKERINPUT_KEY in workerinput:
            return cls(Path(workerinput[WORKERINPUT_KEY]))
        run_dir = Path(tempfile.mkdtemp(prefix="pytest-importcache-run-"))
        config.add_cleanup(lambda: shutil.rmtree(run_dir, ignore_errors=True))
        return cls(run_dir)

    @property
    def measurement_lock(self) -> Path:
        """The lock held while any process of the run times an import."""
        return self.run_dir / "measure.lock"

    @property
    def reference_file(self) -> Path:
        """This machine's reference measurement, for ``budget_scale = auto``."""
        return self.run_dir / "calibration.json"
