"""Idempotent batch writes: INSERT ... ON CONFLICT DO UPDATE, in chunks, in one transaction.

Every repository that stores fetched data writes through here, so a batch is always all or
nothing and a re-run never duplicates rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from marketbot.core.errors import ConfigError, DataError
from marketbot.store.database import Database

__all__ = ["REJECTED_BATCH_ERRORS", "execute_in_one_transaction", "upsert_insert"]

# Rows go to the driver as executemany() of a one-row statement, so a statement never binds
# more than one row's parameters and SQLite's bound-variable limit (999 before 3.32) cannot
# be hit however long the batch is; chunking bounds the size of each driver call.
_ROWS_PER_CHUNK: Final = 2000
# What a database raises when it refuses the data (constraints, triggers, bad values).
# OperationalError (locks, lost connections) is left alone: it is not the batch's fault.
REJECTED_BATCH_ERRORS: Final = (
    sa.exc.IntegrityError,
    sa.exc.DataError,
    sa.exc.InternalError,
    sa.exc.ProgrammingError,
)
# The dialects with INSERT ... ON CONFLICT DO UPDATE, which idempotent batches rely on.
_UPSERT_INSERTS: Final[dict[str, Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def upsert_insert(database: Database, what: str) -> Any:
    """The database's ``insert`` that offers ``on_conflict_do_update``.

    Args:
        database: Where the rows go.
        what: What is being stored, for the message (``storing bars``).

    Raises:
        ConfigError: the database is neither SQLite nor PostgreSQL.
    """
    insert = _UPSERT_INSERTS.get(database.dialect)
    if insert is None:
        raise ConfigError(
            f"{what} needs SQLite or PostgreSQL (a bulk upsert); this database is "
            f"{database.dialect}"
        )
    return insert


def execute_in_one_transaction(
    database: Database, statement: Any, rows: Sequence[dict[str, Any]], *, rejected: str
) -> int:
    """Run ``statement`` for every row, in chunks, in one transaction; return the row count.

    Args:
        database: Where the rows go.
        statement: A one-row statement, e.g. an upsert.
        rows: Its parameters, one dict a row.
        rejected: The message's start when the database refuses a row.

    Raises:
        DataError: ``"{rejected}: {the database's reason}"``; nothing of the batch is stored.
    """
    try:
        with database.engine.begin() as connection:
            for offset in range(0, len(rows), _ROWS_PER_CHUNK):
                connection.execute(statement, list(rows[offset : offset + _ROWS_PER_CHUNK]))
    except REJECTED_BATCH_ERRORS as exc:
        raise DataError(f"{rejected}: {exc.orig}") from exc
    return len(rows)
