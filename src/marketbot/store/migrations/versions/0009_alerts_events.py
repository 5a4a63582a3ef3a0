"""Alert state and the events table (issue 14, alerts).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Alerts stored before this revision start armed, with the default cooldown of one hour.
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("unit", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column("cooldown_seconds", sa.Integer(), nullable=False, server_default="3600")
        )
        batch.add_column(sa.Column("armed", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("timeframe", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("last_value", sa.Double(), nullable=True))
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("delivery_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'emergency')", name=op.f("ck_events_severity")
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_events_alert_id_alerts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_at"), "events", ["at"], unique=False)
    op.create_index(op.f("ix_events_alert_id"), "events", ["alert_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_events_alert_id"), table_name="events")
    op.drop_index(op.f("ix_events_at"), table_name="events")
    op.drop_table("events")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("last_value")
        batch.drop_column("timeframe")
        batch.drop_column("armed")
        batch.drop_column("cooldown_seconds")
        batch.drop_column("unit")
