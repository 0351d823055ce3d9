"""The run's shared directory: one per pytest run, the same in the controller and every worker.

It holds what processes of one run share: the cross-process measurement lock
and the reference import measured for ``budget_scale = auto``. The process
that starts the run (the only process without xdist, the controller with it)
chooses its path and removes it when the run ends; pytest-xdist workers
receive the path in their ``workerinput`` (see
:mod:`pytest_importcache.pytest.xdist`). The directory itself is made by the
first process that needs a file in it, so a session that measures nothing
leaves none behind, even for a moment. Package copies are kept in the
persistent, bounded cache instead, so runs reuse them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

__all__ = ["RUN_DIR_PREFIX", "WORKERINPUT_KEY", "RunPaths"]

WORKERINPUT_KEY = "importcache_run_dir"
RUN_DIR_PREFIX = "pytest-importcache-run-"


class RunPaths:
    """Where this run's processes meet: the run directory and the files in it."""

    def __init__(self, run_dir: Path) -> None:
        self._run_dir = run_dir

    @classmethod
    def from_config(cls, config: pytest.Config) -> RunPaths:
        """The run's paths: a worker's come from its controller, others are chosen here."""
        workerinput = getattr(config, "workerinput", None)
        if isinstance(workerinput, dict) and WORKERINPUT_KEY in workerinput:
            return cls(Path(workerinput[WORKERINPUT_KEY]))
        # A name nobody can guess, as mkdtemp's, but the directory is made when first used.
        run_dir = Path(tempfile.gettempdir()) / f"{RUN_DIR_PREFIX}{secrets.token_hex(8)}"
        config.add_cleanup(lambda: shutil.rmtree(run_dir, ignore_errors=True))
        return cls(run_dir)

    @property
    def chosen_dir(self) -> Path:
        """The run directory's path, made or not (what workers are handed)."""
        return self._run_dir

    @property
    def run_dir(self) -> Path:
        """The run directory, made now if no process of the run has made it yet."""
        # Private to the user, as mkdtemp makes it; another process may have made it.
        with contextlib.suppress(FileExistsError):
            os.mkdir(self._run_dir, 0o700)
        return self._run_dir

    @property
    def measurement_lock(self) -> Path:
        """The lock held while any process of the run times an import."""
        return self.run_dir / "measure.lock"

    @property
    def reference_file(self) -> Path:
        """This machine's reference measurement, for ``budget_scale = auto``."""
        return self.run_dir / "calibration.json"
