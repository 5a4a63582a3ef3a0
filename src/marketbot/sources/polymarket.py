"""Collects Polymarket markets and their outcome-token price history into the store.

A collection looks a market up on Gamma (by numeric id, market slug or event slug, the last
giving every market of the event), stores what Gamma says about it, then fetches the CLOB
price history of every outcome token in windows of at most
:data:`~marketbot.sources.polymarket_api.MAX_HISTORY_WINDOW_SECONDS`. All the windows of one
token are stored in one transaction: a token's range is stored whole or not at all, and a
re-run overwrites the same rows instead of adding any.

Liquidity: Gamma gives a market's liquidity only as it is now, so it is stored on the market
row (with ``updated_at``); the history rows' ``liquidity`` stays empty, because the CLOB
history has none and copying today's value into the past would be invented data.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Final, Self

from marketbot.config import Settings
from marketbot.core.clock import Clock, SystemClock, as_utc
from marketbot.core.errors import ConfigError, DataError, MarketbotError, TemporaryError
from marketbot.net import ApiError, ServerUnavailableError
from marketbot.sources.polymarket_api import (
    MAX_HISTORY_WINDOW_SECONDS,
    PolymarketApi,
    history_windows,
)
from marketbot.store.database import Database
from marketbot.store.polymarket import (
    PolymarketMarketInfo,
    PolymarketPricePoint,
    PolymarketRepository,
)

__all__ = [
    "DEFAULT_FIDELITY_MINUTES",
    "DEFAULT_LOOKBACK",
    "CollectionSummary",
    "MarketCollection",
    "PolymarketCollector",
    "ProgressCallback",
    "TokenCollection",
    "UpdateSummary",
]

DEFAULT_FIDELITY_MINUTES: Final = 60
"""Hourly points: enough for strategies on prediction markets, 24 rows a day per token."""
DEFAULT_LOOKBACK: Final = timedelta(days=30)
"""How far back a collection starts when neither the user nor Gamma gives a start date."""

ProgressCallback = Callable[[int, int], None]
"""Called with (requests done, requests planned) after each price-history request."""


@dataclass(frozen=True, slots=True)
class TokenCollection:
    """What one token's collection stored.

    Attributes:
        outcome: The outcome the token pays on (``Yes``).
        token_id: The CLOB token id.
        points: Price points written (new or overwritten).
        requests: Price-history requests made.
    """

    outcome: str
    token_id: str
    points: int
    requests: int


@dataclass(frozen=True, slots=True)
class MarketCollection:
    """What one market's collection stored.

    Attributes:
        market: The market as Gamma described it.
        start: Start of the range asked for (the earliest over its tokens), UTC.
        end: End of the range asked for, UTC.
        tokens: One entry per outcome token.
    """

    market: PolymarketMarketInfo
    start: datetime
    end: datetime
    tokens: tuple[TokenCollection, ...]

    @property
    def points(self) -> int:
        """Price points written over all tokens."""
        return sum(token.points for token in self.tokens)

    def describe(self) -> str:
        """One line: the market, its tokens' point counts and the range."""
        counts = ", ".join(f"{token.outcome} {token.points}" for token in self.tokens)
        status = ""
        if self.market.closed:
            winner = self.market.winning_outcome
            status = f" (closed, resolved {winner})" if winner else " (closed)"
        return (
            f"{self.market.slug}{status}: {self.points} points ({counts}), "
            f"{self.start:%Y-%m-%d %H:%M} .. {self.end:%Y-%m-%d %H:%M} UTC"
        )


@dataclass(frozen=True, slots=True)
class CollectionSummary:
    """The result of :meth:`PolymarketCollector.collect_market`.

    Attributes:
        markets: One entry per market collected (an event slug gives several).
    """

    markets: tuple[MarketCollection, ...]

    @property
    def points(self) -> int:
        """Price points written over all markets."""
        return sum(market.points for market in self.markets)

    @property
    def requests(self) -> int:
        """Price-history requests made over all markets."""
        return sum(token.requests for market in self.markets for token in market.tokens)

    def lines(self) -> list[str]:
        """A line per market, then a total line."""
        tokens = sum(len(market.tokens) for market in self.markets)
        return [market.describe() for market in self.markets] + [
            f"collected {len(self.markets)} market(s), {tokens} token(s), {self.points} points "
            f"in {self.requests} price-history request(s)"
        ]


@dataclass(frozen=True, slots=True)
class UpdateSummary:
    """The result of :meth:`PolymarketCollector.update_all`.

    Attributes:
        collected: Markets brought up to date.
        skipped: Slugs of closed markets whose history was already complete.
        failures: ``(slug, error message)`` of markets that failed; the others went on.
    """

    collected: tuple[MarketCollection, ...]
    skipped: tuple[str, ...]
    failures: tuple[tuple[str, str], ...]

    def lines(self) -> list[str]:
        """A line per market collected, one per failure, then a total line."""
        return (
            [market.describe() for market in self.collected]
            + [f"failed: {slug}: {message}" for slug, message in self.failures]
            + [
                f"updated {len(self.collected)} market(s), "
                f"{sum(m.points for m in self.collected)} points; {len(self.skipped)} complete "
                f"market(s) skipped; {len(self.failures)} failed"
            ]
        )


@dataclass(frozen=True, slots=True)
class _MarketPlan:
    """The requests one market needs: where each token starts, where all end, how fine."""

    market: PolymarketMarketInfo
    starts: dict[str, datetime]
    end: datetime
    fidelity_minutes: int
    window_seconds: int
    # False when the user's range was empty (start after the market stopped trading): then
    # nothing was fetched, and the market must not look collected up to its end.
    records_progress: bool = True

    def windows(self, token_id: str) -> list[tuple[int, int]]:
        start_ts = math.ceil(self.starts[token_id].timestamp())
        return history_windows(start_ts, math.floor(self.end.timestamp()), self.window_seconds)

    @property
    def request_count(self) -> int:
        return sum(len(self.windows(token_id)) for token_id in self.market.token_ids)


class _Progress:
    """Counts requests against the plan and tells the callback."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self._callback = callback

    def advance(self) -> None:
        self.done += 1
        if self._callback is not None:
            self._callback(self.done, self.total)


def _in_context(exc: MarketbotError, context: str) -> MarketbotError:
    """The same kind of error, its message prefixed with what was being collected."""
    message = f"{context}: {exc}"
    if isinstance(exc, ApiError):
        return ApiError(message, exc.status_code)
    for kind in (ServerUnavailableError, TemporaryError, DataError, ConfigError):
        if isinstance(exc, kind):
            return kind(message)
    return MarketbotError(message)


class PolymarketCollector:
    """Fetches Polymarket markets and price history and stores them.

    Args:
        api: The Gamma and CLOB clients.
        repository: Where markets and points are stored.
        clock: "Now", the end of an open market's history.
        window_seconds: Longest range asked of ``/prices-history`` in one request.
        default_lookback: How far back to start when no start date is known.
    """

    def __init__(
        self,
        api: PolymarketApi,
        repository: PolymarketRepository,
        *,
        clock: Clock | None = None,
        window_seconds: int = MAX_HISTORY_WINDOW_SECONDS,
        default_lookback: timedelta = DEFAULT_LOOKBACK,
    ) -> None:
        if not 1 <= window_seconds <= MAX_HISTORY_WINDOW_SECONDS:
            raise ConfigError(
                f"`window_seconds` must be 1 to {MAX_HISTORY_WINDOW_SECONDS}, got {window_seconds}"
            )
        self.api = api
        self.repository = repository
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._window_seconds = window_seconds
        self._default_lookback = default_lookback

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        database: Database,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> Self:
        """A collector on the settings' Polymarket URLs, storing into ``database``.

        Args:
            settings: URLs, rate budget and timeout.
            database: A database migrated to the current schema.
            clock: Time for "now", the rate limiter and Retry-After (tests pass a manual one).
            sleep: Waits of the rate limiter and retries (tests pass one moving the clock).
        """
        api = PolymarketApi.from_settings(settings, clock=clock, sleep=sleep)
        return cls(api, PolymarketRepository(database), clock=clock)

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
        """Close the HTTP connections."""
        self.api.close()

    def collect_market(
        self,
        market: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        fidelity_minutes: int = DEFAULT_FIDELITY_MINUTES,
        progress: ProgressCallback | None = None,
    ) -> CollectionSummary:
        """Store a market (or every market of an event) and its tokens' price history.

        Args:
            market: A numeric Gamma market id, a market slug or an event slug.
            start: First moment to fetch (UTC; naive means UTC). Default: the market's start
                date, else :data:`DEFAULT_LOOKBACK` before the end.
            end: Last moment to fetch. Default: now, or when trading stopped for a closed
                market. Never later than now.
            fidelity_minutes: Resolution of the history, in minutes.
            progress: Called after each price-history request with (done, planned).

        Returns:
            What was stored, per market and token.

        Raises:
            ConfigError: an empty market, a fidelity below 1, or start after end.
            ApiError: no such market or event (status 404), a 4xx, or a malformed answer;
                the message names the market, the outcome token and the endpoint.
            ServerUnavailableError: 5xx, timeouts or connection errors after the retries.
            DataError: the database refused a batch (nothing of it is stored).
        """
        _require_fidelity(fidelity_minutes)
        now = self._now()
        start = None if start is None else as_utc(start)
        end = None if end is None else min(as_utc(end), now)
        if start is not None and end is not None and start > end:
            raise ConfigError(f"start {start:%Y-%m-%d %H:%M} is after end {end:%Y-%m-%d %H:%M}")
        plans = []
        for info in self._find(market):
            self.repository.upsert_market(info)
            span_end = end if end is not None else self._default_end(info, now)
            span_start = start if start is not None else self._default_start(info, span_end)
            starts = dict.fromkeys(info.token_ids, span_start)
            plan = self._plan(info, starts, span_end, fidelity_minutes)
            plans.append(dataclasses.replace(plan, records_progress=span_start <= span_end))
        counter = _Progress(sum(plan.request_count for plan in plans), progress)
        return CollectionSummary(tuple(self._collect(plan, counter) for plan in plans))

    def update_all(self, *, progress: ProgressCallback | None = None) -> UpdateSummary:
        """Bring every stored market up to date, each token from its last stored point.

        Gamma is asked again about each market (it may have closed or resolved). Closed
        markets whose history is complete are skipped without a request. A market that
        fails is reported and the others go on.

        Args:
            progress: Called after each price-history request with (done, planned).
        """
        now = self._now()
        plans: list[_MarketPlan] = []
        skipped: list[str] = []
        failures: list[tuple[str, str]] = []
        for tracked in self.repository.list_markets():
            slug = tracked.info.slug
            if tracked.history_complete:
                skipped.append(slug)
                continue
            try:
                info = self.api.market_by_id(tracked.info.market_id)
                self.repository.upsert_market(info)
            except MarketbotError as exc:
                failures.append((slug, str(exc)))
                continue
            end = self._default_end(info, now)
            default_start = self._default_start(info, end)
            last = self.repository.last_timestamps(info.market_id)
            starts = {
                token_id: (
                    last[token_id].to_pydatetime() + timedelta(seconds=1)
                    if token_id in last
                    else default_start
                )
                for token_id in info.token_ids
            }
            fidelity = tracked.fidelity_minutes or DEFAULT_FIDELITY_MINUTES
            plans.append(self._plan(info, starts, end, fidelity))
        counter = _Progress(sum(plan.request_count for plan in plans), progress)
        collected = []
        for plan in plans:
            try:
                collected.append(self._collect(plan, counter))
            except MarketbotError as exc:
                failures.append((plan.market.slug, str(exc)))
        return UpdateSummary(tuple(collected), tuple(skipped), tuple(failures))

    # -- steps -----------------------------------------------------------------------------

    def _now(self) -> datetime:
        return as_utc(self._clock.now())

    def _find(self, market: str) -> list[PolymarketMarketInfo]:
        try:
            return self.api.find_markets(market)
        except MarketbotError as exc:
            if market.strip() and market.strip() in str(exc):
                raise  # the message names the market already
            raise _in_context(exc, f"looking up Polymarket market {market!r}") from exc

    def _default_end(self, info: PolymarketMarketInfo, now: datetime) -> datetime:
        stopped = info.history_end
        return now if stopped is None else min(stopped, now)

    def _default_start(self, info: PolymarketMarketInfo, end: datetime) -> datetime:
        return info.start_date if info.start_date is not None else end - self._default_lookback

    def _plan(
        self,
        info: PolymarketMarketInfo,
        starts: dict[str, datetime],
        end: datetime,
        fidelity_minutes: int,
    ) -> _MarketPlan:
        return _MarketPlan(info, starts, end, fidelity_minutes, self._window_seconds)

    def _collect(self, plan: _MarketPlan, progress: _Progress) -> MarketCollection:
        """Fetch and store every token of one market; mark the market collected to the end."""
        info = plan.market
        tokens = []
        for outcome, token_id in info.tokens:
            windows = plan.windows(token_id)
            points = self._fetch_token(plan, outcome, token_id, windows, progress)
            stored = self.repository.upsert_points(info.market_id, token_id, outcome, points)
            tokens.append(TokenCollection(outcome, token_id, stored, len(windows)))
        if plan.records_progress:
            self.repository.mark_collected(info.market_id, plan.end, plan.fidelity_minutes)
        return MarketCollection(info, min(plan.starts.values()), plan.end, tuple(tokens))

    def _fetch_token(
        self,
        plan: _MarketPlan,
        outcome: str,
        token_id: str,
        windows: Sequence[tuple[int, int]],
        progress: _Progress,
    ) -> list[PolymarketPricePoint]:
        by_time: dict[int, PolymarketPricePoint] = {}
        for first, last in windows:
            try:
                points = self.api.price_history(
                    token_id, start_ts=first, end_ts=last, fidelity_minutes=plan.fidelity_minutes
                )
            except MarketbotError as exc:
                context = (
                    f"Polymarket market {plan.market.slug!r}, outcome {outcome!r} "
                    f"(token {token_id})"
                )
                raise _in_context(exc, context) from exc
            # Windows may share a point at their border; one point per second is kept.
            by_time.update((point.timestamp, point) for point in points)
            progress.advance()
        return [by_time[stamp] for stamp in sorted(by_time)]


def _require_fidelity(fidelity_minutes: int) -> None:
    if isinstance(fidelity_minutes, bool) or not isinstance(fidelity_minutes, int):
        raise ConfigError(f"fidelity must be whole minutes, got {fidelity_minutes!r}")
    if fidelity_minutes < 1:
        raise ConfigError(f"fidelity must be at least 1 minute, got {fidelity_minutes}")
