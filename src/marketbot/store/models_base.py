"""What every marketbot table shares: the declarative base, its naming convention, column types.

Timestamps are stored in one of two ways, chosen per table for what the rows are used for:

* Price series (``crypto_price_history``, ``polymarket_history``) store ``timestamp`` as an
  integer number of seconds since the Unix epoch, UTC. Bars are bulk numeric data that is
  loaded straight into numpy; an integer round-trips exactly on every database, makes the
  unique key exact (no text formats or time zone settings involved), and is the fastest
  thing to read.
* Records that people look at (journal entries, alerts, runs, keys) use :class:`UTCDateTime`,
  a timezone-aware ``DateTime``: PostgreSQL stores ``timestamptz``, SQLite stores UTC text,
  and both give back timezone-aware UTC datetimes.

Every constraint has a name (see ``NAMING_CONVENTION``) so that later migrations can alter it
on both SQLite (batch mode) and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A 64-bit id on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utc_now() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A ``DateTime`` that always comes back timezone-aware in UTC.

    Naive datetimes given to it are taken as UTC, like everywhere else in marketbot. SQLite
    has no time zone type, so the value is converted to UTC and stored without an offset.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC before the driver sees the value."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to what the database returns."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every marketbot table; its metadata is what migrations build."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK expression: ``column`` holds one of ``values``."""
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"
