"""A same-run comparison: the working tree's import against a git revision's, interleaved.

:func:`measure_against` locates the package, extracts the repository at the
revision (:mod:`pytest_importcache.engine.revision`), measures both sides with
:meth:`~pytest_importcache.engine.measurer.Measurer.measure_pair` (rounds A B A B
under one measurement lock) and summarises the ratio head/base with its
bootstrap interval (:mod:`pytest_importcache.model.interval`). The command line's
``--against`` and the plugin's ``--importcache-baseline`` both use it.
"""

from __future__ import annotations

from pathlib import Path

from pytest_importcache.model.comparison import Comparison
from pytest_importcache.model.interval import ratio_interval
from pytest_importcache.model.spec import MeasurementSpec

from .cache import default_cache_dir
from .locate import locate_package
from .measurer import Measurer, resolve_python
from .revision import revision_side

__all__ = ["measure_against"]


def measure_against(
    measurer: Measurer, spec: MeasurementSpec, revision: str, project: Path | None = None
) -> Comparison:
    """Measure ``spec`` in the working tree and at git ``revision``, interleaved.

    The base side is the whole repository at ``revision``: its copy of the
    package, and every entry of the import path inside the repository, come
    from the revision's tree (:func:`~pytest_importcache.engine.revision.revision_side`).
    ``revision`` is named in ``project``'s repository (pytest's rootdir; by
    default the current directory) when the package is in it or in one of its
    submodules, else in the package's own repository.

    Raises :class:`~pytest_importcache.model.errors.RevisionError` (one line) when the
    revision cannot be used, and whatever :meth:`Measurer.measure` raises.
    """
    __tracebackhide__ = True
    python = resolve_python(spec.python)
    location = locate_package(spec.module, measurer.search_path, python=python)
    cache_dir = measurer.cache_dir or default_cache_dir()
    head_path = measurer.import_path_for(spec)
    side = revision_side(location, head_path, revision, cache_dir, project or Path.cwd())
    resolved = side.revision
    # Siblings from the repository compile in every round on both sides: the
    # revision's tree has no bytecode, and the working tree's must not favour the head.
    head, base = measurer.measure_pair(
        spec.replace(import_path=head_path),
        side.location,
        f"at {resolved.name} ({resolved.short})",
        side.import_path,
        source_only=(
            tuple(head for head, _ in side.mapped),
            tuple(base for _, base in side.mapped),
        ),
    )
    interval = ratio_interval(head.values, base.values)
    return Comparison(resolved, head, base, interval, side.served)
