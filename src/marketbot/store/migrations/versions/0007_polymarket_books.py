"""Polymarket order-book snapshots (issue 13): the top of each outcome token's book.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "polymarket_books",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("market_id", sa.String(length=128), nullable=False),
        sa.Column("outcome_index", sa.SmallInteger(), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("best_bid", sa.Double(), nullable=True),
        sa.Column("bid_size", sa.Double(), nullable=True),
        sa.Column("best_ask", sa.Double(), nullable=True),
        sa.Column("ask_size", sa.Double(), nullable=True),
        sa.CheckConstraint(
            "outcome_index IN (0, 1)", name=op.f("ck_polymarket_books_outcome_index_binary")
        ),
        sa.CheckConstraint(
            "best_bid IS NULL OR (best_bid >= 0 AND best_bid <= 1)",
            name=op.f("ck_polymarket_books_best_bid_probability"),
        ),
        sa.CheckConstraint(
            "best_ask IS NULL OR (best_ask >= 0 AND best_ask <= 1)",
            name=op.f("ck_polymarket_books_best_ask_probability"),
        ),
        sa.CheckConstraint(
            "bid_size IS NULL OR bid_size >= 0", name=op.f("ck_polymarket_books_bid_size_positive")
        ),
        sa.CheckConstraint(
            "ask_size IS NULL OR ask_size >= 0", name=op.f("ck_polymarket_books_ask_size_positive")
        ),
        sa.CheckConstraint(
            "(best_bid IS NULL) = (bid_size IS NULL)",
            name=op.f("ck_polymarket_books_bid_side_whole"),
        ),
        sa.CheckConstraint(
            "(best_ask IS NULL) = (ask_size IS NULL)",
            name=op.f("ck_polymarket_books_ask_side_whole"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_polymarket_books")),
        sa.UniqueConstraint(
            "market_id",
            "outcome_index",
            "timestamp_ms",
            name=op.f("uq_polymarket_books_market_id_outcome_index_timestamp_ms"),
        ),
    )


def downgrade() -> None:
    op.drop_table("polymarket_books")
