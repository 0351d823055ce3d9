"""``pytest-importcache check``: the pyproject.toml budgets and the lock, without pytest."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gitrepos import commit_all, make_repo

from conftest import write_tree
from pytest_importcache.cli.main import main

# A pyenv Python on the other side of 3.12 from the running one (verpkg differs there).
OTHER_VERSION = "3.12" if sys.version_info < (3, 12) else "3.11"
OTHER_PYTHON = next(
    iter(sorted(Path("/root/.pyenv/versions").glob(f"{OTHER_VERSION}.*/bin/python"))), None
)

PACKAGES = {
    # The same modules under every Python version.
    "samepkg/__init__.py": "from . import core\n",
    "samepkg/core.py": "VALUE = 1\n",
    # Another module from 3.12 on: the lock keeps a section per set.
    "verpkg/__init__.py": "import sys\nif sys.version_info >= (3, 12):\n    import colorsys\n",
}


@pytest.fixture(autouse=True)
def private_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the command line's copy cache and count store in the test's temporary directory."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def project(root: Path, budgets: str, files: dict[str, str] | None = None) -> Path:
    """A project: packages in a flat layout and ``budgets`` as the ``budgets`` array's entries."""
    write_tree(root, {**PACKAGES, **(files or {})})
    (root / "pyproject.toml").write_text(f"[tool.importcache]\nbudgets = [\n{budgets}]\n")
    return root


def check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_importcache check ARGS``, as a pre-commit hook runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_importcache", "check", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_help_describes_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: pytest-importcache check")
    assert "--update" in out
    assert "--pyproject PATH" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[project]\nname = 'x'\n", "no [tool.importcache] budgets to check"),
        ("[tool.importcache]\nbudgets = 3\n", "budgets = 3 is not an array of tables"),
        ("[tool.importcache\n", "not valid TOML"),
    ],
)
def test_a_configuration_without_budgets_is_exit_2_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    message: str,
) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # found upwards from the current directory
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
    assert str(tmp_path / "pyproject.toml") in err


def test_no_pyproject_anywhere_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--pyproject", str(tmp_path / "nothing.toml")]) == 2
    assert "nothing.toml: no such file" in capsys.readouterr().err


def test_malformed_entries_are_exit_2_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(
        tmp_path,
        '  { module = "samepkg", colt = "1s" },\n'
        '  { module = "samepkg", warm = "fast" },\n'
        '  "samepkg",\n',
    )
    assert main(["check", "--pyproject", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "pyproject.toml budgets[0] (module 'samepkg'): unknown key 'colt' (an import budget "
        "takes module, cold, warm, max_modules, forbid, stat, rounds, closure, metric, allow, "
        "max_memory, lazy_imports)",
        # A second entry for samepkg: its own problem first (a merge would keep it).
        "pyproject.toml budgets[1] (module 'samepkg'): warm='fast' is not a duration (write "
        "'25ms', '1.5s', '800us' or seconds)",
        "pyproject.toml budgets[2]: 'samepkg' is not a table (write "
        '{ module = "mylib", warm = "25ms" })',
    ]
    assert captured.out.splitlines()[-1].endswith(": 3 not checked (configuration)")


@pytest.mark.slow
def test_budgets_are_judged_with_the_plugins_texts_and_json(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        '  { module = "samepkg", warm = "10s" },\n'
        '  { module = "samepkg.core", max_modules = 0 },\n'
        '  { module = "nosuch", warm = "1s" },\n',
    )
    (root / "deep").mkdir()
    completed = check(cwd=root / "deep")
    assert completed.returncode == 2, completed.stderr  # the missing module
    assert completed.stderr.startswith(
        "pyproject.toml budgets[2] (module 'nosuch'): cannot find module 'nosuch'"
    )
    assert completed.stderr.count("\n") == 1
    out = completed.stdout
    assert "importcache[samepkg.core]\nimport budget exceeded: samepkg.core loaded 2 modules" in out
    assert "samepkg.core             warm                -        -        -       2 FAIL" in out
    assert out.splitlines()[-1].startswith(f"checked 3 budgets of {root / 'pyproject.toml'} in ")
    assert out.splitlines()[-1].endswith(" s: 1 failed, 1 not checked (configuration)")

    (root / "pyproject.toml").write_text(
        '[tool.importcache]\nbudgets = [{ module = "samepkg", warm = "10s", max_modules = 0 }]\n'
    )
    completed = check("--json", cwd=root)
    assert completed.returncode == 1
    document = json.loads(completed.stdout)
    assert document["passed"] is False
    assert document["seconds"] > 0
    (budget,) = document["budgets"]
    assert (budget["entry"], budget["target"], budget["passed"]) == (0, "samepkg", False)
    assert budget["failure"].startswith("import budget exceeded: samepkg loaded 2 modules")
    assert [entry["flavour"] for entry in budget["measurements"]] == ["warm"]


@pytest.mark.slow
def test_the_lock_catches_a_new_and_a_gone_module_until_updated(tmp_path: Path) -> None:
    root = project(tmp_path, '  { module = "samepkg", warm = "10s" },\n')
    lock = root / "importcache.lock"
    assert check(cwd=root).returncode == 0  # no lock: only the budgets
    updated = check("--update", cwd=root)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert f"wrote {lock}" in updated.stdout
    python = f"{sys.version_info[0]}.{sys.version_info[1]}-{sys.platform}"
    text = lock.read_text()
    assert f"[samepkg]\npython = {python}\nsuggested = warm=" in text
    assert text.endswith("  samepkg\n  samepkg.core\n")
    assert check(cwd=root).returncode == 0

    write_tree(root, {"samepkg/__init__.py": "import colorsys\n"})
    completed = check(cwd=root)
    assert completed.returncode == 1
    assert (
        f"samepkg loads other modules than importcache.lock says (Python {python}):\n"
        "    new: colorsys: samepkg -> colorsys\n"
        "    gone: samepkg.core\n"
        "  if that is intended, update the lock: pytest-importcache check --update"
    ) in completed.stdout
    # The budget holds, but the lock fails it: its row says so.
    (row,) = [line for line in completed.stdout.splitlines() if line.startswith("samepkg  ")]
    assert row.split()[-1] == "FAIL", completed.stdout
    assert check("--update", cwd=root).returncode == 0
    assert check(cwd=root).returncode == 0
    assert lock.read_text().endswith("  colorsys\n  samepkg\n")
    # A budget taken out of pyproject.toml leaves the lock at the next update.
    (root / "pyproject.toml").write_text(
        '[tool.importcache]\nbudgets = [{ module = "verpkg", warm = "10s" }]\n'
    )
    assert check("--update", cwd=root).returncode == 0
    assert "[samepkg]" not in lock.read_text()


@pytest.mark.slow
def test_a_corrupt_lock_is_exit_2_naming_the_file_and_the_line(tmp_path: Path) -> None:
    root = project(tmp_path, '  { module = "samepkg", warm = "10s" },\n')
    (root / "importcache.lock").write_text(
        f"[samepkg]\npython = 3.11-{sys.platform}\n  not a module\n"
    )
    completed = check(cwd=root)
    assert completed.returncode == 2
    assert completed.stderr == (
        f"{root / 'importcache.lock'}:3: 'not a module' is not a module name\n"
    )
    # --update does not overwrite what it cannot read.
    assert check("--update", cwd=root).returncode == 2


@pytest.mark.parametrize(
    ("lock", "line"),
    [
        ("python = eleven\n", ":1: 'python = eleven' comes before any [section]"),
        ("[samepkg\n", ":1: '[samepkg' is not a section header [NAME]"),
        (b"\xff\xfe\x00binary", ": cannot read: not UTF-8 text"),
        (None, ": cannot read: Is a directory"),
    ],
    ids=["a line before any section", "an unclosed section", "binary bytes", "a directory"],
)
@pytest.mark.slow
def test_an_unreadable_lock_is_not_said_to_hold(
    tmp_path: Path, lock: str | bytes | None, line: str
) -> None:
    root = project(tmp_path, '  { module = "samepkg", warm = "10s" },\n')
    path = root / "importcache.lock"
    if lock is None:
        path.mkdir()
    elif isinstance(lock, bytes):
        path.write_bytes(lock)
    else:
        path.write_text(lock)
    completed = check("--rounds", "2", cwd=root)
    assert completed.returncode == 2
    assert completed.stderr == f"{path}{line}\n"
    last = completed.stdout.splitlines()[-1]
    assert last.startswith(f"checked 1 budget of {root / 'pyproject.toml'} in ")
    assert last.endswith(" s: importcache.lock could not be read: the lock not checked")
    updated = check("--rounds", "2", "--update", cwd=root)
    assert updated.returncode == 2
    assert updated.stdout.splitlines()[-1].endswith(
        " s: importcache.lock could not be read: not updated"
    )


@pytest.mark.slow
@pytest.mark.skipif(OTHER_PYTHON is None, reason=f"needs a pyenv Python {OTHER_VERSION}")
def test_two_python_versions_share_one_lock(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        '  { module = "samepkg", warm = "10s" },\n  { module = "verpkg", warm = "10s" },\n'
        '  { code = "import verpkg", warm = "10s" },\n',
    )
    lock = root / "importcache.lock"
    assert check("--update", cwd=root).returncode == 0
    completed = check("--update", "--python", str(OTHER_PYTHON), cwd=root)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    text = lock.read_text()
    running = f"{sys.version_info[0]}.{sys.version_info[1]}-{sys.platform}"
    other = f"{OTHER_VERSION}-{sys.platform}"
    older, newer = (running, other) if sys.version_info < (3, 12) else (other, running)
    assert f"[samepkg]\npython = {older} {newer}" in text
    assert f"[verpkg]\npython = {older}\n" in text
    assert f"[verpkg]\npython = {newer}\n" in text
    assert "  colorsys\n" in text.split(f"[verpkg]\npython = {newer}\n")[1]
    # The snippet runs under --python too: its process under 3.12+ loads colorsys.
    snippet = text.split("[$ code: import verpkg]\n")
    assert len(snippet) == 3  # a section per version
    assert "  colorsys\n" not in snippet[1]
    assert "  colorsys\n" in snippet[2]
    assert check(cwd=root).returncode == 0
    assert check("--python", str(OTHER_PYTHON), cwd=root).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(OTHER_PYTHON is None, reason=f"needs a pyenv Python {OTHER_VERSION}")
def test_a_missing_section_names_the_update_for_that_interpreter(tmp_path: Path) -> None:
    root = project(tmp_path, '  { module = "samepkg", warm = "10s" },\n')
    assert check("--update", cwd=root).returncode == 0
    completed = check("--python", str(OTHER_PYTHON), cwd=root)
    assert completed.returncode == 1
    assert f"pytest-importcache check --update --python {OTHER_PYTHON}" in completed.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_counts_are_reused_on_the_second_run(tmp_path: Path) -> None:
    root = project(tmp_path, '  { module = "samepkg", warm = "100M" },\n')
    store = str(tmp_path / "store")
    first = check("--json", "--metric", "instructions", "--store", store, cwd=root)
    second = check("--json", "--metric", "instructions", "--store", store, cwd=root)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    (measured,) = json.loads(first.stdout)["budgets"][0]["measurements"]
    (reused,) = json.loads(second.stdout)["budgets"][0]["measurements"]
    assert measured["reused"] is None
    assert reused["reused"] is not None
    assert reused["values"] == measured["values"]


REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(
    not (REPOSITORY / ".git").exists(), reason="needs this repository's git checkout"
)
def test_the_pre_commit_hook_runs_check_in_a_real_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pre-commit try-repo`` runs this repository's hook as ``repo: ...`` would.

    try-repo clones this repository (its uncommitted tracked changes included)
    and installs the hook's environment from it, through pip's configured index:
    no network beyond the package registry. The package under test is found in
    the project's directory (a flat layout), not in the hook's environment.
    """
    pytest.importorskip("pre_commit")
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path / "pre-commit-home"))
    repo = make_repo(
        tmp_path / "project",
        {
            **PACKAGES,
            "pyproject.toml": (
                '[tool.importcache]\nbudgets = [{ module = "samepkg", warm = "10s" }]\n'
            ),
        },
    )
    assert check("--update", cwd=repo).returncode == 0
    commit_all(repo, "lock")

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pre_commit",
                "try-repo",
                str(REPOSITORY),
                "importcache-check",
                "--all-files",
            ],
            capture_output=True,
            text=True,
            cwd=repo,
            check=False,
        )

    passed = hook()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "import budgets (pytest-importcache check)" in passed.stdout
    write_tree(repo, {"samepkg/__init__.py": "import colorsys\nfrom . import core\n"})
    commit_all(repo, "a new import")
    failed = hook()
    assert failed.returncode == 1
    assert "    new: colorsys: samepkg -> colorsys" in failed.stdout
    assert check("--update", cwd=repo).returncode == 0
    commit_all(repo, "lock updated")
    assert hook().returncode == 0


@pytest.mark.slow
def test_start_up_budgets_are_checked_and_locked(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        '  { code = "import samepkg", warm = "10s" },\n'
        '  { command = "python -m samepkg", warm = "10s", max_modules = 0 },\n'
        '  { command = "nosuchcli --help", warm = "1s" },\n',
        {"samepkg/__main__.py": "VALUE = 2\n"},
    )
    completed = check("--json", cwd=root)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.startswith(
        "pyproject.toml budgets[2] (command 'nosuchcli --help'): startup_budget('nosuchcli --help')"
    )
    code, command, missing = json.loads(completed.stdout)["budgets"]
    assert (code["target"], code["passed"]) == ("code: import samepkg", True)
    assert command["failure"].startswith("start-up budget exceeded: python -m samepkg loaded")
    assert missing["problem"] == completed.stderr.strip()
    assert not missing["measurements"]
    (root / "pyproject.toml").write_text(
        '[tool.importcache]\nbudgets = [{ code = "import samepkg", warm = "10s" }]\n'
    )
    assert check("--update", cwd=root).returncode == 0
    text = (root / "importcache.lock").read_text()
    assert "[$ code: import samepkg]\n" in text
    assert "  samepkg.core\n" in text
    assert check(cwd=root).returncode == 0


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90.0), ("500ms", 0.5), ("60", 60.0)])
def test_timeout_is_read_as_startup_reads_it(text: str, seconds: float) -> None:
    from pytest_importcache.cli.check import make_parser  # noqa: PLC0415

    assert make_parser().parse_args(["--timeout", text]).timeout == seconds


PARALLEL_PYTHONS = [
    next(iter(sorted(Path("/root/.pyenv/versions").glob(f"{version}.*/bin/python"))), None)
    for version in ("3.12", "3.13")
]


@pytest.mark.slow
@pytest.mark.skipif(None in PARALLEL_PYTHONS, reason="needs pyenv Pythons 3.12 and 3.13")
def test_parallel_updates_under_two_pythons_keep_both_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ``check --update`` runs at once (tox -p) wait their turn: no section is lost.

    The test holds the update's file lock first: neither run may write the lock
    while it is held (both would read the lock empty and the last write win).
    """
    import tempfile  # noqa: PLC0415
    import time  # noqa: PLC0415

    from filelock import FileLock  # noqa: PLC0415

    from pytest_importcache.engine.cache import default_cache_dir  # noqa: PLC0415
    from pytest_importcache.model.lock import load_lock, update_guard  # noqa: PLC0415

    root = project(tmp_path, '  { module = "samepkg", warm = "10s" },\n')
    lock = root / "importcache.lock"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the runs' per-user cache
    arguments = ["--update", "--rounds", "2", "--warmup", "0"]
    with FileLock(update_guard(lock, default_cache_dir())):
        runs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest_importcache",
                    "check",
                    *arguments,
                    "--python",
                    str(python),
                ],
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for python in PARALLEL_PYTHONS
        ]
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                assert not lock.exists(), "a run wrote the lock while another update held it"
                assert all(run.poll() is None for run in runs)
                time.sleep(0.2)
        except BaseException:
            for run in runs:
                run.kill()
            raise
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    parsed = load_lock(lock)
    assert parsed is not None
    (section,) = parsed.sections
    assert [python.split("-")[0] for python in section.pythons] == ["3.12", "3.13"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr")
def test_a_lock_that_cannot_be_written_is_exit_2_in_one_line(tmp_path: Path) -> None:
    root = project(tmp_path / "project", '  { module = "samepkg", warm = "10s" },\n')
    if subprocess.run(["chattr", "+i", str(root)], check=False).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        completed = check("--update", "--rounds", "2", cwd=root)
    finally:
        subprocess.run(["chattr", "-i", str(root)], check=True)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert completed.stderr == (
        f"{root / 'importcache.lock'}: cannot write: Operation not permitted\n"
    )


@pytest.mark.slow
def test_packages_on_pytests_pythonpath_are_found_as_pytest_finds_them(tmp_path: Path) -> None:
    root = project(tmp_path, '  { module = "alpha", warm = "10s" },\n')
    write_tree(root, {"libs/alpha/__init__.py": "import json\n"})
    with (root / "pyproject.toml").open("a") as pyproject:
        pyproject.write('[tool.pytest.ini_options]\npythonpath = ["libs"]\n')
    completed = check("--rounds", "1", cwd=root)
    assert completed.returncode == 0, completed.stdout + completed.stderr
