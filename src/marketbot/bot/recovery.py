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

import pandas as pd

from marketbot.bot.plan import BotPlan
from marketbot.bot.recorder import BarPrices, FillRecorder, OpenTrade
from marketbot.execution.client_ids import CLIENT_ORDER_ID_PREFIX
from marketbot.execution.models import Order, OrderSide, OrderStatus
from marketbot.execution.paper import PaperExchange
from marketbot.store.bot import BotRecordRepository, BotRunInfo, OrderRepository

_log = logging.getLogger("marketbot.bot")
_FINAL = frozenset({"closed", "canceled", "rejected", "expired"})


def resolve_exchange_orders(
    exchange: PaperExchange,
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


def _round_trips(
    exchange: PaperExchange,
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
