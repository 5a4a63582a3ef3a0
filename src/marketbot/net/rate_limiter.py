"""A priority queue of outbound calls, paced by a sliding-window rate limit.

Requests wait in a min-heap keyed by ``(priority, sequence)``: a lower priority number runs
first and equal priorities run first-in, first-out. A call starts only when fewer than
``calls_per_minute`` calls (retries included) are running or ended within the last window:
counting from a call's end, not its start, means a server that receives each call before it
ends never sees more than the rate in any window, however long calls take. When a call
raises :class:`RateLimited` (HTTP 429), the whole limiter pauses for Retry-After, or an
exponential backoff when the server gave none, and the request goes back into the heap
with its original sequence number, so it stays ahead of newer requests of equal priority.

Time comes from an injected :class:`~marketbot.core.clock.Clock` and waiting from an
injected ``sleep``, so tests run on a :class:`~marketbot.core.clock.ManualClock`.
"""

from __future__ import annotations

import contextlib
import heapq
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from marketbot.core.clock import Clock, SystemClock
from marketbot.core.errors import ConfigError, TemporaryError

__all__ = [
    "PRIORITY_EMERGENCY",
    "PRIORITY_LOW",
    "PRIORITY_NORMAL",
    "PriorityRateLimiter",
    "RateLimited",
]

# How often a thread re-checks while every slot is held by calls still in flight.
_IN_FLIGHT_POLL_SECONDS = 0.02

PRIORITY_EMERGENCY = 1
PRIORITY_NORMAL = 5
PRIORITY_LOW = 10

_T = TypeVar("_T")


class RateLimited(TemporaryError):  # noqa: N818 - the name the HTTP client's issue uses
    """The server answered HTTP 429; raised by the called function, handled by the limiter.

    Args:
        retry_after_seconds: The server's Retry-After in seconds, or None when it sent none.
    """

    def __init__(self, retry_after_seconds: float | None = None) -> None:
        self.retry_after_seconds = retry_after_seconds
        detail = (
            "no Retry-After"
            if retry_after_seconds is None
            else (f"Retry-After {retry_after_seconds:g} s")
        )
        super().__init__(f"rate limited by the server (HTTP 429, {detail})")


@dataclass
class _Request(Generic[_T]):
    """One queued call, its future, and how many 429s it has met so far."""

    fn: Callable[..., _T]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: Future[_T]
    rate_limited_count: int = 0


@dataclass(order=True)
class _Entry:
    """A heap entry: ordered by priority, then by the sequence number given at queueing."""

    priority: int
    sequence: int
    request: _Request[Any] = field(compare=False)


class _Nothing:
    """Marker: the queue was empty (or the worker was told to stop) and nothing ran."""


_NOTHING = _Nothing()


class PriorityRateLimiter:
    """Runs queued calls in priority order, never faster than ``calls_per_minute``.

    Use it either by calling :meth:`process_queue` yourself, or by :meth:`start` -ing a
    background worker thread that runs the queue until :meth:`stop`.

    Args:
        calls_per_minute: Most calls that may start in any window of ``window_seconds``.
        clock: Source of the current time; the system clock by default.
        sleep: Waits the given number of seconds. By default an interruptible wait that
            :meth:`stop` cuts short. With a ManualClock, pass one that advances the clock.
        max_retries: How many times a request is retried after HTTP 429 before its future
            fails with :class:`~marketbot.core.errors.TemporaryError`.
        backoff_base_seconds: First backoff after a 429 without Retry-After; it doubles
            with each further 429 of the same request.
        window_seconds: Length of the sliding window; 60 for a per-minute rate. Smaller
            values scale the rate down proportionally (for fast tests and demos).
    """

    def __init__(
        self,
        calls_per_minute: int,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
        max_retries: int = 5,
        backoff_base_seconds: float = 1.0,
        window_seconds: float = 60.0,
    ) -> None:
        _require_int("calls_per_minute", calls_per_minute, minimum=1)
        _require_int("max_retries", max_retries, minimum=0)
        if not backoff_base_seconds > 0:
            raise ConfigError(
                f"`backoff_base_seconds` must be positive, got {backoff_base_seconds!r}"
            )
        if not window_seconds > 0:
            raise ConfigError(f"`window_seconds` must be positive, got {window_seconds!r}")
        self.calls_per_minute = calls_per_minute
        self.max_retries = max_retries
        self.backoff_base_seconds = backoff_base_seconds
        self._window = timedelta(seconds=window_seconds)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._stop_event = threading.Event()
        self._sleep = sleep if sleep is not None else self._interruptible_sleep
        self._condition = threading.Condition()
        self._heap: list[_Entry] = []
        self._next_sequence = 0
        # When each call in the window ended: a call counts until a window after its answer,
        # so the server, which sees it before it ends, never sees more than the rate.
        self._call_times: deque[datetime] = deque()
        self._in_flight = 0
        self._paused_until: datetime | None = None
        self._worker: threading.Thread | None = None

    def queue_request(
        self,
        fn: Callable[..., _T],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        priority: int = PRIORITY_NORMAL,
    ) -> Future[_T]:
        """Queue ``fn(*args, **kwargs)`` and return a future for its result.

        Args:
            fn: The call to make, e.g. one HTTP request.
            args: Positional arguments for ``fn``.
            kwargs: Keyword arguments for ``fn``.
            priority: 1 (emergency) to 10 (low); 5 is normal. Lower runs first.

        Raises:
            ConfigError: ``priority`` is not an int in 1..10.
        """
        _require_int("priority", priority, minimum=PRIORITY_EMERGENCY, maximum=PRIORITY_LOW)
        future: Future[_T] = Future()
        request = _Request(fn=fn, args=tuple(args), kwargs=dict(kwargs or {}), future=future)
        with self._condition:
            heapq.heappush(self._heap, _Entry(priority, self._next_sequence, request))
            self._next_sequence += 1
            self._condition.notify_all()
        return future

    def pending_count(self) -> int:
        """How many requests wait in the queue."""
        with self._condition:
            return len(self._heap)

    def process_queue(self) -> Any:
        """Run the next request, in priority order, as soon as the rate allows.

        Waits (through the injected ``sleep``) for a free slot in the window, then runs the
        highest-priority request queued at that moment. A 429 pauses the limiter and
        re-queues the request; this method keeps going until some call completes.

        Returns:
            The completed call's result (also set on its future), or None if the queue
            was empty.

        Raises:
            Exception: Whatever the call raised (also set on its future), or a
                TemporaryError once a request has been rate limited more than
                ``max_retries`` times.
        """
        result = self._process_next(should_stop=lambda: False)
        return None if result is _NOTHING else result

    def start(self) -> None:
        """Start a background worker thread that runs the queue until :meth:`stop`.

        Raises:
            ConfigError: A worker is already running.
        """
        if self._worker is not None and self._worker.is_alive():
            raise ConfigError("the rate limiter's worker is already running")
        self._stop_event.clear()
        self._worker = threading.Thread(
            target=self._run_worker, name="marketbot-rate-limiter", daemon=True
        )
        self._worker.start()

    def stop(self, timeout_seconds: float = 5.0) -> None:
        """Stop the worker after its current call; requests still queued stay queued.

        Args:
            timeout_seconds: How long to wait for the worker thread to finish.
        """
        self._stop_event.set()
        with self._condition:
            self._condition.notify_all()
        if self._worker is not None:
            self._worker.join(timeout_seconds)
            if self._worker.is_alive():
                return  # still inside a call: it stops after it, and the event stays set
            self._worker = None
        # Cleared, or the interruptible waits of later process_queue() calls would not wait.
        self._stop_event.clear()

    @property
    def is_running(self) -> bool:
        """Whether the background worker thread is alive."""
        return self._worker is not None and self._worker.is_alive()

    def _run_worker(self) -> None:
        while not self._stop_event.is_set():
            with self._condition:
                if not self._heap:
                    self._condition.wait(timeout=0.1)
                    continue
            # A failed call's error already sits on its future; the worker carries on.
            with contextlib.suppress(Exception):
                self._process_next(should_stop=self._stop_event.is_set)

    def _interruptible_sleep(self, seconds: float) -> None:
        self._stop_event.wait(seconds)

    def _process_next(self, should_stop: Callable[[], bool]) -> Any:
        while True:
            entry = self._take_when_allowed(should_stop)
            if entry is None:
                return _NOTHING
            request = entry.request
            try:
                result = request.fn(*request.args, **request.kwargs)
            except RateLimited as exc:
                self._record_call_end()
                self._handle_rate_limited(entry, exc)
                continue
            except Exception as exc:
                self._record_call_end()
                request.future.set_exception(exc)
                raise
            self._record_call_end()
            request.future.set_result(result)
            return result

    def _record_call_end(self) -> None:
        with self._condition:
            self._in_flight -= 1
            self._call_times.append(self._clock.now())
            self._condition.notify_all()

    def _take_when_allowed(self, should_stop: Callable[[], bool]) -> _Entry | None:
        """Pop the best request once a slot is free, recording its start; None if none."""
        while True:
            with self._condition:
                if should_stop() or not self._heap:
                    return None
                wait_seconds = self._seconds_until_allowed(self._clock.now())
                if wait_seconds <= 0:
                    entry = heapq.heappop(self._heap)
                    is_retry = entry.request.rate_limited_count > 0
                    if not is_retry and not entry.request.future.set_running_or_notify_cancel():
                        continue  # cancelled while queued: it uses no slot
                    self._in_flight += 1
                    return entry
            self._sleep(wait_seconds)

    def _seconds_until_allowed(self, now: datetime) -> float:
        while self._call_times and self._call_times[0] <= now - self._window:
            self._call_times.popleft()
        waits = [0.0]
        must_leave = len(self._call_times) + self._in_flight - self.calls_per_minute + 1
        if 0 < must_leave <= len(self._call_times):
            waits.append((self._call_times[must_leave - 1] + self._window - now).total_seconds())
        elif must_leave > 0:
            # Every slot is taken by calls still running (on other threads): wait for one.
            waits.append(_IN_FLIGHT_POLL_SECONDS)
        if self._paused_until is not None:
            waits.append((self._paused_until - now).total_seconds())
        return max(waits)

    def _handle_rate_limited(self, entry: _Entry, exc: RateLimited) -> None:
        request = entry.request
        request.rate_limited_count += 1
        if request.rate_limited_count > self.max_retries:
            error = TemporaryError(
                f"request still rate limited (HTTP 429) after {self.max_retries} retries; giving up"
            )
            error.__cause__ = exc
            request.future.set_exception(error)
            raise error from exc
        if exc.retry_after_seconds is not None:
            delay_seconds = max(0.0, exc.retry_after_seconds)
        else:
            delay_seconds = self.backoff_base_seconds * 2 ** (request.rate_limited_count - 1)
        with self._condition:
            resume_at = self._clock.now() + timedelta(seconds=delay_seconds)
            if self._paused_until is None or resume_at > self._paused_until:
                self._paused_until = resume_at
            # The original sequence number keeps it ahead of newer equal-priority requests.
            heapq.heappush(self._heap, entry)
            self._condition.notify_all()


def _require_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"`{name}` must be an int, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConfigError(f"`{name}` must be {bounds}, got {value}")
