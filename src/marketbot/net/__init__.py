"""Outbound-call plumbing for the data layer: pacing requests to rate-limited APIs.

:class:`PriorityRateLimiter` queues calls by priority and runs them no faster than a
sliding-window rate allows; a called function raises :class:`RateLimited` on HTTP 429.
"""

from marketbot.net.rate_limiter import (
    PRIORITY_EMERGENCY,
    PRIORITY_LOW,
    PRIORITY_NORMAL,
    PriorityRateLimiter,
    RateLimited,
)

__all__ = [
    "PRIORITY_EMERGENCY",
    "PRIORITY_LOW",
    "PRIORITY_NORMAL",
    "PriorityRateLimiter",
    "RateLimited",
]
