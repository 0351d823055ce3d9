"""The README, tried literally: its examples run as written, its recipes end as it says."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAKE_ROUNDS_CONFTEST, fake_rounds, quick_ini, write_tree

README = Path(__file__).parent.parent / "README.md"
PYPROJECT = README.with_name("pyproject.toml")


def readme_block(language: str, containing: str) -> str:
    """The README's one fenced ``language`` block that contains ``containing``."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)
    (block,) = [block for block in blocks if containing in block]
    return str(block)


# The package the README's examples measure: mylib -> mylib.core -> mylib.cli -> decimal.
MYLIB = {
    "mylib/__init__.py": "from . import core\n",
    "mylib/core.py": "import json\n\nfrom . import cli\n",
    "mylib/cli.py": "import argparse\nimport decimal\n",
}


@pytest.mark.slow
def test_the_fixture_examples_hold(pytester: pytest.Pytester) -> None:
    """Their assertions hold on every run: no cold-versus-warm race on mylib's own bytecode."""
    write_tree(pytester.path, MYLIB)
    pytester.makeini(quick_ini())
    examples = readme_block("python", "def test_bytecode_matters(")
    # The other interpreter the example names may not be installed here.
    assert 'python="/usr/bin/python3.12"' in examples
    examples = examples.replace("/usr/bin/python3.12", sys.executable)
    pytester.makepyfile(test_fixtures=examples)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*compiling mylib itself: *ms"])


def _command(line: str) -> list[str]:
    """A ``run:`` line of the README's CI recipe as this interpreter runs it."""
    words = shlex.split(line.partition("#")[0])
    module = {"pytest": "pytest", "pytest-importcache": "pytest_importcache"}[words[0]]
    return [sys.executable, "-m", module, *words[1:]]


@pytest.mark.slow
def test_the_ci_recipe_fails_cleanly_on_a_slower_import(tmp_path: Path) -> None:
    recipe = readme_block("yaml", "# on pull requests")
    main_part, _, pull_request_part = recipe.partition("# on pull requests")
    run = re.compile(r"^- run: (.*)$", re.MULTILINE)
    on_main, on_pull_request = run.findall(main_part), run.findall(pull_request_part)
    project = write_tree(
        tmp_path / "project",
        {
            "mylib/__init__.py": "",
            "conftest.py": FAKE_ROUNDS_CONFTEST,
            "pytest.ini": quick_ini(3),
            "test_mylib.py": """\
                import pytest

                @pytest.mark.import_budget("mylib", warm="10s")
                def test_mylib_import_is_fast():
                    pass
                """,
        },
    )
    completed: list[subprocess.CompletedProcess[str]] = []
    # Fixed rounds: 20 ms on main, 60 ms on the pull request.
    for lines, seconds in ((on_main, 0.02), (on_pull_request, 0.06)):
        fake_rounds(project, {"mylib": {"seconds": seconds}})
        for line in lines:
            completed.append(
                subprocess.run(
                    _command(line), cwd=project, capture_output=True, text=True, check=False
                )
            )
    *steps, verdict = completed
    assert [step.returncode for step in steps] == [0] * len(steps), steps[-1].stdout
    assert verdict.returncode == 1, verdict.stdout + verdict.stderr
    assert verdict.stdout.splitlines()[-1] == (
        "slower than min:10%: test_mylib_import_is_fast[mylib-warm]"
    )
    assert "Traceback" not in verdict.stdout + verdict.stderr


def test_the_histogram_extra_brings_what_histogram_needs() -> None:
    tomllib = pytest.importorskip("tomllib")  # 3.11+; 3.10 reads the same file
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert any(
        requirement.startswith("pytest-benchmark[histogram]") for requirement in extras["histogram"]
    )
    assert 'pip install "pytest-importcache[histogram]"' in README.read_text()


def _module_map_rows() -> dict[str, set[str]]:
    """The README's module map: subpackage -> the module names its rows list."""
    section = README.read_text(encoding="utf-8").split("## Module map", 1)[1].split("\n## ", 1)[0]
    listed: dict[str, set[str]] = {}
    subpackage = ""
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("subpackage", "---"):
            continue
        if cells[0]:
            subpackage = cells[0].strip("`/")
        listed.setdefault(subpackage, set()).update(re.findall(r"`([\w/]+)`", cells[1]))
    return listed


def test_the_module_map_names_every_module_of_the_tree() -> None:
    package = README.parent / "pytest_importcache"
    on_disk = {
        folder.name: {
            path.stem if path.is_file() else f"{path.name}/"
            for path in folder.iterdir()
            if (path.suffix == ".py" and path.stem != "__init__")
            or (path.is_dir() and (path / "__init__.py").exists())
        }
        for folder in package.iterdir()
        if (folder / "__init__.py").exists()
    }
    assert _module_map_rows() == on_disk
