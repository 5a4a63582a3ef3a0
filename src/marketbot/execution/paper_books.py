"""The paper venue of binary markets: orders on recorded (or polled) order books.

An order placed after a market's event fills at that market's next event, by the binary
backtest's own functions (:class:`~marketbot.backtest.binary_account.BinaryAccount`): buys at
the best ask, sells at the best bid, capped by the top level's size, a group's legs filled
together or not at all, the ``polymarket_taker`` fee, settlement at the market's end at the
payout. A configured stop-loss, take-profit or max hold is judged at each event with the
backtest's ``rule_exit_due`` and sells at once, retried until the group is sold. At one
instant: settlements, then exits (a rule's before a signal's), then entries, each in market
order, as in the backtest. So a replay through the bot gives the backtest's trades.

The venue's whole state (the account, its open groups and the orders waiting for their
event) is plain JSON (:meth:`PaperBooks.snapshot`, :meth:`PaperBooks.restore`): the bot saves
it with the run's progress, and a restarted bot carries on from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from marketbot.backtest.binary_account import (
    DENIALS,
    REASONS,
    BinaryAccount,
    HeldLeg,
    MarketInput,
    OpenGroup,
    TradeRecord,
    rule_exit_due,
)
from marketbot.backtest.binary_config import BinaryConfig

OrderKind = Literal["entry", "exit"]
OUTCOMES: Final = 2


@dataclass(frozen=True)
class BookOrder:
    """An order on one market's books: an entry group or a group exit.

    Attributes:
        market: The market's index in the venue's inputs (slug order).
        kind: ``entry`` (buy the flagged outcomes as one group) or ``exit`` (sell the group).
        flags: Which outcomes the signal flagged (entry: the legs; exit: held outcomes).
        shares: Shares wanted per outcome (NaN: the run's sizing); entries only.
        client_order_ids: One per flagged outcome, by outcome index.
        decided_ns: The event (UTC ns) whose signal decided it; it fills at the next one.
    """

    market: int
    kind: OrderKind
    flags: tuple[bool, bool]
    shares: tuple[float, float]
    client_order_ids: dict[int, str]
    decided_ns: int


@dataclass(frozen=True)
class OrderResult:
    """What became of one leg's order at an event.

    Attributes:
        client_order_id: The leg's order.
        status: ``closed`` (filled, maybe in part) or ``canceled`` (nothing filled).
        filled: Shares filled.
        average_price: The fill price, or None.
        fee: The taker fee paid (USD).
        reason: Why nothing (or only part) filled: a denial, ``group_open``, ``no_group``,
            ``no_bid``, ``partial`` or ``settled``; empty when it filled whole.
    """

    client_order_id: str
    status: str
    filled: float
    average_price: float | None
    fee: float
    reason: str = ""


@dataclass
class EventOutcome:
    """What one instant did: order results and the legs closed (trades), in order."""

    orders: list[OrderResult] = field(default_factory=list)
    trades: list[tuple[TradeRecord, str | None, str | None]] = field(default_factory=list)
    """Each closed leg with its entry's and its exit's client order id (None: settlement)."""


class PaperBooks:
    """The account and the orders waiting for their market's next event.

    Args:
        inputs: Each market's arrays, in slug order (live: replaced as books arrive).
        config: Costs, sizing and limits (as the backtest's).
    """

    def __init__(self, inputs: list[MarketInput], config: BinaryConfig) -> None:
        self.account = BinaryAccount(inputs, config)
        self.pending: dict[int, list[BookOrder]] = {}
        self.entry_ids: dict[int, dict[int, str]] = {}  # group number -> outcome -> entry id
        self.settled: set[int] = set()
        self.rule_pending: dict[int, tuple[int, str]] = {}  # market -> (group, rule) retried

    @property
    def inputs(self) -> list[MarketInput]:
        """The markets' arrays."""
        return self.account.inputs

    def replace_market(self, m: int, data: MarketInput) -> None:
        """Market ``m``'s books grew (live paper): the same events first, then newer ones."""
        self.account.inputs[m] = data

    def place(self, order: BookOrder) -> None:
        """Queue an order for its market's next event (an exit before an entry)."""
        queue = self.pending.setdefault(order.market, [])
        queue.append(order)
        queue.sort(key=lambda item: item.kind != "exit")

    def pending_ids(self) -> list[str]:
        """Client order ids of the orders waiting, oldest first."""
        return [cid for queue in self.pending.values() for o in queue
                for cid in o.client_order_ids.values()]  # fmt: skip

    def settle(self, m: int) -> EventOutcome:
        """Market ``m`` ended: its legs close at the payout; orders still waiting are canceled."""
        outcome = EventOutcome()
        if m in self.settled:
            return outcome
        self.settled.add(m)
        for order in self.pending.pop(m, []):
            outcome.orders += _nothing(order, "settled")
        group = self.account.open.get(m)
        before = len(self.account.run.trades)
        self.account.settle(m)
        if group is not None:
            ids = self.entry_ids.pop(group.number, {})
            outcome.trades += [(t, ids.get(t.outcome), None)
                               for t in self.account.run.trades[before:]]  # fmt: skip
        return outcome

    def fill(self, m: int, event: int, kind: OrderKind) -> EventOutcome:
        """Fill market ``m``'s waiting orders of ``kind`` at its ``event``."""
        outcome = EventOutcome()
        queue = self.pending.get(m, [])
        for order in [o for o in queue if o.kind == kind]:
            queue.remove(order)
            if kind == "exit":
                self._exit(order, event, outcome)
            else:
                self._enter(order, event, outcome)
        if not queue:
            self.pending.pop(m, None)
        return outcome

    def rule_exit(self, m: int, event: int) -> str | None:
        """The rule (stop_loss, take_profit, max_hold) that sells market ``m``'s group now.

        A rule exit that could not fill (or only in part) is tried again at each next event,
        under the same rule, as the backtest does.
        """
        group = self.account.open.get(m)
        if group is None:
            return None
        pending = self.rule_pending.get(m)
        if pending is not None and pending[0] == group.number:
            return pending[1]
        reason = rule_exit_due(group, self.inputs[m], self.account.config, event)
        return None if reason < 0 else REASONS[reason]

    def sell_rule(self, order: BookOrder, event: int, reason: str) -> EventOutcome:
        """Sell market ``order.market``'s group at ``event``'s bids under the rule ``reason``."""
        outcome = EventOutcome()
        account, m = self.account, order.market
        group = account.open.get(m)
        if group is None:
            outcome.orders += _nothing(order, "no_group")
            return outcome
        before = len(account.run.trades)
        if account.sell(group, event, reason):
            del account.open[m]
            self.rule_pending.pop(m, None)
        else:
            self.rule_pending[m] = (group.number, reason)
        self._sold(order, group, account.run.trades[before:], outcome)
        return outcome

    def _enter(self, order: BookOrder, event: int, outcome: EventOutcome) -> None:
        opened = self.account.enter(
            order.market, event, np.array(order.flags), np.array(order.shares)
        )
        if not isinstance(opened, OpenGroup):
            outcome.orders += _nothing(order, opened or "group_open")
            return
        self.entry_ids[opened.number] = dict(order.client_order_ids)
        for leg in opened.legs:
            outcome.orders.append(
                OrderResult(order.client_order_ids[leg.outcome], "closed", leg.held, leg.price,
                            leg.fee_per_share * leg.held)
            )  # fmt: skip

    def _exit(self, order: BookOrder, event: int, outcome: EventOutcome) -> None:
        account = self.account
        group = account.open.get(order.market)
        if group is None:
            outcome.orders += _nothing(order, "no_group")
            return
        before = len(account.run.trades)
        account.exit_signal(order.market, event, np.array(order.flags))
        self._sold(order, group, account.run.trades[before:], outcome)

    def _sold(
        self, order: BookOrder, group: OpenGroup, sold: list[TradeRecord], outcome: EventOutcome
    ) -> None:
        """Each leg's order result and closed part after a sale of ``group``."""
        account = self.account
        ids = self.entry_ids.get(group.number, {})
        by_leg = {t.outcome: t for t in sold}
        for k, cid in order.client_order_ids.items():
            trade = by_leg.get(k)
            if trade is None:
                outcome.orders += _nothing(order, "no_bid", only=k)
                continue
            fee = account.config.fee(trade.size, trade.exit_price)
            left = any(leg.held > 0.0 for leg in group.legs)
            outcome.orders.append(OrderResult(cid, "closed", trade.size, trade.exit_price, fee,
                                              "partial" if left else ""))  # fmt: skip
        # The group's other legs sold with it carry no id of their own: the first exit id.
        first = next(iter(order.client_order_ids.values()))
        outcome.trades += [(t, ids.get(t.outcome), order.client_order_ids.get(t.outcome, first))
                           for t in sold]  # fmt: skip
        if order.market not in account.open:
            self.entry_ids.pop(group.number, None)

    # Saving and restoring ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The venue's state as plain JSON values (what :meth:`restore` reads)."""
        account = self.account
        return {
            "cash": account.cash,
            "groups": account.groups,
            "total_fees": account.run.total_fees,
            "entries_offered": account.run.entries_offered,
            "denials": dict(account.run.denials),
            "open": [
                {
                    "market": g.market,
                    "number": g.number,
                    "entry_event": g.entry_event,
                    "entry_ns": g.entry_ns,
                    "cost": g.cost,
                    "legs": [
                        [leg.outcome, leg.held, leg.price, leg.fee_per_share] for leg in g.legs
                    ],
                }
                for g in account.open.values()
            ],
            "pending": [
                {
                    "market": o.market,
                    "kind": o.kind,
                    "flags": list(o.flags),
                    "shares": [None if math.isnan(q) else q for q in o.shares],
                    "ids": {str(k): v for k, v in o.client_order_ids.items()},
                    "decided_ns": o.decided_ns,
                }
                for queue in self.pending.values()
                for o in queue
            ],
            "entry_ids": {
                str(n): {str(k): v for k, v in ids.items()} for n, ids in self.entry_ids.items()
            },
            "settled": sorted(self.settled),
            "rule_pending": {str(m): [n, r] for m, (n, r) in self.rule_pending.items()},
        }

    def restore(self, saved: dict[str, Any]) -> None:
        """Carry on from a :meth:`snapshot` (of a venue over the same markets)."""
        account = self.account
        account.cash = float(saved["cash"])
        account.groups = int(saved["groups"])
        account.run.total_fees = float(saved["total_fees"])
        account.run.entries_offered = int(saved["entries_offered"])
        account.run.denials = {name: int(saved["denials"].get(name, 0)) for name in DENIALS}
        account.open = {}
        for g in saved["open"]:
            legs = [HeldLeg(int(k), float(q), float(p), float(f)) for k, q, p, f in g["legs"]]
            group = OpenGroup(int(g["number"]), int(g["market"]), int(g["entry_event"]),
                              int(g["entry_ns"]), legs, float(g["cost"]))  # fmt: skip
            account.open[group.market] = group
        self.pending = {}
        for o in saved["pending"]:
            self.place(
                BookOrder(int(o["market"]), o["kind"], (bool(o["flags"][0]), bool(o["flags"][1])),
                          tuple(math.nan if q is None else float(q) for q in o["shares"]),  # type: ignore[arg-type]
                          {int(k): str(v) for k, v in o["ids"].items()}, int(o["decided_ns"]))
            )  # fmt: skip
        self.entry_ids = {int(n): {int(k): str(v) for k, v in ids.items()}
                          for n, ids in saved["entry_ids"].items()}  # fmt: skip
        self.settled = {int(m) for m in saved["settled"]}
        self.rule_pending = {int(m): (int(n), str(r))
                             for m, (n, r) in saved.get("rule_pending", {}).items()}  # fmt: skip


def _nothing(order: BookOrder, reason: str, only: int | None = None) -> list[OrderResult]:
    return [OrderResult(cid, "canceled", 0.0, None, 0.0, reason)
            for k, cid in order.client_order_ids.items() if only is None or k == only]  # fmt: skip
