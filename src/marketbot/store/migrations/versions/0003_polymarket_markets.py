"""Polymarket markets: what Gamma says about each collected market.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "polymarket_markets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("market_id", sa.String(length=128), nullable=False),
        sa.Column("condition_id", sa.String(length=128), nullable=False),
        sa.Column("slug", sa.String(length=255), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("event_slug", sa.String(length=255), nullable=True),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("token_ids", sa.JSON(), nullable=False),
        sa.Column("outcome_prices", sa.JSON(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=True),
        sa.Column("liquidity", sa.Double(), nullable=True),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("closed_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_status", sa.String(length=64), nullable=True),
        sa.Column("winning_outcome", sa.String(length=128), nullable=True),
        sa.Column("fidelity_minutes", sa.Integer(), nullable=True),
        sa.Column("collected_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "fidelity_minutes IS NULL OR fidelity_minutes >= 1",
            name=op.f("ck_polymarket_markets_fidelity_minutes_positive"),
        ),
        sa.CheckConstraint(
            "liquidity IS NULL OR liquidity >= 0",
            name=op.f("ck_polymarket_markets_liquidity_positive"),
        ),
        sa.CheckConstraint(
            "volume IS NULL OR volume >= 0", name=op.f("ck_polymarket_markets_volume_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_polymarket_markets")),
        sa.UniqueConstraint("market_id", name=op.f("uq_polymarket_markets_market_id")),
    )
    op.create_index(
        op.f("ix_polymarket_markets_slug"), "polymarket_markets", ["slug"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_polymarket_markets_slug"), table_name="polymarket_markets")
    op.drop_table("polymarket_markets")
