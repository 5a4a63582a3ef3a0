"""Initial schema: the seed's six tables and backtest runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=True),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=2), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("trigger_count", sa.Integer(), nullable=False),
        sa.Column("last_triggered", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('price', 'strategy', 'portfolio')", name=op.f("ck_alerts_kind")
        ),
        sa.CheckConstraint("operator IN ('>', '>=', '<', '<=')", name=op.f("ck_alerts_operator")),
        sa.CheckConstraint("trigger_count >= 0", name=op.f("ck_alerts_trigger_count_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("exchange", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("encrypted_key", sa.LargeBinary(), nullable=False),
        sa.Column("encrypted_secret", sa.LargeBinary(), nullable=False),
        sa.Column("masked_key", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("exchange", "label", name=op.f("uq_api_keys_exchange_label")),
    )
    op.create_table(
        "backtest_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("strategy", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=100), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("recommendation", sa.String(length=16), nullable=False),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.Column("equity_curve", sa.LargeBinary(), nullable=False),
        sa.Column("trades", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_runs")),
    )
    op.create_index(
        op.f("ix_backtest_runs_strategy_created_at"),
        "backtest_runs",
        ["strategy", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_backtest_runs_symbol_created_at"),
        "backtest_runs",
        ["symbol", "created_at"],
        unique=False,
    )
    op.create_table(
        "crypto_price_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=100), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crypto_price_history")),
        sa.UniqueConstraint(
            "source",
            "symbol",
            "timeframe",
            "timestamp",
            name=op.f("uq_crypto_price_history_source_symbol_timeframe_timestamp"),
        ),
    )
    op.create_index(
        op.f("ix_crypto_price_history_symbol_timestamp"),
        "crypto_price_history",
        ["symbol", "timestamp"],
        unique=False,
    )
    op.create_table(
        "polymarket_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("market_id", sa.String(length=128), nullable=False),
        sa.Column("token_id", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=128), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("liquidity", sa.Double(), nullable=True),
        sa.CheckConstraint(
            "liquidity IS NULL OR liquidity >= 0",
            name=op.f("ck_polymarket_history_liquidity_positive"),
        ),
        sa.CheckConstraint(
            "price >= 0 AND price <= 1", name=op.f("ck_polymarket_history_price_probability")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_polymarket_history")),
        sa.UniqueConstraint(
            "token_id", "timestamp", name=op.f("uq_polymarket_history_token_id_timestamp")
        ),
    )
    op.create_index(
        op.f("ix_polymarket_history_market_id_timestamp"),
        "polymarket_history",
        ["market_id", "timestamp"],
        unique=False,
    )
    op.create_table(
        "position_configs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("position_key", sa.String(length=128), nullable=False),
        sa.Column("stop_loss", sa.Double(), nullable=True),
        sa.Column("take_profit", sa.Double(), nullable=True),
        sa.Column("trailing_stop", sa.Double(), nullable=True),
        sa.Column("trailing_activation", sa.Double(), nullable=True),
        sa.Column("max_hold_seconds", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "max_hold_seconds > 0", name=op.f("ck_position_configs_max_hold_seconds_positive")
        ),
        sa.CheckConstraint(
            "stop_loss > 0 AND stop_loss < 1", name=op.f("ck_position_configs_stop_loss_fraction")
        ),
        sa.CheckConstraint(
            "take_profit > 0", name=op.f("ck_position_configs_take_profit_positive")
        ),
        sa.CheckConstraint(
            "trailing_activation >= 0",
            name=op.f("ck_position_configs_trailing_activation_positive"),
        ),
        sa.CheckConstraint(
            "trailing_stop > 0 AND trailing_stop < 1",
            name=op.f("ck_position_configs_trailing_stop_fraction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_position_configs")),
        sa.UniqueConstraint("position_key", name=op.f("uq_position_configs_position_key")),
    )
    op.create_table(
        "trade_journal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trade_ref", sa.String(length=128), nullable=True),
        sa.Column("symbol", sa.String(length=100), nullable=False),
        sa.Column("strategy", sa.String(length=100), nullable=True),
        sa.Column("entry_reason", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Integer(), nullable=True),
        sa.Column("exit_reason", sa.Text(), nullable=True),
        sa.Column("lessons", sa.Text(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "confidence BETWEEN 1 AND 10", name=op.f("ck_trade_journal_confidence_1_to_10")
        ),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_trade_journal_rating_1_to_5")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trade_journal")),
    )
    op.create_index(
        op.f("ix_trade_journal_symbol_created_at"),
        "trade_journal",
        ["symbol", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_trade_journal_trade_ref"), "trade_journal", ["trade_ref"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_trade_journal_trade_ref"), table_name="trade_journal")
    op.drop_index(op.f("ix_trade_journal_symbol_created_at"), table_name="trade_journal")
    op.drop_table("trade_journal")
    op.drop_table("position_configs")
    op.drop_index(
        op.f("ix_polymarket_history_market_id_timestamp"), table_name="polymarket_history"
    )
    op.drop_table("polymarket_history")
    op.drop_index(
        op.f("ix_crypto_price_history_symbol_timestamp"), table_name="crypto_price_history"
    )
    op.drop_table("crypto_price_history")
    op.drop_index(op.f("ix_backtest_runs_symbol_created_at"), table_name="backtest_runs")
    op.drop_index(op.f("ix_backtest_runs_strategy_created_at"), table_name="backtest_runs")
    op.drop_table("backtest_runs")
    op.drop_table("api_keys")
    op.drop_table("alerts")
