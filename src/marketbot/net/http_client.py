"""The one HTTP client every data API call goes through: timeouts, retries, rate limiting.

Each attempt of a request is queued on a :class:`~marketbot.net.PriorityRateLimiter`, so the
rate counts retries too and an emergency request overtakes queued low-priority ones. HTTP 429
becomes :class:`~marketbot.net.RateLimited`, which the limiter handles (it honours
Retry-After and re-queues the request). 5xx answers, timeouts and connection errors are
retried by tenacity with exponential backoff through the same limiter; anything else (a 404,
a malformed JSON body) fails at once with an :class:`ApiError` naming the service, the
endpoint and what was wrong.
"""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final

import httpx

from marketbot.core.clock import Clock, SystemClock
from marketbot.core.errors import ConfigError, DataError, TemporaryError
from marketbot.net.rate_limiter import PRIORITY_NORMAL, PriorityRateLimiter, RateLimited
from marketbot.net.retrying import DEFAULT_RETRY_POLICY, RetryPolicy, call_with_retries

__all__ = ["ApiError", "HttpClient", "ServerUnavailableError"]

_LOG = logging.getLogger(__name__)
# How much of an unexpected body an error message quotes.
_BODY_EXCERPT_CHARS: Final = 200


class ApiError(DataError):
    """An API answered, but not with what was asked for (4xx, malformed or unexpected JSON).

    Attributes:
        status_code: The HTTP status, or None when the status was fine but the body was not.
    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ServerUnavailableError(TemporaryError):
    """A 5xx answer, a timeout or a broken connection: worth retrying, raised when retries end."""


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _BODY_EXCERPT_CHARS:
        return text[:_BODY_EXCERPT_CHARS] + "..."
    return text


def parse_retry_after(value: str | None, clock: Clock) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - clock.now()).total_seconds())


class HttpClient:
    """GETs JSON from one API, politely: rate limited, with timeouts and retries.

    Args:
        base_url: The API's root, e.g. ``https://api.coingecko.com/api/v3``.
        service: The API's name for messages, e.g. ``CoinGecko``.
        limiter: The rate limiter to queue attempts on (share one per API key).
        headers: Headers sent with every request (e.g. an API key; never logged).
        policy: The timeout of one attempt, the attempts per request for 5xx, timeouts and
            connection errors, their backoff and the longest Retry-After honoured.
        clock: Time for HTTP-date Retry-After headers.
        transport: An httpx transport; None means the real network.

    Raises:
        ConfigError: a base URL that is not http(s).
    """

    def __init__(
        self,
        base_url: str,
        *,
        service: str,
        limiter: PriorityRateLimiter,
        headers: Mapping[str, str] | None = None,
        policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{service} base URL must start with http:// or https://: {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.limiter = limiter
        self.policy = policy
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._client = httpx.Client(
            base_url=self.base_url + "/",
            headers=dict(headers or {}),
            timeout=httpx.Timeout(policy.timeout_seconds),
            transport=transport,
            follow_redirects=True,
        )

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def get_json(
        self,
        path: str,
        params: Mapping[str, str | int | float] | None = None,
        *,
        priority: int = PRIORITY_NORMAL,
    ) -> Any:
        """GET ``base_url/path`` and return the decoded JSON body.

        Args:
            path: The endpoint below the base URL, e.g. ``coins/bitcoin/market_chart``.
            params: Query parameters.
            priority: The limiter priority: 1 emergency, 5 normal, 10 low.

        Raises:
            ApiError: a 4xx other than 429, or a body that is not valid JSON.
            ServerUnavailableError: 5xx, timeouts or connection errors on every attempt.
            TemporaryError: still rate limited after the limiter's retries.
        """
        endpoint = f"{self.service} GET /{path.lstrip('/')}"
        return call_with_retries(
            self._attempt,
            (path.lstrip("/"), dict(params or {}), endpoint),
            limiter=self.limiter,
            priority=priority,
            policy=self.policy,
            retry_on=ServerUnavailableError,
            describe=lambda: endpoint,
        )

    def _attempt(self, path: str, params: dict[str, Any], endpoint: str) -> Any:
        try:
            response = self._client.get(path.lstrip("/"), params=params)
        except httpx.TimeoutException as exc:
            raise ServerUnavailableError(f"{endpoint}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ServerUnavailableError(
                f"{endpoint}: connection failed ({type(exc).__name__}: {exc})"
            ) from exc
        except httpx.DecodingError as exc:  # a body cut or garbled in transit
            raise ServerUnavailableError(
                f"{endpoint}: the answer could not be decoded ({exc})"
            ) from exc
        except httpx.HTTPError as exc:  # redirect loops, malformed URLs: retrying will not help
            raise ApiError(f"{endpoint}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock)
            if retry_after is not None:
                retry_after = min(retry_after, self.policy.max_retry_after_seconds)
            _LOG.warning("%s: rate limited (HTTP 429, Retry-After %s)", endpoint, retry_after)
            raise RateLimited(retry_after)
        if status >= 500:
            raise ServerUnavailableError(
                f"{endpoint}: HTTP {status} {response.reason_phrase}: {_excerpt(response.text)}"
            )
        if status >= 400:
            raise ApiError(
                f"{endpoint}: HTTP {status} {response.reason_phrase}: {_excerpt(response.text)}",
                status_code=status,
            )
        try:
            return json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(
                f"{endpoint}: the answer is not valid JSON ({exc}); it begins "
                f"{_excerpt(response.text)!r}"
            ) from exc
