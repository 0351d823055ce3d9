"""A same-run comparison: the working tree's import against a git revision's, interleaved.

:func:`measure_against` locates the package, extracts the repository at the
revision (:mod:`pytest_importcache.engine.revision`), measures both sides with
:meth:`~pytest_importcache.engine.measurer.Measurer.measure_pair` (rounds A B A B
under one measurement lock) and summarises the ratio head/base with its
bootstrap interval (:mod:`pytest_importcache.model.interval`). The command line's
``--against`` and the plugin's ``--importcache-baseline`` both use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from pytest_importcache.model.comparison import Comparison
from pytest_importcache.model.interval import ratio_interval
from pytest_importcache.model.spec import MeasurementSpec

from .cache import default_cache_dir
from .gittree import inside
from .locate import locate_package
from .measurer import Measurer, resolve_python
from .revision import revision_side

__all__ = ["head_alias", "measure_against"]


def _link_beside(tree: Path, target: str) -> Path | None:
    """A symbolic link to ``target`` beside ``tree``, named as long; ``None`` if none can be made.

    A "." in its name: the revisions' pruning and clearing leave it alone (never follow it).
    """
    digest = hashlib.sha256(os.fsencode(target)).hexdigest()
    link = tree.with_name(f"head.{digest}".ljust(len(tree.name), "_")[: len(tree.name)])
    with contextlib.suppress(OSError):
        if os.readlink(link) == target:
            return link
    staging = link.with_name(f"{link.name}.{secrets.token_hex(4)}")
    try:
        os.symlink(target, staging, target_is_directory=True)
        os.replace(staging, link)  # atomic: another worker may be making the same link
    except OSError:
        with contextlib.suppress(OSError):
            staging.unlink()
        return None
    return link


def head_alias(repository: Path, mapped: Sequence[tuple[str, str]]) -> dict[str, str] | None:
    """The head's entries of ``mapped`` (head, base) pairs, renamed as long as the base's.

    The revision's tree lies under the cache directory, at a path longer or
    shorter than the working tree's, and a counted import pays for the lengths
    of the paths it handles (and for where the interpreter's allocator puts
    them): 0.02-0.03% of an import whose siblings' directory is on the path.
    So the head reads the working tree through a symbolic link beside the
    tree, whose path is exactly as long as the tree's: ``{head: link/relative}``.
    ``None`` when there is nothing to rename, no link can be made, or the
    cache lies inside the repository (pytest would collect the tree through
    the link, again and again): the head's own paths are then used.
    """
    relatives = [inside(Path(head), repository) for head, _ in mapped]
    if not mapped or None in relatives:
        return None
    base, relative = mapped[0][1], relatives[0]
    tree = Path(base) if relative == "." else Path(base[: len(base) - len(f"/{relative}")])
    pairs = list(zip(mapped, relatives, strict=True))
    if any(str(tree / str(relative)) != base for (_, base), relative in pairs):
        return None  # not the tree's directories: left as they are
    target = os.path.realpath(repository)
    if Path(os.path.realpath(tree)).is_relative_to(target):
        return None  # the cache inside the repository: a link there would loop back into it
    link = _link_beside(tree, target)
    if link is None:
        return None
    renamed = {head: str(link / str(relative)) for (head, _), relative in pairs}
    if any(len(renamed[head]) != len(base) for head, base in mapped):
        return None
    return renamed


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
    head_sources = tuple(head for head, _ in side.mapped)
    # Counted rounds only: timed rounds are far noisier than the paths' lengths.
    renamed = None
    if spec.metric == "instructions":
        renamed = head_alias(resolved.repository, side.mapped)
    if renamed is not None:
        head_path = tuple(renamed.get(entry, entry) for entry in head_path)
        head_sources = tuple(renamed[head] for head in head_sources)
    # Siblings from the repository compile in every round on both sides: the
    # revision's tree has no bytecode, and the working tree's must not favour the head.
    head, base = measurer.measure_pair(
        spec.replace(import_path=head_path),
        side.location,
        f"at {resolved.name} ({resolved.short})",
        side.import_path,
        source_only=(head_sources, tuple(base for _, base in side.mapped)),
    )
    interval = ratio_interval(head.values, base.values)
    return Comparison(resolved, head, base, interval, side.served)
