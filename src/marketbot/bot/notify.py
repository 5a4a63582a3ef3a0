"""Notices to people: the log, the ``events`` table, and apprise URLs from a worker thread.

:class:`AppriseNotifier` implements the bot's ``Notifier`` (``bot.recorder``). Each notice is
logged, stored as an event (unless the caller stored it already, as an alert's firing does)
and, when its category is in ``MARKETBOT_NOTIFY_EVENTS``, queued for the notify URLs on the
notifier's own :class:`~marketbot.net.rate_limiter.PriorityRateLimiter` (emergencies at
priority 1, the rest at 5) and sent from its worker thread, at most 10 s per send. The
caller never waits for a send and never sees one fail: a failure is logged by scheme and
host only (a URL may hold a password) and written on the event (``delivered``,
``delivery_error``). :meth:`AppriseNotifier.close` drains the queue at exit.

apprise and ccxt are the two libraries that talk to the network themselves rather than
through ``net/``; apprise is imported only when a notifier with URLs is built.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, Self
from urllib.parse import urlsplit

from marketbot.core.clock import Clock, SystemClock
from marketbot.core.errors import ConfigError, MarketbotError
from marketbot.net.rate_limiter import PRIORITY_EMERGENCY, PRIORITY_NORMAL, PriorityRateLimiter
from marketbot.store.events import EventRecord, EventRepository

if TYPE_CHECKING:
    from marketbot.config import Settings

_log = logging.getLogger("marketbot.notify")

NOTIFY_CATEGORIES: Final = ("emergency", "alert", "fill", "lifecycle")
DEFAULT_NOTIFY_EVENTS: Final = "emergency,alert"
SEND_TIMEOUT_SECONDS: Final = 10.0
DRAIN_TIMEOUT_SECONDS: Final = 30.0
# Kinds of notices by category; any other non-emergency notice counts as lifecycle.
_FILL_KINDS: Final = frozenset({"fill", "order_filled", "trade_closed"})


class EventNotifier(Protocol):
    """A notifier that can also be told the event a notice belongs to (``AppriseNotifier``)."""

    def notify(
        self,
        title: str,
        message: str,
        *,
        emergency: bool = False,
        kind: str | None = None,
        event_id: int | None = None,
    ) -> None:
        """Send one notice (``event_id``: the event stored for it already)."""
        ...


@dataclass(frozen=True)
class NotifyTarget:
    """One notify URL, shown by scheme and host only; the URL's text is never kept."""

    position: int
    scheme: str
    host: str
    plugin: Any = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """``json://127.0.0.1``: enough to find it, nothing secret."""
        return f"{self.scheme}://{self.host}"


def notify_categories(text: str) -> frozenset[str]:
    """``MARKETBOT_NOTIFY_EVENTS`` as a set of categories.

    Raises:
        ConfigError: an unknown category (named, with the allowed ones).
    """
    chosen = frozenset(part.strip().lower() for part in text.split(",") if part.strip())
    unknown = sorted(chosen - set(NOTIFY_CATEGORIES))
    if unknown:
        raise ConfigError(
            f"MARKETBOT_NOTIFY_EVENTS: {', '.join(unknown)} is not a notice category; use "
            f"{', '.join(NOTIFY_CATEGORIES)}"
        )
    return chosen


def notify_targets(urls: Sequence[str]) -> list[NotifyTarget]:
    """Each URL read by apprise; one it cannot read is refused by position, never by text.

    Raises:
        ConfigError: ``MARKETBOT_NOTIFY_URLS entry N is not a notification URL apprise can
            read``.
    """
    if not urls:
        return []
    import apprise

    _quiet_apprise()
    targets = []
    for position, url in enumerate(urls, start=1):
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise ConfigError(
                f"MARKETBOT_NOTIFY_URLS entry {position} is not a notification URL apprise can read"
            )
        # Our own limiter paces the sends; apprise's throttle would sleep on the worker.
        plugin.request_rate_per_sec = 0
        plugin.socket_connect_timeout = SEND_TIMEOUT_SECONDS / 2
        plugin.socket_read_timeout = SEND_TIMEOUT_SECONDS / 2
        targets.append(NotifyTarget(position, *_scheme_and_host(url), plugin))
    return targets


def _scheme_and_host(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    try:
        host = parts.hostname or ""
    except ValueError:  # a malformed port: the host is still not secret, but not known
        host = ""
    return parts.scheme.lower(), host


def split_notify_urls(text: str) -> list[str]:
    """The comma separated URLs of ``MARKETBOT_NOTIFY_URLS``, blanks dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


def notify_url_secrets(urls: Sequence[str]) -> list[str]:
    """What a log redactor must hide: each URL whole, and its password when it has one.

    For ``core.redaction.SecretRedactor``: the URL's text is never logged here, but a
    library's message or a traceback could quote it.
    """
    secrets = []
    for url in urls:
        secrets.append(url)
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            secrets.append(password)
    return secrets


class _ApprisePrivacy(logging.Filter):
    """Drops apprise's own records: some quote a URL; ours name scheme and host instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


def _quiet_apprise() -> None:
    logger = logging.getLogger("apprise")
    if not any(isinstance(f, _ApprisePrivacy) for f in logger.filters):
        logger.addFilter(_ApprisePrivacy())


@dataclass(frozen=True)
class _Notice:
    title: str
    message: str
    emergency: bool
    event_id: int | None


class AppriseNotifier:
    """Notices to the log, the events table and the notify URLs (see the module docstring).

    Args:
        urls: Apprise URLs (validated now, by position).
        events: Where notices are stored as events (None: not stored).
        categories: Which categories are sent (``emergency``, ``alert``, ``fill``,
            ``lifecycle``); every notice is logged.
        calls_per_minute: The notify URLs' rate budget.
        clock: Time for the event rows and the limiter.
    """

    def __init__(
        self,
        urls: Sequence[str] = (),
        *,
        events: EventRepository | None = None,
        categories: frozenset[str] = frozenset({"emergency", "alert"}),
        calls_per_minute: int = 30,
        clock: Clock | None = None,
    ) -> None:
        self.targets = notify_targets(urls)
        self.categories = categories
        self._events = events
        self._clock: Clock = clock or SystemClock()
        self._limiter = PriorityRateLimiter(calls_per_minute)
        self._pending: list[Future[list[str]]] = []

    @classmethod
    def from_settings(cls, settings: Settings, events: EventRepository | None) -> Self:
        """The notifier ``MARKETBOT_NOTIFY_URLS`` and ``MARKETBOT_NOTIFY_EVENTS`` describe.

        Raises:
            ConfigError: a URL apprise cannot read (by position), an unknown category.
        """
        secret = settings.notify_urls
        urls = split_notify_urls(secret.get_secret_value()) if secret is not None else []
        return cls(urls, events=events, categories=notify_categories(settings.notify_events))

    def __repr__(self) -> str:
        return f"AppriseNotifier({[target.label for target in self.targets]})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def notify(
        self,
        title: str,
        message: str,
        *,
        emergency: bool = False,
        kind: str | None = None,
        event_id: int | None = None,
        at: datetime | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Log the notice, store its event (unless ``event_id`` names it), queue its send.

        Args:
            title: Short, e.g. ``circuit_breaker_tripped``; the sent title adds ``marketbot``.
            message: One line for people.
            emergency: Sent first, as apprise type ``failure``, titled ``marketbot EMERGENCY``.
            kind: The event's kind (default: the title in snake case).
            event_id: The event stored for it already (an alert's firing).
            at: When it happened, for the event (default: the notifier's clock; a replay
                passes the bar's time).
            details: Facts stored with the event.
        """
        kind = kind or _kind_from_title(title)
        _log.log(logging.WARNING if emergency else logging.INFO, "%s: %s", title, message)
        if event_id is None and self._events is not None:
            record = EventRecord(
                at=at or self._clock.now(), kind=kind,
                severity="emergency" if emergency else "info", message=f"{title}: {message}",
                details={"title": title, **(details or {})},
            )  # fmt: skip
            event_id = self._record(record)
        if category(kind, emergency=emergency) not in self.categories or not self.targets:
            return
        self._queue(_Notice(title, message, emergency, event_id))

    def send_test(self, title: str, message: str) -> list[str]:
        """Send one notice and wait (``alerts test --send``); nothing is stored.

        Returns:
            The targets that did not take it (``json://127.0.0.1: not delivered``).
        """
        future = self._queue(_Notice(title, message, False, None))
        return future.result(timeout=SEND_TIMEOUT_SECONDS * (len(self.targets) + 1))

    def drain(self, timeout_seconds: float = DRAIN_TIMEOUT_SECONDS) -> None:
        """Wait until every queued notice was sent (or ``timeout_seconds`` passed)."""
        pending, self._pending = self._pending, []
        wait(pending, timeout=timeout_seconds)

    def close(self, timeout_seconds: float = DRAIN_TIMEOUT_SECONDS) -> None:
        """Drain the queue, then stop the worker thread."""
        self.drain(timeout_seconds)
        self._limiter.stop()

    def _record(self, record: EventRecord) -> int | None:
        try:
            return self._events.record(record) if self._events is not None else None
        except MarketbotError as exc:
            _log.error("event %s not stored: %s", record.kind, exc)
            return None

    def _queue(self, notice: _Notice) -> Future[list[str]]:
        if not self._limiter.is_running:
            self._limiter.start()
        priority = PRIORITY_EMERGENCY if notice.emergency else PRIORITY_NORMAL
        future = self._limiter.queue_request(self._send, (notice,), priority=priority)
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(future)
        return future

    def _send(self, notice: _Notice) -> list[str]:
        """On the worker thread: every target, then the event's outcome; never raises."""
        import apprise

        title = f"marketbot EMERGENCY: {notice.title}" if notice.emergency else notice.title
        if not title.startswith("marketbot"):
            title = f"marketbot: {title}"
        kind = apprise.NotifyType.FAILURE if notice.emergency else apprise.NotifyType.INFO
        failures = []
        for target in self.targets:
            try:
                ok = bool(target.plugin.notify(body=notice.message, title=title, notify_type=kind))
            except Exception as exc:  # a plugin's bug must not stop the worker
                _log.warning("notice to %s failed: %s", target.label, type(exc).__name__)
                ok = False
            if not ok:
                _log.warning("notice %r not delivered to %s", notice.title, target.label)
                failures.append(f"{target.label}: not delivered")
        if notice.event_id is not None and self._events is not None:
            try:
                self._events.mark_delivery(
                    notice.event_id, delivered=not failures, error="; ".join(failures) or None
                )
            except MarketbotError as exc:
                _log.error("event %d: delivery not recorded: %s", notice.event_id, exc)
        return failures


def category(kind: str, *, emergency: bool) -> str:
    """The ``MARKETBOT_NOTIFY_EVENTS`` category of a notice."""
    if emergency:
        return "emergency"
    if kind == "alert_fired":
        return "alert"
    if kind in _FILL_KINDS:
        return "fill"
    return "lifecycle"


def _kind_from_title(title: str) -> str:
    """``order rejected`` -> ``order_rejected``; ``SLIPPAGE_HIGH`` -> ``slippage_high``."""
    return "_".join(title.strip().lower().split())[:64] or "notice"
