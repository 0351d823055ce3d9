"""The controller's role: collect outcomes from reports, save them, print and write the reports.

``OutcomeReporter`` runs in the process that reports (the only process without
pytest-xdist, the controller with it), as pytest-xdist keeps its terminal
reporter apart from its scheduling. It reads outcomes from test reports (the
same path with and without xdist), hands them to pytest-benchmark storage,
writes the HTML report, and prints the "import budgets" summary. Everything
it shows comes from the outcomes, scale factors included.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .options import Settings
from .recording import REPORT_ATTRIBUTE

if TYPE_CHECKING:
    from pytest_importcache.model.outcome import MeasurementOutcome
    from pytest_importcache.render.icicle import Baseline
    from pytest_importcache.render.runs import ImportComparison

    from .benchmark import CountsOutOfBenchmarkTable

__all__ = ["OutcomeReporter"]


class OutcomeReporter:
    """Collects the run's outcomes and reports them once, at the end."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.outcomes: list[MeasurementOutcome] = []
        self.comparisons: list[ImportComparison] = []
        self.report_path: Path | None = None
        self.report_problem = ""
        self.report_lost = False
        self.markdown_paths: list[Path] = []
        self.counts_table: CountsOutOfBenchmarkTable | None = None
        if config.pluginmanager.hasplugin("benchmark"):  # its hooks are known
            # pytest-benchmark is loaded already; the adapter's hook must be known before it runs.
            from .benchmark import CountsOutOfBenchmarkTable  # noqa: PLC0415 - start-up cost

            self.counts_table = CountsOutOfBenchmarkTable()
            config.pluginmanager.register(self.counts_table, "importcache-counts")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect the outcomes a report carries.

        A run that pytest-rerunfailures will repeat (outcome "rerun") is left out:
        only the attempt that counts is recorded, under a stable name.
        """
        if str(report.outcome) == "rerun":
            return
        carried = getattr(report, REPORT_ATTRIBUTE, None)
        if carried:
            from pytest_importcache.model.outcome import (  # noqa: PLC0415 - start-up cost
                MeasurementOutcome,
            )

            self.outcomes.extend(MeasurementOutcome.from_json(entry) for entry in carried)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        """Hand the outcomes to pytest-benchmark before it saves and compares; write HTML.

        A run whose tests passed exits 1 when its report or its benchmark run
        could not be written, or a baseline entry could not be compared: each
        is one line in the summary, and what the run measured is still shown.
        """
        if self.outcomes:
            from .benchmark import publish  # noqa: PLC0415 - start-up cost

            self.comparisons = publish(self.config, self.outcomes, stat=self.settings.stat)
            if self.settings.report is not None:
                self._write_html(self.config.invocation_params.dir / self.settings.report)
            self._write_markdown()
        yield
        if (self.report_lost or self._storage_problems()) and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _storage_problems(self) -> list[str]:
        """What went wrong handing the outcomes to pytest-benchmark (nothing without outcomes)."""
        if not self.outcomes:
            return []
        from .benchmark import storage_problems  # noqa: PLC0415 - start-up cost

        return storage_problems(self.config)

    def _notes(self) -> list[tuple[str, bool]]:
        """The lines under the summary table: files written, problems (``True``), pointers."""
        notes = []
        if self.report_path is not None:
            notes.append((f"import trees written to {self.report_path}", False))
        if self.report_problem:
            notes.append((self.report_problem, True))
        notes += [(problem, True) for problem in self._storage_problems()]
        notes += [
            (f"import budgets' markdown written to {path}", False) for path in self.markdown_paths
        ]
        if self.counts_table is not None and self.counts_table.counts_left_out:
            notes.append(
                (
                    "instruction counts are in this table, not in pytest-benchmark's (whose "
                    "columns are seconds); they are saved and compared as usual",
                    False,
                )
            )
        return notes

    def slower(self) -> list[ImportComparison]:
        """The comparisons to show: with compare-fail thresholds, those they flag; else slower."""
        return [
            comparison
            for comparison in self.comparisons
            if (comparison.change > 0 if comparison.regressed is None else comparison.regressed)
        ]

    def _write_markdown(self) -> None:
        """The markdown, to ``--importcache-markdown`` and appended to ``GITHUB_STEP_SUMMARY``."""
        targets: list[tuple[Path, str]] = []
        if self.settings.markdown is not None:
            targets.append((self.config.invocation_params.dir / self.settings.markdown, "w"))
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY", "").strip()
        if step_summary:
            targets.append((Path(step_summary), "a"))
        if not targets:
            return
        from pytest_importcache.render.markdown import (  # noqa: PLC0415 - start-up cost
            markdown_summary,
        )

        text = markdown_summary(self.outcomes, self.slower())
        for path, mode in targets:
            try:
                if mode == "w":
                    path.parent.mkdir(parents=True, exist_ok=True)
                with path.open(mode, encoding="utf-8") as stream:
                    stream.write(text)
            except OSError as exc:
                problem = f"cannot write the import budgets' markdown to {path}: {exc}"
                self.report_problem = "\n".join(filter(None, [self.report_problem, problem]))
            else:
                self.markdown_paths.append(path)

    def _baselines(self) -> list[Baseline | None]:
        """Per outcome, its baseline's name and tree when it was compared with one.

        A same-run revision (``importcache_baseline``) comes first; otherwise the
        ``--benchmark-compare`` run's entry.
        """
        from pytest_importcache.render.icicle import (  # noqa: PLC0415 - start-up cost
            same_run_baseline,
        )

        from .storage import benchmark_names  # noqa: PLC0415 - start-up cost

        # By full name: two test files may hold tests of the same name.
        by_name = {
            comparison.fullname: (comparison.source, comparison.before_modules)
            for comparison in self.comparisons
            if comparison.before_modules
        }
        timed = [outcome for outcome in self.outcomes if outcome.timed]
        names = {
            id(outcome): fullname
            for outcome, (_, fullname) in zip(timed, benchmark_names(timed), strict=True)
        }
        return [
            same_run_baseline(outcome) or by_name.get(names.get(id(outcome), ""))
            for outcome in self.outcomes
        ]

    def _write_html(self, path: Path) -> None:
        from pytest_importcache.render.icicle import icicle_page  # noqa: PLC0415 - start-up cost

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(icicle_page(self.outcomes, self._baselines()), encoding="utf-8")
        except OSError as exc:
            self.report_problem = f"cannot write the import report to {path}: {exc}"
            self.report_lost = True
        else:
            self.report_path = path

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the "import budgets" table, then what changed in slower imports.

        First among the summaries, so it is printed even when pytest-benchmark's
        ``--benchmark-compare-fail`` then stops the run.
        """
        if not self.outcomes:
            return
        from pytest_importcache.render.changes import regression_lines  # noqa: PLC0415 - start-up cost
        from pytest_importcache.render.summary import scale_line, summary_lines  # noqa: PLC0415 - start-up cost

        terminalreporter.write_sep("-", "import budgets")
        scaled = scale_line(self.outcomes)
        if scaled and self.settings.budget_scale == "auto":
            terminalreporter.write_line(scaled)
        for line in summary_lines(self.outcomes):
            terminalreporter.write_line(line)
        for line, problem in self._notes():
            terminalreporter.write_line(line, red=problem)
        # With compare-fail thresholds, what they flag; without, whatever got slower.
        slower = self.slower()
        if slower:
            terminalreporter.write_sep("-", f"slower imports than {slower[0].source}")
            for line in regression_lines(slower):
                terminalreporter.write_line(line)
