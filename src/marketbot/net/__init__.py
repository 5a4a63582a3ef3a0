"""Outbound-call plumbing for the data layer: one HTTP client, paced by a rate limiter.

:class:`HttpClient` makes every data API call (timeouts, retries of 5xx and connection errors,
clear errors naming the endpoint); each attempt runs on a :class:`PriorityRateLimiter`, which
queues calls by priority and runs them no faster than a sliding-window rate allows. How patient
a client is (timeout, attempts, backoff, longest Retry-After honoured) is one
:class:`RetryPolicy`.
"""

from marketbot.net.http_client import ApiError, HttpClient, ServerUnavailableError
from marketbot.net.rate_limiter import (
    PRIORITY_EMERGENCY,
    PRIORITY_LOW,
    PRIORITY_NORMAL,
    PriorityRateLimiter,
    RateLimited,
)
from marketbot.net.retrying import RetryPolicy

__all__ = [
    "PRIORITY_EMERGENCY",
    "PRIORITY_LOW",
    "PRIORITY_NORMAL",
    "ApiError",
    "HttpClient",
    "PriorityRateLimiter",
    "RateLimited",
    "RetryPolicy",
    "ServerUnavailableError",
]
