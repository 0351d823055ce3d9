"""``ImportEnv``: the public handle on an import environment, cold or warm.

``ImportEnv("cold").measure("mylib")`` is the engine's front door, and what
the ``cold_import_env``/``warm_import_env``/``import_env_factory`` fixtures
return. It holds the settings of one kind of environment and builds a
:class:`~pytest_importcache.model.spec.MeasurementSpec` per module, which a
:class:`~pytest_importcache.engine.measurer.Measurer` measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytest_importcache.model.result import ImportResult
from pytest_importcache.model.spec import (
    DEFAULT_METRIC,
    DEFAULT_TIMEOUT,
    Flavour,
    InvalidationMode,
    LazyImportsMode,
    MeasurementSpec,
    Metric,
    default_rounds,
    default_warmup,
)

from .copying import PackageCopy
from .measurer import Measurer, resolve_python

__all__ = ["ImportEnv", "InvalidationMode"]

# Stands for the module in the settings-only spec an environment keeps.
_ANY_MODULE = "module"


class ImportEnv:
    """An import environment: how to copy packages, and how to time their import.

    ``flavour`` is ``"cold"`` (no bytecode at the start of every round) or
    ``"warm"`` (bytecode compiled up front). ``closure=True`` (cold only) makes
    every module the import reaches compile, not only the package under test.
    ``python`` defaults to the running interpreter; ``optimize`` (0, 1, 2) is
    passed as ``-O``/``-OO`` to both the compilation and the rounds. ``metric``
    is ``"time"`` (seconds) or ``"instructions"`` (counted under valgrind's
    callgrind); ``rounds`` and ``warmup`` default to the metric's (10 and 1
    timed, 1 and 0 counted). Copies are
    cached under ``cache_dir`` (default: the per-user cache); ``search_path``
    (default ``sys.path``) is where packages are located, and what the rounds
    search after the copy (sibling packages). ``measurer`` replaces
    both with a configured :class:`~pytest_importcache.engine.measurer.Measurer`
    (the pytest plugin passes one with its lock and observers).
    ``lazy_imports="all"`` runs the rounds under ``-X lazy_imports=all``
    (PEP 810, CPython 3.15+).
    """

    def __init__(
        self,
        flavour: Flavour = "warm",
        *,
        python: str | None = None,
        optimize: int = 0,
        invalidation_mode: InvalidationMode = "timestamp",
        closure: bool = False,
        rounds: int | None = None,
        warmup: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        metric: Metric = DEFAULT_METRIC,
        cache_dir: Path | str | None = None,
        search_path: Sequence[str] | None = None,
        measurer: Measurer | None = None,
        lazy_imports: LazyImportsMode | None = None,
    ) -> None:
        __tracebackhide__ = True
        self.settings = MeasurementSpec(
            _ANY_MODULE,
            flavour=flavour,
            closure=closure,
            python=resolve_python(python),
            optimize=optimize,
            invalidation_mode=invalidation_mode,
            rounds=default_rounds(metric) if rounds is None else rounds,
            warmup=default_warmup(metric) if warmup is None else warmup,
            timeout=timeout,
            metric=metric,
            lazy_imports=lazy_imports,
        )
        self.measurer = measurer or Measurer(cache_dir=cache_dir, search_path=search_path)

    @property
    def flavour(self) -> Flavour:
        """``"cold"`` or ``"warm"``."""
        return self.settings.flavour

    @property
    def closure(self) -> bool:
        """Whether every module the import reaches compiles (closure-cold)."""
        return self.settings.closure

    @property
    def python(self) -> str:
        """The interpreter that runs the rounds."""
        assert self.settings.python is not None  # resolved in __init__
        return self.settings.python

    @property
    def metric(self) -> Metric:
        """What a round measures: ``"time"`` or ``"instructions"``."""
        return self.settings.metric

    @property
    def rounds(self) -> int:
        """Counted rounds per measurement, unless ``measure`` is given others."""
        return self.settings.rounds

    @property
    def warmup(self) -> int:
        """Uncounted rounds before the counted ones."""
        return self.settings.warmup

    @property
    def path(self) -> Path:
        """The directory holding this environment's package copies (not created here)."""
        return self.measurer.environment_dir(self.settings)

    def __repr__(self) -> str:
        closure = ", closure=True" if self.closure else ""
        metric = f", metric={self.metric!r}" if self.metric != DEFAULT_METRIC else ""
        return f"ImportEnv({self.flavour!r}, python={self.python!r}{closure}{metric})"

    def spec_for(self, module: str, rounds: int | None = None) -> MeasurementSpec:
        """The measurement of ``module`` in this environment (``rounds`` counted rounds)."""
        __tracebackhide__ = True
        return self.settings.replace(
            module=module, rounds=self.settings.rounds if rounds is None else rounds
        )

    def copy_for(self, module: str) -> PackageCopy:
        """Locate the package of ``module`` and build (or reuse) its copy."""
        __tracebackhide__ = True
        return self.measurer.copy_for(self.spec_for(module))

    def measure(self, module: str, rounds: int | None = None) -> ImportResult:
        """Import ``module`` in ``warmup`` + ``rounds`` fresh interpreters and summarise.

        Raises a subclass of :class:`~pytest_importcache.ImportCacheError` when the
        module is not a valid name or cannot be found, raises on import, hangs or
        crashes; ``ValueError`` for a number of rounds below 1.
        """
        __tracebackhide__ = True
        return self.measurer.measure(self.spec_for(module, rounds))
