"""Database construction, UTC column conversion and timeframe spelling, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from marketbot.core.errors import ConfigError
from marketbot.store import Database, UTCDateTime, canonical_timeframe


def test_database_when_url_malformed_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid database URL 'not a url'"):
        Database("not a url")


def test_database_when_dialect_unknown_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid database URL 'nosuchdb://x'"):
        Database("nosuchdb://x")


def test_database_when_driver_missing_raises_config_error_with_hint() -> None:
    with pytest.raises(ConfigError, match="driver for 'postgresql\\+pg8000' is not installed"):
        Database("postgresql+pg8000://user@localhost/db")


def test_database_repr_when_url_has_password_hides_it() -> None:
    with Database("postgresql+psycopg://user:hunter2@localhost/db") as database:
        text = repr(database)

    assert "hunter2" not in text
    assert "user:***@localhost" in text


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
def test_utc_datetime_when_bound_and_read_back_is_aware_utc(dialect: object) -> None:
    column = UTCDateTime()
    local = datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))

    bound = column.process_bind_param(local, dialect)  # type: ignore[arg-type]
    read = column.process_result_value(bound, dialect)  # type: ignore[arg-type]

    assert read == datetime(2024, 6, 1, 17, 0, tzinfo=UTC)
    assert read is not None and read.tzinfo is UTC
    if isinstance(dialect, sqlite.dialect):
        assert bound is not None and bound.tzinfo is None  # SQLite stores UTC without offset


def test_utc_datetime_when_value_naive_takes_it_as_utc() -> None:
    bound = UTCDateTime().process_bind_param(datetime(2024, 1, 1), postgresql.dialect())

    assert bound == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("label", "canonical"), [("1h", "1h"), ("60m", "1h"), ("24h", "1d"), ("7d", "1w")]
)
def test_canonical_timeframe_when_spelled_differently_returns_one_label(
    label: str, canonical: str
) -> None:
    assert canonical_timeframe(label) == canonical
