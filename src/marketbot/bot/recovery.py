"""What the exchange did while the bot was down: every order resolved by its client id.

At start the bot asks the exchange about each of the run's orders that the database does not
show as final, and about the exchange's own orders with the bot's ``mb-`` prefix that the
database does not know (the bracket a venue attached to an entry fill, or an order whose send
was not recorded): each is recorded as if the loop had seen it, oldest first. An intent never
sent stays as it is; the bar that decided it is redone and sends it under its id. The bot
holds only what its own orders filled; other orders and balances are reported, never traded.
"""

from __future__ import annotations

import logging

import pandas as pd

from marketbot.bot.plan import BotPlan
from marketbot.bot.recorder import BarPrices, FillRecorder, OpenTrade
from marketbot.execution.client_ids import CLIENT_ORDER_ID_PREFIX
from marketbot.execution.models import Order
from marketbot.execution.paper import PaperExchange
from marketbot.store.bot import BotRunInfo, OrderRepository

_log = logging.getLogger("marketbot.bot")
_FINAL = frozenset({"closed", "canceled", "rejected", "expired"})


def resolve_exchange_orders(
    exchange: PaperExchange,
    orders: OrderRepository,
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
    return open_trade


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
