"""Setting parsers as pure functions; where a bad setting is blamed; output paths."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import FAKE_ROUNDS_CONFTEST, fake_rounds, quick_ini, write_tree
from pytest_importcache.pytest.options import (
    SETTINGS,
    Setting,
    argparse_help,
    parse_bool,
    parse_jobs,
    parse_scale,
    parse_seconds,
    parse_stat,
    parse_whole_number,
    unwritable_reason,
)


@pytest.mark.parametrize(("text", "value"), [("10", 10), ("1", 1), (" 3 ", 3), ("", None)])
def test_whole_numbers(text: str, value: int | None) -> None:
    """An empty value is "not set": the metric's own default applies."""
    assert parse_whole_number(1)(text) == value


@pytest.mark.parametrize("text", ["0", "-2", "2.5", "ten"])
def test_bad_whole_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="expected a whole number >= 1"):
        parse_whole_number(1)(text)


@pytest.mark.parametrize(("text", "value"), [("auto", "auto"), (" 4 ", 4), ("1", 1)])
def test_jobs(text: str, value: object) -> None:
    assert parse_jobs(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "", "all", "2.5"])
def test_bad_jobs(text: str) -> None:
    with pytest.raises(ValueError, match="expected a whole number >= 1 or 'auto'"):
        parse_jobs(text)


@pytest.mark.parametrize(("text", "value"), [("60", 60.0), ("90s", 90.0), ("500ms", 0.5)])
def test_timeouts(text: str, value: float) -> None:
    assert parse_seconds(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0", "-1", "soon"])
def test_bad_timeouts(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_seconds(text)


@pytest.mark.parametrize(("text", "value"), [("1.0", 1.0), ("2.5", 2.5), ("0.5", 0.5)])
def test_scales(text: str, value: float) -> None:
    assert parse_scale(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "inf", "nan", "double"])
def test_bad_scales(text: str) -> None:
    with pytest.raises(ValueError, match="expected a positive number or 'auto'"):
        parse_scale(text)


def test_auto_scale() -> None:
    assert parse_scale("auto") == "auto"


@pytest.mark.parametrize("text", ["median", "min", "mean", "max"])
def test_stats(text: str) -> None:
    assert parse_stat(text) == text


def test_bad_stat() -> None:
    with pytest.raises(ValueError, match="expected one of min, max, mean, median, got 'p99'"):
        parse_stat("p99")


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("Yes", True), ("1", True), ("off", False), ("0", False)]
)
def test_booleans(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_bad_boolean() -> None:
    with pytest.raises(ValueError, match="expected true or false"):
        parse_bool("maybe")


def test_every_setting_has_a_flag_an_ini_key_and_a_valid_default() -> None:
    for setting in SETTINGS:
        assert setting.flag == f"--importcache-{setting.name}"
        assert setting.ini == "importcache_" + setting.name.replace("-", "_")
        setting.parse(setting.default)


# -- help texts -------------------------------------------------------------------------


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_every_help_text_survives_argparse_formatting(setting: Setting) -> None:
    """argparse %-formats a flag's help: "95% interval" must come out as written."""
    parser = argparse.ArgumentParser(
        prog="pytest", formatter_class=lambda prog: argparse.HelpFormatter(prog, width=10_000)
    )
    parser.add_argument(setting.flag, help=argparse_help(setting.help))
    assert _flat(setting.help) in _flat(parser.format_help())


@pytest.mark.parametrize("text", ["95% interval (default: 10%)", "%(default)s", "%i %", "none"])
def test_argparse_help_escapes_every_percent_sign(text: str) -> None:
    assert argparse_help(text) % {"default": None, "prog": "pytest"} == text


def test_pytest_help_lists_every_flag_and_ini_key(pytester: pytest.Pytester) -> None:
    """``pytest --help`` is the first thing a user runs: it must work and list every setting."""
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    output = _flat(result.stdout.str())
    for setting in SETTINGS:
        assert setting.flag in output
        assert setting.ini in output
    # Once per surface (flag and ini key), unescaped.
    assert output.count("95% interval") == 2
    assert "%%" not in output


# -- where a bad value came from, and output paths checked up front ----------------------

PASSING_TEST = "def test_nothing_measured():\n    pass\n"


def usage_error(result: pytest.RunResult) -> str:
    """The one ``ERROR:`` line of a run that stopped on a ``pytest.UsageError``."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in result.errlines if line.startswith("ERROR:")]
    assert "Traceback" not in result.stderr.str()
    return line


def test_an_override_is_blamed_on_the_o_option(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nimportcache_rounds = 3\n")
    pytester.makepyfile(PASSING_TEST)
    line = usage_error(pytester.runpytest("-o", "importcache_rounds=banana"))
    assert line == (
        "ERROR: -o importcache_rounds=banana on the command line: "
        "expected a whole number >= 1, got 'banana'"
    )


def test_the_last_override_is_the_one_blamed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_TEST)
    line = usage_error(
        pytester.runpytest("-o", "importcache_stat=min", "--override-ini=importcache_stat=p99")
    )
    assert line.startswith("ERROR: -o importcache_stat=p99 on the command line: ")


def test_an_override_from_pytest_addopts_names_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-o importcache_warmup=-1")
    pytester.makepyfile(PASSING_TEST)
    line = usage_error(pytester.runpytest())
    assert line.startswith("ERROR: -o importcache_warmup=-1 in PYTEST_ADDOPTS: ")


def test_an_override_in_addopts_names_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naddopts = -o importcache_timeout=soon\n")
    pytester.makepyfile(PASSING_TEST)
    line = usage_error(pytester.runpytest())
    assert line.startswith("ERROR: -o importcache_timeout=soon in addopts in tox.ini: ")


def test_a_bad_ini_value_is_still_blamed_on_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nimportcache_rounds = banana\n")
    pytester.makepyfile(PASSING_TEST)
    line = usage_error(pytester.runpytest("-o", "importcache_stat=min"))
    assert line.startswith("ERROR: importcache_rounds in tox.ini: expected a whole number")


@pytest.mark.parametrize(
    ("args", "ini", "source"),
    [
        (
            ["--importcache-raw-dir", "notes.txt/raw"],
            "",
            "--importcache-raw-dir on the command line",
        ),
        ([], "importcache_raw_dir = notes.txt/raw\n", "importcache_raw_dir in tox.ini"),
        (
            ["-o", "importcache_raw_dir=notes.txt/raw"],
            "",
            "-o importcache_raw_dir=notes.txt/raw on",
        ),
    ],
)
def test_a_raw_dir_under_a_file_is_one_usage_error(
    pytester: pytest.Pytester, args: list[str], ini: str, source: str
) -> None:
    pytester.makeini("[pytest]\n" + ini)
    pytester.makepyfile(PASSING_TEST)
    (pytester.path / "notes.txt").write_text("not a directory\n")
    line = usage_error(pytester.runpytest(*args))
    assert line.startswith(f"ERROR: {source}")
    assert line.endswith(
        f"cannot keep raw rounds in {pytester.path / 'notes.txt' / 'raw'}: "
        f"{pytester.path / 'notes.txt'} is a file, not a directory"
    )


def test_a_report_under_a_file_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_TEST)
    (pytester.path / "notes.txt").write_text("not a directory\n")
    line = usage_error(pytester.runpytest("--importcache-report", "notes.txt/imports.html"))
    assert line == (
        "ERROR: --importcache-report on the command line: cannot write the report to "
        f"{pytester.path / 'notes.txt' / 'imports.html'}: "
        f"{pytester.path / 'notes.txt'} is a file, not a directory"
    )


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory this process cannot create files in (skips where permissions do not bind)."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        if os.access(directory, os.W_OK):
            pytest.skip("this user can write in read-only directories (root)")
        yield directory
    finally:
        directory.chmod(0o755)


def test_a_read_only_raw_dir_names_the_os_reason(
    pytester: pytest.Pytester, read_only_dir: Path
) -> None:
    pytester.makepyfile(PASSING_TEST)
    line = usage_error(pytester.runpytest(f"--importcache-raw-dir={read_only_dir}/raw"))
    assert line == (
        f"ERROR: --importcache-raw-dir on the command line: cannot keep raw rounds in "
        f"{read_only_dir / 'raw'}: cannot create files in {read_only_dir}: Permission denied"
    )


def test_writable_output_paths_are_accepted_and_not_created(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_TEST)
    result = pytester.runpytest(
        "--importcache-raw-dir", "raw/rounds", "--importcache-report", "out/imports.html"
    )
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "raw").exists()
    assert not (pytester.path / "out").exists()
    assert not list(pytester.path.glob(".importcache-probe-*"))


def test_unwritable_reason(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert unwritable_reason(tmp_path / "new" / "deeper") is None
    assert unwritable_reason(tmp_path) is None
    assert unwritable_reason(tmp_path / "file") == f"{tmp_path / 'file'} is a file, not a directory"
    assert unwritable_reason(tmp_path / "file" / "x") == (
        f"{tmp_path / 'file'} is a file, not a directory"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
@pytest.mark.parametrize(
    ("report", "reason"),
    [
        # /proc takes no new file, even for root.
        ("/proc/imports.html", "cannot create files in /proc: "),
        ("/proc/self/imports.html", "cannot create files in /proc/self: "),
        ("/proc/importcache/deeper/imports.html", "cannot create files in /proc: "),
        ("a_file/imports.html", "a_file is a file, not a directory"),
    ],
)
def test_an_unwritable_report_path_is_one_line_naming_it(
    pytester: pytest.Pytester, report: str, reason: str
) -> None:
    pytester.makepyfile(PASSING_TEST)
    (pytester.path / "a_file").write_text("")
    line = usage_error(pytester.runpytest(f"--importcache-report={report}"))
    assert line.startswith(
        f"ERROR: --importcache-report on the command line: cannot write the report to "
        f"{pytester.path / report}: "
    )
    assert reason in line


def test_a_report_path_that_is_a_directory_is_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_TEST)
    (pytester.path / "out").mkdir()
    line = usage_error(pytester.runpytest("--importcache-report=out"))
    assert line == (
        "ERROR: --importcache-report on the command line: 'out' is a directory; "
        "give a file name such as imports.html"
    )


def test_disable_skips_every_kind_of_budget_and_its_help_says_so(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_budgets="""
        import pytest

        @pytest.mark.import_budget("json", warm="1s")
        def test_import():
            pass

        @pytest.mark.startup_budget(["python", "-m", "json.tool", "--help"], warm="1s")
        def test_startup():
            pass
        """
    )
    pytester.makepyprojecttoml(
        '[tool.importcache]\nbudgets = [{ command = "python -m json.tool --help", warm = "1s" }]\n'
    )
    result = pytester.runpytest("--importcache-disable", "test_budgets.py", "pyproject.toml")
    result.assert_outcomes(skipped=3)
    (disable,) = [setting for setting in SETTINGS if setting.name == "disable"]
    assert all(kind in disable.help for kind in ("import_budget", "startup_budget", "pyproject"))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
@pytest.mark.parametrize(
    ("json_path", "reason"),
    [
        ("/proc/x.json", "cannot create files in /proc: "),
        ("a_file/run.json", "a_file is a file, not a directory"),
        ("out", "out is a directory"),
        ("nodir/run.json", "nodir does not exist (pytest-benchmark does not make it)"),
    ],
)
def test_an_unwritable_benchmark_json_is_one_usage_error_before_any_test(
    pytester: pytest.Pytester, json_path: str, reason: str
) -> None:
    # pytest-benchmark opens --benchmark-json only at the session's end, and has something
    # to write there only because of the import measurements: it was its traceback, exit 1.
    write_tree(pytester.path, {"steady/__init__.py": "", "a_file": ""})
    (pytester.path / "out").mkdir()
    pytester.makeconftest(FAKE_ROUNDS_CONFTEST)
    fake_rounds(pytester.path, {"steady": {"seconds": 0.01}})
    pytester.makeini(quick_ini())
    pytester.makepyfile(
        test_imports="""
        import pytest

        @pytest.mark.import_budget("steady", warm="10s")
        def test_steady():
            pass
        """
    )
    result = pytester.runpytest(f"--benchmark-json={json_path}")
    line = usage_error(result)
    assert line.startswith(
        f"ERROR: --benchmark-json: cannot write the benchmark run to {pytester.path / json_path}: "
    )
    assert reason in line
    assert "Traceback" not in result.stdout.str()


@pytest.mark.skipif(pytest.version_tuple < (9, 2), reason="typed ini values need pytest 9.2+")
def test_pytests_native_toml_table_takes_toml_booleans_and_numbers(
    pytester: pytest.Pytester,
) -> None:
    # [tool.pytest] keeps TOML's types: `true` and `3` were refused ("expects a string").
    pytester.makepyprojecttoml(
        "[tool.pytest]\nimportcache_disable = true\nimportcache_rounds = 3\n"
    )
    pytester.makepyfile(
        test_imports="""
        import pytest

        @pytest.mark.import_budget("json", warm="1us")
        def test_json():
            pass
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*import measurements are disabled*"])
    # false and 0 are values, read and judged as the ini file's text would be.
    pytester.makepyprojecttoml(
        "[tool.pytest]\nimportcache_disable = false\nimportcache_rounds = 0\n"
    )
    line = usage_error(pytester.runpytest())
    assert (
        line == "ERROR: importcache_rounds in pyproject.toml: expected a whole number >= 1, got '0'"
    )
    # A boolean where a number goes, or a number where text goes: pytest's own one line.
    pytester.makepyprojecttoml("[tool.pytest]\nimportcache_rounds = true\n")
    line = usage_error(pytester.runpytest())
    assert "'importcache_rounds' expects" in line
    assert "bool" in line
    pytester.makepyprojecttoml("[tool.pytest]\nimportcache_baseline = 1\n")
    line = usage_error(pytester.runpytest())
    assert "'importcache_baseline' expects" in line, line
