"""Tables of alerts and of the events the bot and the alerts report to people."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketbot.store.models_base import Base, UTCDateTime, one_of, utc_now

ALERT_KINDS: Final = ("price", "strategy", "portfolio")
ALERT_OPERATORS: Final = (">", ">=", "<", "<=")


class Alert(Base):
    """A user alert: fires when ``metric`` of ``subject`` compares true against ``threshold``.

    Examples: price of ``bitcoin`` > 100000; confidence of strategy ``momentum`` > 0.8;
    total_value of the portfolio (no subject) > 15000.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN (" + ", ".join(f"'{kind}'" for kind in ALERT_KINDS) + ")", name="kind"
        ),
        sa.CheckConstraint(
            "operator IN (" + ", ".join(f"'{op}'" for op in ALERT_OPERATORS) + ")",
            name="operator",
        ),
        sa.CheckConstraint("trigger_count >= 0", name="trigger_count_positive"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(16))
    subject: Mapped[str | None] = mapped_column(sa.String(100))
    metric: Mapped[str] = mapped_column(sa.String(64))
    operator: Mapped[str] = mapped_column(sa.String(2))
    threshold: Mapped[float] = mapped_column(sa.Double)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    trigger_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_triggered: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # Migration 0009: the threshold's unit (usd, pct, fraction, count, signal, price), the
    # cooldown between firings, whether the alert may fire (it disarms when it fires and
    # re-arms when the condition is false), the bars it is evaluated on (null: any) and the
    # value seen at its last evaluation.
    unit: Mapped[str | None] = mapped_column(sa.String(16))
    cooldown_seconds: Mapped[int] = mapped_column(sa.Integer, default=3600)
    armed: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    timeframe: Mapped[str | None] = mapped_column(sa.String(16))
    last_value: Mapped[float | None] = mapped_column(sa.Double)


# --- Alerts and events (issue 14; migration 0009) ---
EVENT_SEVERITIES: Final = ("info", "warning", "emergency")


class Event(Base):
    """Something the bot or an alert wants a person to know, and whether the notice went out.

    ``kind`` says what happened (``alert_fired``, ``circuit_breaker_tripped``,
    ``slippage_high``, ``order_rejected``, ``heartbeat_stale``...); ``details`` holds its facts
    (JSON). ``alert_id`` links an alert's firing. ``delivered`` is true once every notify URL
    took the notice; ``delivery_error`` says which did not (by scheme and host only: a URL may
    hold a password).
    """

    __tablename__ = "events"
    __table_args__ = (
        sa.CheckConstraint(one_of("severity", EVENT_SEVERITIES), name="severity"),
        sa.Index("ix_events_at", "at"),
        sa.Index("ix_events_alert_id", "alert_id"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(sa.String(64))
    severity: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    alert_id: Mapped[int | None] = mapped_column(sa.ForeignKey("alerts.id", ondelete="SET NULL"))
    delivered: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    delivery_error: Mapped[str | None] = mapped_column(sa.Text)
