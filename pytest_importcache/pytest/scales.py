"""The factor time budgets are scaled by in a run (``importcache_budget_scale``).

A number applies as it is; ``auto`` measures a reference import once per run
(the first process to need it measures, the others read its result from the
run directory) and compares it with the recorded calibration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from filelock import FileLock

from pytest_importcache.engine.cache import default_cache_dir
from pytest_importcache.engine.reference import measure_reference
from pytest_importcache.model.calibration import Calibration
from pytest_importcache.model.errors import ImportCacheError

from .options import Settings
from .runpaths import RunPaths

__all__ = ["BudgetScales"]


class BudgetScales:
    """The factor for cold and for warm time budgets in this run, found once."""

    def __init__(
        self, settings: Settings, paths: RunPaths, measurement_lock: Callable[[], Any]
    ) -> None:
        self.settings = settings
        self.paths = paths
        self.measurement_lock = measurement_lock
        self._scales: dict[str, float] | None = None

    def get(self) -> dict[str, float]:
        """The factors by flavour; with ``auto``, the reference import is measured once per run."""
        if self._scales is not None:
            return self._scales
        scale = self.settings.budget_scale
        if scale != "auto":
            self._scales = {"cold": scale, "warm": scale}
            return self._scales
        recorded = self.settings.calibration
        assert recorded is not None  # read_settings refuses auto without a calibration
        cached = self.paths.reference_file
        with FileLock(f"{cached}.lock"):
            if cached.exists():
                here = Calibration.read(cached)
            else:
                with self.measurement_lock():
                    here = measure_reference(
                        default_cache_dir(),
                        rounds=self.settings.rounds_for("time"),
                        warmup=self.settings.warmup_for("time"),
                    )
                here.write(cached)
        self._scales = here.scales(recorded)
        return self._scales

    def get_or_fail(self) -> dict[str, float]:
        """:meth:`get`, failing the test when the reference cannot be measured."""
        try:
            return self.get()
        except ImportCacheError as exc:
            problem = f"measuring the reference import for budget scale 'auto' failed: {exc}"
        pytest.fail(problem, pytrace=False)
