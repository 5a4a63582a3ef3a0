"""One call, made politely: each attempt queued on the rate limiter, transient failures retried.

Both the HTTP client and the exchange client (ccxt) make their calls through
:func:`call_with_retries`, so a retry counts against the rate like any call, 429s are the
limiter's to handle, and giving up reads the same everywhere. How patient both are (the
timeout of one attempt, how many attempts, the backoff, the longest Retry-After honoured) is
one :class:`RetryPolicy`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import tenacity

from marketbot.core.errors import ConfigError, TemporaryError
from marketbot.net.rate_limiter import PriorityRateLimiter, RateLimited

if TYPE_CHECKING:
    from marketbot.config import Settings

__all__ = ["DEFAULT_RETRY_POLICY", "RetryPolicy", "call_with_retries", "wait_for_result"]

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How long to wait for one attempt, and how often and how patiently to retry.

    Both network clients (:class:`~marketbot.net.HttpClient` and the ccxt
    ``ExchangeClient``) take one; the defaults suit a public data API.

    Attributes:
        timeout_seconds: Connect, read and write timeout of one attempt.
        max_attempts: Attempts in all, the first included, for transient failures (5xx,
            timeouts, connection errors).
        backoff_seconds: First wait between such attempts; doubles each time, at most 60 s.
        max_retry_after_seconds: Longest Retry-After honoured on a 429; a longer one is cut
            to this.
        sleep: Waits between attempts (inject a fake one in tests).

    Raises:
        ConfigError: a setting out of range, named with its value.
    """

    timeout_seconds: float = 30.0
    max_attempts: int = 4
    backoff_seconds: float = 1.0
    max_retry_after_seconds: float = 120.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"`max_attempts` must be at least 1, got {self.max_attempts}")
        # `not x > 0` rather than `x <= 0`, so that NaN is refused too.
        if not self.timeout_seconds > 0:
            raise ConfigError(f"`timeout_seconds` must be positive, got {self.timeout_seconds}")
        if not self.backoff_seconds >= 0:
            raise ConfigError(f"`backoff_seconds` must not be negative, got {self.backoff_seconds}")
        if not self.max_retry_after_seconds >= 0:
            raise ConfigError(
                "`max_retry_after_seconds` must not be negative, "
                f"got {self.max_retry_after_seconds}"
            )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, sleep: Callable[[float], None] | None = None
    ) -> RetryPolicy:
        """The policy the settings ask for (``MARKETBOT_HTTP_TIMEOUT_SECONDS``), else defaults.

        Args:
            settings: The process settings.
            sleep: Waits between attempts; None means :func:`time.sleep`.
        """
        if sleep is None:
            return cls(timeout_seconds=settings.http_timeout_seconds)
        return cls(timeout_seconds=settings.http_timeout_seconds, sleep=sleep)


# The clients' default (a frozen value, so one instance serves every client).
DEFAULT_RETRY_POLICY: Final = RetryPolicy()


def call_with_retries(
    attempt: Callable[..., _T],
    args: Sequence[Any],
    *,
    limiter: PriorityRateLimiter,
    priority: int,
    policy: RetryPolicy,
    retry_on: type[TemporaryError],
    describe: Callable[[], str],
) -> _T:
    """``attempt(*args)`` on the limiter, retrying ``retry_on`` errors with backoff.

    Args:
        attempt: One try; raises ``retry_on`` for a transient failure and
            :class:`RateLimited` for HTTP 429 (which the limiter retries itself).
        args: Its arguments.
        limiter: Where every attempt queues.
        priority: The limiter priority: 1 emergency, 5 normal, 10 low.
        policy: Attempts and backoff (its timeout is the caller's to apply).
        retry_on: The transient failure type.
        describe: What is being called, for messages (called only when needed).

    Raises:
        TemporaryError: of type ``retry_on`` with "gave up after N attempts", or a plain
            TemporaryError naming the call when it was still rate limited.
        Exception: whatever else ``attempt`` raised, unchanged.
    """
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts),
        wait=tenacity.wait_exponential(multiplier=policy.backoff_seconds, max=60),
        retry=tenacity.retry_if_exception_type(retry_on),
        sleep=policy.sleep,
        before_sleep=lambda state: _LOG.warning(
            "%s: attempt %d failed (%s); retrying",
            describe(),
            state.attempt_number,
            state.outcome.exception() if state.outcome else "?",
        ),
        reraise=True,
    )

    def through_limiter() -> _T:
        future = limiter.queue_request(attempt, args=args, priority=priority)
        return wait_for_result(future, limiter)

    try:
        return retrying(through_limiter)
    except retry_on as exc:
        raise retry_on(f"{exc} (gave up after {policy.max_attempts} attempts)") from exc
    except RateLimited as exc:  # only when the limiter was told not to retry
        raise TemporaryError(f"{describe()}: {exc}") from exc
    except TemporaryError as exc:
        if isinstance(exc.__cause__, RateLimited):
            raise TemporaryError(f"{describe()}: {exc}") from exc
        raise


def wait_for_result(future: Future[_T], limiter: PriorityRateLimiter) -> _T:
    """The future's result, driving the limiter's queue ourselves when no worker runs it."""
    while not future.done() and not limiter.is_running:
        # Another request's failure sits on its own future; ours is read below.
        with contextlib.suppress(Exception):
            limiter.process_queue()
        if limiter.pending_count() == 0 and not future.done():
            break
    return future.result()
