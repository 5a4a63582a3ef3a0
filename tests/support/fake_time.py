"""Time under a test's control: a manual clock and a sleep that moves it instead of waiting."""

from __future__ import annotations

from datetime import datetime, timedelta

from marketbot.core.clock import ManualClock


class FakeTime:
    """A :class:`ManualClock` plus a ``sleep`` that advances it, recording every wait.

    Pass ``clock`` and ``sleep`` to a rate limiter or HTTP client: backoffs and Retry-After
    waits then take no real time, and ``sleeps`` shows what was waited.
    """

    def __init__(self, start: datetime) -> None:
        self.clock = ManualClock(start)
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))
