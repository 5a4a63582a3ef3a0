"""Migrations, schema and connection settings, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from marketbot.config import Settings
from marketbot.store import Base, Database, alembic_config

TABLES = {
    "alerts",
    "api_keys",
    "jobs",
    "backtest_runs",
    "bot_commands",
    "bot_runs",
    "crypto_price_history",
    "events",
    "optimization_runs",
    "order_events",
    "orders",
    "polymarket_books",
    "polymarket_history",
    "polymarket_markets",
    "position_configs",
    "risk_events",
    "trade_journal",
    "trades",
    "verifications",
    "walk_forward_runs",
    "web_login_attempts",
    "web_sessions",
    "web_users",
}


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_migrate_when_database_empty_creates_every_table(empty_database: Database) -> None:
    assert empty_database.schema_revision() is None

    empty_database.migrate()

    tables = set(sa.inspect(empty_database.engine).get_table_names())
    assert tables == TABLES | {"alembic_version"}
    assert empty_database.schema_revision() == head_revision()


def test_migrate_when_already_at_head_changes_nothing(database: Database) -> None:
    database.migrate()

    assert database.schema_revision() == head_revision()


def test_migrated_schema_when_compared_with_models_has_no_difference(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_schema_comparison_when_models_gain_a_column_reports_it(database: Database) -> None:
    # Guards the test above against passing vacuously.
    changed = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["alerts"].append_column(sa.Column("note", sa.Text))
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, changed)

    assert [(d[0], d[3].name) for d in differences] == [("add_column", "note")]


def test_migrate_when_downgraded_to_base_removes_every_table(database: Database) -> None:
    from alembic import command

    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")

    assert set(sa.inspect(database.engine).get_table_names()) == {"alembic_version"}


def test_check_constraints_when_violated_are_enforced(database: Database) -> None:
    table = Base.metadata.tables["trade_journal"]

    with pytest.raises(sa.exc.IntegrityError), database.engine.begin() as connection:
        connection.execute(
            sa.insert(table).values(
                symbol="bitcoin",
                rating=6,
                created_at=sa.func.now(),
                updated_at=sa.func.now(),
            )
        )


def test_sqlite_connection_when_opened_uses_wal_foreign_keys_and_busy_timeout(
    tmp_path: Path,
) -> None:
    with Database(f"sqlite:///{tmp_path / 'm.db'}") as database:
        database.migrate()
        with database.engine.connect() as connection:
            journal_mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
            busy_timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()

    assert journal_mode == "wal"
    assert foreign_keys == 1
    assert busy_timeout is not None and int(busy_timeout) >= 1000


def test_database_from_settings_when_data_dir_missing_creates_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "var"

    with Database.from_settings(Settings(data_dir=data_dir)) as database:
        database.migrate()
        with database.engine.connect() as connection:
            journal_mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()

    assert (data_dir / "marketbot.db").is_file()
    assert journal_mode == "wal"


def test_head_revision_when_compared_with_the_scripts_is_the_newest(database: Database) -> None:
    from alembic.script import ScriptDirectory

    from marketbot.store.database import HEAD_REVISION, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION
    assert database.schema_revision() == HEAD_REVISION
    # Migrating a current database again is a fast no-op that changes nothing.
    database.migrate()
    assert database.schema_revision() == HEAD_REVISION


def test_migrate_when_upgrading_from_0003_keeps_backtest_runs(empty_database: Database) -> None:
    from marketbot.store import BacktestRunRepository

    empty_database.migrate("0003")
    # The 0003 table, written without the current models (they have the 0004 columns).
    old_runs = sa.table(
        "backtest_runs",
        *(sa.column(name) for name in ("strategy", "symbol", "timeframe", "source")),
        *(sa.column(name, sa.DateTime(timezone=True)) for name in ("created_at", "start", "end")),
        *(sa.column(name, sa.JSON) for name in ("params", "settings", "metrics")),
        sa.column("recommendation"),
        sa.column("trade_count"),
        sa.column("equity_curve", sa.LargeBinary),
        sa.column("trades", sa.LargeBinary),
    )
    when = datetime(2025, 1, 1, tzinfo=UTC)
    with empty_database.engine.begin() as connection:
        connection.execute(
            sa.insert(old_runs).values(
                created_at=when, strategy="rsi", symbol="bitcoin", timeframe="1d",
                source="bitstamp", start=when, end=when, params={}, settings={},
                metrics={"sharpe": 1.5},
                recommendation="GOOD", trade_count=2, equity_curve=b"", trades=b"",
            )
        )  # fmt: skip

    empty_database.migrate()

    (run,) = BacktestRunRepository(empty_database).list_runs()
    assert (run.strategy, run.symbol, run.metrics, run.trade_count) == (
        "rsi",
        "bitcoin",
        {"sharpe": 1.5},
        2,
    )
    assert (run.data_file, run.data_sha256) == (None, None)
