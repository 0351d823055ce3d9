"""pytest entry point: options, the ``import_budget`` marker, fixtures.

Kept thin and cheap to import (pytest loads it at every start-up): everything
else, the engine, filelock and pytest-benchmark included, is imported by the
hooks that need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_importcache.engine.environment import ImportEnv

    from .configitems import BudgetsFile
    from .enforcer import ImportEnvFactory

_MARKER_HELP = (
    "{signature}: fail the test when importing `module` in a fresh interpreter "
    "overspends a budget: cold/warm time ('150ms', '1.5s', '800us' or seconds, compared "
    "with `stat` after --importcache-budget-scale), or with metric='instructions' "
    "instruction counts ('45M', '1.2G', counted under valgrind), max_modules (modules the "
    "import loads), forbid (glob patterns of modules it must not load), allow (glob patterns "
    "of the only modules it may load besides the standard library), max_memory (peak "
    "resident memory of a round: '60MB', '512KiB'), lazy_imports ('normal' or 'all', PEP 810). "
    "Measured before "
    "the test body runs; stack markers for several modules. A budget's unit says what it "
    "gates: cold/warm may carry a duration and a count together (warm=('25ms', '45M')); "
    "one in the other unit than the run's metric is measured, not judged, and the summary "
    "says what to write."
)


_STARTUP_MARKER_HELP = (
    "{signature}: fail the test when running a command in a fresh process, from exec to exit, "
    "overspends a budget: the command is a string (split like a shell) or a list whose first "
    "word is a console script or `python`, or code= a snippet; the same limits as "
    "import_budget (cold/warm, max_modules, forbid and allow over every module the process "
    "loads, max_memory), and its exit status must be exit_code. Stack markers freely."
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the hook a test suite implements to feed its own rounds."""
    from . import hooks  # noqa: PLC0415 - cheap entry point: loaded when pytest asks

    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register every ``--importcache-*`` flag and ``importcache_*`` ini key."""
    from .options import add_options  # noqa: PLC0415 - cheap entry point: loaded when pytest asks

    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and the run's role objects.

    Every process that runs tests gets a
    :class:`~pytest_importcache.pytest.enforcer.BudgetEnforcer`;
    the process that reports (not an xdist worker) also gets an
    :class:`~pytest_importcache.pytest.reporter.OutcomeReporter`, and with pytest-xdist
    the hooks that hand the run directory to workers.
    """
    # The entry point stays cheap to import: what configure needs is loaded here.
    from pytest_importcache.model.budget import (  # noqa: PLC0415 - cheap entry point
        MARKER_SIGNATURE,
        STARTUP_MARKER_SIGNATURE,
    )

    from .enforcer import ENFORCER_KEY, BudgetEnforcer  # noqa: PLC0415 - cheap entry point
    from .options import read_settings  # noqa: PLC0415 - cheap entry point
    from .runpaths import RunPaths  # noqa: PLC0415 - cheap entry point

    config.addinivalue_line("markers", _MARKER_HELP.format(signature=MARKER_SIGNATURE))
    config.addinivalue_line(
        "markers", _STARTUP_MARKER_HELP.format(signature=STARTUP_MARKER_SIGNATURE)
    )
    settings = read_settings(config)
    paths = RunPaths.from_config(config)
    enforcer = BudgetEnforcer(config, settings, paths)
    config.stash[ENFORCER_KEY] = enforcer
    config.pluginmanager.register(enforcer, "importcache-enforcer")
    if hasattr(config, "workerinput"):
        from pytest_importcache.engine.lifecycle import (  # noqa: PLC0415 - workers only
            end_rounds_when_parent_exits,
        )

        # SIGTERM or SIGKILL to the controller reaches no worker: its rounds end when it does.
        end_rounds_when_parent_exits()
        return
    from .reporter import OutcomeReporter  # noqa: PLC0415 - cheap entry point

    config.pluginmanager.register(OutcomeReporter(config, settings), "importcache-reporter")
    if config.pluginmanager.hasplugin("xdist"):
        from .xdist import RunDirectoryForWorkers  # noqa: PLC0415 - only with pytest-xdist

        config.pluginmanager.register(RunDirectoryForWorkers(paths), "importcache-xdist")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> BudgetsFile | None:
    """Collect the budgets of the rootdir's pyproject.toml (``[tool.importcache] budgets``)."""
    if file_path.name != "pyproject.toml":
        return None
    from .configitems import budgets_file  # noqa: PLC0415 - cheap entry point

    return budgets_file(file_path, parent)


@pytest.fixture
def import_env_factory(request: pytest.FixtureRequest) -> ImportEnvFactory:
    """Build import environments: ``import_env_factory("cold", python=..., optimize=1, ...)``.

    Environments use the run's settings (rounds, warm-up, timeout), share the
    per-user cache of copies, and record every measurement like a marker's.
    """
    from .enforcer import ENFORCER_KEY, ImportEnvFactory  # noqa: PLC0415 - cheap entry point

    return ImportEnvFactory(request.config.stash[ENFORCER_KEY], request.node)


@pytest.fixture
def cold_import_env(import_env_factory: ImportEnvFactory) -> ImportEnv:
    """An import environment whose rounds start without bytecode for the package."""
    return import_env_factory("cold")


@pytest.fixture
def warm_import_env(import_env_factory: ImportEnvFactory) -> ImportEnv:
    """An import environment whose package bytecode is compiled up front."""
    return import_env_factory("warm")
