"""Time as an injected dependency: code that needs "now" asks a Clock, so tests control it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current time as a tz-aware UTC datetime."""

    def now(self) -> datetime:
        """The current time, tz-aware, UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """The current time, tz-aware, UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: for tests, replays and simulations."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        """The time last set."""
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``."""
        self._now = as_utc(moment)

    def advance(self, delta: timedelta) -> None:
        """Move forward by ``delta``."""
        self._now += delta


def as_utc(moment: datetime) -> datetime:
    """A tz-aware UTC datetime; naive input is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def last_reset_at_or_before(moment: datetime, reset_hour_utc: int) -> datetime:
    """The most recent daily reset boundary (``reset_hour_utc``:00 UTC) at or before ``moment``."""
    moment = as_utc(moment)
    boundary = moment.replace(hour=reset_hour_utc, minute=0, second=0, microsecond=0)
    if boundary > moment:
        boundary -= timedelta(days=1)
    return boundary


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch, exactly (a datetime has whole microseconds); naive is UTC."""
    return duration_ns(as_utc(moment) - _EPOCH)


def duration_ns(duration: timedelta) -> int:
    """A timedelta in whole nanoseconds, exactly."""
    return duration // _MICROSECOND * 1_000
