"""Free-threaded CPython (``sys.abiflags`` with ``t``) as the interpreter under test.

No such build exists on this machine or in the Debian sid root CI uses
(Debian ships no ``python3.14-nogil``/``python3.15-nogil``, pyenv has none):
these tests skip there, saying so. Elsewhere, point
``IMPORTCACHE_FREE_THREADED_PYTHON`` at one (or have ``python3.1Xt`` on
``PATH``, in ``/usr/bin`` or in pyenv) and they check that its copies and its
counts are kept apart from the default build of the same version.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_importcache import ImportEnv
from pytest_importcache.engine.copying import environment_dir_name
from pytest_importcache.engine.countkey import count_key
from pytest_importcache.model.spec import MeasurementSpec

# The variable that names a free-threaded interpreter to test with.
FREE_THREADED_VARIABLE = "IMPORTCACHE_FREE_THREADED_PYTHON"
_PROBE = "import sys, sysconfig; print(sysconfig.get_config_var('Py_GIL_DISABLED'), sys.abiflags)"


def _candidates() -> list[str]:
    named = os.environ.get(FREE_THREADED_VARIABLE)
    if named:
        return [named]
    found = []
    for minor in range(13, 20):
        for candidate in (shutil.which(f"python3.{minor}t"), f"/usr/bin/python3.{minor}t"):
            if candidate:
                found.append(candidate)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found += [str(path / "bin" / "python") for path in sorted(pyenv.glob("3.*t"))]
    return found


def _is_free_threaded(python: str) -> bool:
    try:
        completed = subprocess.run(
            [python, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.stdout.split()[:1] == ["1"]


def free_threaded_python() -> str | None:
    """A free-threaded CPython found here, or ``None``."""
    return next((python for python in _candidates() if _is_free_threaded(python)), None)


@pytest.fixture(scope="module")
def free_threaded() -> str:
    python = free_threaded_python()
    if python is None:
        pytest.skip(
            "no free-threaded CPython (sys.abiflags with 't') here: Debian sid has no "
            f"python3.14-nogil or python3.15-nogil, pyenv none; set {FREE_THREADED_VARIABLE}"
        )
    return python


@pytest.fixture(scope="module")
def default_build(free_threaded: str) -> str:
    """The default (GIL) build of the free-threaded one's version, beside it."""
    version = subprocess.run(
        [free_threaded, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for candidate in (str(Path(free_threaded).with_name(f"python{version}")), f"python{version}"):
        found = shutil.which(candidate)
        if found and not _is_free_threaded(found):
            return found
    pytest.skip(f"no default build of Python {version} beside {free_threaded}")


@pytest.mark.slow
def test_no_free_threaded_python_is_none_when_the_variable_names_a_default_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(FREE_THREADED_VARIABLE, sys.executable)
    assert free_threaded_python() is (sys.executable if _is_free_threaded(sys.executable) else None)


@pytest.mark.slow
def test_its_copies_are_kept_apart_from_the_default_builds(
    free_threaded: str, default_build: str
) -> None:
    for flavour in ("cold", "warm"):
        spec = MeasurementSpec("json", flavour=flavour)
        assert environment_dir_name(spec, free_threaded) != environment_dir_name(
            spec, default_build
        )


@pytest.mark.slow
def test_its_counts_are_kept_apart_from_the_default_builds(
    free_threaded: str, default_build: str, tmp_path: Path
) -> None:
    spec = MeasurementSpec("json", metric="instructions", rounds=1, warmup=0)
    keys = {
        python: count_key(spec, python, [tmp_path], tmp_path / "rounds", runner="real")
        for python in (free_threaded, default_build)
    }
    assert keys[free_threaded] != keys[default_build]


@pytest.mark.slow
def test_an_import_is_measured_under_it(free_threaded: str, tmp_path: Path) -> None:
    env = ImportEnv("warm", python=free_threaded, rounds=1, warmup=0, cache_dir=tmp_path)
    result = env.measure("json")
    assert "json" in result.modules
