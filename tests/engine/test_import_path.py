"""The round sees the import path the tests see: siblings import, the original never does."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import quick_ini, run_tests, write_tree
from pytest_importcache import ImportEnv
from pytest_importcache.cli.main import main
from pytest_importcache.engine.measurer import Measurer, round_import_path
from pytest_importcache.model.spec import MeasurementSpec


def guarded(original: Path) -> str:
    """Source that refuses to run from ``original``'s directory (only the copy may run)."""
    return (
        "import os\n"
        f"if os.path.dirname(os.path.abspath(__file__)) == {str(original)!r}:\n"
        "    raise ImportError('the original tree was imported: ' + __file__)\n"
    )


def app_and_core(root: Path, core_source: str = "VALUE = 1\n") -> Path:
    """``root/app`` importing ``root/core`` (a sibling) and, through it, ``app.sub``."""
    write_tree(
        root,
        {
            "app/__init__.py": guarded(root / "app") + "import core\n",
            "app/sub.py": guarded(root / "app") + "X = 1\n",
            "core/__init__.py": core_source + "import app.sub\n",
        },
    )
    return root


@pytest.mark.slow
def test_a_sibling_package_on_the_search_path_is_imported(tmp_path: Path) -> None:
    src = app_and_core(tmp_path / "src")
    env = ImportEnv(
        "cold", rounds=1, warmup=0, cache_dir=tmp_path / "cache", search_path=[str(src)]
    )

    result = env.measure("app")

    assert {"app", "core", "app.sub"} <= set(result.modules)
    assert Path(result.file).is_relative_to(tmp_path / "cache")
    # Neither the measured package's original tree nor its sibling is written to.
    assert not list(src.rglob("__pycache__"))


@pytest.mark.slow
def test_a_heavy_sibling_shows_in_the_measurement(tmp_path: Path) -> None:
    src = app_and_core(tmp_path / "src", "import time\ntime.sleep(0.3)\nimport decimal\n")
    env = ImportEnv(
        "warm", rounds=1, warmup=0, cache_dir=tmp_path / "cache", search_path=[str(src)]
    )

    result = env.measure("app")

    assert "decimal" in result.modules
    assert result.modules["core"].cumulative_cost >= 0.3
    assert result.modules["app"].cumulative_cost >= 0.3


@pytest.mark.slow
def test_a_namespace_package_gets_no_portion_from_its_original_directory(tmp_path: Path) -> None:
    # The directory holding the original is on the round's path (for `core`): a
    # namespace package would collect it as a portion unless the copy alone serves it.
    src = write_tree(
        tmp_path / "src",
        {
            "nsapp/mod.py": "import core\n",
            "core/__init__.py": (
                "import nsapp\n"
                f"if any(p.startswith({str(tmp_path / 'src')!r}) for p in nsapp.__path__):\n"
                "    raise ImportError('original portion: %s' % list(nsapp.__path__))\n"
            ),
        },
    )
    env = ImportEnv(
        "warm", rounds=1, warmup=0, cache_dir=tmp_path / "cache", search_path=[str(src)]
    )

    assert "core" in env.measure("nsapp.mod").modules


@pytest.mark.slow
def test_an_explicit_import_path_in_the_spec_reaches_the_round(tmp_path: Path) -> None:
    src = app_and_core(tmp_path / "src")
    elsewhere = write_tree(tmp_path / "elsewhere", {"core/__init__.py": "import app.sub\n"})
    measurer = Measurer(cache_dir=tmp_path / "cache", search_path=[str(src)])
    spec = MeasurementSpec("app", rounds=1, warmup=0, import_path=(str(elsewhere),))

    result = measurer.measure(spec)

    assert "core" in result.modules


def test_the_import_path_is_validated() -> None:
    with pytest.raises(ValueError, match="import_path must be a tuple of absolute"):
        MeasurementSpec("app", import_path=("relative/dir",))
    with pytest.raises(ValueError, match="import_path must be a tuple of absolute"):
        MeasurementSpec("app", import_path=["/a"])  # type: ignore[arg-type]


def test_the_round_path_keeps_project_entries_in_order_and_drops_the_installation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stdlib = sysconfig.get_paths()["stdlib"]
    purelib = sysconfig.get_paths()["purelib"]
    entries = ["/b/src", "", stdlib, "/a", purelib, "/b/src", "rel"]

    assert round_import_path(entries) == ("/b/src", str(tmp_path), "/a", str(tmp_path / "rel"))


@pytest.mark.slow
def test_pytests_pythonpath_setting_reaches_the_round(pytester: pytest.Pytester) -> None:
    app_and_core(pytester.path / "src")
    pytester.makeini(quick_ini(1).replace("pythonpath = .", "pythonpath = src"))
    result = run_tests(
        pytester,
        """
        import pytest

        @pytest.mark.import_budget("app", max_modules=50)
        def test_app(warm_import_env):
            assert "core" in warm_import_env.measure("app", rounds=1).modules
        """,
    )
    result.assert_outcomes(passed=1)
    assert not list((pytester.path / "src").rglob("__pycache__"))


@pytest.mark.slow
def test_the_rootdir_conftest_insertion_reaches_the_round(pytester: pytest.Pytester) -> None:
    # rootdir/conftest.py (prepend import mode) puts the rootdir on sys.path:
    # `app` and its sibling `core` are found there, and nowhere else.
    app_and_core(pytester.path)
    pytester.makeconftest("")
    pytester.makeini(quick_ini(1).replace("pythonpath = .\n", ""))
    write_tree(
        pytester.path,
        {
            "tests/test_app.py": """
                import pytest

                @pytest.mark.import_budget("app", max_modules=50)
                def test_app():
                    pass
            """
        },
    )
    result = pytester.runpytest("tests", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_pythonpath_variable_reaches_the_round(tmp_path: Path) -> None:
    src = app_and_core(tmp_path / "src")
    environment = {**os.environ, "PYTHONPATH": str(src), "TMPDIR": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "app", "--rounds", "1", "--warmup", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "No module named" not in completed.stdout + completed.stderr


@pytest.mark.slow
def test_the_command_lines_path_option_finds_siblings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app_and_core(tmp_path / "project")
    monkeypatch.chdir(tmp_path / "project")

    status = main(["app", "--path", ".", "--rounds", "1", "--warmup", "0", "--json"])

    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "core" in captured.out
    assert not list((tmp_path / "project").rglob("__pycache__"))
