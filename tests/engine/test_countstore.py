"""Reused instruction counts: what makes a count reused, what makes it counted again.

Most tests feed fixed rounds through an injected round runner whose reports
name the files they "read", as a counted round's do; two start real rounds
under valgrind, to check that the child reports what its count depends on
and that a reused count is the count a fresh round gives.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import py_compile
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest

from conftest import FAKE_ROUNDS_CONFTEST, FakeRoundRunner, MakeTree, fake_rounds, run_tests
from pytest_importcache.cli.main import main
from pytest_importcache.engine import copying
from pytest_importcache.engine.countkey import _round_commands, count_key, input_digest
from pytest_importcache.engine.countstore import CountStore, StoreWarning
from pytest_importcache.engine.locate import locate_package
from pytest_importcache.engine.measurer import Measurer, resolve_python
from pytest_importcache.engine.roundcommand import counted_round_command, round_pycache_prefix
from pytest_importcache.engine.runner import run_round
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.spec import MeasurementSpec

OTHER_PYTHON = Path("/root/.pyenv/versions/3.12.1/bin/python")


class ReadingRunner(FakeRoundRunner):
    """Fixed rounds that report ``read`` (files, given as (path, source)) as their inputs."""

    def __init__(self, read: Sequence[tuple[Path, str]] = ()) -> None:
        super().__init__([0.03], modules=("dep",))
        self.read = [(str(path), source) for path, source in read]

    def __call__(
        self, module: str, roots: Sequence[Path], *args: object, **kwargs: object
    ) -> RoundReport:
        report = super().__call__(module, roots, *args, **kwargs)  # type: ignore[arg-type]
        origin = (report.origin, "")
        return dataclasses.replace(report, inputs=(origin, *self.read))


def counted(spec: MeasurementSpec) -> MeasurementSpec:
    return spec.replace(metric="instructions", rounds=2, warmup=0)


def wait_for_the_files_clock(written: Path) -> None:
    """Until a file written now is stamped later than ``written``'s last change.

    A count is stored only when no input changed in the tick of the files' clock
    (up to 10 ms) its rounds started in or later, so a test that writes an input
    and expects the next count to be stored waits for the next tick.
    """
    probe = written.parent / ".probe"
    while probe.write_text("") == 0 and probe.stat().st_mtime_ns <= written.stat().st_ctime_ns:
        time.sleep(0.001)
    probe.unlink()


@pytest.fixture
def world(make_tree: MakeTree) -> Path:
    """A package ``pkg`` and a dependency ``dep`` it imports, each a directory in the tree."""
    tree = make_tree(
        {
            "pkg/__init__.py": "import dep\nVALUE = 1\n",
            "dep/__init__.py": "SETTING = 1\n",
        }
    )
    wait_for_the_files_clock(tree / "dep" / "__init__.py")
    return tree


def measurer_for(
    world: Path, tmp_path: Path, runner: ReadingRunner, *, fresh: bool = False, **store: object
) -> Measurer:
    return Measurer(
        cache_dir=tmp_path / "cache",
        search_path=[str(world)],
        round_runner=runner,
        count_store=CountStore(tmp_path / "store", fresh=fresh, **store),  # type: ignore[arg-type]
    )


@pytest.mark.slow
def test_an_unchanged_count_is_reused_without_running_a_round(world: Path, tmp_path: Path) -> None:
    runner = ReadingRunner([(world / "dep" / "__init__.py", "")])
    spec = counted(MeasurementSpec("pkg"))
    first = measurer_for(world, tmp_path, runner).measure(spec)
    assert runner.calls == 2
    assert first.reused is None
    second = measurer_for(world, tmp_path, runner).measure(spec)
    assert runner.calls == 2, "a reused count runs no round"
    assert second.reused is not None
    assert second.reused.store == str(tmp_path / "store")
    assert second.values == first.values
    assert list(second.modules) == list(first.modules)


@pytest.mark.slow
def test_a_changed_byte_of_the_package_counts_again(world: Path, tmp_path: Path) -> None:
    runner = ReadingRunner()
    spec = counted(MeasurementSpec("pkg"))
    measurer_for(world, tmp_path, runner).measure(spec)
    (world / "pkg" / "__init__.py").write_text("import dep\nVALUE = 2\n")
    result = measurer_for(world, tmp_path, runner).measure(spec)
    assert runner.calls == 4
    assert result.reused is None


@pytest.mark.slow
def test_a_changed_byte_of_a_dependency_counts_again(world: Path, tmp_path: Path) -> None:
    dependency = world / "dep" / "__init__.py"
    runner = ReadingRunner([(dependency, "")])
    spec = counted(MeasurementSpec("pkg", flavour="cold"))
    measurer_for(world, tmp_path, runner).measure(spec)
    status = dependency.stat()
    dependency.write_text("SETTING = 2\n")  # same size, same modification time
    os.utime(dependency, ns=(status.st_atime_ns, status.st_mtime_ns))
    wait_for_the_files_clock(dependency)
    result = measurer_for(world, tmp_path, runner).measure(spec)
    assert runner.calls == 4
    assert result.reused is None
    # ... and once counted with the new byte, that count is reused in turn.
    again = measurer_for(world, tmp_path, runner).measure(spec)
    assert runner.calls == 4
    assert again.reused is not None


class EditingRunner(ReadingRunner):
    """Reads ``dependency``, and writes ``new_text`` into it during its first round."""

    def __init__(self, dependency: Path, new_text: str) -> None:
        super().__init__([(dependency, "")])
        self.dependency, self.new_text = dependency, new_text

    def __call__(
        self, module: str, roots: Sequence[Path], *args: object, **kwargs: object
    ) -> RoundReport:
        if self.calls == 0:
            self.dependency.write_text(self.new_text)
        return super().__call__(module, roots, *args, **kwargs)


@pytest.mark.slow
def test_a_dependency_edited_during_the_rounds_stores_no_count(world: Path, tmp_path: Path) -> None:
    dependency = world / "dep" / "__init__.py"
    runner = EditingRunner(dependency, "SETTING = 2\n")
    spec = counted(MeasurementSpec("pkg"))
    assert measurer_for(world, tmp_path, runner).measure(spec).reused is None
    # The files' clock ticks past the edit (a file written in the tick the rounds
    # start in counts as written during them) ...
    wait_for_the_files_clock(dependency)
    # ... but the rounds counted (partly) the old file: that count must not pass for the new one's.
    assert measurer_for(world, tmp_path, runner).measure(spec).reused is None
    assert runner.calls == 4
    # Counted with the unchanged file, the count is stored and reused.
    assert measurer_for(world, tmp_path, runner).measure(spec).reused is not None
    assert runner.calls == 4


@pytest.mark.slow
def test_a_dependencys_stale_bytecode_counts_again_but_a_touched_source_does_not(
    world: Path, tmp_path: Path
) -> None:
    dependency = world / "dep" / "__init__.py"
    bytecode = Path(str(py_compile.compile(str(dependency), doraise=True)))
    wait_for_the_files_clock(bytecode)
    runner = ReadingRunner([(dependency, ""), (bytecode, str(dependency))])
    spec = counted(MeasurementSpec("pkg"))
    measurer_for(world, tmp_path, runner).measure(spec)
    # A new modification time makes the .pyc stale: the import would compile the source.
    os.utime(dependency, (time.time() + 100, time.time() + 100))
    assert measurer_for(world, tmp_path, runner).measure(spec).reused is None
    # Compiled again for the new time: valid again, same body: the count made stale is not
    # needed, the one counted with valid bytecode is reused.
    py_compile.compile(str(dependency), doraise=True)
    assert measurer_for(world, tmp_path, runner).measure(spec).reused is not None
    assert runner.calls == 4


@pytest.mark.parametrize(
    "change",
    [
        {"flavour": "cold"},
        {"flavour": "cold", "closure": True},
        {"optimize": 2},
        {"invalidation_mode": "checked-hash"},
        {"rounds": 3},
    ],
    ids=lambda change: "-".join(f"{key}={value}" for key, value in change.items()),
)
@pytest.mark.slow
def test_other_settings_count_again(world: Path, tmp_path: Path, change: dict[str, object]) -> None:
    runner = ReadingRunner()
    spec = counted(MeasurementSpec("pkg"))
    measurer_for(world, tmp_path, runner).measure(spec)
    calls = runner.calls
    result = measurer_for(world, tmp_path, runner).measure(spec.replace(**change))
    assert result.reused is None
    assert runner.calls > calls


@pytest.mark.skipif(not OTHER_PYTHON.exists(), reason="needs pyenv's Python 3.12.1")
@pytest.mark.slow
def test_another_interpreter_counts_again(world: Path, tmp_path: Path) -> None:
    runner = ReadingRunner()
    spec = counted(MeasurementSpec("pkg"))
    measurer_for(world, tmp_path, runner).measure(spec)
    result = measurer_for(world, tmp_path, runner).measure(spec.replace(python=str(OTHER_PYTHON)))
    assert result.reused is None
    assert runner.calls == 4


@pytest.mark.slow
def test_fresh_counts_again_and_refreshes_the_entry(world: Path, tmp_path: Path) -> None:
    runner = ReadingRunner()
    spec = counted(MeasurementSpec("pkg"))
    measurer_for(world, tmp_path, runner).measure(spec)
    fresh = measurer_for(world, tmp_path, runner, fresh=True).measure(spec)
    assert fresh.reused is None
    assert runner.calls == 4
    reused = measurer_for(world, tmp_path, runner).measure(spec)
    assert reused.reused is not None
    assert runner.calls == 4
    assert len(list((tmp_path / "store").rglob("*.json"))) == 1, "the entry was replaced"


@pytest.mark.slow
def test_timed_measurements_are_never_stored(world: Path, tmp_path: Path) -> None:
    runner = ReadingRunner()
    spec = MeasurementSpec("pkg", rounds=2, warmup=0)
    measurer_for(world, tmp_path, runner).measure(spec)
    assert measurer_for(world, tmp_path, runner).measure(spec).reused is None
    assert not (tmp_path / "store").exists()


@pytest.mark.slow
def test_made_up_rounds_never_reach_the_default_store(world: Path, tmp_path: Path) -> None:
    measurer = Measurer(cache_dir=tmp_path, search_path=[str(world)], round_runner=ReadingRunner())
    measurer.measure(counted(MeasurementSpec("pkg")))
    assert measurer.store_for(counted(MeasurementSpec("pkg"))) is None
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],
        lambda text: json.dumps({**json.loads(text), "reports": [{"wall_ns": "fast"}]}),
        lambda text: json.dumps({**json.loads(text), "inputs": "everything"}),
        lambda text: json.dumps({**json.loads(text), "format": 99}),
        lambda text: "[1, 2, 3]",
    ],
    ids=["truncated", "wrong-types", "wrong-inputs", "other-format", "not-an-entry"],
)
@pytest.mark.slow
def test_a_corrupt_entry_is_ignored_with_one_warning(
    world: Path, tmp_path: Path, damage: object
) -> None:
    runner = ReadingRunner()
    spec = counted(MeasurementSpec("pkg"))
    measurer_for(world, tmp_path, runner).measure(spec)
    (entry,) = (tmp_path / "store").rglob("*.json")
    entry.write_text(damage(entry.read_text()))  # type: ignore[operator]
    twin = entry.with_name(entry.name.replace(".json", "0.json"))
    twin.write_text(entry.read_text())  # a second bad entry of the key: still one warning
    said: list[str] = []
    first = measurer_for(world, tmp_path, runner, warn=said.append).measure(spec)
    assert runner.calls == 4, "the damaged entries are counted again"
    assert first.reused is None
    second = measurer_for(world, tmp_path, runner, warn=said.append).measure(spec)
    assert runner.calls == 4, "the count stored anew is reused"
    assert second.reused is not None
    assert len(said) == 1
    assert "ignoring the unusable count store entry" in said[0]
    assert "\n" not in said[0]
    # Counted again and stored anew: the next measurement reuses that.
    assert measurer_for(world, tmp_path, runner, warn=said.append).measure(spec).reused
    assert len(said) == 1


@pytest.mark.slow
def test_an_unwritable_store_is_said_once_and_counting_goes_on(world: Path, tmp_path: Path) -> None:
    (tmp_path / "store").write_text("a file, not a directory")
    said: list[str] = []
    runner = ReadingRunner()
    for _ in range(2):
        result = measurer_for(world, tmp_path, runner, warn=said.append).measure(
            counted(MeasurementSpec("pkg"))
        )
        assert result.reused is None
    assert runner.calls == 4
    assert len(said) == 1
    assert "cannot save counts" in said[0]


@pytest.mark.slow
def test_each_kind_of_store_problem_is_said_once(world: Path, tmp_path: Path) -> None:
    runner = ReadingRunner()
    spec = counted(MeasurementSpec("pkg"))
    first = measurer_for(world, tmp_path, runner).measure(spec)
    (entry,) = (tmp_path / "store").rglob("*.json")
    key = entry.name.rpartition("-")[0]
    entry.write_text("[1, 2, 3]")
    said: list[str] = []
    store = CountStore(tmp_path / "store", warn=said.append)
    assert store.lookup(key) is None
    # Then the key's folder becomes a file: saving fails, and that is said too, once.
    entry.unlink()
    entry.parent.rmdir()
    entry.parent.write_text("a file where the key's folder belongs")
    report = RoundReport(1, 1, first.file, ("pkg",), "3.11", (), instructions=1)
    for _ in range(2):
        store.save(key, spec, [report])
    assert len(said) == 2, said
    assert "ignoring the unusable count store entry" in said[0]
    assert "cannot save counts" in said[1]


_WRITER = """
import sys
import textwrap
from pathlib import Path
from pytest_importcache.engine.countstore import CountStore
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.spec import MeasurementSpec

store = CountStore(sys.argv[1], warn=lambda message: print("BAD", message))
report = RoundReport(1, 1, sys.argv[2], ("pkg",) * int(sys.argv[3]), "3.11", (),
                     instructions=int(sys.argv[3]), inputs=((sys.argv[2], ""),))
for _ in range(200):
    store.save("ab" + "0" * 62, MeasurementSpec("pkg", metric="instructions"), [report])
    store.lookup("ab" + "0" * 62)  # never sees half an entry
"""


@pytest.mark.slow
def test_concurrent_writers_of_one_key_leave_a_valid_entry(tmp_path: Path) -> None:
    source = tmp_path / "pkg.py"
    source.write_text("")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path / "store"), str(source), str(size)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for size in (1, 5000)  # one small entry, one large: a torn write would show
    ]
    said = [writer.communicate(timeout=120)[0] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0]
    assert "BAD" not in "".join(said)
    entries = list((tmp_path / "store").rglob("*.json"))
    assert len(entries) == 1
    assert not list((tmp_path / "store").rglob(".tmp-*"))
    found = CountStore(tmp_path / "store").lookup("ab" + "0" * 62)
    assert found is not None
    (report,) = found[0]
    assert report.instructions in (1, 5000)
    assert len(report.loaded) == report.instructions


@pytest.mark.slow
def test_a_same_run_baseline_is_reused_whatever_the_head(
    make_tree: MakeTree, world: Path, tmp_path: Path
) -> None:
    base_tree = make_tree({"base/pkg/__init__.py": "import dep\nVALUE = 0\n"})
    base = locate_package("pkg", [str(base_tree / "base")])
    runner = ReadingRunner()
    spec = counted(MeasurementSpec("pkg"))
    measurer_for(world, tmp_path, runner).measure_pair(spec, base)
    assert runner.calls == 4
    (world / "pkg" / "__init__.py").write_text("import dep\nVALUE = 3\n")
    head, base_result = measurer_for(world, tmp_path, runner).measure_pair(spec, base)
    assert runner.calls == 6, "only the head's rounds ran"
    assert head.reused is None
    assert base_result.reused is not None


@pytest.mark.slow
def test_the_caller_variables_change_no_key_but_those_named_for_counted_rounds(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = resolve_python(None)
    roots, workdir = [world], tmp_path / "rounds"
    spec = counted(MeasurementSpec("pkg"))

    def key() -> str:
        return count_key(spec, python, roots, workdir, runner="r")

    monkeypatch.setenv("GITHUB_WORKFLOW_SHA", "a" * 40)
    monkeypatch.setenv("MYLIB_MODE", "1")
    first = key()
    monkeypatch.setenv("GITHUB_WORKFLOW_SHA", "b" * 41)
    monkeypatch.setenv("HOSTNAME", "runner-7")
    assert key() == first, "counted rounds never see the caller's variables"
    monkeypatch.setenv("IMPORTCACHE_COUNTED_ENV", "MYLIB_MODE")
    named = key()
    assert named != first
    monkeypatch.setenv("MYLIB_MODE", "2")
    assert key() != named


def test_inputs_are_digested_as_the_count_depends_on_them(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.py").write_text("x = 1\n")
    listing = input_digest(str(folder))
    content = input_digest(str(folder / "a.py"))
    os.utime(folder / "a.py", (1, 1))
    assert input_digest(str(folder / "a.py")) == content, "content, not times"
    (folder / "a.py").write_text("x = 2\n")
    assert input_digest(str(folder / "a.py")) != content
    assert input_digest(str(folder)) == listing
    (folder / "b.py").write_text("")
    assert input_digest(str(folder)) != listing
    assert input_digest(str(tmp_path / "nothing")) == "absent"
    assert input_digest(str(folder), "<exists>") == "exists"


def test_a_report_survives_the_store(world: Path, tmp_path: Path) -> None:
    runner = ReadingRunner()
    report = runner(
        "pkg",
        [world],
        tmp_path,
        python="",
        optimize=0,
        timeout=1.0,
        pycache_prefix=None,
        description="d",
        metric="instructions",
    )
    again = RoundReport.from_json(json.loads(json.dumps(report.to_json())))
    assert again == dataclasses.replace(report, inputs=())


# -- pytest and the command line -------------------------------------------------------


@pytest.mark.slow
def test_pytest_says_reused_in_the_summary_and_in_storage(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"steady": {"seconds": 0.3}})
    pytester.makepyfile(steady="")
    pytester.makeini("[pytest]\npythonpath = .\naddopts = -p no:hypothesispytest\n")
    source = """
        import pytest

        @pytest.mark.import_budget("steady", warm="1G", metric="instructions")
        def test_counted():
            pass
        """
    store = ["--importcache-store", "counts", "--benchmark-json", "run.json"]
    first = run_tests(pytester, source, *store)
    first.assert_outcomes(passed=1)
    assert "reused, counted" not in first.stdout.str()
    second = run_tests(pytester, source, *store)
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(
        [
            "*steady*warm (instr)*300M=*PASS",
            "= steady (warm (instr)): reused, counted * UTC on *",
            "= reused: inputs unchanged since counted; --importcache-fresh counts again",
        ]
    )
    (benchmark,) = json.loads((pytester.path / "run.json").read_text())["benchmarks"]
    assert benchmark["extra_info"]["reused"] is True
    assert benchmark["extra_info"]["count_store"] == str(pytester.path / "counts")
    fresh = run_tests(pytester, source, *store, "--importcache-fresh")
    assert "reused, counted" not in fresh.stdout.str()


@pytest.mark.slow
def test_the_cache_command_counts_and_clears_stored_counts(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measurer_for(world, tmp_path, ReadingRunner()).measure(counted(MeasurementSpec("pkg")))
    store = ["--dir", str(tmp_path / "cache"), "--store", str(tmp_path / "store")]
    assert main(["cache", *store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["entries"] == 1
    assert main(["cache", *store, "--clear"]) == 0
    assert "removed 1 stored instruction count" in capsys.readouterr().out
    assert not list((tmp_path / "store").rglob("*.json"))


@pytest.mark.slow
def test_a_store_named_over_a_users_files_prunes_and_clears_only_its_own(
    world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "project"
    users = {
        "js/package.json": "{}",
        "db/schema.json": "{}",
        "ab/notes.json": "{}",
        f"ab/{'a' * 64}.json": "{}",
        f"ab/.tmp-{'a' * 64}-{'b' * 16}.json.bak": "{}",
    }
    for name, text in users.items():
        (store / name).parent.mkdir(parents=True, exist_ok=True)
        (store / name).write_text(text)
    month_ago = time.time() - 30 * 86400
    for path in store.rglob("*"):
        os.utime(path, (month_ago, month_ago))
    # Counting prunes entries unused for two weeks: a user's old files are no entries.
    Measurer(
        cache_dir=tmp_path / "cache",
        search_path=[str(world)],
        round_runner=ReadingRunner(),
        count_store=CountStore(store),
    ).measure(counted(MeasurementSpec("pkg")))
    assert all((store / name).exists() for name in users)
    assert main(["cache", "--dir", str(tmp_path / "cache"), "--store", str(store), "--clear"]) == 0
    assert "removed 1 stored instruction count" in capsys.readouterr().out
    assert sorted(str(path.relative_to(store)) for path in store.rglob("*") if path.is_file()) == (
        sorted(users)
    )


# -- real rounds under valgrind -----------------------------------------------------------


@pytest.mark.slow
def test_a_reused_count_is_the_count_a_fresh_round_gives(
    make_tree: MakeTree, tmp_path: Path
) -> None:
    pytest.importorskip("pytest_importcache.engine.callgrind").find_valgrind()
    # The rounds see the copy and the interpreter's own path: the package finds its
    # dependency, outside the copy, by a path of its own.
    world = make_tree({"deps/dep/__init__.py": "SETTING = 1\n"})
    (world / "pkg").mkdir()
    (world / "pkg" / "__init__.py").write_text(
        f"import sys\nsys.path.append({str(world / 'deps')!r})\nimport dep\n"
    )
    wait_for_the_files_clock(world / "pkg" / "__init__.py")
    spec = MeasurementSpec("pkg", metric="instructions", rounds=1, warmup=0)

    def measure(fresh: bool = False) -> tuple[float, bool]:
        measurer = Measurer(
            cache_dir=tmp_path / "cache",
            search_path=[str(world)],
            count_store=CountStore(tmp_path / "store", fresh=fresh),
        )
        result = measurer.measure(spec)
        return result.values[0], result.reused is not None

    counted_first, reused = measure()
    assert not reused
    assert measure() == (counted_first, True)
    assert measure(fresh=True) == (counted_first, False)
    # The child reported the dependency's file: changing it counts again.
    (world / "deps" / "dep" / "__init__.py").write_text("SETTING = 22\n")
    assert measure()[1] is False


@pytest.mark.slow
def test_a_counted_round_reports_what_its_count_depends_on(make_tree: MakeTree) -> None:
    # An extension module in a file of its own (Debian builds _json into the interpreter).
    extension = next(
        name
        for name in ("_json", "_decimal", "_ctypes", "_sqlite3")
        if name not in sys.builtin_module_names and importlib.util.find_spec(name) is not None
    )
    tree = make_tree(
        {"pkg/__init__.py": f"import dep, json, {extension}\n", "dep.py": "", "pth/x.pth": ""}
    )
    workdir = tree / "rounds"
    workdir.mkdir()
    report = run_round(
        "pkg", [tree], workdir, python=sys.executable, metric="instructions", module_costs=False
    )
    paths = {path for path, _ in report.inputs}
    assert str(tree / "dep.py") in paths
    assert str(tree / "pkg" / "__init__.py") in paths
    assert any(path.endswith(".so") and extension in path for path in paths), "extension module"
    assert any("libc" in path for path in paths), "mapped libraries"
    assert str(tree) in paths, "the directory the importer listed"
    bytecode = [(path, source) for path, source in report.inputs if path.endswith(".pyc")]
    assert any(source.endswith("json/__init__.py") for _, source in bytecode)


@pytest.mark.slow
def test_a_corrupt_entry_warns_and_never_stops_a_measurement_under_w_error(
    world: Path, tmp_path: Path
) -> None:

    runner = ReadingRunner()
    spec = counted(MeasurementSpec("pkg"))
    measurer_for(world, tmp_path, runner).measure(spec)
    (entry,) = (tmp_path / "store").rglob("*.json")
    entry.write_text("{")
    shutil.copytree(tmp_path / "store", tmp_path / "store2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert measurer_for(world, tmp_path, runner).measure(spec).reused is None
    key = entry.name.partition("-")[0]
    with pytest.warns(StoreWarning, match="ignoring the unusable count store entry"):
        assert CountStore(tmp_path / "store2").lookup(key) is None


@pytest.mark.slow
def test_xdist_workers_share_one_store(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"steady": {"seconds": 0.3}, "other": {"seconds": 0.2}})
    pytester.makepyfile(steady="", other="")
    pytester.makeini("[pytest]\npythonpath = .\naddopts = -p no:hypothesispytest\n")
    source = """
        import pytest

        @pytest.mark.import_budget("steady", cold="1G", warm="1G", metric="instructions")
        def test_steady():
            pass

        @pytest.mark.import_budget("other", cold="1G", warm="1G", metric="instructions")
        def test_other():
            pass
        """
    for run in range(2):
        # In a subprocess: xdist's workers are processes anyway.
        pytester.makepyfile(test_imports=textwrap.dedent(source))
        result = pytester.runpytest_subprocess("-n", "2", "--importcache-store", "counts")
        result.assert_outcomes(passed=2)
        reused = result.stdout.str().count(": reused, counted")
        assert reused == (0 if run == 0 else 4)
    assert len(list((pytester.path / "counts").rglob("*.json"))) == 4


_LISTER = """
import sys
from pytest_importcache.engine.countstore import CountStore
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.spec import MeasurementSpec

store = CountStore(sys.argv[1], warn=lambda message: print("SAID", message))
report = RoundReport(1, 1, sys.argv[2], ("pkg",), "3.11", (), instructions=1)
store.save("ab" + "0" * 62, MeasurementSpec("pkg", metric="instructions"), [report])
print("ENTRIES", len(store.entries()))
print("CLEARED", store.clear())
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(),
    reason="drops root's capabilities with setpriv",
)
@pytest.mark.slow
def test_a_store_folder_that_cannot_be_listed_is_said_once_and_skipped(tmp_path: Path) -> None:
    # Root reads every folder; without its capabilities (as another CI user) it cannot.
    source = tmp_path / "pkg.py"
    source.write_text("")
    locked = tmp_path / "store" / "cd"
    locked.mkdir(parents=True)
    (locked / ("cd" + "0" * 62 + "-0.json")).write_text("{}")
    locked.chmod(0)
    try:
        done = subprocess.run(
            [
                "/usr/bin/setpriv",
                "--inh-caps=-all",
                "--bounding-set=-all",
                sys.executable,
                "-c",
                _LISTER,
                str(tmp_path / "store"),
                str(source),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        locked.chmod(0o700)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    said = [line for line in lines if line.startswith("SAID")]
    assert len(said) == 1, lines
    assert "cannot list the count store's" in said[0]
    assert str(locked) in said[0]
    assert "ENTRIES 1" in lines, "the readable folder's entry is listed"
    assert "CLEARED 1" in lines
    assert (locked / ("cd" + "0" * 62 + "-0.json")).exists()


@pytest.mark.slow
def test_importing_results_loads_no_store() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pytest_importcache.model.result as r\n"
            "import pytest_importcache.engine.countstore as c\n"
            "assert c.ReusedCount is r.ReusedCount\n"
            "del sys.modules['pytest_importcache.engine.countstore']\n"
            "for name in list(sys.modules):\n"
            "    if name.startswith(('pytest_importcache', 'filelock', 'socket', 'tempfile')):\n"
            "        del sys.modules[name]\n"
            "import pytest_importcache.model.result\n"
            "print(sorted({'pytest_importcache.engine.countstore', 'filelock', 'socket',\n"
            "              'tempfile'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert loaded.strip() == "[]"


@pytest.mark.slow
def test_the_key_holds_the_command_lines_the_rounds_run(world: Path, tmp_path: Path) -> None:
    runner = ReadingRunner()
    spec = counted(MeasurementSpec("pkg", flavour="cold", closure=True)).replace(warmup=1)
    measurer_for(world, tmp_path, runner).measure(spec)
    detailed = [module_costs for _, module_costs in runner.metrics]
    assert detailed == [spec.counts_modules(index) for index in range(spec.total_rounds)]
    assert detailed == [False, True, False]
    roots, workdir = [world], tmp_path / "rounds"
    commands = _round_commands(
        spec, "python", "valgrind", roots, workdir, import_path=(), source_only=()
    )
    assert commands[1] == counted_round_command(
        "valgrind",
        "python",
        "pkg",
        roots,
        workdir,
        optimize=0,
        pycache_prefix=round_pycache_prefix(workdir, 1, closure=True),
        module_costs=True,
        import_path=(),
        source_only=(),
    )
    assert commands[0] != commands[1] != commands[2]


def test_the_store_and_the_copies_share_one_digest_per_file(tmp_path: Path) -> None:
    source = tmp_path / "a.py"
    source.write_text("x = 1\n")
    assert input_digest(str(source)) == "file:" + copying.file_sha256(source).hex()
    status = source.stat()
    assert (str(source), status.st_dev, status.st_ino) in {key[:3] for key in copying._FILE_DIGESTS}
