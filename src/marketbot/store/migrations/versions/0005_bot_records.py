"""The bot's records: runs, orders and their events, trades, verifications, risk events, commands.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # New tables only: the rows of every older table are untouched.
    op.create_table(
        "bot_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("strategy", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=100), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        _time("start"),
        _time("end", nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        _time("created_at"),
        _time("archived_at", nullable=True),
        _time("last_bar_time", nullable=True),
        sa.CheckConstraint("mode IN ('paper', 'live')", name=op.f("ck_bot_runs_mode")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_runs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_bot_runs_run_id")),
    )
    op.create_index(
        op.f("ix_bot_runs_archived_at_created_at"),
        "bot_runs",
        ["archived_at", "created_at"],
        unique=False,
    )
    op.create_table(
        "bot_commands",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _time("created_at"),
        sa.Column("status", sa.String(length=16), nullable=False),
        _time("acknowledged_at", nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('pause', 'resume', 'reset_breaker', 'override', 'force_exit', "
            "'force_entry', 'stop', 'reload', 'halt')",
            name=op.f("ck_bot_commands_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'acknowledged', 'rejected')",
            name=op.f("ck_bot_commands_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_commands")),
    )
    op.create_index(
        op.f("ix_bot_commands_status_id"), "bot_commands", ["status", "id"], unique=False
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("bot_run_id", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=100), nullable=False),
        sa.Column("intent", sa.String(length=16), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Double(), nullable=True),
        sa.Column("cost", sa.Double(), nullable=True),
        sa.Column("price", sa.Double(), nullable=True),
        sa.Column("stop_price", sa.Double(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filled", sa.Double(), nullable=False),
        sa.Column("average_price", sa.Double(), nullable=True),
        sa.Column("fee", sa.Double(), nullable=False),
        _time("bar_time", nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("exchange_order_id", sa.String(length=128), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _time("sent_at", nullable=True),
        sa.CheckConstraint(
            "intent IN ('entry', 'exit', 'protect', 'force_entry', 'force_exit')",
            name=op.f("ck_orders_intent"),
        ),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_orders_side")),
        sa.CheckConstraint(
            "status IN ('intent', 'open', 'closed', 'canceled', 'expired', 'rejected')",
            name=op.f("ck_orders_status"),
        ),
        sa.CheckConstraint(
            "type IN ('market', 'limit', 'stop')",
            name=op.f("ck_orders_type"),
        ),
        sa.CheckConstraint(
            "amount IS NOT NULL OR cost IS NOT NULL", name=op.f("ck_orders_amount_or_cost")
        ),
        sa.CheckConstraint("amount IS NULL OR amount > 0", name=op.f("ck_orders_amount_positive")),
        sa.CheckConstraint("attempt >= 0", name=op.f("ck_orders_attempt_positive")),
        sa.CheckConstraint("cost IS NULL OR cost > 0", name=op.f("ck_orders_cost_positive")),
        sa.CheckConstraint("fee >= 0", name=op.f("ck_orders_fee_positive")),
        sa.CheckConstraint("filled >= 0", name=op.f("ck_orders_filled_positive")),
        sa.CheckConstraint("price IS NULL OR price > 0", name=op.f("ck_orders_price_positive")),
        sa.CheckConstraint(
            "stop_price IS NULL OR stop_price > 0", name=op.f("ck_orders_stop_price_positive")
        ),
        sa.ForeignKeyConstraint(
            ["bot_run_id"], ["bot_runs.id"], name=op.f("fk_orders_bot_run_id_bot_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
    )
    op.create_index(
        op.f("ix_orders_bot_run_id_status"), "orders", ["bot_run_id", "status"], unique=False
    )
    op.create_table(
        "order_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        _time("at"),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index(
        op.f("ix_order_events_client_order_id_at"),
        "order_events",
        ["client_order_id", "at"],
        unique=False,
    )
    op.create_index(op.f("ix_order_events_order_id"), "order_events", ["order_id"], unique=False)
    op.create_table(
        "trades",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bot_run_id", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=100), nullable=False),
        sa.Column("direction", sa.String(length=5), nullable=False),
        sa.Column("size", sa.Double(), nullable=False),
        _time("entry_time"),
        sa.Column("entry_price", sa.Double(), nullable=False),
        _time("exit_time"),
        sa.Column("exit_price", sa.Double(), nullable=False),
        sa.Column("pnl", sa.Double(), nullable=False),
        sa.Column("pnl_pct", sa.Double(), nullable=False),
        sa.Column("fees", sa.Double(), nullable=False),
        sa.Column("exit_reason", sa.String(length=32), nullable=False),
        sa.Column("entry_tag", sa.String(length=100), nullable=True),
        sa.Column("entry_client_order_id", sa.String(length=64), nullable=True),
        sa.Column("exit_client_order_id", sa.String(length=64), nullable=True),
        _time("created_at"),
        sa.CheckConstraint("direction IN ('long', 'short')", name=op.f("ck_trades_direction")),
        sa.CheckConstraint("fees >= 0", name=op.f("ck_trades_fees_positive")),
        sa.CheckConstraint("size > 0", name=op.f("ck_trades_size_positive")),
        sa.ForeignKeyConstraint(
            ["bot_run_id"], ["bot_runs.id"], name=op.f("fk_trades_bot_run_id_bot_runs")
        ),
        sa.ForeignKeyConstraint(
            ["entry_client_order_id"],
            ["orders.client_order_id"],
            name=op.f("fk_trades_entry_client_order_id_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["exit_client_order_id"],
            ["orders.client_order_id"],
            name=op.f("fk_trades_exit_client_order_id_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trades")),
    )
    op.create_index(
        op.f("ix_trades_bot_run_id_exit_time"),
        "trades",
        ["bot_run_id", "exit_time"],
        unique=False,
    )
    op.create_index(
        op.f("ix_trades_symbol_exit_time"), "trades", ["symbol", "exit_time"], unique=False
    )
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expected_price", sa.Double(), nullable=True),
        sa.Column("fill_price", sa.Double(), nullable=True),
        sa.Column("slippage", sa.Double(), nullable=True),
        sa.Column("discrepancies", sa.JSON(), nullable=False),
        _time("at"),
        sa.CheckConstraint(
            "status IN ('verified', 'partial_fill', 'slippage_high', 'failed')",
            name=op.f("ck_verifications_status"),
        ),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
            name=op.f("fk_verifications_client_order_id_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    op.create_index(
        op.f("ix_verifications_client_order_id"),
        "verifications",
        ["client_order_id"],
        unique=False,
    )
    op.create_table(
        "risk_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bot_run_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        _time("at"),
        sa.Column("who", sa.String(length=100), nullable=True),
        sa.Column("why", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bot_run_id"], ["bot_runs.id"], name=op.f("fk_risk_events_bot_run_id_bot_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_events")),
    )
    op.create_index(op.f("ix_risk_events_at"), "risk_events", ["at"], unique=False)


def downgrade() -> None:
    # Children before parents, so that no foreign key is left dangling.
    op.drop_index(op.f("ix_risk_events_at"), table_name="risk_events")
    op.drop_table("risk_events")
    op.drop_index(op.f("ix_verifications_client_order_id"), table_name="verifications")
    op.drop_table("verifications")
    op.drop_index(op.f("ix_trades_symbol_exit_time"), table_name="trades")
    op.drop_index(op.f("ix_trades_bot_run_id_exit_time"), table_name="trades")
    op.drop_table("trades")
    op.drop_index(op.f("ix_order_events_order_id"), table_name="order_events")
    op.drop_index(op.f("ix_order_events_client_order_id_at"), table_name="order_events")
    op.drop_table("order_events")
    op.drop_index(op.f("ix_orders_bot_run_id_status"), table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_bot_commands_status_id"), table_name="bot_commands")
    op.drop_table("bot_commands")
    op.drop_index(op.f("ix_bot_runs_archived_at_created_at"), table_name="bot_runs")
    op.drop_table("bot_runs")
