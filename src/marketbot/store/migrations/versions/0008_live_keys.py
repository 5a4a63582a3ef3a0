"""Encrypted exchange credentials and stored walk-forward results (issue 14, live).

``api_keys`` gains an encrypted column for every other credential ccxt's
``requiredCredentials`` can name, and the last ``keys test``'s time, result and message; the
API key and secret become nullable (a wallet-based exchange has neither). ``walk_forward_runs``
keeps each walk-forward validation's out-of-sample verdict for the live gates.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENCRYPTED_COLUMNS = (
    "encrypted_password",
    "encrypted_uid",
    "encrypted_private_key",
    "encrypted_wallet_address",
)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("encrypted_key", existing_type=sa.LargeBinary(), nullable=True)
        batch.alter_column("encrypted_secret", existing_type=sa.LargeBinary(), nullable=True)
        for name in _ENCRYPTED_COLUMNS:
            batch.add_column(sa.Column(name, sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("last_tested_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_test_ok", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("last_test_message", sa.Text(), nullable=True))
    op.create_table(
        "walk_forward_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("strategy", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=100), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("out_of_sample_metrics", sa.JSON(), nullable=False),
        sa.Column("recommendation", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_walk_forward_runs")),
    )
    op.create_index(
        op.f("ix_walk_forward_runs_strategy_created_at"),
        "walk_forward_runs",
        ["strategy", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_walk_forward_runs_strategy_created_at"), table_name="walk_forward_runs")
    op.drop_table("walk_forward_runs")
    # Keys without an API key or secret cannot live in the old schema.
    op.execute("DELETE FROM api_keys WHERE encrypted_key IS NULL OR encrypted_secret IS NULL")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_test_message")
        batch.drop_column("last_test_ok")
        batch.drop_column("last_tested_at")
        for name in reversed(_ENCRYPTED_COLUMNS):
            batch.drop_column(name)
        batch.alter_column("encrypted_secret", existing_type=sa.LargeBinary(), nullable=False)
        batch.alter_column("encrypted_key", existing_type=sa.LargeBinary(), nullable=False)
