"""Real setups: editable installs made by pip, start-up finders, other interpreters.

A sandbox virtual environment gets real ``pip install -e`` installs of small
setuptools projects: flat layouts (installed as a meta-path finder imported
by a ``.pth`` line at every start-up) and a src layout (a ``.pth`` path
line). The engine runs inside the sandbox, in a driver interpreter, so the
sandbox's start-up is the one a user's ``pytest`` would have.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path
from typing import Any

import pytest

import pytest_importcache
from conftest import write_tree
from pytest_importcache import ImportEnv
from pytest_importcache.cli.main import main
from pytest_importcache.engine.locate import ImportLocationWarning
from pytest_importcache.engine.runner import run_round

pytestmark = pytest.mark.slow

PROJECTS = {
    # Unrelated to anything measured: only its start-up finder matters.
    "unrelated": {
        "pyproject.toml": "[tool.setuptools]\npackages = ['unrelated']\n",
        "unrelated/__init__.py": "",
    },
    # A flat layout: importable only through its finder.
    "flatdep": {
        "pyproject.toml": "[tool.setuptools]\npackages = ['flatdep']\n",
        "flatdep/__init__.py": "import json\n",
    },
    # A src layout: a .pth path line; it ships no bytecode.
    "srcdep": {
        "pyproject.toml": "[tool.setuptools.packages.find]\nwhere = ['src']\n",
        "src/srcdep/__init__.py": "import decimal\n",
    },
    # A project directory named like its package, the package one level down.
    "edfind": {
        "pyproject.toml": "[tool.setuptools]\npackages = ['edfind']\n",
        "edfind/__init__.py": "import json\nfrom . import core\n",
        "edfind/core.py": "import decimal\n",
    },
}

DRIVER = """\
import json, os, sys
options = json.loads(sys.argv[1])
if options.get("drop_cwd"):
    sys.path[:] = [entry for entry in sys.path if entry not in ("", os.getcwd())]
for name in options.get("import_first", []):
    __import__(name)
sys.path[0:0] = options.get("prepend", [])
from pytest_importcache import ImportEnv
try:
    result = ImportEnv(
        options.get("flavour", "warm"), rounds=2, warmup=0, cache_dir=options["cache"],
        python=options.get("python"),
    ).measure(options["module"])
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
else:
    print(json.dumps({
        "file": result.file, "modules": list(result.modules),
        "startup": result.startup_modules, "python_version": result.python_version,
    }))
"""


def _pyproject(name: str, extra: str) -> str:
    return (
        textwrap.dedent(
            f"""\
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "0.1"
        """
        )
        + extra
    )


class Sandbox:
    """A virtual environment with editable installs, and a driver that measures inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = str(root / "venv" / "bin" / "python")
        self.projects = root / "projects"
        self.site_packages = Path(
            subprocess.check_output(
                [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                text=True,
            ).strip()
        )

    def measure(self, cwd: Path, cache: Path, module: str, **options: Any) -> dict[str, Any]:
        """Run the engine in the sandbox from ``cwd``; the result or the error as a dict."""
        completed = subprocess.run(
            [
                self.python,
                "-c",
                DRIVER,
                json.dumps({"module": module, "cache": str(cache), **options}),
            ],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **options.pop("environment", {})},
        )
        assert completed.returncode == 0, completed.stderr
        answer: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
        return answer

    def startup_module_count(self) -> int:
        """How many modules a plain ``python -I`` start-up loads in the sandbox."""
        output = subprocess.check_output(
            [self.python, "-I", "-c", "import sys; print(len(sys.modules))"], text=True
        )
        return int(output)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """The sandbox, built once per test module (pip builds four projects, about a second)."""
    root = tmp_path_factory.mktemp("sandbox")
    venv.EnvBuilder(symlinks=True, with_pip=False).create(root / "venv")
    sandbox = Sandbox(root)
    # The engine and its dependencies (setuptools too, from the test extra) as a
    # plain path line: for the driver, and for pip to build without an isolated
    # build environment per project (seconds each).
    engine_home = Path(pytest_importcache.__file__).parent.parent
    paths = [str(engine_home), sysconfig.get_paths()["purelib"]]
    (sandbox.site_packages / "zz_engine.pth").write_text("\n".join(paths) + "\n")
    for name, files in PROJECTS.items():
        tree = {**files, "pyproject.toml": _pyproject(name, files["pyproject.toml"])}
        write_tree(root / "projects" / name, tree)
    command = [sys.executable, "-m", "pip", "--python", sandbox.python, "install", "-q"]
    command += ["--disable-pip-version-check", "--no-build-isolation", "--no-deps"]
    for name in PROJECTS:
        command += ["-e", str(root / "projects" / name)]
    installed = subprocess.run(command, capture_output=True, text=True, check=False)
    if installed.returncode != 0:
        pytest.fail(f"pip could not make the editable installs: {installed.stderr[-800:]}")
    return sandbox


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under ``root`` with its size and modification time."""
    return {
        str(path.relative_to(root)): (path.lstat().st_size, path.lstat().st_mtime_ns)
        for path in root.rglob("*")
    }


def test_an_unrelated_start_up_finder_changes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    finder_line = next(sandbox.site_packages.glob("__editable__*unrelated*.pth"))
    polluted = sandbox.measure(tmp_path, tmp_path / "cache", "json")
    assert sandbox.startup_module_count() > polluted["startup"]  # the finder's imports are gone
    hidden = finder_line.with_suffix(".hidden")
    finder_line.rename(hidden)
    try:
        clean = sandbox.measure(tmp_path, tmp_path / "cache", "json")
    finally:
        hidden.rename(finder_line)
    assert polluted["modules"] == clean["modules"]
    assert polluted["startup"] == clean["startup"]
    assert "re" in polluted["modules"]  # json's own imports count, though the finder loaded them


@pytest.mark.skipif(sys.version_info < (3, 15), reason="PEP 829's .start files are 3.15's")
def test_a_start_up_entry_point_runs_no_earlier_than_an_import_line(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # A .start file (PEP 829) names a callable that plain start-up imports and
    # calls; in a round it waits, as an import line does, and its module's
    # imports stay the measured import's own.
    tree = write_tree(tmp_path / "tree", {"usescolorsys.py": "import colorsys\n"})
    clean = sandbox.measure(tmp_path, tmp_path / "cache", "usescolorsys", prepend=[str(tree)])
    entry_point = sandbox.site_packages / "zzstartprobe.start"
    hook = sandbox.site_packages / "zzstartprobe.py"
    hook.write_text("import colorsys\n\ndef hook():\n    pass\n")
    entry_point.write_text("zzstartprobe:hook\n")
    try:
        plain = subprocess.check_output(
            [sandbox.python, "-c", "import sys; print('colorsys' in sys.modules)"], text=True
        )
        polluted = sandbox.measure(
            tmp_path, tmp_path / "cache", "usescolorsys", prepend=[str(tree)]
        )
    finally:
        entry_point.unlink()
        hook.unlink()
    assert plain.strip() == "True"  # plain start-up ran the entry point
    assert "error" not in polluted, polluted
    assert "colorsys" in polluted["modules"]
    assert polluted["modules"] == clean["modules"]
    assert polluted["startup"] == clean["startup"]


def test_a_package_only_its_finder_knows_is_located_and_measured(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # `pytest tests` from the project root: the root is not on sys.path.
    project = sandbox.projects / "flatdep"
    before = tree_state(project)
    answer = sandbox.measure(project, tmp_path / "cache", "flatdep", drop_cwd=True)
    assert "error" not in answer, answer
    assert Path(answer["file"]).is_relative_to(tmp_path / "cache")
    assert {"flatdep", "json"} <= set(answer["modules"])
    assert tree_state(project) == before


def test_a_dependency_only_a_finder_provides_still_imports(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    tree = write_tree(tmp_path / "tree", {"usesflat.py": "import flatdep\n"})
    answer = sandbox.measure(tmp_path, tmp_path / "cache", "usesflat", prepend=[str(tree)])
    assert "error" not in answer, answer
    assert {"usesflat", "flatdep", "json"} <= set(answer["modules"])
    # The finder's own imports (pathlib, for one) are not the import's.
    assert "pathlib" not in answer["modules"]


def test_the_package_the_test_imported_is_measured_not_a_same_named_directory(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # The cwd holds the project directory `edfind/`, a namespace portion on sys.path;
    # the test process imported the real package (through its finder) first.
    answer = sandbox.measure(
        sandbox.projects,
        tmp_path / "cache",
        "edfind",
        drop_cwd=True,
        import_first=["edfind"],
        prepend=[str(sandbox.projects)],
    )
    assert "error" not in answer, answer
    assert answer["file"].endswith(os.path.join("edfind", "__init__.py"))
    assert {"edfind", "edfind.core", "decimal"} <= set(answer["modules"])


def test_a_same_named_project_directory_before_the_editable_finder_names_both(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # `python -c "import edfind"` from here imports the project directory `edfind/`
    # (a namespace package: the path finder runs before setuptools' finder). Measuring
    # that, or the finder's package, would each be a silent guess.
    imported = subprocess.run(
        [sandbox.python, "-c", "import edfind; print(edfind.__file__)"],
        cwd=sandbox.projects,
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip() == "None"
    answer = sandbox.measure(sandbox.projects, tmp_path / "cache", "edfind")
    assert answer.get("error") == "LocateError", answer
    assert "\n" not in answer["message"]
    assert str(sandbox.projects / "edfind") + " (a namespace package" in answer["message"]
    assert str(sandbox.projects / "edfind" / "edfind" / "__init__.py") in answer["message"]


@pytest.mark.parametrize("dont_write_bytecode", ["", "1"])
@pytest.mark.parametrize("flavour", ["cold", "warm"])
def test_rounds_never_write_into_a_dependencys_tree(
    sandbox: Sandbox, tmp_path: Path, flavour: str, dont_write_bytecode: str
) -> None:
    dependency = sandbox.projects / "srcdep"
    before = tree_state(dependency)
    tree = write_tree(tmp_path / "tree", {"usessrc.py": "import srcdep\n"})
    environment = {"PYTHONDONTWRITEBYTECODE": dont_write_bytecode} if dont_write_bytecode else {}
    answer = sandbox.measure(
        tmp_path,
        tmp_path / "cache",
        "usessrc",
        flavour=flavour,
        prepend=[str(tree)],
        environment=environment,
    )
    assert "error" not in answer, answer
    assert "srcdep" in answer["modules"]
    assert tree_state(dependency) == before
    assert not list(dependency.rglob("__pycache__"))


def _other_python() -> str | None:
    """An installed CPython 3.9+ other than this one (pyenv), if any."""
    root = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser()
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in sorted(root.glob("versions/3.*/bin/python"), reverse=True):
        version = candidate.parent.parent.name
        minor = int(version.split(".")[1])
        if minor >= 9 and not version.startswith(running + "."):
            return str(candidate)
    return None


OTHER_PYTHON = _other_python()


@pytest.mark.skipif(OTHER_PYTHON is None, reason="no second CPython 3.9+ under pyenv")
@pytest.mark.parametrize("module", ["json", "decimal"])
def test_another_interpreter_measures_its_own_standard_library(tmp_path: Path, module: str) -> None:
    assert OTHER_PYTHON is not None
    __import__(module)
    with pytest.warns(ImportLocationWarning, match=r"finds its own\); this process imported"):
        result = ImportEnv(
            "warm", python=OTHER_PYTHON, rounds=1, warmup=0, cache_dir=tmp_path
        ).measure(module)
    theirs = subprocess.check_output(
        [OTHER_PYTHON, "-I", "-c", f"import {module}; print({module}.__file__)"], text=True
    ).strip()
    measured = Path(result.file)
    assert measured.is_relative_to(tmp_path)
    assert measured.read_bytes() == Path(theirs).read_bytes()
    assert result.python_version.split(".")[:2] != [str(part) for part in sys.version_info[:2]]


@pytest.mark.skipif(OTHER_PYTHON is None, reason="no second CPython 3.9+ under pyenv")
def test_the_command_line_notes_which_file_another_interpreter_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert OTHER_PYTHON is not None
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the command line's cache of copies
    monkeypatch.setattr("tempfile.tempdir", None)
    assert main(["json", "--python", OTHER_PYTHON, "--rounds", "1", "--warmup", "0"]) == 0
    notes = capsys.readouterr().err.splitlines()
    assert len(notes) == 1
    assert notes[0].startswith("pytest-importcache: note: 'json' is measured from ")
    assert f"({OTHER_PYTHON} finds its own)" in notes[0]


def test_interpreters_the_import_starts_write_no_bytecode_either(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    dependency = sandbox.projects / "srcdep"
    before = tree_state(dependency)
    shellout = "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'import srcdep'])\n"
    tree = write_tree(tmp_path / "tree", {"shellout.py": shellout})
    answer = sandbox.measure(tmp_path, tmp_path / "cache", "shellout", prepend=[str(tree)])
    assert "error" not in answer, answer
    assert tree_state(dependency) == before


def test_a_sitecustomize_is_not_run_in_the_rounds(sandbox: Sandbox, tmp_path: Path) -> None:
    """A ``sitecustomize`` in site-packages runs at every start-up of the sandbox, not in rounds."""
    own = Path(sysconfig.get_paths()["stdlib"]) / "sitecustomize.py"
    if own.exists():
        pytest.skip(f"{own} (the distribution's own, Debian's) shadows one in site-packages")
    marker = tmp_path / "sitecustomize-ran.txt"
    customize = sandbox.site_packages / "sitecustomize.py"
    customize.write_text(
        "import colorsys, os\n"
        "if 'CUSTOMIZE_MARKER' in os.environ:\n"
        "    with open(os.environ['CUSTOMIZE_MARKER'], 'a') as handle:\n"
        "        handle.write(f'{os.getpid()}\\n')\n"
    )
    stamp = tmp_path / "seen-by-the-import.txt"
    tree = write_tree(
        tmp_path / "tree",
        {
            "customized.py": "import os, sys\n"
            "with open(os.environ['CUSTOMIZE_STAMP'], 'a') as handle:\n"
            "    handle.write(f'{\"sitecustomize\" in sys.modules} {os.getpid()}\\n')\n"
            "import colorsys\n"
        },
    )
    try:
        answer = sandbox.measure(
            tmp_path,
            tmp_path / "cache",
            "customized",
            prepend=[str(tree)],
            environment={"CUSTOMIZE_MARKER": str(marker), "CUSTOMIZE_STAMP": str(stamp)},
        )
    finally:
        customize.unlink()
    assert "error" not in answer, answer
    rounds = [line.split() for line in stamp.read_text().splitlines()]
    assert len(rounds) == 2
    assert [seen for seen, _ in rounds] == ["False", "False"]
    # It is live in the sandbox: it ran in the driver (and the compiler), in no round.
    ran_in = marker.read_text().split()
    assert ran_in
    assert not set(ran_in) & {pid for _, pid in rounds}
    # What it imports is the import's own cost, not start-up's.
    assert "colorsys" in answer["modules"]


# Build backends whose editable finders serve a generated `_version.py` from outside the
# source tree: scikit-build-core's redirect (from the wheel's install directory) and
# meson-python's loader (from the build directory, through its path hook).
BACKEND_PROJECTS = {
    "skpkg": {
        "pyproject.toml": textwrap.dedent(
            """\
            [build-system]
            requires = ["scikit-build-core"]
            build-backend = "scikit_build_core.build"
            [project]
            name = "skpkg"
            version = "0.1"
            [tool.scikit-build]
            wheel.packages = ["src/skpkg"]
            """
        ),
        "CMakeLists.txt": textwrap.dedent(
            """\
            cmake_minimum_required(VERSION 3.15)
            project(${SKBUILD_PROJECT_NAME} LANGUAGES NONE VERSION ${SKBUILD_PROJECT_VERSION})
            configure_file(src/skpkg/_version.py.in ${CMAKE_CURRENT_BINARY_DIR}/_version.py)
            install(FILES ${CMAKE_CURRENT_BINARY_DIR}/_version.py DESTINATION skpkg)
            """
        ),
        "src/skpkg/__init__.py": "from ._version import version\nfrom . import core\n",
        "src/skpkg/core.py": "import decimal\n",
        "src/skpkg/_version.py.in": "version = '@PROJECT_VERSION@'\n",
    },
    "mespkg": {
        "pyproject.toml": textwrap.dedent(
            """\
            [build-system]
            requires = ["meson-python"]
            build-backend = "mesonpy"
            [project]
            name = "mespkg"
            version = "0.1"
            """
        ),
        "meson.build": textwrap.dedent(
            """\
            project('mespkg', version: '0.1')
            py = import('python').find_installation()
            py.install_sources(['src/mespkg/__init__.py', 'src/mespkg/core.py'], subdir: 'mespkg')
            conf = configuration_data()
            conf.set('VERSION', meson.project_version())
            configure_file(input: 'src/mespkg/_version.py.in', output: '_version.py',
              configuration: conf, install: true, install_dir: py.get_install_dir() / 'mespkg')
            """
        ),
        "src/mespkg/__init__.py": "from ._version import version\nfrom . import core\n",
        "src/mespkg/core.py": "import decimal\n",
        "src/mespkg/_version.py.in": "version = '@VERSION@'\n",
    },
}


@pytest.fixture(scope="module")
def backend_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """A sandbox with real editable installs made by scikit-build-core and meson-python."""
    pytest.importorskip("scikit_build_core")
    pytest.importorskip("mesonpy")
    tools = Path(sys.executable).parent  # cmake, meson and ninja of the test extra
    if not all((tools / tool).exists() for tool in ("cmake", "meson", "ninja")):
        pytest.skip("cmake, meson and ninja are not installed beside this interpreter")
    root = tmp_path_factory.mktemp("backends")
    venv.EnvBuilder(symlinks=True, with_pip=False).create(root / "venv")
    sandbox = Sandbox(root)
    engine_home = Path(pytest_importcache.__file__).parent.parent
    paths = [str(engine_home), sysconfig.get_paths()["purelib"]]
    (sandbox.site_packages / "zz_engine.pth").write_text("\n".join(paths) + "\n")
    command = [sys.executable, "-m", "pip", "--python", sandbox.python, "install", "-q"]
    command += ["--disable-pip-version-check", "--no-build-isolation", "--no-deps"]
    for name, files in BACKEND_PROJECTS.items():
        command += ["-e", str(write_tree(root / "projects" / name, files))]
    environment = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    installed = subprocess.run(
        command, capture_output=True, text=True, check=False, env=environment
    )
    if installed.returncode != 0:
        pytest.fail(f"pip could not make the editable installs: {installed.stderr[-800:]}")
    return sandbox


@pytest.mark.parametrize("module", ["skpkg", "mespkg"])
def test_a_generated_file_an_editable_backend_serves_from_its_build_is_copied(
    backend_sandbox: Sandbox, tmp_path: Path, module: str
) -> None:
    project = backend_sandbox.projects / module
    imported = subprocess.run(
        [backend_sandbox.python, "-c", f"import {module}._version as v; print(v.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert not Path(imported.stdout.strip()).is_relative_to(project / "src")
    before = tree_state(project / "src")
    answer = backend_sandbox.measure(tmp_path, tmp_path / "cache", module)
    assert "error" not in answer, answer
    assert Path(answer["file"]).is_relative_to(tmp_path / "cache")
    assert {module, f"{module}._version", f"{module}.core", "decimal"} <= set(answer["modules"])
    assert tree_state(project / "src") == before


def test_a_counted_round_reports_the_start_up_finders_it_ran_as_inputs(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # The editable finder's module (its mapping of names to project directories) is
    # loaded while the round is paused, but its find_spec runs during the counted
    # import: re-pointing the mapping must change the stored count's inputs.
    pytest.importorskip("pytest_importcache.engine.callgrind").find_valgrind()

    tree = write_tree(tmp_path / "tree", {"usesflat.py": "import flatdep\n"})
    workdir = tmp_path / "rounds"
    workdir.mkdir()
    report = run_round(
        "usesflat",
        [tree],
        workdir,
        python=sandbox.python,
        metric="instructions",
        module_costs=False,
    )
    assert "flatdep" in report.loaded
    finders = [
        path
        for path, _ in report.inputs
        if Path(path).name.startswith("__editable__") and path.endswith("_finder.py")
    ]
    assert any("flatdep" in Path(path).name for path in finders), report.inputs
