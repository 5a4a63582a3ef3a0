"""The account of binary-market runs: share groups bought at the asks, sold at the bids.

The rules every binary run follows, backtest or paper bot:

- An entry signal's legs form a group, bought at one event's best asks (slippage moves them
  against the order), filled together or not at all, scaled by one factor to fit each leg's
  top-level depth, the cash and the risk limits (exposure at cost). A market holds at most
  one open group; an entry while one is open is dropped. Nothing fills on an invalid quote.
- Exits act on the whole group, sold at the best bids (an exit limited by bid depth sells
  the same fraction of every leg): a signal exit on a held outcome, or a rule's (stop-loss
  or take-profit on the group's value at mids, max hold).
- Legs still held at the market's end settle at the recorded payout (``settlement``, no fee)
  or, unresolved, at the last valid mid (``end_of_data``, no costs).

:class:`BinaryAccount` applies them and keeps the cash, the open groups and the closed legs;
the rule exits' pieces (:func:`rule_exit_due` and its parts) say when a rule sells. The
backtest's scheduler (backtest/binary_engine.py) and the paper bot's venue
(execution/paper_books.py) both call them, so the bot fills as the backtest does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from marketbot.backtest.binary_config import BinaryConfig
from marketbot.backtest.binary_markets import BinaryMarket
from marketbot.strategies.binary import BinarySignals

REASONS: Final = ("signal", "stop_loss", "take_profit", "max_hold", "settlement", "end_of_data")
SIGNAL, STOP_LOSS, TAKE_PROFIT, MAX_HOLD, SETTLEMENT, END_OF_DATA = range(6)
"""Indices into ``REASONS``; a tie between rules goes to the lowest."""
_TINY: Final = 1e-9
DENIALS: Final = ("invalid_quote", "no_depth", "no_cash", "risk_limit")


@dataclass(frozen=True)
class MarketInput:
    """One market's arrays for the simulation (events x 2 where two-dimensional)."""

    market: BinaryMarket
    times: np.ndarray
    ask: np.ndarray
    ask_size: np.ndarray
    bid: np.ndarray
    bid_size: np.ndarray
    valid: np.ndarray
    last_mid: np.ndarray
    signals: BinarySignals

    @classmethod
    def of(cls, market: BinaryMarket, signals: BinarySignals) -> MarketInput:
        """The market's book as arrays, with each token's last valid mid carried forward."""
        return cls(
            market=market,
            times=market.times_ns,
            ask=market.column("ask"),
            ask_size=market.column("ask_size"),
            bid=market.column("bid"),
            bid_size=market.column("bid_size"),
            valid=market.column("valid").astype(bool),
            last_mid=market.last_mid,
            signals=signals,
        )


@dataclass
class HeldLeg:
    """One outcome of an open group: shares held, their fill price and entry fee a share."""

    outcome: int
    held: float
    price: float
    fee_per_share: float


@dataclass
class OpenGroup:
    """The legs entered at one event of one market, exited and settled together."""

    number: int
    market: int
    entry_event: int
    entry_ns: int
    legs: list[HeldLeg]
    cost: float


@dataclass
class TradeRecord:
    """One closed leg (or the part of it an exit sold)."""

    market: int
    outcome: int
    group: int
    entry_ns: int
    exit_ns: int
    entry_price: float
    exit_price: float
    size: float
    pnl: float
    pnl_pct: float
    exit_reason: str
    fees: float


@dataclass
class BinaryRun:
    """What a binary simulation returns: closed legs, cash movements and refusals."""

    trades: list[TradeRecord] = field(default_factory=list)
    cash_changes: list[tuple[int, float]] = field(default_factory=list)
    total_fees: float = 0.0
    entries_offered: int = 0
    denials: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DENIALS, 0))


class BinaryAccount:
    """One cash account trading binary markets by the rules of the module docstring.

    The caller decides when: :meth:`enter` at the event after an entry signal,
    :meth:`exit_signal` or :meth:`sell` for exits, :meth:`settle` at a market's end.

    Args:
        inputs: The markets' arrays (their ``signals`` are not read here).
        config: Costs, sizing and limits.
    """

    def __init__(self, inputs: list[MarketInput], config: BinaryConfig) -> None:
        self.inputs = inputs
        self.config = config
        self.cash = config.initial_cash
        self.open: dict[int, OpenGroup] = {}
        self.run = BinaryRun()
        self.groups = 0

    # Entries --------------------------------------------------------------------------

    def enter(self, m: int, event: int, entries: np.ndarray, wanted: np.ndarray) -> OpenGroup | str:
        """Buy the flagged outcomes of market ``m`` as one group at the asks of ``event``.

        Args:
            m: The market's index in the account's inputs.
            event: The event it fills at (the one after the signal's).
            entries: The signal's entry flags, one per outcome.
            wanted: Shares per outcome (NaN: the run's sizing; 0: not this leg).

        Returns:
            The group opened, or why not: a denial (``DENIALS``) or ``""`` when the signal
            asks for nothing (a group already open, no leg, nothing to buy).
        """
        if m in self.open:
            return ""
        data, config = self.inputs[m], self.config
        time_ns = int(data.times[event])
        self.run.entries_offered += 1
        legs = [k for k in np.flatnonzero(entries).tolist() if wanted[k] != 0.0]  # NaN: sizing
        if not legs:
            return ""
        if not all(data.valid[event, k] for k in legs):
            self.run.denials["invalid_quote"] += 1
            return "invalid_quote"
        if not all(data.ask_size[event, k] > 0.0 for k in legs):
            self.run.denials["no_depth"] += 1
            return "no_depth"
        prices = [data.ask[event, k] * (1.0 + config.slippage_rate) for k in legs]
        unit_costs = [p + config.fee(1.0, p) for p in prices]
        shares = self.desired_shares(time_ns, [wanted[k] for k in legs], unit_costs)
        total = sum(q * c for q, c in zip(shares, unit_costs, strict=True))
        if not total > 0.0:
            return ""
        # Each limit as (amount, what it is compared with, its denial): the smallest ratio
        # binds, and a leg of that size gets exactly the amount (equal legs stay equal).
        limits = [(1.0, 1.0, ""), (max(self.cash, 0.0), total, "no_cash")]
        limits += [
            (data.ask_size[event, k], q, "no_depth") for k, q in zip(legs, shares, strict=True)
        ]
        risk = self.risk_limits(total)
        if risk is None:
            self.run.denials["risk_limit"] += 1
            return "risk_limit"
        limits += risk
        amount, base, denial = min(limits, key=lambda limit: limit[0] / limit[1])
        if amount / base * min(shares) <= _TINY:
            self.run.denials[denial] += 1
            return denial
        filled = [q if amount >= base else q / base * amount for q in shares]
        cost = 0.0
        built = []
        for k, q, p in zip(legs, filled, prices, strict=True):
            fee = config.fee(q, p)
            cost += q * p + fee
            self.run.total_fees += fee
            built.append(HeldLeg(k, q, p, fee / q))
        # Only the rounding of a cash-limited fill can take cash below 0: never an overdraft.
        before = self.cash
        self.cash = max(self.cash - cost, 0.0)
        self.groups += 1
        group = OpenGroup(self.groups, m, event, int(data.times[event]), built, cost)
        self.open[m] = group
        self.run.cash_changes.append((int(data.times[event]), self.cash - before))
        return group

    def desired_shares(
        self, time_ns: int, wanted: list[float], unit_costs: list[float]
    ) -> list[float]:
        """Shares per leg before the limits: the strategy's, else the run's sizing."""
        config = self.config
        if config.sizing == "shares":
            return [config.group_size if math.isnan(q) else q for q in wanted]
        budget = config.group_size
        if config.sizing == "fraction":
            budget = config.group_size * self.equity(time_ns)
        given = sum(q * c for q, c in zip(wanted, unit_costs, strict=True) if not math.isnan(q))
        free = sum(c for q, c in zip(wanted, unit_costs, strict=True) if math.isnan(q))
        each = max(budget - given, 0.0) / free if free > 0.0 else 0.0
        return [each if math.isnan(q) else q for q in wanted]

    def risk_limits(self, total: float) -> list[tuple[float, float, str]] | None:
        """The risk caps on a group costing ``total`` (at cost), or None: no room at all."""
        limits = self.config.risk
        if limits is None:
            return []
        if len(self.open) >= limits.max_positions:
            return None
        exposure = sum(group.cost for group in self.open.values())
        room = limits.max_total_exposure_usd - exposure
        if room <= _TINY:
            return None
        return [
            (limits.max_position_size_usd, total, "risk_limit"),
            (room, total, "risk_limit"),
        ]

    def equity(self, time_ns: int) -> float:
        """Cash plus every held leg at its token's last valid mid (its fill price before one)."""
        value = self.cash
        for group in self.open.values():
            data = self.inputs[group.market]
            row = int(np.searchsorted(data.times, time_ns, side="right")) - 1
            for leg in group.legs:
                mark = data.last_mid[row, leg.outcome] if row >= 0 else math.nan
                value += leg.held * (leg.price if math.isnan(mark) else mark)
        return value

    # Exits ----------------------------------------------------------------------------

    def exit_signal(self, m: int, event: int, exits: np.ndarray) -> OpenGroup | None:
        """Sell market ``m``'s group at the bids of ``event`` when a held outcome is flagged.

        Returns:
            The group when it was offered for sale (it may not have filled, or only in part:
            see ``open``), None when there is nothing to sell.
        """
        group = self.open.get(m)
        if group is None or not any(exits[leg.outcome] for leg in group.legs):
            return None
        if self.sell(group, event, REASONS[SIGNAL]):
            del self.open[m]
        return group

    def sell(self, group: OpenGroup, event: int, reason: str) -> bool:
        """Sell the group at the bids of ``event``; True when nothing is left."""
        data, config = self.inputs[group.market], self.config
        legs = [leg for leg in group.legs if leg.held > 0.0]
        for leg in legs:
            k = leg.outcome
            if not (data.valid[event, k] and data.bid[event, k] >= 0.0):
                return False
            if not data.bid_size[event, k] > 0.0:
                return False
        limits = [(1.0, 1.0)] + [(data.bid_size[event, leg.outcome], leg.held) for leg in legs]
        amount, base = min(limits, key=lambda pair: pair[0] / pair[1])
        time_ns = int(data.times[event])
        proceeds = 0.0
        for leg in legs:
            sold = leg.held if amount >= base else leg.held / base * amount
            price = data.bid[event, leg.outcome] * (1.0 - config.slippage_rate)
            fee = config.fee(sold, price)
            self.run.total_fees += fee
            proceeds += sold * price - fee
            self.record(group, leg, sold, price, fee, time_ns, reason)
        self.cash += proceeds
        self.run.cash_changes.append((time_ns, proceeds))
        fraction_left = 0.0 if amount >= base else 1.0 - amount / base
        group.cost *= fraction_left
        for leg in legs:
            leg.held = 0.0 if amount >= base else leg.held - leg.held / base * amount
        return all(leg.held <= 0.0 for leg in group.legs)

    def settle(self, m: int) -> None:
        """Close market ``m``'s legs at its end: the payout, or unresolved the last mid."""
        group = self.open.pop(m, None)
        if group is None:
            return
        data = self.inputs[m]
        payouts = data.market.payouts
        end_ns = data.market.end_ns
        proceeds = 0.0
        for leg in group.legs:
            if leg.held <= 0.0:
                continue
            if payouts is not None:
                price, reason = payouts[leg.outcome], REASONS[SETTLEMENT]
            else:
                last = data.last_mid[-1, leg.outcome] if len(data.times) else math.nan
                price = leg.price if math.isnan(last) else float(last)
                reason = REASONS[END_OF_DATA]
            proceeds += leg.held * price
            self.record(group, leg, leg.held, price, 0.0, end_ns, reason)
            leg.held = 0.0
        self.cash += proceeds
        self.run.cash_changes.append((end_ns, proceeds))

    def record(
        self,
        group: OpenGroup,
        leg: HeldLeg,
        sold: float,
        price: float,
        exit_fee: float,
        time_ns: int,
        reason: str,
    ) -> None:
        """Append the closed part of a leg to the run's trades (P&L after both fees)."""
        entry_fee = leg.fee_per_share * sold
        pnl = sold * (price - leg.price) - entry_fee - exit_fee
        basis = sold * leg.price
        self.run.trades.append(
            TradeRecord(
                market=group.market,
                outcome=leg.outcome,
                group=group.number,
                entry_ns=group.entry_ns,
                exit_ns=time_ns,
                entry_price=leg.price,
                exit_price=price,
                size=sold,
                pnl=pnl,
                pnl_pct=100.0 * pnl / basis if basis > 0.0 else 0.0,
                exit_reason=reason,
                fees=entry_fee + exit_fee,
            )
        )


# The rule exits' pieces, shared by the backtest's schedule (over the whole book at once,
# backtest/binary_engine.py) and the paper bot's venue (event by event).


def hold_due_ns(group: OpenGroup, config: BinaryConfig) -> int | None:
    """When max hold makes ``group`` due (UTC ns), or None without a max hold."""
    if not config.max_hold_seconds:
        return None
    return group.entry_ns + config.max_hold_seconds * 1_000_000_000


def rule_bounds(group: OpenGroup, config: BinaryConfig) -> list[tuple[float, int, bool]]:
    """(bound, rule, below) of the stop-loss and take-profit on the group's value at mids."""
    bounds = []
    for level, reason, below in ((config.stop_loss, STOP_LOSS, True),
                                 (config.take_profit, TAKE_PROFIT, False)):  # fmt: skip
        if level is not None:
            bounds.append((group.cost * (1.0 - level if below else 1.0 + level), reason, below))
    return bounds


def group_value_at_marks(group: OpenGroup, data: MarketInput, first: int, stop: int) -> np.ndarray:
    """The group's value at events first..stop-1: shares at the last valid mid (else the fill)."""
    value = np.zeros(max(stop - first, 0))
    for leg in group.legs:
        marks = data.last_mid[first:stop, leg.outcome]
        value += leg.held * np.where(np.isnan(marks), leg.price, marks)
    return value


def rule_exit_due(group: OpenGroup, data: MarketInput, config: BinaryConfig, event: int) -> int:
    """The rule (``REASONS`` index) that sells ``group`` at ``event``, or -1: none.

    As the backtest schedules it: max hold at the first event at or after the due time; a
    stop-loss or take-profit at the event after the one whose marks crossed the bound; the
    earliest wins, a tie going to the stop, then the target. Only what is known at ``event``
    is read, so a bot can ask at each event as it comes.
    """
    reasons = []
    due = hold_due_ns(group, config)
    if due is not None and int(data.times[event]) >= due:
        reasons.append(MAX_HOLD)
    bounds = rule_bounds(group, config)
    if bounds and event >= 1 and int(data.times[event - 1]) >= group.entry_ns:
        value = float(group_value_at_marks(group, data, event - 1, event)[0])
        reasons += [reason for bound, reason, below in bounds
                    if (value <= bound if below else value >= bound)]  # fmt: skip
    return min(reasons) if reasons else -1
