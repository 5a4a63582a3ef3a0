"""The database handle: engine, sessions and migrations for one database URL.

There is no global engine: the app layer builds one :class:`Database` from the settings and
passes it to the repositories that need it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from marketbot.core.errors import ConfigError
from marketbot.store._codec import dumps

if TYPE_CHECKING:
    from alembic.config import Config

    from marketbot.config import Settings

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
# Long enough to ride out another process's write transaction (a bulk import of a few
# seconds), short enough that a stuck lock surfaces as an error instead of a hang.
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000


# The newest migration's revision id; a test checks it against the migration scripts.
HEAD_REVISION: Final = "0010"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the migrations shipped in this package.

    Args:
        connection: Run migrations on this connection (inside its transaction). Without it,
            ``env.py`` connects to ``sqlalchemy.url`` if set, else to the settings' database.

    Returns:
        A Config usable with ``alembic.command`` (upgrade, revision --autogenerate, ...).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while a collector writes; SQLite leaves foreign keys off
    # unless asked, and without a busy timeout a concurrent writer fails at once.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


class _BatchSession(Session):
    """The session every repository shares inside :meth:`Database.batch`.

    The repositories' ``with db.session() as s, s.begin():`` blocks run unchanged: ``begin``
    only flushes at the block's end (so a constraint fails where it did), and leaving the
    block does not close the session; the batch commits once.
    """

    def begin(self, nested: bool = False) -> Any:
        return _flush_on_exit(self)

    def close(self) -> None:
        """Kept open until the batch ends."""

    def __exit__(self, *exc_info: object) -> None:
        """Kept open until the batch ends."""


@contextmanager
def _flush_on_exit(session: Session) -> Iterator[Session]:
    yield session
    session.flush()


class Database:
    """One database: owns the SQLAlchemy engine and a session factory.

    Use it as a context manager, or call :meth:`dispose` when done, to close connections.

    Args:
        url: Any SQLAlchemy URL, e.g. ``sqlite:///var/marketbot.db`` or
            ``postgresql+psycopg://user@host/marketbot``.
        echo: Log every SQL statement (for debugging).

    Raises:
        ConfigError: the URL is malformed or its database driver is not installed.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            parsed = sa.make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"invalid database URL {url!r}: {exc}") from exc
        try:
            # A strict serializer: a NaN reaching a JSON column is a bug, and PostgreSQL
            # would reject it anyway; the repositories encode non-finite floats first.
            self._engine = sa.create_engine(parsed, echo=echo, json_serializer=dumps)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ConfigError(f"invalid database URL {url!r}: {exc}") from exc
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"the database driver for {parsed.drivername!r} is not installed ({exc.name}); "
                "for PostgreSQL install marketbot[postgres]"
            ) from exc
        if self._engine.dialect.name == "sqlite":
            event.listen(self._engine, "connect", _configure_sqlite)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._batch = threading.local()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The database the settings name, creating the data directory first."""
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"MARKETBOT_DATA_DIR: cannot create {settings.data_dir}: {exc}"
            ) from exc
        return cls(settings.resolved_database_url)

    def __repr__(self) -> str:
        return f"Database({self._engine.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.dispose()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for Core queries in repositories)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """The database kind: ``sqlite``, ``postgresql``, ..."""
        return self._engine.dialect.name

    def session(self) -> Session:
        """A new ORM session; use it as a context manager (``with db.session() as s:``).

        Inside :meth:`batch` (in the same thread) it is the batch's session instead, whose
        ``begin()`` and close are no-ops: the batch commits once, at its end.
        """
        shared = getattr(self._batch, "session", None)
        return shared if shared is not None else self._sessions()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group every write of this thread into one transaction, committed at the end.

        The bot's iteration runs in one, so a bar's records (fills, trades, verifications,
        risk events, the run's progress) are committed together, before its state file.
        A writer that must be durable at once (an order intent before it is sent, an
        alert's firing before its notice) calls :meth:`commit_batch`. An exception rolls
        the uncommitted part back. Batches do not nest.
        """
        if getattr(self._batch, "session", None) is not None:
            raise RuntimeError("Database.batch() does not nest")
        shared = _BatchSession(bind=self._engine, expire_on_commit=False)
        self._batch.session = shared
        try:
            yield
            shared.commit()
        except BaseException:
            shared.rollback()
            raise
        finally:
            self._batch.session = None
            Session.close(shared)

    def commit_batch(self) -> None:
        """Commit what the current batch holds so far (nothing to do outside a batch)."""
        shared = getattr(self._batch, "session", None)
        if shared is not None:
            shared.commit()

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema up to ``revision`` (``alembic upgrade``); a no-op when it is there.

        On PostgreSQL the whole upgrade is one transaction. SQLite commits each DDL
        statement, so an upgrade interrupted there can leave part of a revision applied.
        """
        if revision == "head" and self._stored_revision() == HEAD_REVISION:
            # Already current: skip importing and running alembic (~150 ms per command).
            return
        from alembic import command

        with self._engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)

    def _stored_revision(self) -> str | None:
        """The revision in ``alembic_version``, read without alembic; None if absent."""
        with self._engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        return str(rows[0][0]) if len(rows) == 1 else None

    def schema_revision(self) -> str | None:
        """The migration revision the database is at, or None before the first migration."""
        from alembic.runtime.migration import MigrationContext

        with self._engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()
