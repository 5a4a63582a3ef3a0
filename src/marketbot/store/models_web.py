"""Tables of the web dashboard: its admin, sessions, failed sign-ins and jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketbot.store.models_base import Base, UTCDateTime, one_of, utc_now

# --- Web dashboard (issue 15; migration 0010) ---
# The web dashboard's records (migration 0010): one admin, server-side sessions, the login
# attempts the rate limit counts, and the long actions the job worker runs in order.
JOB_STATUSES: Final = ("queued", "compiling", "running", "done", "failed", "cancelled")
JOB_KINDS: Final = ("backtest", "compare", "optimize", "collect", "fill_gaps")


class WebUser(Base):
    """The dashboard's admin: a username and an argon2 password hash (never the password)."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(sa.String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class WebSession(Base):
    """A signed-in browser: the sha256 of its random cookie value, never the value itself."""

    __tablename__ = "web_sessions"
    __table_args__ = (sa.Index("ix_web_sessions_user_id", "user_id"),)

    id_sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("web_users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebLoginAttempt(Base):
    """One failed sign-in, counted per username and per client address by the rate limit."""

    __tablename__ = "web_login_attempts"
    __table_args__ = (
        sa.Index("ix_web_login_attempts_username_at", "username", "at"),
        sa.Index("ix_web_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(sa.String(100))
    ip: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Job(Base):
    """A long action (backtest, comparison, optimisation, collection) the worker runs in order.

    ``params`` is the validated request; ``result`` what the job made (``{"run_id": 7}``);
    ``progress`` a fraction 0..1 with ``message`` saying what it is doing.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        sa.CheckConstraint(one_of("kind", JOB_KINDS), name="kind"),
        sa.CheckConstraint(one_of("status", JOB_STATUSES), name="status"),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name="progress_fraction"),
        sa.Index("ix_jobs_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    progress: Mapped[float] = mapped_column(sa.Double, default=0.0)
    message: Mapped[str | None] = mapped_column(sa.Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
