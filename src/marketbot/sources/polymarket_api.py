"""Polymarket's public APIs: Gamma for markets and events, the CLOB for price history.

Gamma (``MARKETBOT_POLYMARKET_GAMMA_URL``) describes markets:

- ``GET /markets/{id}`` answers one market object; ``GET /markets?slug=S`` (or ``?id=N``)
  answers a list of them; ``GET /events?slug=S`` answers a list of events, each with its
  ``markets``.
- In a market, ``outcomes``, ``outcomePrices`` and ``clobTokenIds`` are JSON-encoded strings
  (``'["Yes", "No"]'``), parallel lists; ``volumeNum``/``liquidityNum`` are numbers
  while ``volume``/``liquidity`` are numeric strings; dates are ISO 8601 (``closedTime`` has
  the form ``2026-01-05 04:22:25+00``).

The CLOB (``MARKETBOT_POLYMARKET_CLOB_URL``) has ``GET /prices-history?market=TOKEN_ID``
with either ``interval`` (``1h``, ``6h``, ``1d``, ``1w``, ``1m``, ``max``, ending now) or
``startTs``/``endTs`` in Unix seconds (the two are mutually exclusive), and ``fidelity``,
the resolution in minutes. It answers ``{"history": [{"t": unix_seconds, "p": price}]}``.
The documentation states no limit on the range, but the API refuses a ``startTs``/``endTs``
span longer than about 15 days with HTTP 400 ("interval is too long", reported by users), so
collectors ask for at most :data:`MAX_HISTORY_WINDOW_SECONDS` at a time. ``startTs``/``endTs``
also works for resolved markets, where ``interval`` often answers nothing.

Every answer is checked here: a missing or wrong field raises :class:`~marketbot.net.ApiError`
naming the endpoint, the market or token, and the field.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self

from marketbot.config import Settings
from marketbot.core.clock import Clock, as_utc
from marketbot.core.errors import ConfigError
from marketbot.net import ApiError, HttpClient, PriorityRateLimiter, RetryPolicy
from marketbot.store.polymarket import PolymarketMarketInfo, PolymarketPricePoint

__all__ = [
    "CLOB_SERVICE",
    "GAMMA_SERVICE",
    "MAX_HISTORY_WINDOW_SECONDS",
    "PolymarketApi",
    "history_windows",
    "parse_gamma_events",
    "parse_gamma_market",
    "parse_gamma_markets",
    "parse_price_history",
]

GAMMA_SERVICE: Final = "Polymarket Gamma"
CLOB_SERVICE: Final = "Polymarket CLOB"
MAX_HISTORY_WINDOW_SECONDS: Final = 14 * 86_400
"""Longest ``startTs``..``endTs`` span asked of ``/prices-history`` (the API refuses ~15 days+)."""
_NOT_FOUND: Final = 404

_LOG = logging.getLogger(__name__)


def _label(market: Mapping[str, Any]) -> str:
    """How a market is named in messages: its slug, else its id."""
    slug, market_id = market.get("slug"), market.get("id")
    if isinstance(slug, str) and slug:
        return f"market {slug!r}"
    return f"market id {market_id!r}"


def _text(market: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = market.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # Gamma sends ids as strings; a number is the same id
    if isinstance(value, str) and value.strip():
        return value.strip()
    if value is None or value == "":
        if required:
            raise ApiError(f"{where}: {_label(market)} has no '{key}'")
        return None
    raise ApiError(f"{where}: {_label(market)}: '{key}' should be text, got {value!r:.80}")


def _json_list(market: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """A list that Gamma sends JSON-encoded in a string (a plain list is accepted too)."""
    value = market.get(key)
    if value is None:
        raise ApiError(f"{where}: {_label(market)} has no '{key}'")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ApiError(
                f"{where}: {_label(market)}: '{key}' is not a JSON-encoded list ({exc}): "
                f"{market.get(key)!r:.80}"
            ) from exc
    if not isinstance(value, list):
        raise ApiError(f"{where}: {_label(market)}: '{key}' should be a list, got {value!r:.80}")
    return value


def _strings(market: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _json_list(market, key, where)
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise ApiError(
            f"{where}: {_label(market)}: '{key}' should be a non-empty list of text, "
            f"got {values!r:.80}"
        )
    return tuple(v.strip() for v in values)


def _to_float(value: Any) -> float | None:
    """A finite number from a JSON number or a numeric string; None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _prices(market: Mapping[str, Any], where: str) -> tuple[float, ...]:
    if market.get("outcomePrices") in (None, ""):
        return ()
    prices = [_to_float(v) for v in _json_list(market, "outcomePrices", where)]
    if not all(p is not None and 0 <= p <= 1 for p in prices):
        raise ApiError(
            f"{where}: {_label(market)}: 'outcomePrices' should be prices within 0..1, "
            f"got {market.get('outcomePrices')!r:.80}"
        )
    return tuple(p for p in prices if p is not None)


def _amount(market: Mapping[str, Any], keys: tuple[str, str], where: str) -> float | None:
    """A non-negative USDC amount from the numeric field, else its string twin; None if absent."""
    for key in keys:
        value = market.get(key)
        if value is None or value == "":
            continue
        number = _to_float(value)
        if number is None or number < 0:
            raise ApiError(
                f"{where}: {_label(market)}: '{key}' should be an amount >= 0, got {value!r:.80}"
            )
        return number
    return None


def _date(market: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = market.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value.strip()))
        except ValueError:
            pass
    raise ApiError(f"{where}: {_label(market)}: '{key}' should be an ISO date, got {value!r:.80}")


def _boolean(market: Mapping[str, Any], key: str, where: str) -> bool:
    value = market.get(key, False)
    if not isinstance(value, bool):
        raise ApiError(f"{where}: {_label(market)}: '{key}' should be true or false, got {value!r}")
    return value


def _event_slug(market: Mapping[str, Any]) -> str | None:
    """The slug of the first event Gamma lists for a market, if it lists one."""
    events = market.get("events")
    if isinstance(events, list) and events and isinstance(events[0], dict):
        slug = events[0].get("slug")
        if isinstance(slug, str) and slug:
            return slug
    return None


def parse_gamma_market(
    market: Any, *, where: str, event_slug: str | None = None
) -> PolymarketMarketInfo:
    """One Gamma market object, checked.

    Args:
        market: The decoded JSON object.
        where: The endpoint it came from, for messages.
        event_slug: The slug of the event it was listed under, if known.

    Raises:
        ApiError: not an object, or a required field (``id``, ``conditionId``, ``slug``,
            ``question``, ``outcomes``, ``clobTokenIds``) missing or malformed, or an optional
            one (prices, amounts, dates, ``closed``) malformed.
    """
    if not isinstance(market, dict):
        raise ApiError(f"{where}: expected a market object, got {type(market).__name__}")
    outcomes = _strings(market, "outcomes", where)
    token_ids = _strings(market, "clobTokenIds", where)
    prices = _prices(market, where)
    if len(token_ids) != len(outcomes) or (prices and len(prices) != len(outcomes)):
        raise ApiError(
            f"{where}: {_label(market)}: {len(outcomes)} outcomes, {len(token_ids)} "
            f"clobTokenIds and {len(prices)} outcomePrices; they should match"
        )
    return PolymarketMarketInfo(
        market_id=str(_text(market, "id", where)),
        condition_id=str(_text(market, "conditionId", where)),
        slug=str(_text(market, "slug", where)),
        question=str(_text(market, "question", where)),
        event_slug=event_slug or _event_slug(market),
        outcomes=outcomes,
        token_ids=token_ids,
        outcome_prices=prices,
        volume=_amount(market, ("volumeNum", "volume"), where),
        liquidity=_amount(market, ("liquidityNum", "liquidity"), where),
        start_date=_date(market, "startDate", where) or _date(market, "createdAt", where),
        end_date=_date(market, "endDate", where),
        closed=_boolean(market, "closed", where),
        closed_time=_date(market, "closedTime", where),
        resolution_status=_text(market, "umaResolutionStatus", where, required=False),
    )


def parse_gamma_markets(payload: Any, *, where: str) -> list[PolymarketMarketInfo]:
    """A Gamma ``/markets`` list answer, checked (see :func:`parse_gamma_market`).

    Raises:
        ApiError: not a list, or a malformed market in it.
    """
    if not isinstance(payload, list):
        raise ApiError(f"{where}: expected a list of markets, got {type(payload).__name__}")
    return [parse_gamma_market(market, where=where) for market in payload]


def parse_gamma_events(payload: Any, *, where: str) -> list[PolymarketMarketInfo]:
    """Every tradeable market of a Gamma ``/events`` list answer, tagged with its event's slug.

    A market listed without ``clobTokenIds`` (not on the order book yet) is skipped with a
    warning; a malformed one is an error.

    Raises:
        ApiError: not a list of event objects each with a ``markets`` list, or a malformed
            market.
    """
    if not isinstance(payload, list):
        raise ApiError(f"{where}: expected a list of events, got {type(payload).__name__}")
    markets: list[PolymarketMarketInfo] = []
    for event in payload:
        if not isinstance(event, dict) or not isinstance(event.get("markets"), list):
            raise ApiError(f"{where}: an event should be an object with a 'markets' list")
        slug = event.get("slug") if isinstance(event.get("slug"), str) else None
        for market in event["markets"]:
            if isinstance(market, dict) and not market.get("clobTokenIds"):
                # Listed but not (yet) tradeable on the CLOB: it has no prices to collect,
                # and the event's other markets should not fail for it.
                _LOG.warning("%s: %s has no clobTokenIds; skipped", where, _label(market))
                continue
            markets.append(parse_gamma_market(market, where=where, event_slug=slug))
    return markets


def _timestamp(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def parse_price_history(payload: Any, *, where: str) -> list[PolymarketPricePoint]:
    """The points of a CLOB ``/prices-history`` answer, oldest first, one per second.

    Args:
        payload: The decoded JSON, ``{"history": [{"t": unix_seconds, "p": price}]}``.
        where: The endpoint and token it came from, for messages.

    Raises:
        ApiError: not an object with a ``history`` list, or a point whose ``t`` is not whole
            seconds or whose ``p`` is not a number within 0..1.
    """
    if not isinstance(payload, dict) or "history" not in payload:
        detail = (
            f"an error: {payload['error']!r:.200}"
            if isinstance(payload, dict) and "error" in payload
            else f"{type(payload).__name__} without 'history'"
        )
        raise ApiError(f"{where}: expected {{'history': [...]}}, got {detail}")
    history = payload["history"]
    if not isinstance(history, list):
        raise ApiError(f"{where}: 'history' should be a list, got {type(history).__name__}")
    by_time: dict[int, float] = {}
    for position, point in enumerate(history):
        if not isinstance(point, dict):
            raise ApiError(f"{where}: history[{position}] should be an object, got {point!r:.80}")
        stamp, price = _timestamp(point.get("t")), point.get("p")
        if stamp is None:
            raise ApiError(
                f"{where}: history[{position}]: 't' should be Unix seconds, got {point!r:.80}"
            )
        if isinstance(price, bool) or not isinstance(price, int | float):
            raise ApiError(
                f"{where}: history[{position}]: 'p' should be a number, got {point!r:.80}"
            )
        if not (math.isfinite(price) and 0 <= price <= 1):
            raise ApiError(
                f"{where}: history[{position}]: price {price!r} is not within 0..1 (at t={stamp})"
            )
        by_time[stamp] = float(price)  # a repeated second: the later point wins
    return [PolymarketPricePoint(stamp, by_time[stamp]) for stamp in sorted(by_time)]


def history_windows(start_ts: int, end_ts: int, window_seconds: int) -> list[tuple[int, int]]:
    """Consecutive, non-overlapping ``(first, last)`` second ranges covering start..end.

    Each is at most ``window_seconds`` long; none when ``start_ts > end_ts``.
    """
    if window_seconds < 1:
        raise ConfigError(f"`window_seconds` must be at least 1, got {window_seconds}")
    windows = []
    while start_ts <= end_ts:
        last = min(start_ts + window_seconds, end_ts)
        windows.append((start_ts, last))
        start_ts = last + 1
    return windows


class PolymarketApi:
    """Gamma and CLOB clients for one collection: lookups by slug or id, price history.

    Args:
        gamma: The HTTP client for the Gamma API.
        clob: The HTTP client for the CLOB API.
    """

    def __init__(self, gamma: HttpClient, clob: HttpClient) -> None:
        self.gamma = gamma
        self.clob = clob

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> Self:
        """Both clients from the settings, sharing one rate limiter (one Polymarket budget).

        Args:
            settings: URLs, rate budget and timeout.
            clock: Time for the limiter and Retry-After dates (tests pass a manual clock).
            sleep: Waits of the limiter and of retries (tests pass one that moves the clock).
        """
        limiter = PriorityRateLimiter(
            settings.polymarket_calls_per_minute, clock=clock, sleep=sleep
        )
        policy = RetryPolicy.from_settings(settings, sleep=sleep)
        gamma = HttpClient(
            settings.polymarket_gamma_url,
            service=GAMMA_SERVICE,
            limiter=limiter,
            policy=policy,
            clock=clock,
        )
        try:
            clob = HttpClient(
                settings.polymarket_clob_url,
                service=CLOB_SERVICE,
                limiter=limiter,
                policy=policy,
                clock=clock,
            )
        except ConfigError:
            gamma.close()
            raise
        return cls(gamma, clob)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close both connection pools."""
        self.gamma.close()
        self.clob.close()

    def market_by_id(self, market_id: str) -> PolymarketMarketInfo:
        """One market by its numeric Gamma id (``GET /markets/{id}``).

        Raises:
            ApiError: no such market (status 404), or a malformed answer.
        """
        where = f"{GAMMA_SERVICE} GET /markets/{market_id}"
        try:
            payload = self.gamma.get_json(f"markets/{market_id}")
        except ApiError as exc:
            if exc.status_code == _NOT_FOUND:
                raise ApiError(
                    f"Polymarket has no market with id {market_id} ({exc})", _NOT_FOUND
                ) from exc
            raise
        return parse_gamma_market(payload, where=where)

    def markets_by_slug(self, slug: str) -> list[PolymarketMarketInfo]:
        """The markets with this slug (``GET /markets?slug=``); empty when there are none."""
        where = f"{GAMMA_SERVICE} GET /markets?slug={slug}"
        payload = self._list_or_empty("markets", slug)
        return parse_gamma_markets(payload, where=where)

    def event_markets(self, slug: str) -> list[PolymarketMarketInfo]:
        """Every market of the event with this slug (``GET /events?slug=``); may be empty."""
        where = f"{GAMMA_SERVICE} GET /events?slug={slug}"
        payload = self._list_or_empty("events", slug)
        return parse_gamma_events(payload, where=where)

    def _list_or_empty(self, path: str, slug: str) -> Any:
        try:
            return self.gamma.get_json(path, {"slug": slug})
        except ApiError as exc:
            # Gamma answers [] for an unknown slug; a proxy or a future version may say 404.
            if exc.status_code == _NOT_FOUND:
                return []
            raise

    def find_markets(self, market: str) -> list[PolymarketMarketInfo]:
        """The markets a user means by ``market``: a numeric id, an event slug or a market slug.

        An event slug is tried first, since that is what a polymarket.com/event/... URL shows:
        it gives every market of the event. A single-market event often has the same slug as
        its market, so trying the market first would miss markets added to the event later.
        A numeric id always means one market.

        Raises:
            ConfigError: ``market`` is empty.
            ApiError: nothing matches (status 404), or Gamma answered something malformed.
        """
        market = market.strip()
        if not market:
            raise ConfigError("give a Polymarket market slug or numeric id, e.g. --market 516926")
        if market.isdigit():
            return [self.market_by_id(market)]
        markets = self.event_markets(market) or self.markets_by_slug(market)
        if not markets:
            raise ApiError(
                f"Polymarket has no market or event with slug {market!r} (asked "
                f"{GAMMA_SERVICE} GET /events?slug={market} and GET /markets?slug={market}); "
                "check the slug in the market's URL",
                _NOT_FOUND,
            )
        return markets

    def price_history(
        self, token_id: str, *, start_ts: int, end_ts: int, fidelity_minutes: int
    ) -> list[PolymarketPricePoint]:
        """One token's prices between two Unix times (``GET /prices-history``), checked.

        Args:
            token_id: The CLOB token id of one outcome.
            start_ts: First second (inclusive).
            end_ts: Last second; at most :data:`MAX_HISTORY_WINDOW_SECONDS` after the first.
            fidelity_minutes: Resolution in minutes.

        Raises:
            ConfigError: the range is empty or too long, or the fidelity is below 1.
            ApiError: a 4xx answer or a malformed one.
            ServerUnavailableError: 5xx, timeouts or connection errors after the retries.
        """
        if not 0 <= end_ts - start_ts <= MAX_HISTORY_WINDOW_SECONDS:
            raise ConfigError(
                f"price history window {start_ts}..{end_ts} must be 0 to "
                f"{MAX_HISTORY_WINDOW_SECONDS} seconds long"
            )
        if fidelity_minutes < 1:
            raise ConfigError(f"fidelity must be at least 1 minute, got {fidelity_minutes}")
        params: dict[str, str | int] = {
            "market": token_id,
            "startTs": start_ts,
            "endTs": end_ts,
            "fidelity": fidelity_minutes,
        }
        query = "&".join(f"{key}={value}" for key, value in params.items())
        payload = self.clob.get_json("prices-history", params)
        return parse_price_history(payload, where=f"{CLOB_SERVICE} GET /prices-history?{query}")
