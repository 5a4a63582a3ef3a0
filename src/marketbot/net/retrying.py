"""One call, made politely: each attempt queued on the rate limiter, transient failures retried.

Both the HTTP client and the exchange client (ccxt) make their calls through
:func:`call_with_retries`, so a retry counts against the rate like any call, 429s are the
limiter's to handle, and giving up reads the same everywhere.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import tenacity

from marketbot.core.errors import TemporaryError
from marketbot.net.rate_limiter import PriorityRateLimiter, RateLimited

__all__ = ["RetryPolicy", "call_with_retries", "wait_for_result"]

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")


class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    Args:
        max_attempts: Attempts in all, the first included.
        backoff_seconds: First wait between attempts; doubles each time, at most 60 s.
        sleep: Waits between attempts (inject a fake one in tests).
    """

    def __init__(
        self, max_attempts: int, backoff_seconds: float, sleep: Callable[[float], None]
    ) -> None:
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep


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
        policy: Attempts and backoff.
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
