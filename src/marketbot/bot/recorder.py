"""What the exchange reports, written down: order updates, round trips, verifications, risk.

The exchange is asked for facts (an order's status and fills); the recorder turns each
changed order into its stored update and events, a verification of the fill against the
price the bot expected, and, when a position closes, the round trip with the same P&L
formula as the step core's trade record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from marketbot.execution.models import Order, OrderSide, OrderStatus, OrderType
from marketbot.execution.verifier import TradeVerifier, VerificationStatus
from marketbot.risk.circuit_breaker import RiskEvent
from marketbot.risk.enforcer import RiskDecision
from marketbot.store.bot import (
    BotRecordRepository,
    BotRunInfo,
    OrderIntent,
    OrderRepository,
    OrderUpdate,
    TradeRecord,
    VerificationRecord,
)
from marketbot.store.web_journal import draft_journal_entry

_log = logging.getLogger("marketbot.bot")

_STATUS_EVENTS = {
    OrderStatus.CLOSED: "order_filled",
    OrderStatus.CANCELED: "order_canceled",
    OrderStatus.REJECTED: "order_rejected",
    OrderStatus.EXPIRED: "order_expired",
    OrderStatus.OPEN: "order_updated",
}


class Notifier(Protocol):
    """Where notices go (log-only here; the live issue adds real channels)."""

    def notify(self, title: str, message: str, *, emergency: bool = False) -> None:
        """Send one notice."""
        ...


class LogNotifier:
    """Notices to the log: warnings for emergencies, info for the rest."""

    def notify(self, title: str, message: str, *, emergency: bool = False) -> None:
        """Log one notice."""
        level = logging.WARNING if emergency else logging.INFO
        _log.log(level, "%s: %s", title, message)


@dataclass(frozen=True)
class OpenTrade:
    """The bot's open position as its entry filled.

    Attributes:
        entry_client_order_id: The entry order's client id.
        entry_time: Open time of the bar whose open filled it (UTC).
        entry_price: The fill price.
        size: Units held.
        entry_fee: The entry's fee, quote currency.
        tag: The entry signal's tag.
    """

    entry_client_order_id: str
    entry_time: datetime
    entry_price: float
    size: float
    entry_fee: float
    tag: str | None = None


@dataclass(frozen=True)
class BarPrices:
    """The bar the exchange just processed: its index, open time and open price."""

    index: int
    time: datetime
    open: float


class FillRecorder:
    """Writes what the exchange reports for one bot run."""

    def __init__(
        self,
        run: BotRunInfo,
        orders: OrderRepository,
        records: BotRecordRepository,
        verifier: TradeVerifier,
        notifier: Notifier,
    ) -> None:
        self.run = run
        self.orders = orders
        self.records = records
        self.verifier = verifier
        self.notifier = notifier
        self._tags: dict[str, str | None] = {}

    def sent(self, order: Order, at: datetime) -> None:
        """The exchange took (or refused) an order the bot just sent."""
        self.orders.mark_sent(order.client_order_id, exchange_order_id=order.id or None, at=at)
        if order.status is OrderStatus.REJECTED:
            self._apply(order, at)
            # A live order refused by the exchange is an emergency; on paper it is the
            # paper exchange's own refusal (insufficient funds...), a lifecycle notice.
            self.notifier.notify(
                "order rejected", f"{order.client_order_id}: {order.reason}",
                emergency=self.run.mode == "live",
            )  # fmt: skip

    def remember_tag(self, entry_client_order_id: str, tag: str | None) -> None:
        """The entry signal's tag, for the round trip it opens."""
        self._tags[entry_client_order_id] = tag

    def record(
        self, order: Order, bar: BarPrices, open_trade: OpenTrade | None
    ) -> OpenTrade | None:
        """Store one changed order; return the position held afterwards."""
        stored = self.orders.find(order.client_order_id)
        if stored is None:
            # The venue's own order: the bracket it attached to an entry fill.
            self._adopt_carrier(order, bar.time)
        self._apply(order, bar.time)
        if order.status is not OrderStatus.CLOSED or order.filled <= 0.0:
            return open_trade
        self._verify(order, bar)
        if order.side is OrderSide.BUY:
            tag = self._tags.pop(order.client_order_id, None)
            return OpenTrade(
                order.client_order_id, bar.time, float(order.average or 0.0), order.filled,
                _fee(order), tag,
            )  # fmt: skip
        if open_trade is not None:
            self._record_trade(open_trade, order, bar)
        return None

    def record_closed_trade(self, entry: OpenTrade, exit_order: Order, bar: BarPrices) -> None:
        """The round trip ``exit_order`` closed (recovery: its fill is stored, its trade not)."""
        self._record_trade(entry, exit_order, bar)

    def record_denial(self, verdict: RiskDecision, at: datetime, notional: float) -> None:
        """An entry the risk limits refused."""
        self.records.record_risk_event(
            RiskEvent("entry_denied", at, f"entry of {notional:,.2f} refused: {verdict.reason}",
                      details={"limit": verdict.limit, "notional": notional}),
            bot_run_id=self.run.id,
        )  # fmt: skip

    def record_risk_events(self, events: list[RiskEvent]) -> None:
        """Trips, resets and overrides: stored, and emergencies notified."""
        for event in events:
            self.records.record_risk_event(event, bot_run_id=self.run.id)
            self.notifier.notify(event.kind, event.message, emergency=event.emergency)

    def _apply(self, order: Order, at: datetime) -> None:
        self.orders.apply_update(
            order.client_order_id,
            OrderUpdate(
                kind=_STATUS_EVENTS.get(order.status, "order_updated"), at=at,
                status=str(order.status), filled=order.filled, average_price=order.average,
                fee=_fee(order), exchange_order_id=order.id or None,
                details={"reason": order.reason} if order.reason else {},
            ),
        )  # fmt: skip

    def _adopt_carrier(self, order: Order, at: datetime) -> None:
        self.orders.insert_intent(
            OrderIntent(
                client_order_id=order.client_order_id, bot_run_id=self.run.id,
                strategy=self.run.strategy, symbol=self.run.symbol, intent="protect",
                side=str(order.side), order_type=str(order.type),
                amount=order.amount if order.amount > 0 else None,
                stop_price=order.stop_price, bar_time=at,
            )
        )  # fmt: skip
        self.orders.mark_sent(order.client_order_id, exchange_order_id=order.id or None, at=at)

    def _verify(self, order: Order, bar: BarPrices) -> None:
        reference = bar.open if order.type is OrderType.MARKET else None
        verification = self.verifier.verify(order, reference)
        row = verification.to_row()
        self.records.record_verification(VerificationRecord(**row))
        if verification.status is VerificationStatus.SLIPPAGE_HIGH:
            self.notifier.notify(
                "SLIPPAGE_HIGH",
                f"{order.client_order_id}: filled at {verification.fill_price} against "
                f"{verification.expected_price} ({verification.slippage:.2%} worse)",
                emergency=True,
            )  # fmt: skip

    def _record_trade(self, entry: OpenTrade, exit_order: Order, bar: BarPrices) -> None:
        exit_price = float(exit_order.average or 0.0)
        exit_fee = _fee(exit_order)
        # The step core's formula (backtest.step_nb.write_trade_nb), so a replay's P&L is the
        # backtest's.
        pnl = entry.size * (exit_price - entry.entry_price) - entry.entry_fee - exit_fee
        # The venue labels a fill with the rule that made it: a bracket leg, or the signal.
        reason = exit_order.reason or "signal"
        stored = self.orders.find(exit_order.client_order_id)
        if stored is not None and stored.intent == "force_exit":
            reason = "force_exit"
        trade = TradeRecord(
            bot_run_id=self.run.id, strategy=self.run.strategy, symbol=self.run.symbol,
            direction="long", size=entry.size, entry_time=entry.entry_time,
            entry_price=entry.entry_price, exit_time=bar.time, exit_price=exit_price,
            pnl=pnl, pnl_pct=100.0 * pnl / (entry.size * entry.entry_price),
            fees=entry.entry_fee + exit_fee, exit_reason=reason,
            entry_tag=entry.tag, entry_client_order_id=entry.entry_client_order_id,
            exit_client_order_id=exit_order.client_order_id,
        )  # fmt: skip
        trade_id = self.records.record_trade(trade)
        # Each closed trade gets a journal draft (its entry tag as the reason), made once.
        draft_journal_entry(
            self.records.database, trade_id=trade_id, symbol=trade.symbol,
            strategy=trade.strategy, entry_tag=trade.entry_tag,
        )  # fmt: skip


def _fee(order: Order) -> float:
    return float(order.fee.cost) if order.fee is not None else 0.0
