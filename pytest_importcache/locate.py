"""Find the files of the package under test without importing any of it.

Only the top-level name of a dotted module is looked up, with
``importlib.machinery.PathFinder`` on a list of path entries: that stats
directories and files but executes nothing, so the user's tree is neither
imported nor written to (no ``__pycache__`` appears).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Literal

from .errors import LocateError

__all__ = [
    "LocateError",
    "PackageLocation",
    "check_module_name",
    "locate_package",
    "top_level_name",
]

PackageKind = Literal["package", "module", "namespace"]


@dataclass(frozen=True)
class PackageLocation:
    """Where the top-level package (or module) of a measured module lives.

    ``portions`` are the directories (for a package or every portion of a
    namespace package) or the single file (for a one-file module or an
    extension module) that make up the top-level name.
    """

    top_level: str
    kind: PackageKind
    portions: tuple[Path, ...]


def top_level_name(module: str) -> str:
    """The first component of a dotted module name."""
    return module.partition(".")[0]


def check_module_name(module: object) -> None:
    """Raise :class:`LocateError` unless ``module`` is a dotted name of identifiers."""
    __tracebackhide__ = True
    if not isinstance(module, str) or not all(part.isidentifier() for part in module.split(".")):
        raise LocateError(f"{module!r} is not a valid dotted module name")


def locate_package(module: str, search_path: Sequence[str] | None = None) -> PackageLocation:
    """Locate the top-level package of ``module`` on ``search_path`` (default ``sys.path``).

    The empty entry and ``"."`` stand for the current directory, as in ``sys.path``.
    Raises :class:`LocateError` naming the module and the entries searched, on one line.
    """
    __tracebackhide__ = True
    check_module_name(module)
    top = top_level_name(module)
    # dict.fromkeys: the same directory twice (e.g. "" and the cwd) is searched once.
    entries = list(
        dict.fromkeys(os.path.abspath(entry or os.curdir) for entry in (search_path or sys.path))
    )
    if top in sys.builtin_module_names:
        raise LocateError(
            f"{top!r} is built into the interpreter: it has no files to copy and no import to time"
        )
    spec = PathFinder.find_spec(top, entries)
    if spec is None:
        needed_for = f" (needed for {module!r})" if module != top else ""
        raise LocateError(
            f"cannot find module {top!r}{needed_for} in the {len(entries)} path entries "
            f"searched: {', '.join(entries) or '(none)'}"
        )
    if spec.origin is None or spec.origin == "namespace":
        portions = tuple(Path(location) for location in spec.submodule_search_locations or ())
        return PackageLocation(top, "namespace", portions)
    origin = Path(spec.origin)
    if not origin.is_file():
        raise LocateError(
            f"module {top!r} was found at {origin}, which is not a file on disk "
            "(a zip archive or a custom finder): only file-system packages can be copied"
        )
    if spec.submodule_search_locations is not None:
        return PackageLocation(top, "package", (origin.parent,))
    return PackageLocation(top, "module", (origin,))
