"""The dashboard's settings: where the data is, TLS, the password hasher, the limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher

from marketbot.config import Settings, load_settings
from marketbot.store.models import utc_now

SETUP_TOKEN_LIFETIME = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class SetupToken:
    """The one-time token ``/setup`` asks for while no user exists, and when it expires."""

    value: str
    expires_at: datetime


@dataclass(frozen=True)
class WebSettings:
    """How one dashboard process runs.

    Attributes:
        settings: marketbot's settings (data directory, database URL, API roots); default:
            read from the environment when the app starts.
        tls: Served over HTTPS: the cookie gets ``Secure`` and responses HSTS.
        password_hasher: argon2's hasher; ``PasswordHasher()`` defaults unless a test
            injects a cheap one.
        session_idle: A session unused this long is gone (12 hours).
        login_failure_limit: Failed sign-ins per username or address within
            ``login_window`` before every attempt gets 429.
        login_window: The window of the limit (15 minutes).
        setup_token: The one-time ``/setup`` token ``web serve`` printed; None: no setup.
        run_worker: Start the job worker process with the app (tests run jobs inline).
        clock: Returns the current time; tests pass a fixed one.
    """

    settings: Settings | None = None
    tls: bool = False
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)
    session_idle: timedelta = timedelta(hours=12)
    login_failure_limit: int = 5
    login_window: timedelta = timedelta(minutes=15)
    setup_token: SetupToken | None = None
    run_worker: bool = True
    clock: Callable[[], datetime] = utc_now

    def marketbot_settings(self) -> Settings:
        """The marketbot settings given, else those of the environment."""
        return self.settings if self.settings is not None else load_settings()
