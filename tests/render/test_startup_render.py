"""Start-up measurements and peak memory in what users read: summary, markdown, names, JSON."""

from __future__ import annotations

from conftest import make_outcome
from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.model.spec import StartupCommand
from pytest_importcache.pytest.storage import benchmark_names, extra_info
from pytest_importcache.render.icicle import icicle_page
from pytest_importcache.render.markdown import markdown_summary
from pytest_importcache.render.runs import outcome_from_entry
from pytest_importcache.render.summary import memory_lines, summary_lines

PHASES = (("start-up", (0.010, 0.012)), ("site", (0.002, 0.002)), ("import", (0.05, 0.06)))


def startup_outcome(**changes: object) -> MeasurementOutcome:
    """A warm start-up outcome of ``mycli --help`` (package ``mycli``), 14.2MB at its peak."""
    fields: dict[str, object] = {
        "module": "mycli",
        "command": "mycli --help",
        "phases": PHASES,
        "peak_memory": 14_200_000,
        "bare_peak_memory": 10_500_000,
    }
    fields.update(changes)
    return make_outcome(**fields)


def test_a_start_up_is_shown_by_its_command_with_its_peak_beside_a_bare_one() -> None:
    lines = summary_lines(
        [startup_outcome(), make_outcome(peak_memory=11_000_000, bare_peak_memory=10_500_000)]
    )
    assert lines[1].startswith("mycli --help ")
    assert lines[2].startswith("m ")
    assert memory_lines([startup_outcome()]) == [
        "peak memory, highest round (a bare interpreter: 10.5MB):",
        "  mycli --help (warm) 14.2MB (+3.7MB)",
    ]
    assert "  m (warm) 11MB (+500kB)" in lines


def test_one_memory_heading_per_interpreter_with_the_median_bare_figure() -> None:
    # Under -n 2 each worker measures its own bare round: one interpreter, several figures.
    records = [
        startup_outcome(bare_peak_memory=10_000_000),
        startup_outcome(command="mycli --version", bare_peak_memory=10_600_000),
        startup_outcome(command="mycli run", bare_peak_memory=10_500_000),
    ]
    assert memory_lines(records) == [
        "peak memory, highest round (a bare interpreter: 10.5MB):",
        "  mycli --help (warm) 14.2MB (+3.7MB)",
        "  mycli --version (warm) 14.2MB (+3.7MB)",
        "  mycli run (warm) 14.2MB (+3.7MB)",
    ]
    other = startup_outcome(python_version="3.12.1", bare_peak_memory=9_000_000)
    version = records[0].python_version
    assert memory_lines([records[0], other]) == [
        f"peak memory, highest round (Python {version}; a bare interpreter: 10MB):",
        "  mycli --help (warm) 14.2MB (+4.2MB)",
        "peak memory, highest round (Python 3.12.1; a bare interpreter: 9MB):",
        "  mycli --help (warm) 14.2MB (+5.2MB)",
    ]


def test_counts_have_no_memory_lines_and_the_markdown_no_memory_column() -> None:
    assert memory_lines([make_outcome(metric="instructions")]) == []
    assert "peak memory" not in markdown_summary([make_outcome()])


def test_markdown_names_the_command_and_its_peak() -> None:
    text = markdown_summary([startup_outcome(budget=0.5, passed=True)])
    assert "| module | flavour | min | budget | headroom | verdict | peak memory (bare) |" in text
    assert "| `mycli --help` | warm | 10ms | 500ms | +98% | PASS | 14.2MB (10.5MB) |" in text


def test_start_up_names_are_safe_stable_and_apart_from_imports_and_lazy_modes() -> None:
    records = [
        startup_outcome(),
        startup_outcome(command="code: import mylib; mylib.load('x [1].csv')"),
        make_outcome(module="mycli"),
        make_outcome(module="mycli", lazy_imports="all"),
        startup_outcome(),
    ]
    assert [name for name, _ in benchmark_names(records)] == [
        "t[mycli_--help-warm]",
        "t[code:_import_mylib_mylib.load_x_1_.csv-warm]",
        "t[mycli-warm]",
        "t[mycli-warm-lazy-all]",
        "t[mycli_--help-warm-2]",
    ]


def test_extra_info_carries_the_command_phases_and_memory_and_json_round_trips() -> None:
    outcome = startup_outcome(lazy_imports="all")
    info = extra_info(outcome)
    assert info["command"] == "mycli --help"
    assert info["phases"]["import"] == [0.05, 0.06]
    assert (info["peak_memory"], info["bare_peak_memory"]) == (14_200_000, 10_500_000)
    assert info["lazy_imports"] == "all"
    assert MeasurementOutcome.from_json(outcome.to_json()) == outcome


def test_a_saved_start_up_entry_reads_back_with_its_command_phases_and_memory() -> None:
    outcome = startup_outcome()
    entry = {
        "fullname": "t.py::t[mycli_--help-warm]",
        "name": "t[mycli_--help-warm]",
        "stats": {"min": 0.01, "max": 0.01, "mean": 0.01, "median": 0.01},
        "extra_info": extra_info(outcome),
    }
    read = outcome_from_entry(entry, "0001_run.json")
    assert (read.command, read.phases) == (outcome.command, outcome.phases)
    assert (read.peak_memory, read.bare_peak_memory) == (14_200_000, 10_500_000)


def test_the_html_report_heads_a_start_up_by_its_command_with_its_peak() -> None:
    page = icicle_page([startup_outcome(), make_outcome(module="mycli")])
    assert "<h2>t.py::t: mycli --help</h2>" in page
    assert "<h2>t.py::t: mycli</h2>" in page  # the import of the same package: apart
    assert "peak memory 14.2MB (bare interpreter 10.5MB)" in page


def test_an_unjudged_start_up_budget_is_named_by_its_command() -> None:
    counted = startup_outcome(
        module="mylib",
        metric="instructions",
        statistic=120e6,
        values=(120e6,),
        unjudged="warm='120ms'",
    )
    notes = [line for line in summary_lines([counted]) if "not judged" in line]
    assert len(notes) == 1
    assert notes[0].startswith("mycli --help (warm instr): warm='120ms' is a time budget")


def test_a_control_character_in_a_command_word_stays_on_its_line() -> None:
    label = StartupCommand(("mycli", "--help", "a\nb\tc")).label
    outcome = startup_outcome(command=label, budget=0.001, passed=False)
    for lines in (summary_lines([outcome]), memory_lines([outcome])):
        assert all("\n" not in line and "\t" not in line for line in lines)
    assert "  mycli --help 'a\\nb\\tc' (warm) 14.2MB (+3.7MB)" in memory_lines([outcome])
    assert summary_lines([outcome])[1].startswith("mycli --help 'a\\nb\\tc'   warm ")
