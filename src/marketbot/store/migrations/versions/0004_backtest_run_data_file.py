"""Backtest runs on a CSV file: the file's name and the sha256 of its content.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns: existing runs (all on stored bars) keep their rows unchanged.
    with op.batch_alter_table("backtest_runs") as batch:
        batch.add_column(sa.Column("data_file", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("data_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backtest_runs") as batch:
        batch.drop_column("data_sha256")
        batch.drop_column("data_file")
