"""Find the files of the package under test the way the import would, importing none of it.

Only the top-level name of a dotted module is looked up. For the running
interpreter, a package the process has already imported is taken from its
loaded spec (exactly what the test's own import gave); otherwise every
meta-path finder is asked in order, as the import system asks them, so
packages that only an editable install's finder knows are found. Finders find
but do not execute, so the user's tree is neither imported nor written to.

For another interpreter, that interpreter is asked (see
:mod:`pytest_importcache.engine.interpreter`): its standard library and
site-packages, plus this process's project entries (``sys.path`` entries
outside this interpreter's installation: the source tree, pytest's
``pythonpath``). A project package that only this process can find (an
editable install's finder here) is taken from here; another installation's
files never are.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Literal

from pytest_importcache.model.errors import LocateError
from pytest_importcache.model.spec import check_module_name

from .interpreter import installation_dirs, is_running_interpreter, probe_spec

__all__ = [
    "ImportLocationWarning",
    "LocateError",
    "PackageLocation",
    "locate_package",
    "top_level_name",
    "warn_if_imported_elsewhere",
]

PackageKind = Literal["package", "module", "namespace"]


@dataclass(frozen=True)
class PackageLocation:
    """Where the top-level package (or module) of a measured module lives.

    ``portions`` are the directories (for a package or every portion of a
    namespace package) or the single file (for a one-file module or an
    extension module) that make up the top-level name. ``mapped`` are a
    package's files that an import hook serves from another place
    (meson-python's editable loader), each with its path inside the package.
    """

    top_level: str
    kind: PackageKind
    portions: tuple[Path, ...]
    # Files an import hook serves from elsewhere: (path inside the package, file).
    mapped: tuple[tuple[Path, Path], ...] = ()


def top_level_name(module: str) -> str:
    """The first component of a dotted module name."""
    return module.partition(".")[0]


def _search_entries(search_path: Sequence[str]) -> list[str]:
    """Absolute, de-duplicated path entries; ``""`` and ``"."`` stand for the current directory."""
    return list(dict.fromkeys(os.path.abspath(entry or os.curdir) for entry in search_path))


def _is_namespace(spec: ModuleSpec) -> bool:
    """Whether ``spec`` is a namespace package: directories only, no file."""
    return spec.origin in (None, "namespace") and spec.submodule_search_locations is not None


def _has_file(spec: ModuleSpec) -> bool:
    """Whether ``spec`` names a file the import would execute (not built-in, frozen, namespace)."""
    return spec.origin not in (None, "namespace", "built-in", "frozen")


def _same_module(spec: ModuleSpec, other: ModuleSpec) -> bool:
    """Whether two specs name the same file (or the same built-in or frozen module)."""
    if not (_has_file(spec) and _has_file(other)):
        return spec.origin == other.origin
    return os.path.realpath(str(spec.origin)) == os.path.realpath(str(other.origin))


def _describe(spec: ModuleSpec) -> str:
    """Where a spec's module is, for an error: its file or its directories, and what it is."""
    if _is_namespace(spec):
        directories = ", ".join(dict.fromkeys(spec.submodule_search_locations or ()))
        return f"the directory {directories} (a namespace package: it has no __init__.py)"
    origin = str(spec.origin)
    if spec.origin in ("built-in", "frozen"):
        return f"the standard library's {spec.origin} module"
    return f"the standard library's {origin}" if _is_standard_library(spec) else origin


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(
        os.path.join(os.path.realpath(paths[name]), "") for name in ("stdlib", "platstdlib")
    )


def _site_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(os.path.join(os.path.realpath(paths[name]), "") for name in ("purelib", "platlib"))


def _ask_finders(
    top: str, search_path: Sequence[str] | None
) -> Iterator[tuple[object, ModuleSpec]]:
    """(finder, spec) for every meta-path finder that finds ``top``, in the import's order."""
    __tracebackhide__ = True
    for finder in list(sys.meta_path):
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            if finder is PathFinder and search_path is not None:
                spec = PathFinder.find_spec(top, _search_entries(search_path))
            else:
                spec = find_spec(top, None)
        except Exception as exc:
            raise LocateError(
                f"the import hook {finder!r} raised while looking for {top!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if isinstance(spec, ModuleSpec):
            yield finder, spec


def _find_in_this_process(top: str, search_path: Sequence[str] | None) -> ModuleSpec | None:
    """The spec this process's import system gives ``top``, without importing it.

    With an explicit ``search_path``, path-based finding uses it instead of
    ``sys.path``. Two candidates where the user meant one are an error naming
    both: a module this process imported that its path now finds elsewhere (a
    ``src/json`` that the standard library's ``json``, imported at start-up,
    hides from this process but not from a fresh interpreter), and a directory
    without ``__init__.py`` that the path finds before an import hook's package
    (a project directory named like its package, in the current directory,
    before an editable install's finder).
    """
    __tracebackhide__ = True
    found = _ask_finders(top, search_path)
    first = next(found, None)
    loaded = getattr(sys.modules.get(top), "__spec__", None) if search_path is None else None
    if isinstance(loaded, ModuleSpec):
        if first is not None and _has_file(first[1]) and not _same_module(first[1], loaded):
            raise LocateError(
                f"{top!r} is two modules here: this process imported "
                f"{_describe(loaded)}, but its path finds {first[1].origin} first, "
                "which a fresh interpreter would import; rename the package that shadows "
                "the other, or take the one not to measure off the path"
            )
        if not _is_namespace(loaded) or first is None:
            return loaded
    else:
        loaded = None
    if first is None:
        return None
    finder, spec = first
    if finder is PathFinder and _is_namespace(spec):
        behind = next((other for _, other in found if _has_file(other)), None)
        if behind is not None:
            raise LocateError(
                f"{top!r} is two packages here: the path finds {_describe(spec)} before "
                f"{behind.origin}, which an import hook (an editable install's finder) "
                "provides, and the import takes the first; run from a directory that holds no "
                f"{top!r} directory (the project's own), or take that directory off the path"
            )
    return spec if loaded is None else loaded


def _location_from(
    top: str, origin: str | None, locations: Sequence[str] | None, where: str
) -> PackageLocation:
    """The :class:`PackageLocation` of a found spec's origin and search locations."""
    __tracebackhide__ = True
    if origin == "built-in" or (top in sys.builtin_module_names and origin is None):
        raise LocateError(
            f"{top!r} is built into the interpreter: it has no files to copy and no import to time"
        )
    if origin == "frozen":
        started = " (a start-up module)" if top in sys.modules else ""
        raise LocateError(
            f"{top!r} is frozen into the interpreter{where}{started}: its import reads no "
            "files, so there is nothing to copy"
        )
    if origin is None or origin == "namespace":
        portions = tuple(Path(location) for location in locations or ())
        if not portions:
            raise LocateError(f"{top!r} was found{where} without a file or directory to copy")
        return PackageLocation(top, "namespace", portions)
    path = Path(origin)
    if not path.is_file():
        raise LocateError(
            f"module {top!r} was found{where} at {origin}, which is not a file on disk "
            "(a zip archive or a custom finder): only file-system packages can be copied"
        )
    if locations is not None:
        return PackageLocation(top, "package", (path.parent,))
    return PackageLocation(top, "module", (path,))


def _location_of_spec(top: str, spec: ModuleSpec) -> PackageLocation:
    """The :class:`PackageLocation` of a spec found in this process.

    A package's other search directories are portions of it too: an editable
    finder that maps some files from a build directory (scikit-build-core's
    redirect: a generated ``_version.py``, a built extension) lists that
    directory in the package's ``__path__``. The copy merges them, the
    package's own directory first.
    """
    __tracebackhide__ = True
    locations = spec.submodule_search_locations
    location = _location_from(top, spec.origin, None if locations is None else list(locations), "")
    if location.kind != "package" or not locations:
        return location
    own = os.path.realpath(location.portions[0])
    directories = {
        os.path.realpath(directory): Path(directory)
        for directory in locations
        if isinstance(directory, str) and os.path.isdir(directory)
    }
    directories.pop(own, None)
    served: list[tuple[Path, Path]] = []
    for entry in locations:
        if isinstance(entry, str) and not os.path.isdir(entry):
            served += _served_files(top, entry, Path())
    if not directories and not served:
        return location
    portions = (location.portions[0], *directories.values())
    return PackageLocation(top, "package", portions, tuple(served))


def _submodule_spec(name: str, parent_path: list[str]) -> ModuleSpec | None:
    """The spec the import system gives submodule ``name`` of a package with ``parent_path``."""
    for finder in list(sys.meta_path):
        find_spec = getattr(finder, "find_spec", None)
        spec = find_spec(name, parent_path) if find_spec is not None else None
        if isinstance(spec, ModuleSpec):
            return spec
    return None


def _path_entry_finder(package: str, entry: str) -> object:
    """The finder the path hooks give ``entry`` of ``package``'s ``__path__``, or ``None``."""
    __tracebackhide__ = True
    finder = sys.path_importer_cache.get(entry)
    for hook in [] if finder is not None else sys.path_hooks:
        try:
            return hook(entry)
        except ImportError:
            continue
        except Exception as exc:
            raise LocateError(
                f"the path hook {hook!r} raised for {package!r}'s path entry {entry}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
    return finder


def _served_files(package: str, entry: str, inside: Path) -> list[tuple[Path, Path]]:
    """The files a path hook serves for ``package``'s ``__path__`` entry ``entry``.

    meson-python's editable loader gives a package a ``__path__`` entry that
    is no directory, which its path hook turns into a finder listing the
    package's modules (``iter_modules``) wherever their files are. Each file
    is placed at its module's path inside the package (``inside``).
    """
    __tracebackhide__ = True
    listing = getattr(_path_entry_finder(package, entry), "iter_modules", None)
    if listing is None:
        return []  # nothing lists it: the import cannot find anything there either
    served = []
    try:
        # Found as the import finds a submodule: every meta-path finder, asked in order.
        specs = [(name, _submodule_spec(f"{package}.{name}", [entry])) for name, _ in listing("")]
    except Exception as exc:
        raise LocateError(
            f"the import hook serving {package!r} raised while listing its modules: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    for name, spec in specs:
        if not isinstance(spec, ModuleSpec) or not _has_file(spec):
            continue
        origin = Path(str(spec.origin))
        is_package = spec.submodule_search_locations is not None
        inner = inside / name if is_package else inside
        if origin.name.partition(".")[0] != ("__init__" if is_package else name) or not (
            origin.is_file()
        ):
            raise LocateError(
                f"the import hook serving {package!r} maps module {package}.{name} to {origin}, "
                "which cannot be placed in a copy of the package under that name"
            )
        served.append((inner / origin.name, origin))
        for sub_entry in spec.submodule_search_locations or ():
            if isinstance(sub_entry, str) and not os.path.isdir(sub_entry):
                served += _served_files(f"{package}.{name}", sub_entry, inner)
    return served


# What a pkgutil- or pkg_resources-style namespace package's __init__.py calls.
_PORTION_MARKERS = (b"extend_path(", b"declare_namespace(")


def _with_pkgutil_portions(location: PackageLocation, entries: Sequence[str]) -> PackageLocation:
    """``location`` with every portion of a pkgutil-style namespace package in ``entries``.

    Such a package has an ``__init__.py`` in each portion that extends its
    ``__path__`` with the others at import time; the import finds the first
    one only, so the other portions are looked for here, read but not run.
    """
    if location.kind != "package":
        return location
    try:
        source = (location.portions[0] / "__init__.py").read_bytes()
    except OSError:
        return location
    if not any(marker in source for marker in _PORTION_MARKERS):
        return location
    portions: dict[str, Path] = {os.path.realpath(location.portions[0]): location.portions[0]}
    for entry in entries:
        candidate = Path(entry) / location.top_level
        if (candidate / "__init__.py").is_file():
            portions.setdefault(os.path.realpath(candidate), candidate)
    if len(portions) == 1:
        return location
    return PackageLocation(location.top_level, "namespace", tuple(portions.values()))


def _is_project_file(path: str) -> bool:
    """Whether ``path`` lies outside this interpreter's installation (in a project tree)."""
    real = os.path.realpath(path)
    return not real.startswith(installation_dirs())


def _not_found(module: str, top: str, searched: str) -> LocateError:
    needed_for = f" (needed for {module!r})" if module != top else ""
    return LocateError(f"cannot find module {top!r}{needed_for} {searched}")


def _is_standard_library(spec: ModuleSpec) -> bool:
    """Whether ``spec``'s file lies in this interpreter's standard library (not site-packages)."""
    if not _has_file(spec):
        return False
    real = os.path.realpath(str(spec.origin))
    return real.startswith(_stdlib_dirs()) and not real.startswith(_site_dirs())


def _refuse_a_shadowed_project_module(top: str, spec: ModuleSpec, entries: Sequence[str]) -> None:
    """Raise when the standard library's ``top`` hides a same-named module of the project.

    A project's ``json/`` on the path after the standard library (pytest's
    ``--import-mode=append``) is never imported, so measuring the standard
    library's is what the import does; but that is never what was meant.
    """
    __tracebackhide__ = True
    if not _is_standard_library(spec):
        return
    for entry in entries:
        if not _is_project_file(entry):
            continue
        shadowed = PathFinder.find_spec(top, [entry])
        if shadowed is not None and _has_file(shadowed):
            raise LocateError(
                f"{top!r} is {_describe(spec)}, which the path finds before "
                f"{shadowed.origin}, a module of the same name in this project; rename the "
                "project's module to measure it"
            )


def locate_package(
    module: str, search_path: Sequence[str] | None = None, *, python: str | None = None
) -> PackageLocation:
    """Locate the top-level package of ``module`` as ``python`` (default: this one) imports it.

    ``search_path`` replaces ``sys.path`` for path-based finding (the empty
    entry and ``"."`` stand for the current directory). Raises
    :class:`LocateError` naming the module and where it was looked for, on one line.
    """
    __tracebackhide__ = True
    check_module_name(module)
    top = top_level_name(module)
    entries = _search_entries(sys.path if search_path is None else search_path)
    if python is None or is_running_interpreter(python):
        spec = _find_in_this_process(top, search_path)
        if spec is None:
            raise _not_found(
                module,
                top,
                f"in the {len(entries)} path entries searched ({', '.join(entries) or 'none'}) "
                "or through the import hooks of this interpreter",
            )
        _refuse_a_shadowed_project_module(top, spec, entries)
        return _with_pkgutil_portions(_location_of_spec(top, spec), entries)
    project_entries = tuple(entry for entry in entries if _is_project_file(entry))
    probed = probe_spec(python, top, project_entries)
    if probed is not None:
        return _location_from(top, probed.origin, probed.locations, f" by {python}")
    here = _find_in_this_process(top, search_path)
    if here is not None and here.origin not in (None, "built-in", "frozen"):
        if _is_project_file(here.origin):
            return _location_of_spec(top, here)
        raise _not_found(
            module,
            top,
            f"for {python}: it is installed only for {sys.executable} ({here.origin}), and "
            "another interpreter's installed files are never measured; install it for "
            f"{python}",
        )
    raise _not_found(module, top, f"for {python}, nor in this project's path entries")


class ImportLocationWarning(UserWarning):
    """The package measured is not the one this process imported, and why."""


def _loaded_file(top: str) -> str | None:
    """The file (or first directory) of ``top`` as this process imported it, if it did."""
    loaded = sys.modules.get(top)
    found = getattr(loaded, "__file__", None)
    if found is None:
        found = next(iter(getattr(loaded, "__path__", None) or ()), None)
    return found if isinstance(found, str) else None


def warn_if_imported_elsewhere(location: PackageLocation, python: str) -> None:
    """Warn with :class:`ImportLocationWarning` when this process imported the package elsewhere.

    That happens when the rounds run another interpreter (which finds its own
    files) or when a search path puts another copy first.
    """
    loaded = _loaded_file(location.top_level)
    if loaded is None:
        return
    real = Path(os.path.realpath(loaded))
    for portion in location.portions:
        resolved = Path(os.path.realpath(portion))
        if real == resolved or real.is_relative_to(resolved):
            return
    why = (
        "the search path given puts it first"
        if is_running_interpreter(python)
        else f"{python} finds its own"
    )
    measured = ", ".join(map(str, location.portions))
    warnings.warn(
        ImportLocationWarning(
            f"{location.top_level!r} is measured from {measured} ({why}); "
            f"this process imported it from {loaded}"
        ),
        stacklevel=3,
    )
