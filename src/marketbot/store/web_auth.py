"""The dashboard's admin, its server-side sessions and the failed sign-ins the limit counts.

A session id is 256 random bits; only its sha256 is stored, so a copy of the database does
not sign anyone in. Password hashing is the caller's (the web layer's argon2 hasher): this
module stores and returns hashes only.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from marketbot.core.clock import as_utc
from marketbot.core.errors import ConfigError
from marketbot.store.database import Database
from marketbot.store.models import WebLoginAttempt, WebSession, WebUser, utc_now

Clock = Callable[[], datetime]

USERNAME_MAX_LENGTH = 100


@dataclass(frozen=True, slots=True)
class WebUserInfo:
    """The admin as stored."""

    id: int
    username: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live session: whose it is and its CSRF token."""

    id_sha256: str
    user_id: int
    username: str
    csrf_token: str
    last_seen_at: datetime


def session_digest(session_id: str) -> str:
    """The sha256 (hex) under which a session id is stored."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def check_username(username: str) -> str:
    """The username stripped, else a ConfigError saying what is wrong with it."""
    name = username.strip()
    if not name:
        raise ConfigError("username must not be empty")
    if len(name) > USERNAME_MAX_LENGTH:
        raise ConfigError(f"username is {len(name)} characters long, at most 100 fit")
    return name


class WebAuthRepository:
    """Users, sessions and failed sign-ins in one database.

    Args:
        database: A database migrated to the current schema.
        clock: Returns the current time; tests pass a fixed one.
    """

    def __init__(self, database: Database, *, clock: Clock = utc_now) -> None:
        self._database = database
        self._clock = clock

    def now(self) -> datetime:
        """The clock's time, UTC."""
        return as_utc(self._clock())

    # --- users ---

    def user_count(self) -> int:
        """How many users exist (0 before setup, else 1)."""
        with self._database.session() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(WebUser)) or 0)

    def user(self, username: str) -> WebUserInfo | None:
        """The user of that name, or None."""
        with self._database.session() as session:
            row = session.scalar(sa.select(WebUser).where(WebUser.username == username))
            return None if row is None else WebUserInfo(row.id, row.username, row.password_hash)

    def set_admin(self, username: str, password_hash: str) -> WebUserInfo:
        """Create or replace the single admin and revoke every session, in one transaction."""
        name = check_username(username)
        now = self.now()
        with self._database.session() as session, session.begin():
            session.execute(sa.delete(WebSession))
            existing = session.scalars(sa.select(WebUser).order_by(WebUser.id)).all()
            keep = next((row for row in existing if row.username == name), None)
            for row in existing:
                if row is not keep:
                    session.delete(row)
            if keep is None:
                keep = WebUser(username=name, created_at=now)
                session.add(keep)
            keep.password_hash = password_hash
            keep.updated_at = now
            session.flush()
            return WebUserInfo(keep.id, keep.username, keep.password_hash)

    def create_first_admin(self, username: str, password_hash: str) -> WebUserInfo | None:
        """Create the admin only if no user exists yet; None when one already does."""
        name = check_username(username)
        now = self.now()
        with self._database.session() as session, session.begin():
            if session.scalar(sa.select(sa.func.count()).select_from(WebUser)):
                return None
            row = WebUser(username=name, password_hash=password_hash, created_at=now)
            row.updated_at = now
            session.add(row)
            session.flush()
            return WebUserInfo(row.id, row.username, row.password_hash)

    def update_hash(self, user_id: int, password_hash: str) -> None:
        """Store a rehashed password (same password, newer argon2 parameters)."""
        with self._database.session() as session, session.begin():
            session.execute(
                sa.update(WebUser).where(WebUser.id == user_id).values(password_hash=password_hash)
            )

    # --- sessions ---

    def open_session(self, user_id: int) -> tuple[str, SessionInfo]:
        """A new session for the user: the cookie value (256 bits) and what is stored."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self.now()
        digest = session_digest(session_id)
        with self._database.session() as session, session.begin():
            user = session.get(WebUser, user_id)
            if user is None:
                raise ConfigError(f"no web user with id {user_id}")
            session.add(
                WebSession(
                    id_sha256=digest,
                    user_id=user_id,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                )
            )
            info = SessionInfo(digest, user_id, user.username, csrf, now)
        return session_id, info

    def live_session(
        self, session_id: str, *, idle: timedelta, touch_after: timedelta
    ) -> SessionInfo | None:
        """The session of a cookie value if it exists and was used within ``idle``.

        An expired session is deleted. ``last_seen_at`` is moved forward at most once per
        ``touch_after``, so that reading pages does not write on every request.
        """
        digest = session_digest(session_id)
        now = self.now()
        with self._database.session() as session, session.begin():
            row = session.get(WebSession, digest)
            if row is None:
                return None
            if now - row.last_seen_at > idle:
                session.delete(row)
                return None
            if now - row.last_seen_at > touch_after:
                row.last_seen_at = now
            user = session.get(WebUser, row.user_id)
            if user is None:
                return None
            return SessionInfo(digest, row.user_id, user.username, row.csrf_token, row.last_seen_at)

    def close_session(self, id_sha256: str) -> None:
        """Revoke one session (logout)."""
        with self._database.session() as session, session.begin():
            session.execute(sa.delete(WebSession).where(WebSession.id_sha256 == id_sha256))

    def session_count(self) -> int:
        """How many sessions are stored."""
        with self._database.session() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(WebSession)) or 0)

    # --- failed sign-ins ---

    def record_failure(self, username: str, ip: str) -> None:
        """Count one failed sign-in for the username and the client address."""
        with self._database.session() as session, session.begin():
            session.add(WebLoginAttempt(username=username[:100], ip=ip[:64], at=self.now()))

    def locked_for(self, username: str, ip: str, *, limit: int, window: timedelta) -> int:
        """Seconds until another attempt may be made; 0 when the username and address may try.

        Either ``limit`` failures for the username or for the address within ``window``
        lock both out until the oldest of those failures leaves the window.
        """
        now = self.now()
        since = now - window
        waits = [0]
        with self._database.session() as session:
            for column, value in (
                (WebLoginAttempt.username, username[:100]),
                (WebLoginAttempt.ip, ip[:64]),
            ):
                times = session.scalars(
                    sa.select(WebLoginAttempt.at)
                    .where(column == value, WebLoginAttempt.at > since)
                    .order_by(WebLoginAttempt.at.desc())
                    .limit(limit)
                ).all()
                if len(times) >= limit:
                    unlock = as_utc(times[-1]) + window
                    waits.append(max(1, int((unlock - now).total_seconds() + 0.999)))
        return max(waits)

    def forget_failures(self, username: str) -> None:
        """Clear a username's failures after it signs in."""
        with self._database.session() as session, session.begin():
            session.execute(
                sa.delete(WebLoginAttempt).where(WebLoginAttempt.username == username[:100])
            )
