"""The hostile-input corpus: odd package shapes and hostile imports, each with its exact outcome.

Every case builds a small world (the package, and whatever it links to) in a
temporary directory, measures it with the engine, and asserts one of two
outcomes: a correct measurement (the modules it must and must not show), or
one readable error line of a given type. Whatever the outcome, the world is
unchanged afterwards (content and modification time of every file, no
``__pycache__``), and no process started by a round is left running.
"""

from __future__ import annotations

import _json
import contextlib
import importlib.util
import json
import os
import py_compile
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from gitrepos import commit_all, forget_last_commit, git, make_repo, tree_state

from conftest import FAKE_ROUNDS_CONFTEST, fake_rounds, is_alive, quick_ini, write_tree
from pytest_importcache import ImportEnv, ImportResult
from pytest_importcache.engine.against import measure_against
from pytest_importcache.engine.locate import ImportLocationWarning
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.engine.processwait import exit_description
from pytest_importcache.engine.startup import startup_spec
from pytest_importcache.model.comparison import Comparison
from pytest_importcache.model.errors import (
    CommandExitError,
    CommandNotFoundError,
    EnvironmentBuildError,
    ImportCacheError,
    ImportRaisedError,
    InterpreterError,
    LocateError,
    RoundCrashedError,
    RoundTimeoutError,
    SpecError,
)
from pytest_importcache.model.spec import MeasurementSpec, StartupCommand

needs_proc = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")


@dataclass(frozen=True)
class Case:
    """One hostile input: a world to build, a module to measure, and the expected outcome.

    ``build`` receives the world directory and returns the path entry to search.
    Expected: either ``error`` (a type) whose one-line message matches
    ``message``, or a measurement whose modules include ``loads`` and exclude
    ``skips``, and whose lazily created modules are ``lazy``. ``finder``
    makes a meta-path finder from the world, put on ``sys.meta_path`` while
    the case is measured (an editable install's): first (scikit-build-core's
    place), or last with ``finder_first=False`` (setuptools'). ``command`` or
    ``code`` make it a start-up case: that command runs, ``module`` being the
    package under test it is expected to find. ``pending``, when
    given, is what the PEP 810 lazy imports still pending must include, and
    ``reified`` the lazy imports the import itself reified; ``requires`` is
    ``"pep810"`` (CPython 3.15+) or ``"no-pep810"`` (before it).
    """

    id: str
    build: Callable[[Path], Path]
    module: str
    flavour: str = "warm"
    options: dict[str, object] = field(default_factory=dict)
    error: type[ImportCacheError] | None = None
    message: str = ""
    loads: tuple[str, ...] = ()
    skips: tuple[str, ...] = ()
    lazy: tuple[str, ...] = ()
    warning: str = ""
    spawns: bool = False
    finder: Callable[[Path], object] | None = None
    finder_first: bool = True
    # A start-up case: the command (or code snippet) runs from exec to exit instead.
    command: str | None = None
    code: str | None = None
    pending: tuple[str, ...] | None = None
    requires: str = ""
    reified: tuple[tuple[str, str], ...] | None = None


def files(tree: dict[str, str], entry: str = "") -> Callable[[Path], Path]:
    """A world made of plain source files; ``entry`` is the path entry inside it."""

    def build(world: Path) -> Path:
        write_tree(world, tree)
        return world / entry

    return build


def with_links(
    tree: dict[str, str], links: dict[str, str], entry: str = ""
) -> Callable[[Path], Path]:
    """Source files plus symbolic links (link path -> target, as written in the link)."""

    def build(world: Path) -> Path:
        write_tree(world, tree)
        for link, target in links.items():
            (world / link).parent.mkdir(parents=True, exist_ok=True)
            (world / link).symlink_to(target)
        return world / entry

    return build


def sourceless(world: Path) -> Path:
    """A package whose submodule ``secret`` ships only as ``secret.pyc``."""
    write_tree(world, {"shy/__init__.py": "from . import secret\n"})
    source = world / "secret_source.py"
    source.write_text("import decimal\n", encoding="utf-8")
    py_compile.compile(str(source), cfile=str(world / "shy" / "secret.pyc"), doraise=True)
    source.unlink()
    return world


def sourceless_module(world: Path) -> Path:
    """A top-level module that exists only as ``alone.pyc``."""
    source = world / "alone_source.py"
    source.write_text("VALUE = 1\n", encoding="utf-8")
    py_compile.compile(str(source), cfile=str(world / "alone.pyc"), doraise=True)
    source.unlink()
    return world


def undecodable_name(world: Path) -> Path:
    """A package holding a data file whose name is not valid UTF-8."""
    write_tree(world, {"oddnames/__init__.py": "VALUE = 1\n"})
    with open(os.path.join(os.fsencode(world / "oddnames"), b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"data")
    return world


def with_fifo(world: Path) -> Path:
    """A package with a named pipe inside (a plain copy would block on it)."""
    write_tree(world, {"piped/__init__.py": "VALUE = 1\n"})
    os.mkfifo(world / "piped" / "pipe")
    return world


def hollow_subpackage(world: Path) -> Path:
    """A package whose subpackage ``inner`` is an empty directory (a namespace package)."""
    write_tree(world, {"hollow/__init__.py": "from . import inner\n"})
    (world / "hollow" / "inner").mkdir()
    return world


def zipped(world: Path) -> Path:
    """A package inside a zip archive on the path."""
    archive = world / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("zipped/__init__.py", "VALUE = 1\n")
    return archive


def extension_module(world: Path) -> Path:
    """A copy of the standard library's ``_json`` extension module, found first."""
    origin = getattr(_json, "__file__", None)
    if origin is None:
        pytest.skip("_json is built into this interpreter: no extension file to copy")
    (world / Path(origin).name).write_bytes(Path(origin).read_bytes())
    return world


PKGUTIL_INIT = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


def pkgutil_portions(world: Path) -> Path:
    """A pkgutil-style namespace package in two directories; the second follows the first."""
    write_tree(
        world,
        {
            "a/pku/__init__.py": PKGUTIL_INIT,
            "a/pku/one.py": "",
            "b/pku/__init__.py": PKGUTIL_INIT,
            "b/pku/two.py": "import decimal\n",
        },
    )
    return world / "a"


def namespace_portions(world: Path) -> Path:
    """One namespace package in two directories; ``entry`` is the first, the second follows."""
    write_tree(world, {"a/spaced/one.py": "import decimal\n", "b/spaced/two.py": "VALUE = 2\n"})
    return world / "a"


LAZY_LOADING = """\
import importlib.util, sys
spec = importlib.util.find_spec("decimal")
loader = importlib.util.LazyLoader(spec.loader)
spec.loader = loader
module = importlib.util.module_from_spec(spec)
sys.modules["decimal"] = module
loader.exec_module(module)
"""

# The process an import starts sends its pid through a pipe once it runs, and
# the import returns only then, having noted it: the round cannot end (and kill
# it) before the test knows which process to look for.
EXITS_THREE = "import sys\nprint('it broke', file=sys.stderr)\nsys.exit(3)\n"
HANGS = "import time\ntime.sleep(600)\n"
FLOODS = """\
import sys
line = "x" * 99 + "\\n"
for _ in range(60_000):  # about 6 MB on each stream
    sys.stdout.write(line)
    sys.stderr.write(line)
"""

DAEMON = """\
import os, time
reading, writing = os.pipe()
if os.fork() == 0:
    os.close(reading)
    os.setsid()
    if os.fork() == 0:
        os.write(writing, f"{os.getpid()}\\n".encode())
        os.close(writing)
        time.sleep(60)
    os._exit(0)
os.close(writing)
with os.fdopen(reading) as pipe:
    started = pipe.read()  # until the grandchild and its parent closed the pipe
with open(os.environ["HOSTILE_PIDS"], "a") as handle:
    handle.write(started)
"""

FORKED_SLEEPER = """\
import os, time
reading, writing = os.pipe()
if os.fork() == 0:
    os.close(reading)
    os.write(writing, f"{os.getpid()}\\n".encode())
    os.close(writing)
    time.sleep(60)
    os._exit(0)
os.close(writing)
with os.fdopen(reading) as pipe:
    started = pipe.read()
with open(os.environ["HOSTILE_PIDS"], "a") as handle:
    handle.write(started)
"""

OLD_PYTHON = next(
    (
        str(path)
        for path in sorted(
            Path(os.environ.get("PYENV_ROOT", "~/.pyenv"))
            .expanduser()
            .glob("versions/3.8*/bin/python")
        )
    ),
    None,
)
WRITES_BESIDE_ITSELF = """\
import os
with open(os.path.join(os.path.dirname(__file__), "state.txt"), "w") as handle:
    handle.write("written at import")
"""


ESCAPING_SLEEPER = """\
import os, subprocess
# A new session and an empty environment: neither the group nor the token finds it.
sleeper = subprocess.Popen(
    ["/bin/sh", "-c", "exec sleep 60"],
    env={}, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
with open(os.environ["HOSTILE_PIDS"], "a") as handle:
    handle.write(f"{sleeper.pid}\\n")  # the shell's pid, which exec keeps for sleep
"""
GENERATES_ITS_TABLE = """\
import os
here = os.path.dirname(__file__)
try:
    from . import table
except ImportError:
    import decimal
    with open(os.path.join(here, "table.py"), "w") as handle:
        handle.write("TABLE = 1\\n")
"""
DELETES_ITSELF = "import os, decimal\nos.unlink(__file__)\n"
FORKS_AND_GOES_ON = "import os\nos.fork()\nimport decimal\n"
TAMPERS_AND_RAISES = """\
import sys, types
sys.modules["traceback"] = types.ModuleType("traceback")
sys.modules["json"] = types.ModuleType("json")
raise ValueError("the user's own error")
"""
NOISY = "import sys\nsys.stdout.write('x' * 5**10)\nsys.stderr.write('y' * 5**10)\n"


class RedirectingFinder:
    """An editable finder shaped like scikit-build-core's redirect.

    It maps module names to files, some in the source tree and some (the
    generated ones) in a build directory, and gives each package every
    directory its files live in as ``__path__``.
    """

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        """The spec of a mapped module, or ``None``."""
        if fullname not in self.files:
            return None
        file = self.files[fullname]
        locations = None
        if file.name == "__init__.py":
            prefix = fullname + "."
            members = [other for name, other in self.files.items() if name.startswith(prefix)]
            directories = [file.parent, *(member.parent for member in members)]
            locations = list(dict.fromkeys(map(str, directories)))
        return importlib.util.spec_from_file_location(
            fullname, file, submodule_search_locations=locations
        )


def redirected_build(world: Path) -> Path:
    """A package whose ``_version.py`` exists only in the build directory."""
    write_tree(
        world,
        {
            "src/skpkg/__init__.py": "from ._version import version\nfrom . import core\n",
            "src/skpkg/core.py": "import decimal\n",
            "build/skpkg/_version.py": "version = '1.0'\n",
        },
    )
    return world / "elsewhere"


def redirecting_finder(world: Path) -> object:
    """The finder of :func:`redirected_build`'s editable install."""
    return RedirectingFinder(
        {
            "skpkg": world / "src/skpkg/__init__.py",
            "skpkg.core": world / "src/skpkg/core.py",
            "skpkg._version": world / "build/skpkg/_version.py",
        }
    )


class ServingFinder:
    """An editable finder shaped like meson-python's loader.

    The package's ``__path__`` is a path under the loader's own file, no
    directory; a path hook turns it into a finder that lists and finds the
    package's modules wherever their files are (a generated ``_version.py``
    in the build directory).
    """

    def __init__(self, world: Path, files: dict[str, Path]) -> None:
        self.entry = str(world / "_loader.py" / "mspkg")
        self.files = files

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        """The spec of a served module, or ``None``."""
        if fullname not in self.files:
            return None
        package = fullname == "mspkg"
        return importlib.util.spec_from_file_location(
            fullname,
            self.files[fullname],
            submodule_search_locations=[self.entry] if package else None,
        )

    def iter_modules(self, prefix: str) -> list[tuple[str, bool]]:
        """The package's modules, as ``pkgutil`` lists them."""
        return [(prefix + name.rpartition(".")[2], False) for name in self.files if "." in name]

    def path_hook(self, entry: str) -> ServingFinder:
        """This finder for the package's ``__path__`` entry; ``ImportError`` for any other."""
        if entry != self.entry:
            raise ImportError(entry)
        return self


def served_build(world: Path) -> Path:
    """A package whose ``_version.py`` exists only in the build directory."""
    write_tree(
        world,
        {
            "src/mspkg/__init__.py": "from ._version import version\nfrom . import core\n",
            "src/mspkg/core.py": "import decimal\n",
            "src/mspkg/meson.build": "",
            "build/_version.py": "version = '1.0'\n",
            "build/generated_version.py": "version = '1.0'\n",
        },
    )
    return world / "elsewhere"


def serving_finder(world: Path) -> object:
    """The finder of :func:`served_build`'s editable install."""
    return ServingFinder(
        world,
        {
            "mspkg": world / "src/mspkg/__init__.py",
            "mspkg.core": world / "src/mspkg/core.py",
            "mspkg._version": world / "build/_version.py",
        },
    )


def misnaming_finder(world: Path) -> object:
    """A loader that serves ``mspkg._version`` from a file of another name."""
    return ServingFinder(
        world,
        {
            "mspkg": world / "src/mspkg/__init__.py",
            "mspkg.core": world / "src/mspkg/core.py",
            "mspkg._version": world / "build/generated_version.py",
        },
    )


def project_directory_and_finder(world: Path) -> Path:
    """The project directory ``edpkg/`` on the path; its package only a finder provides."""
    write_tree(world, {"edpkg/pyproject.toml": "", "edpkg/edpkg/__init__.py": ""})
    return world


def project_finder(world: Path) -> object:
    """A finder that provides ``edpkg`` from inside its project directory."""
    return RedirectingFinder({"edpkg": world / "edpkg/edpkg/__init__.py"})


def deep_package(world: Path) -> Path:
    """Twenty packages nested in each other, the innermost importing ``decimal``."""
    parts = [f"level{index}" for index in range(20)]
    tree = {"/".join(parts[: depth + 1]) + "/__init__.py": "" for depth in range(20)}
    tree["/".join(parts) + "/__init__.py"] = "import decimal\n"
    write_tree(world, tree)
    return world


CASES = [
    # -- package shapes -----------------------------------------------------------
    Case(
        "regular package",
        files({"plain/__init__.py": "from . import core\n", "plain/core.py": "import decimal\n"}),
        "plain",
        loads=("plain", "plain.core", "decimal"),
    ),
    Case("single-file module", files({"solo.py": "import decimal\n"}), "solo", loads=("decimal",)),
    Case(
        "src layout",
        files({"src/srcpkg/__init__.py": "import decimal\n"}, entry="src"),
        "srcpkg",
        loads=("srcpkg", "decimal"),
    ),
    Case(
        "an editable finder mapping a generated file from a build directory",
        redirected_build,
        "skpkg",
        finder=redirecting_finder,
        loads=("skpkg", "skpkg._version", "skpkg.core", "decimal"),
    ),
    Case(
        "an editable loader whose path hook serves a file from a build directory",
        served_build,
        "mspkg",
        finder=serving_finder,
        loads=("mspkg", "mspkg._version", "mspkg.core", "decimal"),
    ),
    Case(
        "an editable loader serving a module from a file named otherwise",
        served_build,
        "mspkg",
        finder=misnaming_finder,
        error=LocateError,
        message=r"maps module mspkg\._version to .*generated_version\.py, which cannot be placed",
    ),
    Case(
        "a same-named project directory before an editable finder's package",
        project_directory_and_finder,
        "edpkg",
        finder=project_finder,
        finder_first=False,
        error=LocateError,
        message=r"'edpkg' is two packages here: the path finds the directory .*edpkg "
        r"\(a namespace package.* before .*edpkg/edpkg/__init__\.py",
    ),
    Case(
        "a src/json package first on the path, named like the standard library's",
        files({"src/json/__init__.py": "import decimal\n"}, entry="src"),
        "json",
        loads=("json", "decimal"),
        skips=("json.decoder",),
        warning="puts it first",
    ),
    Case(
        "namespace package, two portions",
        namespace_portions,
        "spaced.one",
        loads=("spaced", "spaced.one", "decimal"),
    ),
    Case(
        "submodule of a namespace package",
        namespace_portions,
        "spaced.two",
        loads=("spaced.two",),
        skips=("decimal",),
    ),
    Case(
        "pkgutil-style namespace package, the submodule in the second portion",
        pkgutil_portions,
        "pku.two",
        loads=("pku", "pku.two", "decimal"),
    ),
    Case(
        "extension module",
        extension_module,
        "_json",
        loads=("_json",),
        warning=r"search path given puts it first\); this process imported it from",
    ),
    Case("zip archive", zipped, "zipped", error=LocateError, message="zip archive"),
    Case(
        "relative symlink to a file outside the package",
        with_links(
            {
                "src/guarded/__init__.py": "from . import fast_impl\n",
                "ext/fast.py": "import decimal\n",
            },
            {"src/guarded/fast_impl.py": "../../ext/fast.py"},
            entry="src",
        ),
        "guarded",
        loads=("guarded.fast_impl", "decimal"),
    ),
    Case(
        "optional symlinked submodule",
        with_links(
            {
                "src/optional/__init__.py": (
                    "try:\n    from . import fast_impl\nexcept ImportError:\n    pass\n"
                ),
                "ext/fast.py": "import decimal\n",
            },
            {"src/optional/fast_impl.py": "../../ext/fast.py"},
            entry="src",
        ),
        "optional",
        loads=("optional.fast_impl", "decimal"),
    ),
    Case(
        "absolute symlink to a directory",
        lambda world: with_links(
            {"lib/linked/__init__.py": "from .sub import deep\n", "elsewhere/deep.py": "X = 1\n"},
            {"lib/linked/sub": str(world / "elsewhere")},
            entry="lib",
        )(world),
        "linked",
        loads=("linked.sub", "linked.sub.deep"),
    ),
    Case(
        "the package itself is a symlink",
        with_links(
            {"real/aliased/__init__.py": "import decimal\n"},
            {"path/aliased": "../real/aliased"},
            entry="path",
        ),
        "aliased",
        loads=("aliased", "decimal"),
    ),
    Case(
        "symlink loop",
        with_links({"looped/__init__.py": ""}, {"looped/again": "."}),
        "looped",
        error=EnvironmentBuildError,
        message="symbolic link loop",
    ),
    Case(
        "symlink loop through a subdirectory",
        with_links(
            {"spiral/__init__.py": ""},
            {"spiral/a/b": "..", "spiral/a/__init__.py": "../__init__.py"},
        ),
        "spiral",
        error=EnvironmentBuildError,
        message="symbolic link loop in the package: .*spiral/a/b -> ..",
    ),
    Case(
        "dangling symlink",
        with_links({"dangles/__init__.py": "VALUE = 1\n"}, {"dangles/gone.py": "nowhere.py"}),
        "dangles",
        loads=("dangles",),
    ),
    Case("undecodable file name", undecodable_name, "oddnames", loads=("oddnames",)),
    Case("named pipe in the package", with_fifo, "piped", loads=("piped",)),
    Case(
        "empty namespace subpackage directory",
        hollow_subpackage,
        "hollow",
        loads=("hollow", "hollow.inner"),
    ),
    Case("sourceless submodule, warm", sourceless, "shy", loads=("shy.secret", "decimal")),
    Case(
        "sourceless submodule, cold",
        sourceless,
        "shy",
        flavour="cold",
        loads=("shy.secret", "decimal"),
    ),
    Case(
        "sourceless module, cold",
        sourceless_module,
        "alone",
        flavour="cold",
        error=EnvironmentBuildError,
        message="sourceless module .*cannot be measured cold",
    ),
    Case(
        "lazy import never executed",
        files({"lazily/__init__.py": LAZY_LOADING}),
        "lazily",
        skips=("decimal",),
        lazy=("decimal",),
    ),
    Case(
        "lazy import executed on first use",
        files({"eager/__init__.py": LAZY_LOADING + "module.Decimal\n"}),
        "eager",
        loads=("decimal",),
    ),
    # -- hostile imports --------------------------------------------------------
    Case(
        "sys.exit in the import",
        files({"exits.py": "import sys\nsys.exit(3)\n"}),
        "exits",
        error=ImportRaisedError,
        message="raised SystemExit: 3",
    ),
    Case(
        "os._exit in the import",
        files({"quits.py": "import os\nos._exit(4)\n"}),
        "quits",
        error=RoundCrashedError,
        message="ended with exit code 4 before reporting .*: nothing on stderr$",
    ),
    Case(
        "segmentation fault",
        files({"crashes.py": "import ctypes\nctypes.string_at(0)\n"}),
        "crashes",
        error=RoundCrashedError,
        message="ended with signal SIGSEGV",
    ),
    Case(
        "a sitecustomize and a usercustomize beside the package",
        files(
            {
                "custom/__init__.py": "",
                "sitecustomize.py": "import decimal\n",
                "usercustomize.py": "import colorsys\n",
            }
        ),
        "custom",
        loads=("custom",),
        skips=("sitecustomize", "usercustomize", "decimal", "colorsys"),
    ),
    Case(
        "a path entry that is the package directory itself",
        files({"selfpath/__init__.py": "", "selfpath/core.py": ""}, entry="selfpath"),
        "selfpath",
        error=LocateError,
        message="cannot find module 'selfpath'",
    ),
    Case(
        "the import kills itself",
        files({"suicidal.py": "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n"}),
        "suicidal",
        error=RoundCrashedError,
        message="ended with signal SIGTERM",
    ),
    Case(
        "hang",
        files({"hangs.py": "import time\ntime.sleep(60)\n"}),
        "hangs",
        options={"timeout": 1.0},
        error=RoundTimeoutError,
        message="did not finish within 1 s",
    ),
    Case(
        "a package joining a thread that imports its submodule (deadlocks from 3.14 on)",
        files(
            {
                "thrsub/__init__.py": "import importlib, threading\n"
                "worker = threading.Thread(target=importlib.import_module, args=('thrsub.side',))\n"
                "worker.start()\nworker.join()\n",
                "thrsub/side.py": "import colorsys\n",
            }
        ),
        "thrsub",
        options={"timeout": 2.0},
        # As plain CPython: 3.14 makes thrsub.side's import wait for thrsub's __init__.
        error=RoundTimeoutError if sys.version_info >= (3, 14) else None,
        message="did not finish within 2 s" if sys.version_info >= (3, 14) else "",
        loads=() if sys.version_info >= (3, 14) else ("thrsub", "thrsub.side", "colorsys"),
    ),
    Case(
        "fork",
        files({"forks/__init__.py": FORKED_SLEEPER}),
        "forks",
        loads=("forks",),
        spawns=True,
    ),
    Case(
        "daemon",
        files({"daemonic/__init__.py": DAEMON}),
        "daemonic",
        loads=("daemonic",),
        spawns=True,
    ),
    Case(
        "a daemon with a new session and an empty environment",
        files({"escapes/__init__.py": ESCAPING_SLEEPER}),
        "escapes",
        loads=("escapes",),
        spawns=True,
    ),
    Case(
        "a fork whose both sides go on importing",
        files({"forkboth/__init__.py": FORKS_AND_GOES_ON}),
        "forkboth",
        options={"rounds": 6},
        loads=("decimal",),
    ),
    Case(
        "the import generates a file in its own package",
        files({"generated/__init__.py": GENERATES_ITS_TABLE}),
        "generated",
        options={"warmup": 1},  # the counted rounds come after the first write
        loads=("decimal",),
        skips=("generated.table",),
    ),
    Case(
        "the import deletes its own file",
        files({"vanishing/__init__.py": DELETES_ITSELF}),
        "vanishing",
        options={"warmup": 1},
        loads=("vanishing", "decimal"),
    ),
    Case(
        "a package named like a standard library module",
        files({"json/__init__.py": "VALUE = 1\n"}),
        "json",
        loads=("json",),
        skips=("json.decoder",),
        warning=r"search path given puts it first\); this process imported it from",
    ),
    Case(
        "the import replaces traceback and json, then raises",
        files({"tamperer.py": TAMPERS_AND_RAISES}),
        "tamperer",
        error=ImportRaisedError,
        message="raised ValueError: the user's own error",
    ),
    Case(
        "the import makes itself a process group leader",
        files({"leader.py": "import os\nos.setpgrp()\n"}),
        "leader",
        loads=("leader",),
    ),
    Case(
        "the import deletes its current directory",
        files({"rmcwd.py": "import os, shutil\nshutil.rmtree(os.getcwd())\n"}),
        "rmcwd",
        loads=("rmcwd",),
    ),
    Case(
        "huge output on stdout and stderr",
        files({"noisy.py": NOISY}),
        "noisy",
        loads=("noisy",),
    ),
    Case(
        "the import closes stderr",
        files({"mute.py": "import os\nos.close(2)\nimport decimal\n"}),
        "mute",
        loads=("decimal",),
    ),
    Case(
        "the import empties sys.path and meta_path",
        files(
            {"vandal.py": "import sys\nimport decimal\nsys.path[:] = []\nsys.meta_path[:] = []\n"}
        ),
        "vandal",
        loads=("decimal",),
    ),
    Case(
        "the import replaces open()",
        files({"trickster.py": "import builtins\nbuiltins.open = None\n"}),
        "trickster",
        loads=("trickster",),
    ),
    Case(
        "the import raises",
        files({"broken.py": "raise ValueError('no good')\n"}),
        "broken",
        error=ImportRaisedError,
        message="raised ValueError: no good",
    ),
    Case(
        "a missing dependency",
        files({"needy.py": "import not_installed_anywhere\n"}),
        "needy",
        error=ImportRaisedError,
        message="No module named 'not_installed_anywhere'",
    ),
    Case(
        "the import writes beside its own file",
        files({"scribbler/__init__.py": WRITES_BESIDE_ITSELF}),
        "scribbler",
        loads=("scribbler",),
    ),
    Case(
        "spaces and non-ASCII letters in the path entry",
        files({"my dir/ünï côde/spaced_out/__init__.py": "import decimal\n"}, "my dir/ünï côde"),
        "spaced_out",
        loads=("spaced_out", "decimal"),
    ),
    Case(
        "twenty nested packages",
        deep_package,
        ".".join(f"level{index}" for index in range(20)),
        loads=("level0.level1", "decimal"),
    ),
    Case(
        "a package name of 240 letters",
        files({"p" * 240 + "/__init__.py": "import decimal\n"}),
        "p" * 240,
        loads=("decimal",),
    ),
    # -- the import path: siblings, and the original kept out -----------------------
    Case(
        "a sibling package beside the measured one",
        files({"app/__init__.py": "import core\n", "core/__init__.py": "import decimal\n"}),
        "app",
        loads=("core", "decimal"),
    ),
    Case(
        "a namespace package beside a sibling that looks at its portions",
        lambda world: files(
            {
                "nsapp/mod.py": "import core\n",
                "core/__init__.py": (
                    "import nsapp\n"
                    f"if any(p.startswith({str(world)!r}) for p in nsapp.__path__):\n"
                    "    raise ImportError('the original directory is a portion')\n"
                ),
            }
        )(world),
        "nsapp.mod",
        loads=("core",),
    ),
    Case(
        "a sibling that imports the measured package's submodule back",
        files(
            {
                "app/__init__.py": "import core\n",
                "app/sub.py": "import decimal\n",
                "core/__init__.py": "import app.sub\n",
            }
        ),
        "app",
        loads=("core", "app.sub", "decimal"),
    ),
    # -- start-up commands ----------------------------------------------------------
    Case(
        "a command that exits with another status",
        files({"failing/__init__.py": "", "failing/__main__.py": EXITS_THREE}),
        "failing",
        command="python -m failing",
        error=CommandExitError,
        message=r"'python -m failing' exited with exit code 3, not 0 .*: it broke",
    ),
    # A command's stderr is read back from its last 64 KiB: a line longer than that was
    # dropped ("nothing on stderr"); each line shown is cut, its control bytes escaped.
    Case(
        "a snippet raising an error of 70 KB",
        files({"hpkg/__init__.py": ""}),
        "hpkg",
        code="import hpkg; raise ValueError('X' * 70000)",
        error=CommandExitError,
        message=r"exited with exit code 1, not 0 .*: …X{200,}…$",
    ),
    Case(
        "a snippet writing a line of 70 KB after a short one",
        files({"hpkg/__init__.py": ""}),
        "hpkg",
        code="import hpkg, sys; sys.stderr.write('first\\n' + 'E' * 70000 + '\\n'); sys.exit(1)",
        error=CommandExitError,
        message=r"exited with exit code 1, not 0 .*: …E{200,}…$",
    ),
    Case(
        "a snippet writing 5 MB to stderr without a newline",
        files({"hpkg/__init__.py": ""}),
        "hpkg",
        code="import hpkg, sys; sys.stderr.write('E' * 5_000_000); sys.exit(1)",
        error=CommandExitError,
        message=r"exited with exit code 1, not 0 .*: …E{200,}…$",
    ),
    Case(
        "a snippet writing every byte to stderr",
        files({"hpkg/__init__.py": ""}),
        "hpkg",
        code="import hpkg, sys; sys.stderr.buffer.write(bytes(range(256))); sys.exit(3)",
        error=CommandExitError,
        message=r"^(?!.*\x1b).*exit code 3, not 0 .*: \\x00\\x01.*\\x1b",
    ),
    # Only the command's own frames, as its interpreter would show them (not the round's).
    Case(
        "a snippet that raises",
        files({"hpkg/__init__.py": ""}),
        "hpkg",
        code="import hpkg; raise ValueError('boom')",
        error=CommandExitError,
        message=r"^(?!.*startup).*: Traceback \(most recent call last\): \|   "
        r'File "<string>", line 1, in <module> \| ValueError: boom$',
    ),
    # The round's own exception hook comes after the command: what the command sees is its own.
    Case(
        "a snippet that checks its exception hook",
        files({"hpkg/__init__.py": ""}),
        "hpkg",
        code="import hpkg, sys; assert sys.excepthook is sys.__excepthook__, 'replaced'",
    ),
    Case(
        "a command that waits for input",
        files({"asking/__init__.py": "", "asking/__main__.py": "input('name? ')\n"}),
        "asking",
        command="python -m asking",
        error=CommandExitError,
        message=r"standard input, which is /dev/null.*EOFError",
    ),
    Case(
        "a command that hangs",
        files({"hanging/__init__.py": "", "hanging/__main__.py": HANGS}),
        "hanging",
        command="python -m hanging",
        options={"timeout": 1.0},
        error=RoundTimeoutError,
        message=r"'python -m hanging' did not finish within 1 s",
    ),
    Case(
        "a command that starts a daemon",
        files({"spawner/__init__.py": "", "spawner/__main__.py": DAEMON}),
        "spawner",
        command="python -m spawner",
        loads=("spawner",),
        spawns=True,
    ),
    Case(
        "a command that prints megabytes",
        files({"flooder/__init__.py": "", "flooder/__main__.py": FLOODS}),
        "flooder",
        command="python -m flooder",
        loads=("flooder",),
    ),
    Case(
        "an unknown console script",
        files({}),
        "absent",
        command="no-such-tool-xyz --help",
        error=CommandNotFoundError,
        message=r"command 'no-such-tool-xyz' not found",
    ),
    Case(
        "a snippet that imports no package",
        files({}),
        "absent",
        code="pass",
        error=SpecError,
        message=r"imports no package",
    ),
    # -- bad names and interpreters ----------------------------------------------
    Case(
        "a missing module",
        files({}),
        "absent_module_xyz",
        error=LocateError,
        message="cannot find module 'absent_module_xyz'",
    ),
    Case(
        "a built-in module",
        files({}),
        "sys",
        error=LocateError,
        message="built into the interpreter",
    ),
    Case(
        "an invalid module name",
        files({}),
        "1abc",
        error=LocateError,
        message="not a valid dotted module name",
    ),
    Case(
        "a dotted name with an empty part",
        files({}),
        "pkg..sub",
        error=LocateError,
        message="not a valid dotted module name",
    ),
    Case(
        "an interpreter that is not one",
        files({"fine.py": ""}),
        "fine",
        options={"python": "/bin/true"},
        error=InterpreterError,
        message="did not answer the version probe",
    ),
    Case(
        "an interpreter that does not exist",
        files({"fine.py": ""}),
        "fine",
        options={"python": "/nonexistent/python3"},
        error=InterpreterError,
        message="not found or not executable",
    ),
    *(
        [
            Case(
                "an interpreter too old for the rounds",
                files({"fine.py": ""}),
                "fine",
                options={"python": OLD_PYTHON},
                error=InterpreterError,
                message=r"is Python 3\.8\.\d+: pytest-importcache's rounds need Python 3\.9 or",
            )
        ]
        if OLD_PYTHON
        else []
    ),
    # PEP 810 (CPython 3.15+): `lazy import` is a syntax error before it.
    Case(
        "a lazy import of a missing module, never used",
        files({"lazymissing.py": "lazy import nosuchmod_xyz\n"}),
        "lazymissing",
        loads=("lazymissing",),
        pending=("nosuchmod_xyz",),
        requires="pep810",
    ),
    Case(
        "a lazy import of a missing module, used during the import",
        files({"lazyfails.py": "lazy import nosuchmod_xyz\nnosuchmod_xyz.anything\n"}),
        "lazyfails",
        error=ImportRaisedError,
        # Without 3.15's hint that site is disabled: the round ran it.
        message=r"^importing 'lazyfails' raised ModuleNotFoundError: No module named "
        r"'nosuchmod_xyz'(?!\. Site)",
        requires="pep810",
    ),
    Case(
        # 3.15 resolves it through _find_and_load(..., lazy_submodule=True).
        "a lazy from-import of a submodule, used during the import",
        files(
            {
                "lazysub/__init__.py": "",
                "lazysub/helper.py": "X = 1\n",
                "lazyuser.py": "lazy from lazysub import helper\nVALUE = helper.X\n",
            }
        ),
        "lazyuser",
        loads=("lazyuser", "lazysub", "lazysub.helper"),
        reified=(("lazysub.helper", "lazyuser.py:2"),),
        requires="pep810",
    ),
    Case(
        "__lazy_modules__ makes a plain import lazy",
        files({"lazylist.py": "__lazy_modules__ = ['decimal']\nimport decimal\n"}),
        "lazylist",
        loads=("lazylist",),
        skips=("decimal",),
        pending=("decimal",),
        requires="pep810",
    ),
    Case(
        # The start-up round's first report (written before the run) is all there is.
        "a start-up that reifies a lazy import in its import, then leaves by os._exit",
        files(
            {
                "lazyexit/__init__.py": "lazy import fractions\nHALF = fractions.Fraction(1, 2)\n",
                "lazyexit/__main__.py": "import os\nos._exit(0)\n",
            }
        ),
        "lazyexit",
        command="python -m lazyexit",
        loads=("lazyexit", "fractions"),
        reified=(("fractions", "lazyexit/__init__.py:2"),),
        requires="pep810",
    ),
    Case(
        "a start-up whose command leaves a lazy import of a missing module pending",
        files({"lazystart.py": "lazy import nosuchmod_xyz\n"}),
        "lazystart",
        code="import lazystart",
        pending=("nosuchmod_xyz",),
        reified=(),
        requires="pep810",
    ),
    Case(
        "lazy_imports='all' without PEP 810",
        files({"fine.py": "import decimal\n"}),
        "fine",
        options={"lazy_imports": "all"},
        error=InterpreterError,
        message=r"^lazy_imports='all' needs PEP 810's lazy imports \(Python 3\.15 or newer\); "
        r".* is Python 3\.1[0-4]\.\d+$",
        requires="no-pep810",
    ),
]


def snapshot(world: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every entry under ``world`` (links not followed): content and mtime of files."""
    entries: dict[str, tuple[bytes, int] | None] = {}
    for directory, subdirectories, names in os.walk(world):
        for name in [*subdirectories, *names]:
            path = os.path.join(directory, name)
            status = os.lstat(path)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    entries[path] = (handle.read(), status.st_mtime_ns)
            else:
                entries[path] = None
    return entries


def round_processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions ``text`` (a case's directories)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in command and is_alive(int(entry)):
            found.append(int(entry))
    return found


# Cases measured again under the instructions metric (callgrind rounds): the
# shapes and the process tricks where valgrind could change the outcome.
COUNTED_CASES = (
    "regular package",
    "namespace package, two portions",
    "segmentation fault",
    "daemon",
    "a fork whose both sides go on importing",
    "the import generates a file in its own package",
    "the import replaces traceback and json, then raises",
    "the import makes itself a process group leader",
    "a sibling package beside the measured one",
    "a command that starts a daemon",
    "a command that exits with another status",
    "a snippet that raises",
)


# Cases refused before any interpreter starts (while locating or copying): the
# fast tier runs them; every other case starts rounds and is slow.
REFUSED_BEFORE_ANY_PROCESS = {
    "an editable loader serving a module from a file named otherwise",
    "a same-named project directory before an editable finder's package",
    "zip archive",
    "symlink loop",
    "symlink loop through a subdirectory",
    "a path entry that is the package directory itself",
    "a missing module",
    "a built-in module",
    "an invalid module name",
    "a dotted name with an empty part",
    "an interpreter that does not exist",
    "a snippet that imports no package",
    "lazy_imports='all' without PEP 810",
}

PEP_810 = sys.version_info >= (3, 15)


def version_marks(case: Case) -> list[pytest.MarkDecorator]:
    """Skip a case written for, or against, PEP 810 where it cannot apply, saying why."""
    if case.requires == "pep810" and not PEP_810:
        return [pytest.mark.skip(reason="PEP 810 lazy imports need CPython 3.15+")]
    if case.requires == "no-pep810" and PEP_810:
        return [pytest.mark.skip(reason="this interpreter has PEP 810")]
    return []


@needs_proc
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            id=case.id,
            marks=[
                *version_marks(case),
                *(() if case.id in REFUSED_BEFORE_ANY_PROCESS else [pytest.mark.slow]),
            ],
        )
        for case in CASES
    ],
)
def test_hostile_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_case(case, tmp_path, monkeypatch, metric="time")


@needs_proc
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.parametrize(
    "case",
    [case for case in CASES if case.id in COUNTED_CASES],
    ids=[case.id for case in CASES if case.id in COUNTED_CASES],
)
@pytest.mark.slow
def test_hostile_input_counted(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "rounds" in case.options:
        # The rounds a case asks for to catch a race (a fork's two sides) are the
        # timed rounds' business: two counted rounds show a repeat under valgrind works.
        case = replace(case, options={**case.options, "rounds": 2})
    check_case(case, tmp_path, monkeypatch, metric="instructions")


def measure_case(case: Case, search_path: list[str], settings: dict[str, object]) -> ImportResult:
    """``case`` measured with ``settings``: its module's import, or its start-up command."""
    if case.command is None and case.code is None:
        env = ImportEnv(case.flavour, search_path=search_path, **settings)  # type: ignore[arg-type]
        with (
            pytest.warns(ImportLocationWarning, match=case.warning)
            if case.warning
            else contextlib.nullcontext()
        ):
            return env.measure(case.module)
    # A start-up case: its command resolved and run as a budget would run it.
    fields = dict(settings)
    measurer = Measurer(cache_dir=fields.pop("cache_dir"), search_path=search_path)  # type: ignore[arg-type]
    spec = startup_spec(
        StartupCommand.parse(case.command, case.code), flavour=case.flavour, **fields
    )
    assert spec.module == case.module
    return measurer.measure(spec)


def check_measured(case: Case, outcome: ImportResult, cache: Path) -> None:
    """The measurement of ``case``: from the cache's copy, the modules and lazy imports expected."""
    assert case.error is None, f"expected {case.error.__name__}, measured {outcome.file}"
    assert Path(outcome.file).is_relative_to(cache)
    missing = [name for name in case.loads if name not in outcome.modules]
    assert not missing, f"not loaded: {missing}; loaded: {list(outcome.modules)}"
    assert not [name for name in case.skips if name in outcome.modules]
    assert outcome.lazy_modules == case.lazy
    if case.pending is not None:
        assert set(case.pending) <= set(outcome.pending_lazy), outcome.pending_lazy
        assert not set(case.pending) & set(outcome.modules)
    if case.reified is not None:
        assert outcome.reified == case.reified


def check_case(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, metric: str) -> None:
    """Measure ``case`` in ``metric`` and check its outcome, its world and its processes."""
    pids = tmp_path / "pids.txt"  # where imports that start processes note their pids
    monkeypatch.setenv("HOSTILE_PIDS", str(pids))
    # Counted rounds get a fixed environment, plus the variables named here.
    monkeypatch.setenv("IMPORTCACHE_COUNTED_ENV", "HOSTILE_PIDS")
    world = tmp_path / "world"
    world.mkdir()
    entry = case.build(world)
    extra = [str(world / "b")] if case.build in (namespace_portions, pkgutil_portions) else []
    before = snapshot(world)
    settings: dict[str, object] = {
        # A counted round repeats exactly and takes 50-100 timed ones: one is enough.
        "rounds": 2 if metric == "time" else 1,
        "warmup": 0,
        "cache_dir": tmp_path / "cache",
        "metric": metric,
    }
    settings.update(case.options)
    if case.finder is not None:
        finder = case.finder(world)
        first, last = ([finder], []) if case.finder_first else ([], [finder])
        monkeypatch.setattr(sys, "meta_path", [*first, *sys.meta_path, *last])
        if hasattr(finder, "path_hook"):
            monkeypatch.setattr(sys, "path_hooks", [finder.path_hook, *sys.path_hooks])
    outcome: ImportResult | ImportCacheError
    try:
        outcome = measure_case(case, [str(entry), *extra, *sys.path], settings)
    except ImportCacheError as exc:
        outcome = exc
    if isinstance(outcome, ImportCacheError):
        assert case.error is not None, f"unexpected error: {outcome}"
        assert isinstance(outcome, case.error), f"{type(outcome).__name__}: {outcome}"
        first_line = str(outcome).splitlines()[0]
        assert "\n" not in getattr(outcome, "message", first_line)
        assert re.search(case.message, first_line), first_line
    else:
        check_measured(case, outcome, tmp_path / "cache")
    assert snapshot(world) == before, "the measured tree changed"
    deadline = time.monotonic() + 2
    while round_processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert round_processes_mentioning(str(tmp_path)) == []
    if case.spawns:
        started = [int(line) for line in pids.read_text().split()]
        assert started, "the import did not start its process"
        # A killed process is gone once the kernel has run its SIGKILL: a moment at most.
        deadline = time.monotonic() + 2
        while [pid for pid in started if is_alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in started if is_alive(pid)], "a started process outlived the round"


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_signal_numbers_are_named_in_crash_messages() -> None:
    assert exit_description(-signal.SIGKILL) == "signal SIGKILL"
    assert exit_description(3) == "exit code 3"


@needs_proc
@pytest.mark.slow
def test_children_the_caller_starts_during_a_round_are_left_alone(tmp_path: Path) -> None:
    started: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()

    def start_sleepers() -> None:
        while not stop.is_set():
            started.append(subprocess.Popen(["sleep", "30"]))
            time.sleep(0.02)

    starter = threading.Thread(target=start_sleepers)
    starter.start()
    try:
        ImportEnv("warm", rounds=3, warmup=0, cache_dir=tmp_path).measure("json")
    finally:
        stop.set()
        starter.join()
    try:
        assert started
        assert [sleeper.poll() for sleeper in started] == [None] * len(started)
    finally:
        for sleeper in started:
            sleeper.kill()
            sleeper.wait()


# -- hostile saved runs ---------------------------------------------------------------
#
# A saved run (pytest-benchmark's JSON) that was hand-edited or damaged, read back
# by the three readers: pytest's --benchmark-compare, and the command line's compare
# and report. Each reader gives one line naming the file, never a traceback, and a
# pytest run keeps (saves and prints) its own results.


def _warm_entry(data: Any) -> dict[str, Any]:
    return next(entry for entry in data["benchmarks"] if entry["fullname"].endswith("-warm]"))


def _set(path: str, value: object) -> Callable[[Any], Any]:
    """A damage that sets one key (``stats.median``) of the warm entry."""

    def damage(data: Any) -> Any:
        *parents, key = path.split(".")
        target = _warm_entry(data)
        for parent in parents:
            target = target[parent]
        target[key] = value
        return data

    return damage


def _without(path: str) -> Callable[[Any], Any]:
    """A damage that removes one key of the warm entry."""

    def damage(data: Any) -> Any:
        *parents, key = path.split(".")
        target = _warm_entry(data)
        for parent in parents:
            target = target[parent]
        del target[key]
        return data

    return damage


# (id, damage: the run's JSON -> the damaged JSON, or text for a file that is no JSON)
BAD_RUN_FILES: list[tuple[str, Callable[[Any], Any]]] = [
    ("not JSON", lambda data: "{not json"),
    ("a JSON list", lambda data: [data]),
    ("no benchmarks", lambda data: {"machine_info": data["machine_info"]}),
    ("benchmarks not a list", lambda data: {**data, "benchmarks": 3}),
    ("median is text", _set("stats.median", "fast")),
    ("min is null", _set("stats.min", None)),
    ("median missing", _without("stats.median")),
    ("no stats", _without("stats")),
    ("import tree not a list", _set("extra_info.import_tree", 5)),
    ("same-run base tree malformed", _set("extra_info.baseline", {"base_modules": [[1, 2]]})),
    (
        "same-run ratio is text",
        _set("extra_info.baseline", {"revision": "main", "commit": "0123abcd", "ratio": "fast"}),
    ),
]


@pytest.fixture
def damaged_storage(pytester: pytest.Pytester) -> pytest.Pytester:
    """A fake-rounds project with one saved run (0001) of one budget, cold and warm."""
    write_tree(pytester.path, {"steady/__init__.py": ""})
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"steady": {"seconds": 0.2}})
    pytester.makeini(quick_ini(3))
    pytester.makepyfile(
        test_imports="""
        import pytest

        @pytest.mark.import_budget("steady", warm="10s", cold="10s")
        def test_steady():
            pass
        """
    )
    pytester.runpytest("--benchmark-autosave").assert_outcomes(passed=1)
    return pytester


def _damage(run: Path, damage: Callable[[Any], Any]) -> None:
    damaged = damage(json.loads(run.read_text()))
    run.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))


@pytest.mark.parametrize(("case", "damage"), BAD_RUN_FILES, ids=[case for case, _ in BAD_RUN_FILES])
@pytest.mark.slow
def test_a_damaged_saved_run_is_one_line_in_every_reader(
    damaged_storage: pytest.Pytester, case: str, damage: Callable[[Any], Any]
) -> None:
    project = damaged_storage.path
    (baseline,) = sorted((project / ".benchmarks").glob("*/0001_*.json"))
    good = baseline.read_text()
    _damage(baseline, damage)

    # pytest-benchmark warns of a file it cannot load while it configures: let that
    # warning be one, as in a project without filterwarnings = error (with it, the
    # warning stops pytest-benchmark's configuration, before this plugin can act).
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        compared = damaged_storage.runpytest("--benchmark-compare=0001", "--benchmark-autosave")
    compared.assert_outcomes(passed=1)
    output = compared.stdout.str() + compared.stderr.str()
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    assert baseline.name in output
    # The run's own results: shown, and saved whole.
    assert "steady" in compared.stdout.str()
    (saved,) = sorted((project / ".benchmarks").glob("*/0002_*.json"))
    assert len(json.loads(saved.read_text())["benchmarks"]) == 2

    # The command line: compare against it, and report it, each one line (exit 2) or a page.
    for arguments in (
        ["compare", str(baseline), str(saved)],
        ["report", str(baseline), "--output", str(project / "r.html")],
        ["report", str(saved), "--against", str(baseline), "--output", str(project / "r.html")],
    ):
        process = subprocess.run(
            [sys.executable, "-m", "pytest_importcache", *arguments],
            capture_output=True,
            text=True,
            cwd=project,
            check=False,
        )
        assert "Traceback" not in process.stderr, arguments
        if process.returncode != 0:
            assert process.returncode == 2, arguments
            assert process.stderr.count("\n") == 1, arguments
            assert baseline.name in process.stderr, arguments
    # The history of the machine's runs: the damaged run skipped in one line, the rest shown.
    process = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "history"],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    assert process.stderr.count("\n") <= 1, process.stderr
    if process.stderr:
        assert f"skipped run file {baseline.relative_to(project)}" in process.stderr
    assert "  0002 " in process.stdout
    baseline.write_text(good)


# -- same-run comparisons in hostile repositories ---------------------------------------


@dataclass(frozen=True)
class RevisionCase:
    """A repository shape compared with ``HEAD``: committed files, then working-tree changes.

    ``change`` edits the working tree (and may set variables through the
    monkeypatch). Expected: a comparison (the revision's side loads ``loads``)
    or, with ``message``, one line of :class:`ImportCacheError` matching it.
    """

    id: str
    committed: dict[str, str]
    change: Callable[[Path, pytest.MonkeyPatch], None] = lambda repo, patch: None
    module: str = "app"
    loads: tuple[str, ...] = ()
    message: str = ""
    path: tuple[str, ...] = ("src",)


def _write(files: dict[str, str]) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def change(repo: Path, patch: pytest.MonkeyPatch) -> None:
        write_tree(repo, files)

    return change


def _staged(files: dict[str, str]) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def change(repo: Path, patch: pytest.MonkeyPatch) -> None:
        write_tree(repo, files)
        git(repo, "add", "--", *files)

    return change


def _link_committed(repo: Path, patch: pytest.MonkeyPatch) -> None:
    os.symlink("real.py", repo / "src/app/alias.py")
    commit_all(repo, "link")


def _module_became_package(repo: Path, patch: pytest.MonkeyPatch) -> None:
    git(repo, "rm", "-q", "src/app.py")
    write_tree(repo, {"src/app/__init__.py": "import decimal\n"})


def _package_became_module(repo: Path, patch: pytest.MonkeyPatch) -> None:
    git(repo, "rm", "-q", "-r", "src/app")
    write_tree(repo, {"src/app.py": "import decimal\n"})


def _hook_variables(repo: Path, patch: pytest.MonkeyPatch) -> None:
    other = make_repo(repo.parent / "other", {"x": ""})
    patch.setenv("GIT_DIR", str(other / ".git"))
    patch.setenv("GIT_WORK_TREE", str(other))
    patch.setenv("GIT_INDEX_FILE", str(repo.parent / "hook-index"))
    patch.setenv("GIT_COMMON_DIR", str(other / ".git"))


def _with_submodule(keep_commit: bool) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def change(repo: Path, patch: pytest.MonkeyPatch) -> None:
        library = make_repo(repo.parent / "library", {"__init__.py": "import decimal\n"})
        git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library),
            "src/app/vendored")  # fmt: skip
        checkout = repo / "src/app/vendored"
        if not keep_commit:
            (checkout / "__init__.py").write_text("import fractions\n")
            commit_all(checkout, "only here")
        commit_all(repo, "vendored")
        if not keep_commit:
            forget_last_commit(checkout)

    return change


def _vendored(
    files: dict[str, str], generated: dict[str, str] | None = None
) -> Callable[[Path, pytest.MonkeyPatch], None]:
    """A submodule at ``ext/sub`` holding ``files``; then ``generated`` written in it."""

    def change(repo: Path, patch: pytest.MonkeyPatch) -> None:
        library = make_repo(repo.parent / "library", files)
        git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library),
            "ext/sub")  # fmt: skip
        commit_all(repo, "vendored")
        write_tree(repo / "ext/sub", generated or {})

    return change


REVISION_CASES = [
    RevisionCase(
        "export-subst in a versioneer-style _version.py",
        {
            ".gitattributes": "src/app/_version.py export-subst\n",
            "src/app/__init__.py": "from ._version import full\n",
            "src/app/_version.py": "full = '$Format:%H$'\nif not full.startswith('$'):\n"
            "    import decimal\n",
        },
        loads=("app._version",),
    ),
    RevisionCase(
        "export-ignore on a submodule of the package",
        {
            ".gitattributes": "src/app/extra.py export-ignore\n",
            "src/app/__init__.py": "from . import extra\n",
            "src/app/extra.py": "",
        },
        loads=("app.extra",),
    ),
    RevisionCase(
        "export-ignore on the measured single-file module",
        {".gitattributes": "src/app.py export-ignore\n", "src/app.py": "import decimal\n"},
        loads=("decimal",),
    ),
    RevisionCase(
        "a committed symbolic link in the package",
        {"src/app/__init__.py": "from . import alias\n", "src/app/real.py": "import decimal\n"},
        change=_link_committed,
        loads=("app.alias", "decimal"),
    ),
    RevisionCase(
        "odd file names in the repository",
        {
            "src/app/__init__.py": "",
            "src/app/donn\u00e9es et espaces.txt": "x",
            "a b/\u00e9.py": "",
        },
        loads=("app",),
    ),
    RevisionCase(
        "a sibling package in the repository",
        {"src/app/__init__.py": "import core\n", "src/core/__init__.py": "import decimal\n"},
        loads=("core", "decimal"),
    ),
    RevisionCase(
        "a generated _version.py that git ignores",
        {".gitignore": "_version.py\n", "src/app/__init__.py": "from ._version import V\n"},
        change=_write({"src/app/_version.py": "V = '1.0.dev1'\n"}),
        loads=("app._version",),
    ),
    RevisionCase(
        "a generated subpackage that git ignores as a whole",
        {".gitignore": "_generated/\n", "src/app/__init__.py": "from ._generated import T\n"},
        change=_write(
            {
                "src/app/_generated/__init__.py": "from .table import T\n",
                "src/app/_generated/table.py": "T = 1\n",
            }
        ),
        loads=("app._generated.table",),
    ),
    RevisionCase(
        "an ignored directory on the path (an in-project environment)",
        {".gitignore": "env/\n", "src/app/__init__.py": "import dep\n"},
        change=_write({"env/dep/__init__.py": "import decimal\n"}),
        loads=("dep", "decimal"),
        path=("src", "env"),
    ),
    RevisionCase(
        "an untracked directory on the path that git does not ignore",
        {"src/app/__init__.py": "import dep\n"},
        change=_write({"vendor/dep/__init__.py": "import decimal\n"}),
        loads=("dep", "decimal"),
        path=("src", "vendor"),
    ),
    RevisionCase(
        "a submodule inside the package",
        {"src/app/__init__.py": "from . import vendored\n"},
        change=_with_submodule(keep_commit=True),
        loads=("app.vendored", "decimal"),
    ),
    RevisionCase(
        "a submodule whose recorded commit is not available",
        {"src/app/__init__.py": ""},
        change=_with_submodule(keep_commit=False),
        message=r"submodule src/app/vendored is at commit \w+ .*: fetch it there",
    ),
    RevisionCase(
        "a package inside a submodule (read at the commit the project records)",
        {"README": ""},
        change=_vendored({"vendored.py": "import decimal\n"}),
        module="vendored",
        loads=("decimal",),
        path=("ext/sub",),
    ),
    RevisionCase(
        "a generated file the submodule's own .gitignore ignores",
        {"README": ""},
        change=_vendored(
            {".gitignore": "_version.py\n", "vendored/__init__.py": "from ._version import V\n"},
            {"vendored/_version.py": "V = '1.0'\n"},
        ),
        module="vendored",
        loads=("vendored._version",),
        path=("ext/sub",),
    ),
    RevisionCase(
        "a submodule on the import path",
        {"src/app/__init__.py": "import vendored\n"},
        change=_vendored({"vendored.py": "import decimal\n"}),
        loads=("vendored", "decimal"),
        path=("src", "ext/sub"),
    ),
    RevisionCase(
        "a single-file module that is a package now",
        {"src/app.py": "import decimal\n"},
        change=_module_became_package,
        loads=("decimal",),
    ),
    RevisionCase(
        "a package that is a single-file module now",
        {"src/app/__init__.py": "import decimal\n"},
        change=_package_became_module,
        loads=("decimal",),
    ),
    RevisionCase(
        "a package absent at the revision (added to the index since)",
        {"README": ""},
        change=_staged({"src/app/__init__.py": ""}),
        message=r"'app' is absent at revision HEAD .*: neither app/ nor app\.py exists",
    ),
    RevisionCase(
        "a package git has never tracked",
        {"README": ""},
        change=_write({"src/app/__init__.py": ""}),
        message=r"'app' \(.*/src/app\) is not tracked by the git repository .*/repo "
        r"\(it is untracked\): a same-run comparison needs the package under version control",
    ),
    RevisionCase(
        "a package in a directory git ignores (an interpreter under a dotfiles repository)",
        {".gitignore": "/versions\n", "README": ""},
        change=_write({"versions/lib/app/__init__.py": ""}),
        message=r"'app' \(.*/versions/lib/app\) is not tracked by the git repository .*/repo "
        r"\(git ignores it\)",
        path=("versions/lib",),
    ),
    RevisionCase(
        "git variables a hook or CI step sets",
        {"src/app/__init__.py": "import decimal\n"},
        change=_hook_variables,
        loads=("decimal",),
    ),
]


@pytest.mark.parametrize("case", REVISION_CASES, ids=[case.id for case in REVISION_CASES])
@pytest.mark.slow
def test_hostile_repository(
    case: RevisionCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    repo = make_repo(tmp_path / "repo", case.committed)
    case.change(repo, monkeypatch)
    index = (repo / ".git/index").read_bytes()
    with monkeypatch.context() as clean:
        for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
            clean.delenv(name, raising=False)
        before = tree_state(repo)
    search_path = [str(repo / entry) for entry in case.path]
    measurer = Measurer(cache_dir=tmp_path / "cache", search_path=search_path)
    spec = MeasurementSpec(case.module, rounds=2, warmup=0)
    outcome: Comparison | ImportCacheError
    try:
        outcome = measure_against(measurer, spec, "HEAD", repo)  # pytest's rootdir
    except ImportCacheError as exc:
        outcome = exc
    if isinstance(outcome, ImportCacheError):
        assert case.message, f"unexpected error: {outcome}"
        assert "\n" not in str(outcome)
        assert re.search(case.message, str(outcome)), str(outcome)
    else:
        comparison = outcome
        assert not case.message, "compared where an error was expected"
        missing = [name for name in case.loads if name not in comparison.base.modules]
        assert not missing, f"not loaded at the revision: {missing}"
        # Every case leaves the import as it was: both sides load the same modules.
        assert set(comparison.base.modules) == set(comparison.head.modules)
        assert Path(comparison.base.file).is_relative_to(tmp_path / "cache")
        # No verdict on the ratio: two timed rounds a side on a shared machine
        # are noise (x3.4 was seen under load); the module sets say "unchanged".
    assert (repo / ".git/index").read_bytes() == index
    assert not (tmp_path / "hook-index").exists()
    monkeypatch.undo()
    assert tree_state(repo) == before
    assert not list(repo.rglob("__pycache__"))


# -- budgets without tests: bad pyproject.toml tables and a corrupt lock ------------------
# Each bad table is one line naming the entry (its index and module) and the key, in
# pytest (that item's error; the good budget beside it still runs) and in `check` (exit 2).
# Neither pyproject.toml nor the lock is changed.

GOOD_ENTRY = '{ module = "steady", warm = "10s" }'

# (id, the bad entry, a lock file's text or "", the line expected)
BAD_TABLES = [
    (
        "unknown key",
        '{ module = "other", colt = "1s" }',
        "",
        "pyproject.toml budgets[1] (module 'other'): unknown key 'colt'",
    ),
    (
        "wrong type",
        '{ module = "other", warm = true }',
        "",
        "pyproject.toml budgets[1] (module 'other'): warm=True is not a duration",
    ),
    (
        "a date",
        '{ module = "other", warm = 1979-05-27 }',
        "",
        "pyproject.toml budgets[1] (module 'other'): warm=1979-05-27 is not a duration",
    ),
    (
        "duplicate budget",
        '{ module = "steady", cold = "1s" }',
        "",
        "pyproject.toml budgets[1] (module 'steady'): duplicate budget: budgets[0] budgets "
        "'steady' already",
    ),
    (
        "duplicate budget with a problem of its own",
        '{ module = "steady", colt = "1s" }',
        "",
        "pyproject.toml budgets[1] (module 'steady'): unknown key 'colt'",
    ),
    ("not a table", '"steady"', "", "pyproject.toml budgets[1]: 'steady' is not a table"),
    (
        "module does not exist",
        '{ module = "nosuch", warm = "1s" }',
        "",
        "pyproject.toml budgets[1] (module 'nosuch'): ",
    ),
    (
        "corrupt lock",
        '{ module = "other", warm = "10s" }',
        "[steady]\npython = 3.11-linux\n  not a module\n",
        "importcache.lock:3: 'not a module' is not a module name",
    ),
    (
        "lock line before any section",
        '{ module = "other", warm = "10s" }',
        "python = eleven\n",
        "importcache.lock:1: 'python = eleven' comes before any [section]",
    ),
    (
        "lock section unclosed",
        '{ module = "other", warm = "10s" }',
        "[steady\n",
        "importcache.lock:1: '[steady' is not a section header [NAME]",
    ),
]


@pytest.mark.parametrize(
    ("entry", "lock", "line"),
    [case[1:] for case in BAD_TABLES],
    ids=[case[0] for case in BAD_TABLES],
)
@pytest.mark.slow
def test_a_bad_budgets_table_is_one_line_in_pytest_and_in_check(
    pytester: pytest.Pytester, entry: str, lock: str, line: str
) -> None:
    pyproject = f"[tool.importcache]\nbudgets = [\n  {GOOD_ENTRY},\n  {entry},\n]\n"
    write_tree(
        pytester.path,
        {"steady/__init__.py": "", "other/__init__.py": "", "pyproject.toml": pyproject},
    )
    if lock:
        (pytester.path / "importcache.lock").write_text(lock)
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"steady": {"seconds": 0.02}, "other": {"seconds": 0.02}})
    pytester.makeini(quick_ini())

    result = pytester.runpytest("-p", "no:cacheprovider")
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    shown = [each for each in output.splitlines() if line in each]
    assert shown, output
    assert "\n" not in shown[0]
    outcomes = result.parseoutcomes()
    if lock:  # the lock fails both budgets; each says so in its line
        assert outcomes.get("failed") == 2
    else:  # the good budget still runs and passes
        assert outcomes.get("passed") == 1
        assert outcomes.get("failed", 0) + outcomes.get("errors", outcomes.get("error", 0)) == 1

    completed = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "check"],
        capture_output=True,
        text=True,
        cwd=pytester.path,
        check=False,
    )
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert line in completed.stderr
    if lock:  # the closing line does not say the budgets hold
        assert completed.stdout.splitlines()[-1].endswith("the lock not checked")
    assert (pytester.path / "pyproject.toml").read_text() == pyproject
    assert not lock or (pytester.path / "importcache.lock").read_text() == lock


# A [tool.importcache] table no budget can be read from: (id, pyproject.toml's text, the line).
# In pytest one item errs in that line and the other tests still run (no collection error);
# `check` exits 2 with it. Text that is not TOML stops pytest itself (it reads the rootdir's
# pyproject.toml before any plugin), so that case is `check`'s alone.
UNUSABLE_TABLES = [
    (
        "typo in the key",
        f"[tool.importcache]\nbudgts = [{GOOD_ENTRY}]\n",
        "pyproject.toml: [tool.importcache]: unknown key 'budgts' (expected budgets)",
    ),
    (
        "budgets not an array",
        "[tool.importcache]\nbudgets = 3\n",
        "pyproject.toml: [tool.importcache] budgets = 3 is not an array of tables",
    ),
    (
        "table not a table",
        "[tool]\nimportcache = 3\n",
        "pyproject.toml: tool.importcache = 3 is not a table",
    ),
    (
        "not TOML",
        f"[tool.importcache\nbudgets = [{GOOD_ENTRY}]\n",
        "pyproject.toml: not valid TOML",
    ),
]


@pytest.mark.parametrize(
    ("text", "line"),
    [case[1:] for case in UNUSABLE_TABLES],
    ids=[case[0] for case in UNUSABLE_TABLES],
)
@pytest.mark.slow
def test_an_unusable_budgets_table_is_one_line_and_the_session_goes_on(
    pytester: pytest.Pytester, text: str, line: str
) -> None:
    write_tree(pytester.path, {"steady/__init__.py": "", "pyproject.toml": text})
    pytester.makepyfile(test_other="def test_other():\n    pass\n")
    pytester.makeini(quick_ini())
    if "not valid TOML" not in line:
        result = pytester.runpytest("-p", "no:cacheprovider")
        output = result.stdout.str()
        assert "INTERNALERROR" not in output
        assert "Traceback" not in output
        assert "Interrupted" not in output
        result.assert_outcomes(passed=1, errors=1)
        assert any(each.startswith(line) for each in output.splitlines()), output
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "check"],
        capture_output=True,
        text=True,
        cwd=pytester.path,
        check=False,
    )
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert line.split(": ", 1)[1] in completed.stderr
    assert (pytester.path / "pyproject.toml").read_text() == text


# `check --timeout`: anything but a positive, finite duration is one line, exit 2, before any
# budget is measured (it was a SpecError traceback).
BAD_CHECK_TIMEOUTS = ["-1", "0", "nan", "inf", "-5ms", "soon"]


@pytest.mark.parametrize("timeout", BAD_CHECK_TIMEOUTS)
def test_a_bad_check_timeout_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    from pytest_importcache.cli.main import main  # noqa: PLC0415 - the command line in-process

    write_tree(
        tmp_path,
        {
            "steady/__init__.py": "",
            "pyproject.toml": f"[tool.importcache]\nbudgets = [{GOOD_ENTRY}]\n",
        },
    )
    assert main(["check", "--pyproject", str(tmp_path), f"--timeout={timeout}"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert f"--timeout: {timeout!r} is not a" in captured.err
    assert not captured.out


# Hostile marker arguments (issue 20): (id, marker, the one line expected at setup).
BAD_MARKERS: list[tuple[str, str, str]] = [
    ("allow a number", 'import_budget("steady", allow=3)', "allow=3 is not a list of module"),
    ("allow bytes", 'import_budget("steady", allow=b"x")', "allow=b'x' is not a list"),
    ("allow empty pattern", 'import_budget("steady", allow=["a", ""])', "'' is not a non-empty"),
    (
        "allow raising",
        'import_budget("steady", allow=map(int, ["x"]))',
        "allow=<map object at *> could not be read: ValueError: invalid literal",
    ),
    ("memory without B", 'import_budget("steady", max_memory="60M")', "max_memory='60M' is not a"),
    (
        "memory negative",
        'import_budget("steady", max_memory=-1)',
        "max_memory=-1 is not a positive",
    ),
    ("memory float", 'import_budget("steady", max_memory=1.5)', "max_memory=1.5 is not a memory"),
    ("memory huge", 'import_budget("steady", max_memory=10**30)', "more memory than any"),
    ("lazy mode", 'import_budget("steady", warm="1s", lazy_imports="none")', "lazy_imports='none'"),
    ("startup nothing", 'startup_budget(warm="1s")', "startup_budget: a start-up budget needs"),
    ("startup both", 'startup_budget("x", code="pass", warm="1s")', "give a command or code"),
    ("startup quote", 'startup_budget("mycli \'open", warm="1s")', "cannot be split into words"),
    ("startup type", 'startup_budget(3.5, warm="1s")', "a command is a string or a list of words"),
    ("startup word", 'startup_budget(["mycli", None], warm="1s")', "words must be strings, not"),
    ("startup nul", 'startup_budget("my\\0cli", warm="1s")', "words must be strings, not"),
    ("startup no program", 'startup_budget(["", "-x"], warm="1s")', "first word must name a"),
    ("startup pipe", 'startup_budget("mycli --help | head", warm="1s")', "(found '|')"),
    ("startup env", 'startup_budget("FOO=1 mycli", warm="1s")', "or VAR=value (found 'FOO=1')"),
    ("startup empty code", 'startup_budget(code="", warm="1s")', "code must be a non-empty"),
    ("startup exit", 'startup_budget("mycli", warm="1s", exit_code=-1)', "exit_code=-1 is not an"),
    ("startup closure", 'startup_budget("mycli", warm="1s", closure=True)', "unknown argument clo"),
    ("startup no budget", 'startup_budget("mycli")', "startup_budget('mycli'): no budget given"),
    ("startup memory", 'startup_budget("mycli", max_memory="lots")', "max_memory='lots' is not"),
    ("startup allow", 'startup_budget(code="pass", allow=5)', "allow=5 is not a list of module"),
    (
        "startup surrogate word",
        'startup_budget(["python", "-m", "json.tool", "\\ud800"], warm="1s")',
        "word '\\ud800' cannot be passed to a process: surrogates not allowed",
    ),
]


@pytest.mark.slow
def test_hostile_marker_arguments_fail_their_own_test_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    write_tree(pytester.path, {"steady.py": ""})
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"steady": {"seconds": 0.01}})
    pytester.makeini(quick_ini())
    source = "import pytest\n\n"
    for index, (_, marker, _) in enumerate(BAD_MARKERS):
        source += f"@pytest.mark.{marker}\ndef test_bad_{index}():\n    pass\n\n"
    source += "def test_the_session_goes_on():\n    pass\n"
    pytester.makepyfile(test_markers=source)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=len(BAD_MARKERS))
    for index, (_, _, message) in enumerate(BAD_MARKERS):
        result.stdout.fnmatch_lines([f"*_ ERROR at setup of test_bad_{index} _*", f"*{message}*"])
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output


# Snippets ast.parse raises on with other errors than SyntaxError (issue 20): (id, marker,
# the one line expected). They fail their own test in one line, in the look-ahead too.
BAD_SNIPPETS: list[tuple[str, str, str]] = [
    (
        "a lone surrogate",
        """startup_budget(code="import json; x = '\\ud800'", warm="1s")""",
        "cannot be parsed: UnicodeEncodeError: 'utf-8' codec can't encode",
    ),
    (
        "deep nesting",
        'startup_budget(code="import json; x = " + "+".join(["1"] * 200000), warm="1s")',
        # RecursionError from 3.11; 3.10's parser overflows the C stack (in a process apart).
        "cannot be parsed: *",
    ),
    (
        "the parser's memory",
        'startup_budget(code="import json; x = " + "-" * 100000 + "1", warm="1s")',
        "cannot be parsed: MemoryError",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["time", "instructions"])
def test_unparsable_snippets_fail_their_own_test_in_one_line(
    pytester: pytest.Pytester, metric: str
) -> None:
    pytester.makeini(quick_ini())
    source = "import pytest\n\n"
    for index, (_, marker, _) in enumerate(BAD_SNIPPETS):
        source += f"@pytest.mark.{marker}\ndef test_bad_{index}():\n    pass\n\n"
    source += "def test_the_session_goes_on():\n    pass\n"
    pytester.makepyfile(test_snippets=source)
    # Two jobs: the look-ahead reads every later test's budgets.
    result = pytester.runpytest(f"--importcache-metric={metric}", "--importcache-jobs=2")
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    result.assert_outcomes(passed=1, failed=len(BAD_SNIPPETS))
    for index, (_, _, message) in enumerate(BAD_SNIPPETS):
        result.stdout.fnmatch_lines([f"*_ test_bad_{index} _*", f"startup_budget(*{message}*"])
