"""What the exchange did while the bot was down: every order resolved by its client id.

At start the bot asks the exchange about each of the run's orders that the database does not
show as final, and about the exchange's own orders with the bot's ``mb-`` prefix that the
database does not know (the bracket a venue attached to an entry fill, or an order whose send
was not recorded): each is recorded as if the loop had seen it, oldest first. An intent never
sent stays as it is; the bar that decided it is redone and sends it under its id. The bot
holds only what its own orders filled; other orders and balances are reported, never traded.

Then the round trips are rebuilt from the exchange's fills: a kill after a fill's order row
was committed and before the bar's progress was leaves the order final in the database (so
nothing above sees a change) while the trade row or the open position the progress should
hold is missing. Each filled sell that has no trade row closes the entry filled before it;
the position held is the last filled entry when the exchange still holds one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from marketbot.bot.plan import BotPlan
from marketbot.bot.recorder import BarPrices, FillRecorder, OpenTrade
from marketbot.bot.state import PositionState
from marketbot.bot.venue import Venue
from marketbot.execution.client_ids import CLIENT_ORDER_ID_PREFIX
from marketbot.execution.models import Order, OrderSide, OrderStatus
from marketbot.risk.circuit_breaker import RiskEvent
from marketbot.store.bot import BotRecordRepository, BotRunInfo, OrderRepository

_log = logging.getLogger("marketbot.bot")
_FINAL = frozenset({"closed", "canceled", "rejected", "expired"})


def resolve_exchange_orders(
    exchange: Venue,
    orders: OrderRepository,
    records: BotRecordRepository,
    recorder: FillRecorder,
    plan: BotPlan,
    run: BotRunInfo,
    open_trade: OpenTrade | None,
) -> OpenTrade | None:
    """Record what the exchange reports and the database lacks; return the position held."""
    venue = [
        *exchange.fetch_closed_orders(plan.symbol),
        *exchange.fetch_open_orders(plan.symbol),
    ]
    venue.sort(key=lambda order: (order.last_trade_timestamp or order.timestamp, order.timestamp))
    for order in venue:
        if not order.client_order_id.startswith(CLIENT_ORDER_ID_PREFIX):
            _log.warning(
                "order %s on the exchange is not the bot's: reported, not traded", order.id
            )
            continue
        stored = orders.find(order.client_order_id)
        if stored is not None and stored.bot_run_id != run.id:
            continue
        if stored is not None and _same(stored.status, stored.filled, order):
            continue
        if stored is not None and stored.sent_at is None:
            orders.mark_sent(order.client_order_id, exchange_order_id=order.id or None)
        bar = _bar_of(plan, order)
        _log.info("recovered %s: %s", order.client_order_id, order.status)
        open_trade = recorder.record(order, bar, open_trade)
    return _round_trips(exchange, records, recorder, plan, venue, open_trade)


def flag_unknown_positions(
    state_positions: Sequence[PositionState],
    open_trade: OpenTrade | None,
    exchange: Venue,
    recorder: FillRecorder,
    at: datetime,
) -> list[str]:
    """Flag each state-file position that neither the database nor the exchange holds.

    Such a position (a state file from another run, or edited by hand) is logged as
    ``flagged position ID``, put in ``risk_events``, and never traded: the bot holds only
    what its own recorded orders filled. Returns the flagged ids.
    """
    held = None if open_trade is None else open_trade.entry_client_order_id
    flagged: list[str] = []
    for position in state_positions:
        if held is not None and held in (position.position_id, position.entry_client_order_id):
            continue
        venue = exchange.open_position(position.symbol)
        on_exchange = "the exchange holds a position" if venue is not None else "nor the exchange"
        _log.warning(
            "flagged position %s: in the state file (%s %s %g) but not in the database (%s); "
            "it is not traded",
            position.position_id, position.direction, position.symbol, position.size,
            on_exchange,
        )  # fmt: skip
        recorder.record_risk_events([
            RiskEvent(
                "flagged_position", at,
                f"flagged position {position.position_id}: the state file holds "
                f"{position.size:g} {position.symbol} that the database does not; not traded",
                emergency=True,
                details={"position_id": position.position_id, "symbol": position.symbol,
                         "size": position.size, "exchange_holds": venue is not None},
            )
        ])  # fmt: skip
        flagged.append(position.position_id)
    return flagged


def _round_trips(
    exchange: Venue,
    records: BotRecordRepository,
    recorder: FillRecorder,
    plan: BotPlan,
    venue: list[Order],
    open_trade: OpenTrade | None,
) -> OpenTrade | None:
    """Record the trades the fills closed and the database lacks; return the position held."""
    recorded = {trade.exit_client_order_id for trade in records.trades(recorder.run.id)}

    def entry_of(order: Order) -> OpenTrade:
        if open_trade is not None and open_trade.entry_client_order_id == order.client_order_id:
            return open_trade
        return _entry(order, _bar_of(plan, order))

    held: Order | None = None
    for order in venue:
        if order.status is not OrderStatus.CLOSED or order.filled <= 0.0:
            continue
        if not order.client_order_id.startswith(CLIENT_ORDER_ID_PREFIX):
            continue
        if order.side is OrderSide.BUY:
            held = order
        elif held is not None:
            if order.client_order_id not in recorded:
                _log.warning("recovered the trade closed by %s", order.client_order_id)
                recorder.record_closed_trade(entry_of(held), order, _bar_of(plan, order))
            held = None
    if held is None or exchange.open_position(plan.symbol) is None:
        return None
    return entry_of(held)


def _entry(order: Order, bar: BarPrices) -> OpenTrade:
    fee = float(order.fee.cost) if order.fee is not None else 0.0
    return OpenTrade(
        order.client_order_id, bar.time, float(order.average or 0.0), order.filled, fee
    )


def _same(status: str, filled: float, order: Order) -> bool:
    return status == str(order.status) and (status in _FINAL or filled == order.filled)


def _bar_of(plan: BotPlan, order: Order) -> BarPrices:
    """The bar whose open filled (or last changed) ``order``."""
    moment = pd.Timestamp(order.last_trade_timestamp or order.timestamp)
    times = plan.bar_times
    row = max(int(times.searchsorted(moment, side="right")) - 1, 0)
    return BarPrices(
        index=row - plan.first,
        time=times[row].to_pydatetime(),
        open=float(plan.frame["open"].iloc[row]),
    )
