"""The bot's loop over binary markets: one instant at a time, as the backtest orders it.

At each instant ``T`` of the run's time line (every event of every market and every
market's end), in this order:

1. **Settlement** of the markets that end at ``T`` (orders still waiting are canceled).
2. **Fills**: the orders waiting for their market's next event, where that event is ``T``;
   exits of every market, then entries (the paper venue, execution/paper_books.py, fills
   them with the backtest's functions).
3. **Records**: each order's result (``orders``), each closed leg (``trades``: symbol the
   slug, ``entry_tag`` the outcome's label), entries the risk limits refused
   (``risk_events``).
4. **Signals** of the markets with an event at ``T``, on the book up to ``T`` only; an exit
   when a held outcome is flagged, an entry when the market holds no group (or is exiting
   it). Each leg's intent row is committed under its ``mb-`` client id before it is sent.

Everything the loop writes is keyed, so a restart that redoes instants after the last
saved one neither stores an order twice nor sends one twice (docs/prediction_markets.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import numpy as np
import pandas as pd

from marketbot.backtest.binary_account import TradeRecord as LegTrade
from marketbot.backtest.binary_markets import BinaryMarket
from marketbot.bot.binary_plan import BinaryPlan
from marketbot.bot.faults import fault_point
from marketbot.execution.client_ids import client_order_id
from marketbot.execution.paper_books import BookOrder, EventOutcome, OrderResult, PaperBooks
from marketbot.store.bot import (
    BotRecordRepository,
    BotRunInfo,
    OrderIntent,
    OrderRepository,
    OrderUpdate,
    TradeRecord,
)
from marketbot.store.database import Database
from marketbot.strategies.binary import BinarySignals

_FINAL: Final = frozenset({"closed", "canceled", "expired", "rejected"})


@dataclass(frozen=True)
class RiskDenial:
    """An entry the risk limits refused (what ``risk_events`` keeps)."""

    kind: str
    at: datetime
    message: str
    details: dict[str, object]


def no_signals(events: int) -> BinarySignals:
    """Signals that ask for nothing: the venue's markets carry no signals of their own."""
    flags = np.zeros((events, 2), dtype=bool)
    return BinarySignals(flags, flags.copy())


def utc(time_ns: int) -> datetime:
    """UTC nanoseconds as a datetime (microseconds kept)."""
    return pd.Timestamp(time_ns, tz=UTC).to_pydatetime()


class BinaryLoop:
    """Acts on one instant at a time; :meth:`act` says whether anything happened.

    Args:
        database: Where orders, trades and risk events go.
        plan: The strategy, markets and settings.
        run: The stored run (its ``run_id`` seeds the client ids).
        venue: The paper venue (restored from the run's progress on a restart).
    """

    def __init__(
        self, database: Database, plan: BinaryPlan, run: BotRunInfo, venue: PaperBooks
    ) -> None:
        self.plan = plan
        self.run = run
        self.venue = venue
        self.now = utc(0)  # the instant acted on: order rows are stamped with it
        self.orders = OrderRepository(database, clock=lambda: self.now)
        self.records = BotRecordRepository(database)
        self.markets: list[BinaryMarket] = list(plan.markets.values())
        self.recorded = {_trade_key(t) for t in self.records.trades(run.id)}
        self.trades_closed = len(self.recorded)

    def replace_market(self, m: int, market: BinaryMarket) -> None:
        """Market ``m``'s books grew (live paper)."""
        self.markets[m] = market

    def events_at(self, time_ns: int) -> dict[int, int]:
        """The markets with an event at ``time_ns``, and its index in each."""
        found = {}
        for m, market in enumerate(self.markets):
            times = market.times_ns
            event = int(np.searchsorted(times, time_ns))
            if event < len(times) and int(times[event]) == time_ns:
                found[m] = event
        return found

    def act(self, time_ns: int, *, decide: bool = True) -> bool:
        """Settle, fill, record and decide at ``time_ns``; True when something happened."""
        changed = False
        self.now = utc(time_ns)
        for m, market in enumerate(self.markets):
            if market.end_ns == time_ns:
                changed |= self.record(self.venue.settle(m), time_ns)
        events = self.events_at(time_ns)
        for kind in ("exit", "entry"):
            for m, event in events.items():
                if kind == "exit":  # a rule's exit first, as the backtest orders them
                    changed |= self.rule_exit(m, event, time_ns)
                if any(o.kind == kind for o in self.venue.pending.get(m, [])):
                    outcome = self.venue.fill(m, event, kind)
                    changed |= self.record(outcome, time_ns)
        if decide:
            for m, event in events.items():
                changed |= self.decide(m, event, time_ns)
        return changed

    # Signals and orders -----------------------------------------------------------------

    def decide(self, m: int, event: int, time_ns: int) -> bool:
        """The strategy's signal at ``event`` (on the book so far) as orders; True if any."""
        if m in self.venue.settled:
            return False
        market, plan = self.markets[m], self.plan
        book = market.book.iloc[: event + 1]
        book.attrs = {**market.book.attrs, "fee_model": plan.config.fee_model,
                      "fee_rate": plan.config.fee_rate}  # fmt: skip
        signals = plan.strategy.compute_signals(book, plan.params)
        entries, exits = signals.entries[event], signals.exits[event]
        shares = signals.shares[event]
        group = self.venue.account.open.get(m)
        exiting = False
        if group is not None and any(exits[leg.outcome] for leg in group.legs):
            held = {leg.outcome: leg.held for leg in group.legs if leg.held > 0.0}
            ids = {k: self.client_id(m, k, time_ns, "exit") for k in held}
            order = BookOrder(m, "exit", (bool(exits[0]), bool(exits[1])),
                              (math.nan, math.nan), ids, time_ns)  # fmt: skip
            self.send(order, {k: (held[k], None) for k in held})
            exiting = True
        legs = [k for k in np.flatnonzero(entries).tolist() if shares[k] != 0.0]
        # A second group is never opened while one is held: an entry goes out only when the
        # group may be gone by the next event (an exit now, or a rule that could sell it
        # first); the venue drops it (group_open) when the group is still there.
        config = plan.config
        rules = bool(config.max_hold_seconds) or config.stop_loss is not None
        rules = rules or config.take_profit is not None
        if not legs or (group is not None and not (exiting or rules)):
            return exiting
        ids = {k: self.client_id(m, k, time_ns, "entry") for k in legs}
        order = BookOrder(m, "entry", (bool(entries[0]), bool(entries[1])),
                          (float(shares[0]), float(shares[1])), ids, time_ns)  # fmt: skip
        self.send(order, {k: self.entry_size(float(shares[k]), len(legs), time_ns) for k in legs})
        return True

    def rule_exit(self, m: int, event: int, time_ns: int) -> bool:
        """Sell the market's group now when a stop, target or max hold says so (or retries)."""
        reason = self.venue.rule_exit(m, event)
        if reason is None:
            return False
        group = self.venue.account.open[m]
        held = {leg.outcome: leg.held for leg in group.legs if leg.held > 0.0}
        ids = {k: self.client_id(m, k, time_ns, "protect") for k in held}
        order = BookOrder(m, "exit", (True, True), (math.nan, math.nan), ids, time_ns)
        self.send(order, {k: (held[k], None) for k in held}, intent="protect", place=False)
        self.record(self.venue.sell_rule(order, event, reason), time_ns)
        return True

    def entry_size(
        self, wanted: float, legs: int, time_ns: int
    ) -> tuple[float | None, float | None]:
        """(shares, None) or (None, USD) a leg asks for, as its intent row records it."""
        config = self.plan.config
        if not math.isnan(wanted):
            return wanted, None
        if config.sizing == "shares":
            return config.group_size, None
        budget = config.group_size
        if config.sizing == "fraction":
            budget *= self.venue.account.equity(time_ns)
        return None, max(budget / legs, 1e-9)

    def client_id(self, m: int, outcome: int, time_ns: int, intent: str) -> str:
        """The leg's deterministic ``mb-`` id (run, strategy, slug:outcome, event, intent)."""
        symbol = f"{self.markets[m].slug}:{outcome}"
        return client_order_id(
            self.run.run_id, self.plan.strategy.name, symbol, utc(time_ns), intent, 0
        )

    def send(
        self,
        order: BookOrder,
        sizes: dict[int, tuple[float | None, float | None]],
        *,
        intent: str | None = None,
        place: bool = True,
    ) -> None:
        """Commit each leg's intent (once), send the order, mark each leg sent (once).

        ``place=False``: the caller fills it at once (a rule's exit at this event).
        """
        slug = self.markets[order.market].slug
        at = utc(order.decided_ns)
        side = "buy" if order.kind == "entry" else "sell"
        for k, cid in order.client_order_ids.items():
            if self.orders.find(cid) is None:
                amount, cost = sizes[k]
                self.orders.insert_intent(
                    OrderIntent(client_order_id=cid, bot_run_id=self.run.id,
                                strategy=self.plan.strategy.name, symbol=slug,
                                intent=intent or order.kind, side=side, order_type="market",
                                amount=amount, cost=cost, bar_time=at)
                )  # fmt: skip
                fault_point("after_intent_commit")
        if place:
            self.venue.place(order)
        for cid in order.client_order_ids.values():
            if self.orders.get(cid).sent_at is None:
                self.orders.mark_sent(cid, exchange_order_id=cid, at=at)
                fault_point("after_send")

    # Records ----------------------------------------------------------------------------

    def record(self, outcome: EventOutcome, time_ns: int) -> bool:
        """Store the orders' results and the closed legs (each once); True if any."""
        at = utc(time_ns)
        for result in outcome.orders:
            self.record_order(result, at)
        denied = [r.client_order_id for r in outcome.orders if r.reason == "risk_limit"]
        if denied:  # one group's legs, refused together
            self.records.record_risk_event(
                RiskDenial("entry_denied", at, f"entry of {len(denied)} leg(s) refused by the "
                           "risk limits", {"client_order_ids": denied}),
                bot_run_id=self.run.id,
            )  # fmt: skip
        for leg, entry_id, exit_id in outcome.trades:
            self.record_trade(leg, entry_id, exit_id)
        return bool(outcome.orders or outcome.trades)

    def record_order(self, result: OrderResult, at: datetime) -> None:
        """The order's fill or cancelation, unless the order is final already."""
        if self.orders.get(result.client_order_id).status in _FINAL:
            return
        filled = result.status == "closed"
        price = result.average_price
        self.orders.apply_update(
            result.client_order_id,
            OrderUpdate("order_filled" if filled else "order_canceled", at=at,
                        status=result.status, filled=result.filled,
                        average_price=price if price is not None and price > 0.0 else None,
                        fee=result.fee, details={"reason": result.reason} if result.reason else {}),
        )  # fmt: skip

    def record_trade(self, leg: LegTrade, entry_id: str | None, exit_id: str | None) -> None:
        """One closed leg as a ``trades`` row (once)."""
        market = self.markets[leg.market]
        trade = TradeRecord(
            bot_run_id=self.run.id, strategy=self.plan.strategy.name, symbol=market.slug,
            direction="long", size=leg.size, entry_time=utc(leg.entry_ns),
            entry_price=leg.entry_price, exit_time=utc(leg.exit_ns), exit_price=leg.exit_price,
            pnl=leg.pnl, pnl_pct=leg.pnl_pct, fees=leg.fees, exit_reason=leg.exit_reason,
            entry_tag=market.labels[leg.outcome], entry_client_order_id=entry_id,
            exit_client_order_id=exit_id,
        )  # fmt: skip
        key = _trade_key(trade)
        if key in self.recorded:
            return
        self.records.record_trade(trade)
        self.recorded.add(key)
        self.trades_closed += 1


def _trade_key(trade: TradeRecord) -> tuple[object, ...]:
    return (trade.symbol, trade.entry_tag, trade.entry_time, trade.exit_time, trade.exit_reason,
            round(trade.size, 9))  # fmt: skip
