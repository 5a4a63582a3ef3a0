"""Shared test set-up: the hypothesis profile and the store's database fixtures.

``database`` (migrated) and ``empty_database`` run a test twice: on an SQLite file and on a
PostgreSQL database in a throwaway cluster that this session starts (those runs carry the
``postgres`` mark). Without the PostgreSQL binaries those runs are skipped, or fail when
MARKETBOT_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from marketbot._compile_cache import configure_numba_cache
from tests.support.postgres import REQUIRE_ENV, PostgresCluster, PostgresUnavailableError

if TYPE_CHECKING:
    from marketbot.store import Database

# Importing marketbot already did this; said again here so the tests never depend on import
# order: every compiled kernel comes from the cache folder of the current sources.
configure_numba_cache()

# No deadline: the first example of a kernel test compiles it. Derandomized, so CI is
# deterministic; `make test-deep` (by hand) runs the same properties 800 times each.
settings.register_profile("ci", deadline=None, max_examples=50, derandomize=True)
settings.register_profile("deep", deadline=None, max_examples=800, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

# Seconds per suite (unit/<package>, integration/<folder or file>), printed at the end so CI
# shows where the time goes.
_SUITE_SECONDS: dict[str, float] = defaultdict(float)


def _suite(nodeid: str) -> str:
    parts = nodeid.split("::", 1)[0].split("/")
    if len(parts) >= 3 and parts[0] == "tests":
        return f"{parts[1]}/{parts[2].removesuffix('.py')}"
    return parts[-1].removesuffix(".py")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add each phase's time to its suite."""
    _SUITE_SECONDS[_suite(report.nodeid)] += report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print each suite's time, slowest first."""
    if not _SUITE_SECONDS:
        return
    terminalreporter.section("seconds per suite")
    for suite, seconds in sorted(_SUITE_SECONDS.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{seconds:8.1f}  {suite}")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL cluster for the whole session, removed at the end."""
    try:
        cluster = PostgresCluster.start()
    except PostgresUnavailableError as exc:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"PostgreSQL is required ({REQUIRE_ENV}=1) but unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


def _migrate(url: str) -> None:
    from marketbot.store import Database  # the store's fixtures only cost when used

    with Database(url) as database:
        database.migrate()


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; tests get copies (migrating each time is slower)."""
    path = tmp_path_factory.mktemp("template") / "marketbot.db"
    _migrate(f"sqlite:///{path}")  # closing the last connection folds the WAL into the file
    return path


@pytest.fixture(scope="session")
def migrated_postgres_template(postgres_cluster: PostgresCluster) -> str:
    """A PostgreSQL database migrated once, for CREATE DATABASE ... TEMPLATE."""
    name = postgres_cluster.create_database()
    _migrate(postgres_cluster.url(name))
    return name


@pytest.fixture(params=BACKENDS)
def database_backend(request: pytest.FixtureRequest) -> str:
    """Which database kind the test runs on: ``sqlite`` or ``postgresql``."""
    return str(request.param)


@contextmanager
def _new_database_url(
    request: pytest.FixtureRequest, database_backend: str, tmp_path: Path, *, migrated: bool
) -> Iterator[str]:
    if database_backend == "sqlite":
        path = tmp_path / "marketbot.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("migrated_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    template = request.getfixturevalue("migrated_postgres_template") if migrated else None
    name = cluster.create_database(template=template)
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


@pytest.fixture
def empty_database(
    request: pytest.FixtureRequest, database_backend: str, tmp_path: Path
) -> Iterator[Database]:
    """A Database on a new database without any tables."""
    from marketbot.store import Database

    with (
        _new_database_url(request, database_backend, tmp_path, migrated=False) as url,
        Database(url) as db,
    ):
        yield db


@pytest.fixture
def database(
    request: pytest.FixtureRequest, database_backend: str, tmp_path: Path
) -> Iterator[Database]:
    """A Database on a new database at the current schema."""
    from marketbot.store import Database

    with (
        _new_database_url(request, database_backend, tmp_path, migrated=True) as url,
        Database(url) as db,
    ):
        yield db


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver listens on 127.0.0.1 only, on a free port."""
    return ("127.0.0.1", 0)
