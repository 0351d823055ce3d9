"""pytest entry point: options, the ``import_budget`` marker, fixtures.

Kept thin and cheap to import (pytest loads it at every start-up): everything
else, the engine, filelock and pytest-benchmark included, is imported by the
hooks that need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .environment import ImportEnv
    from .session import ImportCacheSession, ImportEnvFactory

SESSION_KEY = pytest.StashKey["ImportCacheSession"]()

_MARKER_HELP = (
    "{signature}: fail the test when importing `module` in a fresh interpreter "
    "overspends a budget: cold/warm time ('150ms', '1.5s', '800us' or seconds, compared "
    "with `stat` after --importcache-budget-scale), max_modules (modules the import loads), "
    "forbid (glob patterns of modules it must not load). Measured before the test body "
    "runs; stack markers for several modules."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register every ``--importcache-*`` flag and ``importcache_*`` ini key."""
    from .options import add_options

    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, resolve the settings and register the run's plugin object."""
    from .budget import MARKER_SIGNATURE
    from .options import read_settings
    from .session import ImportCacheSession

    config.addinivalue_line("markers", _MARKER_HELP.format(signature=MARKER_SIGNATURE))
    session = ImportCacheSession(config, read_settings(config))
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "importcache-session")


def _session(config: pytest.Config) -> ImportCacheSession:
    return config.stash[SESSION_KEY]


@pytest.fixture(scope="session", autouse=True)
def _importcache_temp_dirs(request: pytest.FixtureRequest) -> None:
    """Give the run's plugin object pytest's temporary-directory factory (no I/O here)."""
    try:
        factory = request.getfixturevalue("tmp_path_factory")
    except pytest.FixtureLookupError:  # -p no:tmpdir: the session falls back to mkdtemp
        return
    _session(request.config).tmp_path_factory = factory


@pytest.fixture
def import_env_factory(request: pytest.FixtureRequest) -> ImportEnvFactory:
    """Build import environments: ``import_env_factory("cold", python=..., optimize=1, ...)``.

    Environments use the run's settings (rounds, warm-up, timeout), share
    session-cached copies, and record every measurement like a marker's.
    """
    from .session import ImportEnvFactory

    return ImportEnvFactory(_session(request.config), request.node)


@pytest.fixture
def cold_import_env(import_env_factory: ImportEnvFactory) -> ImportEnv:
    """An import environment whose rounds start without bytecode for the package."""
    return import_env_factory("cold")


@pytest.fixture
def warm_import_env(import_env_factory: ImportEnvFactory) -> ImportEnv:
    """An import environment whose package bytecode is compiled up front."""
    return import_env_factory("warm")
