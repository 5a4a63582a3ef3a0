"""Live paper on binary markets: each market's books polled from the CLOB, on a clock.

Every ``poll_seconds`` (5 s by default) the feed asks the CLOB for the top of both tokens'
books of every market still open (``GET /book``, through ``net/`` at priority 5), stamps the
snapshots with the clock's time, and hands the loop that instant: one event per poll, the
same rules as a replay (an order decided at a poll fills at the market's next poll). A
market's end, once the clock passes it, is an instant of its own: an open market has no
payout yet, so its legs close ``end_of_data`` at the last mid. The feed ends when every market has
ended, or when the runner is stopped.

The markets come from the store (``polymarket_markets``: ``marketbot polymarket collect
--market SLUG``), each with two outcome tokens and an end date.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from marketbot.backtest.binary_account import MarketInput
from marketbot.backtest.binary_markets import BinaryMarket, BinaryMarkets
from marketbot.bot.binary_loop import BinaryLoop, no_signals
from marketbot.core.clock import Clock, epoch_ns
from marketbot.core.errors import ConfigError
from marketbot.net import ApiError, HttpClient
from marketbot.sources.polymarket_clob_book import fetch_top_of_book
from marketbot.store.database import Database
from marketbot.store.polymarket import PolymarketRepository

_log = logging.getLogger("marketbot.bot")
DEFAULT_POLL_SECONDS: Final = 5.0


@dataclass
class LiveBooks:
    """The markets' rows and every snapshot polled so far.

    Attributes:
        markets: One row per market (``BinaryMarkets.from_frames``' markets frame).
        tokens: Each market's two token ids, by slug.
        clob: The CLOB client.
        clock: The injected clock (snapshots are stamped with its time).
        sleep: Waits between polls (tests move the clock).
        poll_seconds: Seconds between polls.
    """

    markets: pd.DataFrame
    tokens: dict[str, tuple[str, str]]
    clob: HttpClient
    clock: Clock
    sleep: Callable[[float], None]
    poll_seconds: float = DEFAULT_POLL_SECONDS
    rows: list[dict[str, object]] = field(default_factory=list)
    last_poll_ns: int | None = None

    @classmethod
    def from_store(
        cls,
        database: Database,
        slugs: list[str],
        clob: HttpClient,
        clock: Clock,
        sleep: Callable[[float], None],
    ) -> LiveBooks:
        """The stored markets ``slugs``, checked for live paper.

        Raises:
            ConfigError: a market that is not stored, has not two outcome tokens or no end
                date, or has ended already.
        """
        repository = PolymarketRepository(database)
        rows, tokens = [], {}
        now = clock.now()
        for slug in dict.fromkeys(slugs):
            tracked = repository.get_market(slug)
            if tracked is None:
                raise ConfigError(
                    f"market {slug!r} is not stored: store it with `marketbot polymarket "
                    f"collect --market {slug}` first (live paper reads its tokens and end date)"
                )
            info = tracked.info
            if len(info.token_ids) != 2:  # binary markets have two outcomes
                raise ConfigError(f"market {slug}: {len(info.token_ids)} outcome tokens, not 2")
            if info.end_date is None:
                raise ConfigError(f"market {slug}: no end date stored")
            if info.closed or info.end_date <= now:
                raise ConfigError(
                    f"market {slug} ended at {info.end_date.isoformat()}: live paper trades "
                    "open markets (replay it with --replay START END)"
                )
            tokens[info.slug] = (info.token_ids[0], info.token_ids[1])
            rows.append(
                {"market_id": info.market_id, "slug": info.slug, "question": info.question,
                 "start": info.start_date or now, "end": info.end_date,
                 "label_0": info.outcomes[0], "label_1": info.outcomes[1],
                 "payout_0": np.nan, "payout_1": np.nan}
            )  # fmt: skip
        return cls(pd.DataFrame(rows), tokens, clob, clock, sleep)

    def poll(self) -> int:
        """Both tokens' top of book of every open market, stamped now; returns now (UTC ns)."""
        now = self.clock.now()
        for record in self.markets.to_dict("records"):
            slug = str(record["slug"])
            if pd.Timestamp(record["end"]) <= pd.Timestamp(now):
                continue
            for outcome, token in enumerate(self.tokens[slug]):
                try:
                    top = fetch_top_of_book(self.clob, token)
                except ApiError as exc:
                    label = record[f"label_{outcome}"]
                    raise ApiError(
                        f"market {slug}, outcome {label} (token {token}): {exc}"
                    ) from exc
                self.rows.append(
                    {"slug": slug, "outcome_index": outcome, "timestamp": pd.Timestamp(now),
                     "best_bid": top.best_bid, "bid_size": top.bid_size,
                     "best_ask": top.best_ask, "ask_size": top.ask_size}
                )  # fmt: skip
        self.last_poll_ns = epoch_ns(now)
        return self.last_poll_ns

    def built(self) -> BinaryMarkets:
        """The markets with the snapshots so far (markets not quoted yet are left out)."""
        books = pd.DataFrame(self.rows, columns=_BOOK_COLUMNS).astype(_BOOK_TYPES)
        return BinaryMarkets.from_frames(self.markets, books)

    def end_times(self) -> list[tuple[int, str]]:
        """Each market's end (UTC ns) and slug, in time order."""
        ends = [(epoch_ns(pd.Timestamp(r["end"]).to_pydatetime()), str(r["slug"]))
                for r in self.markets.to_dict("records")]  # fmt: skip
        return sorted(ends)

    def instants(self, loop: BinaryLoop, stop: Callable[[], bool]) -> Iterator[int]:
        """Poll, grow the loop's markets, yield the instant; ends as they pass; until done."""
        pending_ends = self.end_times()
        if self.last_poll_ns is not None:  # the poll that planned the run
            yield self.last_poll_ns
        while not stop():
            self.sleep(self.poll_seconds)
            now_ns = epoch_ns(self.clock.now())
            while pending_ends and pending_ends[0][0] <= now_ns:
                yield pending_ends.pop(0)[0]
            if not pending_ends:
                return
            polled = self.poll()
            grow(loop, self.built())
            yield polled


def grow(loop: BinaryLoop, markets: BinaryMarkets) -> None:
    """Hand the loop and its venue each market's books as they stand now."""
    for m, market in enumerate(loop.markets):
        if market.slug in markets:
            newer: BinaryMarket = markets[market.slug]
            loop.replace_market(m, newer)
            loop.venue.replace_market(m, MarketInput.of(newer, no_signals(len(newer.book))))


_BOOK_COLUMNS: Final = ("slug", "outcome_index", "timestamp", "best_bid", "bid_size",
                        "best_ask", "ask_size")  # fmt: skip
_BOOK_TYPES: Final = {"outcome_index": "int64", "best_bid": "float64", "bid_size": "float64",
                      "best_ask": "float64", "ask_size": "float64"}  # fmt: skip
