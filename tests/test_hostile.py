"""The hostile-input corpus: odd package shapes and hostile imports, each with its exact outcome.

Every case builds a small world (the package, and whatever it links to) in a
temporary directory, measures it with the engine, and asserts one of two
outcomes: a correct measurement (the modules it must and must not show), or
one readable error line of a given type. Whatever the outcome, the world is
unchanged afterwards (content and modification time of every file, no
``__pycache__``), and no process started by a round is left running.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import is_alive, write_tree
from pytest_importcache import ImportEnv, ImportResult
from pytest_importcache.errors import (
    EnvironmentBuildError,
    ImportCacheError,
    ImportRaisedError,
    InterpreterError,
    LocateError,
    RoundCrashedError,
    RoundTimeoutError,
)
from pytest_importcache.locate import ImportLocationWarning

needs_proc = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")


@dataclass(frozen=True)
class Case:
    """One hostile input: a world to build, a module to measure, and the expected outcome.

    ``build`` receives the world directory and returns the path entry to search.
    Expected: either ``error`` (a type) whose one-line message matches
    ``message``, or a measurement whose modules include ``loads`` and exclude
    ``skips``, and whose lazily created modules are ``lazy``.
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
    import py_compile

    write_tree(world, {"shy/__init__.py": "from . import secret\n"})
    source = world / "secret_source.py"
    source.write_text("import decimal\n", encoding="utf-8")
    py_compile.compile(str(source), cfile=str(world / "shy" / "secret.pyc"), doraise=True)
    source.unlink()
    return world


def sourceless_module(world: Path) -> Path:
    """A top-level module that exists only as ``alone.pyc``."""
    import py_compile

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
    import zipfile

    archive = world / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("zipped/__init__.py", "VALUE = 1\n")
    return archive


def extension_module(world: Path) -> Path:
    """A copy of the standard library's ``_json`` extension module, found first."""
    import _json

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

DAEMON = """\
import os, sys, time
pids = os.environ["HOSTILE_PIDS"]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(pids, "a") as handle:
            handle.write(f"{os.getpid()}\\n")
        time.sleep(60)
    os._exit(0)
"""

FORKED_SLEEPER = """\
import os, time
pids = os.environ["HOSTILE_PIDS"]
if os.fork() == 0:
    with open(pids, "a") as handle:
        handle.write(f"{os.getpid()}\\n")
    time.sleep(60)
    os._exit(0)
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
pids = os.environ["HOSTILE_PIDS"]
# A new session and an empty environment: neither the group nor the token finds it.
subprocess.Popen(
    ["/bin/sh", "-c", f"echo $$ >> {pids}; exec sleep 60"],
    env={}, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
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
)


@needs_proc
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_case(case, tmp_path, monkeypatch, metric="time")


@needs_proc
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.parametrize(
    "case",
    [case for case in CASES if case.id in COUNTED_CASES],
    ids=[case.id for case in CASES if case.id in COUNTED_CASES],
)
def test_hostile_input_counted(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_case(case, tmp_path, monkeypatch, metric="instructions")


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
    outcome: ImportResult | ImportCacheError
    try:
        env = ImportEnv(case.flavour, search_path=[str(entry), *extra, *sys.path], **settings)  # type: ignore[arg-type]
        with (
            pytest.warns(ImportLocationWarning, match=case.warning)
            if case.warning
            else contextlib.nullcontext()
        ):
            outcome = env.measure(case.module)
    except ImportCacheError as exc:
        outcome = exc
    if isinstance(outcome, ImportCacheError):
        assert case.error is not None, f"unexpected error: {outcome}"
        assert isinstance(outcome, case.error), f"{type(outcome).__name__}: {outcome}"
        first_line = str(outcome).splitlines()[0]
        assert "\n" not in getattr(outcome, "message", first_line)
        assert re.search(case.message, first_line), first_line
    else:
        assert case.error is None, f"expected {case.error.__name__}, measured {outcome.file}"
        assert Path(outcome.file).is_relative_to(tmp_path / "cache")
        missing = [name for name in case.loads if name not in outcome.modules]
        assert not missing, f"not loaded: {missing}; loaded: {list(outcome.modules)}"
        assert not [name for name in case.skips if name in outcome.modules]
        assert outcome.lazy_modules == case.lazy
    assert snapshot(world) == before, "the measured tree changed"
    deadline = time.monotonic() + 2
    while round_processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert round_processes_mentioning(str(tmp_path)) == []
    if case.spawns:
        started = [int(line) for line in pids.read_text().split()]
        assert started, "the import did not start its process"
        assert not [pid for pid in started if is_alive(pid)], "a started process outlived the round"


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_signal_numbers_are_named_in_crash_messages() -> None:
    from pytest_importcache.runner import _exit_description

    assert _exit_description(-signal.SIGKILL) == "signal SIGKILL"
    assert _exit_description(3) == "exit code 3"


@needs_proc
def test_children_the_caller_starts_during_a_round_are_left_alone(tmp_path: Path) -> None:
    import subprocess
    import threading

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
