"""The ccxt boundary: one exchange, its markets, and every call paced, retried and translated.

ccxt's own throttle is switched off (``enableRateLimit=False``); every call runs on a
:class:`~marketbot.net.PriorityRateLimiter` instead, by default paced at the exchange's
``rateLimit`` (milliseconds between calls). ccxt's errors become marketbot's at this
boundary, each message naming the exchange, what was asked for and the endpoint:

- HTTP 429/418 (``RateLimitExceeded``, ``DDoSProtection``) become
  :class:`~marketbot.net.RateLimited`, so the limiter pauses for Retry-After and retries;
- timeouts, connection errors and 5xx (``NetworkError`` and its kin) are retried by tenacity
  with exponential backoff, then raised as :class:`~marketbot.core.errors.TemporaryError`;
- an answer that is not JSON, or that ccxt cannot parse, is a
  :class:`~marketbot.core.errors.DataError` (ccxt would otherwise read a truncated body as
  "no candles" and a download would stop early without a word);
- an unknown symbol is a :class:`~marketbot.core.errors.ConfigError`; any other refusal an
  :class:`~marketbot.core.errors.ExchangeError`.

ccxt takes seconds to import, so it is imported only when a client is built.
"""

from __future__ import annotations

import difflib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from marketbot.core.clock import Clock, SystemClock
from marketbot.core.errors import ConfigError, DataError, ExchangeError, TemporaryError
from marketbot.core.timeframes import timeframe_seconds
from marketbot.net.http_client import parse_retry_after
from marketbot.net.rate_limiter import PRIORITY_NORMAL, PriorityRateLimiter, RateLimited
from marketbot.net.retrying import DEFAULT_RETRY_POLICY, RetryPolicy, call_with_retries

__all__ = ["ExchangeClient", "ExchangeUnavailableError", "default_limiter", "strip_query_strings"]

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")
# How much of an unexpected body an error message quotes.
_BODY_EXCERPT_CHARS: Final = 200
# A URL's query string, after its path.
_QUERY_STRING: Final = re.compile(r"(https?://[^\s?]+)\?[^\s\"']*")
# How many close matches a "no such exchange/market" message suggests.
_SUGGESTIONS: Final = 5


class ExchangeUnavailableError(TemporaryError):
    """A timeout, a broken connection or a 5xx from the exchange; raised when retries end."""


def strip_query_strings(text: str) -> str:
    """``text`` with every URL's query string cut to ``?...``.

    A signed request's query carries its signature, and on some exchanges (Huobi's
    ``AccessKeyId``) the API key itself, which must not reach a message or a log.
    """
    return _QUERY_STRING.sub(r"\1?...", text)


def _excerpt(text: object) -> str:
    flat = strip_query_strings(" ".join(str(text).split()))
    if len(flat) > _BODY_EXCERPT_CHARS:
        return flat[:_BODY_EXCERPT_CHARS] + "..."
    return flat


def _suggest(wanted: str, known: list[str]) -> str:
    matches = difflib.get_close_matches(wanted, known, n=_SUGGESTIONS, cutoff=0.6)
    if not matches and wanted.upper() != wanted:
        matches = difflib.get_close_matches(wanted.upper(), known, n=_SUGGESTIONS, cutoff=0.6)
    if not matches and "/" in wanted:
        # "BTC/XYZ" resembles no pair by spelling; the pairs of its base asset are the hint.
        base = wanted.partition("/")[0].upper()
        matches = [name for name in known if name.partition("/")[0] == base][:_SUGGESTIONS]
    return ", ".join(matches) if matches else "none"


def _override_api_urls(exchange: Any, api_urls: Mapping[str, str]) -> None:
    """Point some of the exchange's API roots elsewhere (a local test server, a proxy)."""
    for key, url in api_urls.items():
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"API URL for {key!r} must start with http:// or https://: {url!r}")
        if isinstance(exchange.urls.get("api"), str):
            if key != "api":
                raise ConfigError(f"{exchange.id} has a single API URL; override it with key 'api'")
            exchange.urls["api"] = url
            continue
        # Some exchanges nest their roots (e.g. {"public": {"spot": ...}}): a dotted key.
        *parents, leaf = key.split(".")
        node = exchange.urls.get("api")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get(leaf), str):
            known = ", ".join(sorted(_url_keys(exchange.urls.get("api"))))
            raise ConfigError(
                f"{exchange.id} has no API URL named {key!r}; its API URLs are: {known}"
            )
        node[leaf] = url


def _enter_sandbox(exchange: Any) -> None:
    """Switch to ccxt's sandbox (testnet) mode; refused for an exchange that has none."""
    import ccxt

    refusal = f"{exchange.id} has no testnet (ccxt sandbox mode); run without --testnet"
    # Some exchanges (kraken) list a "test" URL of None, which ccxt would fail to copy.
    if not exchange.urls.get("test"):
        raise ConfigError(refusal)
    try:
        exchange.set_sandbox_mode(True)
    except ccxt.NotSupported:
        raise ConfigError(refusal) from None


def _url_keys(node: object, prefix: str = "") -> list[str]:
    """The dotted keys of every URL in a (possibly nested) ``urls['api']``."""
    if not isinstance(node, dict):
        return []
    keys = []
    for key, value in node.items():
        if isinstance(value, str):
            keys.append(prefix + str(key))
        else:
            keys.extend(_url_keys(value, f"{prefix}{key}."))
    return keys


def default_limiter(
    rate_limit_ms: float, clock: Clock, sleep: Callable[[float], None]
) -> PriorityRateLimiter:
    """A limiter pacing calls like ccxt's ``rateLimit`` (milliseconds between two calls).

    The window is at least one second and holds as many calls as the rate allows in it, so
    calls are spread out evenly rather than sent in a burst that a counter-based exchange
    (Kraken's decays by the second) would answer with 429.
    """
    interval_seconds = max(rate_limit_ms, 1.0) / 1000.0
    window_seconds = max(1.0, interval_seconds)
    calls_per_window = max(1, int(window_seconds / interval_seconds))
    return PriorityRateLimiter(
        calls_per_window, clock=clock, sleep=sleep, window_seconds=window_seconds
    )


class ExchangeClient:
    """One ccxt exchange, with its markets, whose calls are paced, retried and translated.

    Args:
        exchange_id: The ccxt id of the exchange, e.g. ``binance``.
        api_urls: Replacements for the exchange's API roots, keyed as in ccxt's
            ``exchange.urls['api']`` (e.g. ``{"public": "http://127.0.0.1:8080/api/v3"}``);
            for a proxy, a testnet or a local test server.
        options: ccxt exchange options, merged into the exchange's own (e.g. Binance's
            ``{"fetchMarkets": {"types": ["spot"]}}`` to load spot markets only).
        limiter: The rate limiter to queue calls on; by default one paced by the
            exchange's ``rateLimit``.
        policy: The timeout of one HTTP request, the attempts per call for timeouts,
            connection errors and 5xx, their backoff and the longest Retry-After honoured;
            its ``sleep`` also paces the default limiter (inject a fake one in tests).
        clock: Time for the limiter and HTTP-date Retry-After headers.
        credentials: The account's credentials under ccxt's names (``apiKey``, ``secret``,
            ``password``, ``uid``, ``privateKey``, ``walletAddress``), for private calls.
        sandbox: ccxt's sandbox mode (the exchange's testnet).

    Raises:
        ConfigError: an exchange ccxt does not know (the message lists close matches), an
            unknown API URL key, or ``sandbox`` for an exchange without one.
    """

    def __init__(  # noqa: PLR0913 - keyword-only settings of one client
        self,
        exchange_id: str,
        *,
        api_urls: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        limiter: PriorityRateLimiter | None = None,
        policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        clock: Clock | None = None,
        credentials: Mapping[str, str] | None = None,
        sandbox: bool = False,
    ) -> None:
        import ccxt

        if exchange_id not in ccxt.exchanges:
            raise ConfigError(
                f"unknown exchange {exchange_id!r}; close matches: "
                f"{_suggest(exchange_id.lower(), list(ccxt.exchanges))} "
                "(use a ccxt exchange id, e.g. binance, kraken, coinbase)"
            )
        self.exchange_id = exchange_id
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.policy = policy
        self._exchange: Any = getattr(ccxt, exchange_id)(
            {
                # Our limiter paces every call instead, so that retries count too.
                "enableRateLimit": False,
                "timeout": round(policy.timeout_seconds * 1000),
                # Read after each call to tell a malformed body from an empty answer.
                "enableLastHttpResponse": True,
                "enableLastJsonResponse": True,
                "enableLastResponseHeaders": True,
                "options": dict(options or {}),
                # ccxt's names (apiKey, secret, password, uid, privateKey, walletAddress).
                **dict(credentials or {}),
            }
        )
        if sandbox:
            _enter_sandbox(self._exchange)
        _override_api_urls(self._exchange, api_urls or {})
        self.limiter = (
            limiter
            if limiter is not None
            else default_limiter(float(self._exchange.rateLimit or 1000), self.clock, policy.sleep)
        )
        self._last_endpoint = f"{exchange_id} (no request yet)"

    def __enter__(self) -> ExchangeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the exchange's HTTP session."""
        session = getattr(self._exchange, "session", None)
        if session is not None:
            session.close()

    # -- markets ---------------------------------------------------------------------------

    def load_markets(self) -> None:
        """Load the exchange's markets once (later calls reuse them)."""
        if not self._exchange.markets:
            self.call(self._exchange.load_markets, context=f"{self.exchange_id}: loading markets")

    def require_pair(self, pair: str) -> None:
        """Check that the exchange lists ``pair`` (loading its markets if needed).

        Raises:
            ConfigError: the exchange has no such market; the message lists close matches.
        """
        self.load_markets()
        markets = self._exchange.markets or {}
        if pair not in markets:
            raise ConfigError(
                f"{self.exchange_id} has no market {pair!r}; close matches: "
                f"{_suggest(pair, sorted(markets))} (pairs are spelt BASE/QUOTE, e.g. BTC/USDT)"
            )

    def require_timeframe(self, timeframe: str) -> int:
        """Check that the exchange offers candles of ``timeframe``; return its length in s.

        Raises:
            ConfigError: the exchange has no OHLCV data, does not offer this timeframe (the
                message lists what it offers), or offers it with a varying length (months).
        """
        offered = dict(self._exchange.timeframes or {})
        if not self._exchange.has.get("fetchOHLCV") or not offered:
            raise ConfigError(f"{self.exchange_id} does not offer candles (OHLCV) through ccxt")
        if timeframe not in offered:
            raise ConfigError(
                f"{self.exchange_id} does not offer {timeframe!r} candles; it offers: "
                + ", ".join(offered)
            )
        try:
            return timeframe_seconds(timeframe)
        except ConfigError:
            raise ConfigError(
                f"{timeframe!r} bars have no fixed length (e.g. calendar months); marketbot "
                "stores fixed-length bars: use s, m, h, d or w"
            ) from None

    # -- calls -----------------------------------------------------------------------------

    def fetch_ohlcv(self, pair: str, timeframe: str, since_ms: int, limit: int) -> list[Any]:
        """One page of candles ``[open time ms, open, high, low, close, volume]`` from since.

        Raises:
            DataError: the answer is not valid JSON or not candles.
            TemporaryError: still failing or rate limited after the retries.
            ConfigError, ExchangeError: the exchange refused the request.
        """
        moment = _iso_from_ms(since_ms)
        context = f"{self.exchange_id} {pair} {timeframe} candles since {moment}"
        exchange = self._exchange

        def fetch() -> tuple[Any, Any]:
            candles = exchange.fetch_ohlcv(pair, timeframe, since=since_ms, limit=limit)
            # Read here, in the thread that made the request, before another call replaces it.
            return candles, exchange.last_json_response

        candles, answer = self.call(fetch, context=context)
        if not isinstance(candles, list):
            raise DataError(f"{context}: {self._endpoint()}: expected a list of candles")
        if isinstance(answer, list) and len(candles) < len(answer):
            self._check_entries(answer, pair, context)
        return candles

    def fetch_ticker(self, pair: str, *, priority: int = PRIORITY_NORMAL) -> dict[str, Any]:
        """The unified ccxt ticker of ``pair`` (last, bid, ask, timestamp...).

        Raises:
            DataError: the answer is not a ticker.
            TemporaryError: still failing or rate limited after the retries.
            ConfigError, ExchangeError: the exchange refused the request.
        """
        context = f"{self.exchange_id} {pair} ticker"
        exchange = self._exchange
        ticker = self.call(lambda: exchange.fetch_ticker(pair), context=context, priority=priority)
        if not isinstance(ticker, dict):
            raise DataError(f"{context}: {self._endpoint()}: expected a ticker object")
        return ticker

    def _check_entries(self, entries: list[Any], pair: str, context: str) -> None:
        """Raise if an entry of a candle array has no open time.

        ccxt silently drops the entries it cannot read (together with those before
        ``since``), which would leave an unnoticed hole; so when it returned fewer candles
        than the answer held, each entry is parsed again to find the unreadable one.
        """
        market = self._exchange.market(pair)
        for number, entry in enumerate(entries, start=1):
            try:
                open_time = self._exchange.parse_ohlcv(entry, market)[0]
            except (TypeError, ValueError, KeyError, IndexError, AttributeError):
                open_time = None
            if isinstance(open_time, bool) or not isinstance(open_time, int):
                raise DataError(
                    f"{context}: {self._endpoint()}: entry {number} of the answer is not a "
                    f"candle with an open time: {_excerpt(entry)}"
                )

    @property
    def ccxt_exchange(self) -> Any:
        """The ccxt exchange object, for adapters that call it through :meth:`call`."""
        return self._exchange

    def call(
        self,
        fn: Callable[[], _T],
        *,
        context: str,
        priority: int = PRIORITY_NORMAL,
        retry_transient: bool = True,
    ) -> _T:
        """Run one ccxt call through the limiter, with retries and translated errors.

        Args:
            fn: The ccxt call, e.g. ``lambda: exchange.fetch_ticker("BTC/USDT")``.
            context: What is being asked for, for error messages (exchange, pair...).
            priority: The limiter priority: 1 emergency, 5 normal, 10 low.
            retry_transient: False for a call that must not be repeated blindly (an order
                POST: after a timeout it may have been placed); 429s are still retried,
                since the exchange refused those requests.
        """
        policy = self.policy if retry_transient else replace(self.policy, max_attempts=1)
        result: _T = call_with_retries(
            self._attempt,
            (fn, context),
            limiter=self.limiter,
            priority=priority,
            policy=policy,
            retry_on=ExchangeUnavailableError,
            describe=lambda: f"{context}: {self._last_endpoint}",
        )
        return result

    def _attempt(self, fn: Callable[[], _T], context: str) -> _T:
        import ccxt

        exchange = self._exchange
        # Cleared first, so that what is read below belongs to this attempt.
        exchange.last_request_url = None
        exchange.last_http_response = None
        exchange.last_json_response = None
        exchange.last_response_headers = None
        try:
            result = fn()
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
            headers = exchange.last_response_headers or {}
            retry_after = parse_retry_after(headers.get("Retry-After"), self.clock)
            if retry_after is not None:
                retry_after = min(retry_after, self.policy.max_retry_after_seconds)
            _LOG.warning(
                "%s: %s: rate limited (Retry-After %s)", context, self._endpoint(), retry_after
            )
            raise RateLimited(retry_after) from exc
        except ccxt.NetworkError as exc:
            raise ExchangeUnavailableError(
                f"{context}: {self._endpoint()}: {type(exc).__name__}: {_excerpt(exc)}"
            ) from exc
        except ccxt.BadSymbol as exc:
            raise ConfigError(f"{context}: {self._endpoint()}: {_excerpt(exc)}") from exc
        except ccxt.BadResponse as exc:
            raise DataError(f"{context}: {self._endpoint()}: bad answer: {_excerpt(exc)}") from exc
        except ccxt.BaseError as exc:
            raise ExchangeError(
                f"{context}: {self._endpoint()}: {type(exc).__name__}: {_excerpt(exc)}"
            ) from exc
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            # ccxt's parsers choke like this on JSON of the wrong shape.
            self._check_json(context)
            raise DataError(
                f"{context}: {self._endpoint()}: unexpected answer ({type(exc).__name__}: "
                f"{exc}); it begins {_excerpt(exchange.last_http_response)!r}"
            ) from exc
        self._check_json(context)
        return result

    def _check_json(self, context: str) -> None:
        """Raise if the last body was not JSON: ccxt would quietly parse it as nothing."""
        exchange = self._exchange
        body = exchange.last_http_response
        if isinstance(body, str) and exchange.last_json_response is None:
            begins = f"it begins {_excerpt(body)!r}" if body.strip() else "it is empty"
            raise DataError(
                f"{context}: {self._endpoint()}: the answer is not valid JSON (truncated or "
                f"malformed); {begins}"
            )

    def _endpoint(self) -> str:
        url = self._exchange.last_request_url
        if not url:
            return f"{self.exchange_id} (before any request)"
        parts = urlsplit(str(url))
        self._last_endpoint = f"{parts.scheme}://{parts.netloc}{parts.path}"
        return self._last_endpoint


def _iso_from_ms(epoch_ms: int) -> str:
    """An epoch in milliseconds as ``2024-01-01T00:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_ms / 1000))
