"""A slow, plain-Python reference backtest written from docs/backtesting.md alone.

It exists to check the compiled kernel: a property test feeds both the same random bars,
signals and settings and requires the same trades and equity. It is therefore written for
reading, not speed: plain floats, one small ``Position`` object, one function per rule of the
page, in the page's order. It shares no code with the kernel or its ``*_nb`` helpers; only the
integer codes (directions, exit reasons, sizing modes) are the documented ones, written out
here again so that a renumbering in ``core.codes`` shows up as a failing test.

Exact arithmetic of the page (every decision below compares prices computed this way):

- fills: a buy at ``price x (1 + slippage)``, a sell at ``price x (1 - slippage)``;
- fee: ``fee_rate x units x fill``;
- long levels from the entry fill ``e``: stop ``e x (1 - s)``, target ``e x (1 + p)``,
  trailing ``extreme x (1 - d)``, armed once ``extreme >= e x (1 + a)``; shorts mirror them;
- all-in units: ``equity / (fill x (1 + fee_rate))``.

Where the page leaves a case open, the choice is written down at the rule that makes it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, SupportsFloat, SupportsIndex

if TYPE_CHECKING:
    from marketbot.backtest.kernel import KernelOutput

LONG = 1
SHORT = -1
FLAT = 0

EXIT_SIGNAL = 0
EXIT_STOP_LOSS = 1
EXIT_TAKE_PROFIT = 2
EXIT_TRAILING_STOP = 3
EXIT_MAX_HOLD = 4
EXIT_END_OF_DATA = 5

SIZING_ALL_IN = 0
SIZING_FRACTION = 1
SIZING_FIXED_CASH = 2


class BacktestSettings(Protocol):
    """The settings the reference reads: the fields of the kernel's ``KernelSettings``.

    Rates are fractions; a rule that is off is ``NaN`` (``max_hold_ns``: 0).
    """

    @property
    def initial_cash(self) -> float: ...
    @property
    def fee_rate(self) -> float: ...
    @property
    def slippage_rate(self) -> float: ...
    @property
    def stop_loss(self) -> float: ...
    @property
    def take_profit(self) -> float: ...
    @property
    def trailing_stop(self) -> float: ...
    @property
    def trailing_activation(self) -> float: ...
    @property
    def max_hold_ns(self) -> int: ...
    @property
    def sizing_mode(self) -> int: ...
    @property
    def sizing_value(self) -> float: ...
    @property
    def allow_short(self) -> bool: ...


class Column(Protocol):
    """One value per bar, read by index: a list or a numpy array."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> Any: ...


class BacktestSignals(Protocol):
    """Per-bar signals, the fields of the kernel's ``KernelSignals`` (lists or arrays).

    Flags are read with ``bool``, size fractions with ``float`` and tags with ``int``.
    """

    @property
    def entries_long(self) -> Column: ...
    @property
    def exits_long(self) -> Column: ...
    @property
    def entries_short(self) -> Column: ...
    @property
    def exits_short(self) -> Column: ...
    @property
    def size_fraction(self) -> Column: ...
    @property
    def tag(self) -> Column: ...


@dataclass(frozen=True)
class Trade:
    """One closed (or ``end_of_data``) trade; prices are fills, ``size`` is in asset units."""

    entry_bar: int
    exit_bar: int
    direction: int
    size: float
    entry_price: float
    exit_price: float
    pnl: float
    pnl_pct: float
    fees: float
    exit_reason: int
    tag: int


@dataclass(frozen=True)
class BacktestOutcome:
    """What a simulation produced: equity at each close, the trades and two totals."""

    equity: list[float]
    trades: list[Trade]
    exposed_bars: int
    total_fees: float


@dataclass
class Position:
    """The one open position: what was paid and what the exit rules need to know."""

    direction: int
    units: float
    entry_bar: int
    entry_time_ns: int
    entry_price: float
    entry_fee: float
    tag: int
    extreme: float


@dataclass(frozen=True)
class _Orders:
    """The market orders pending from the previous bar's signals, conflicts resolved."""

    enter_long: bool
    enter_short: bool
    exit_long: bool
    exit_short: bool
    size_fraction: float
    tag: int


@dataclass(frozen=True)
class _Bar:
    open: float
    high: float
    low: float
    close: float
    time_ns: int


def run_reference_backtest(
    open_: Iterable[SupportsFloat],
    high: Iterable[SupportsFloat],
    low: Iterable[SupportsFloat],
    close: Iterable[SupportsFloat],
    times_ns: Iterable[SupportsIndex],
    signals: BacktestSignals,
    settings: BacktestSettings,
) -> BacktestOutcome:
    """Simulate one account trading one symbol, bar by bar, as docs/backtesting.md says.

    Args:
        open_: Open prices, one per bar (``high``, ``low``, ``close`` likewise).
        high: High prices.
        low: Low prices.
        close: Close prices.
        times_ns: Bar open times in nanoseconds, strictly increasing.
        signals: Per-bar signals; those of bar ``t`` act at the open of bar ``t + 1``.
        settings: Costs, exit rules, sizing and whether shorts are allowed.

    Returns:
        The equity at every close, the trades in the order they closed, the number of
        exposed bars and the fees paid in total.
    """
    _refuse_unmodelled_settings(settings)
    bars = [
        _Bar(float(o), float(h), float(lo), float(c), int(t))
        for o, h, lo, c, t in zip(open_, high, low, close, times_ns, strict=True)
    ]
    simulation = _Simulation(settings)
    for index, bar in enumerate(bars):
        orders = _pending_orders(signals, index - 1, settings) if index > 0 else None
        simulation.step(index, bar, orders)
    if simulation.position is not None:
        simulation.close_at_end_of_data(len(bars) - 1, bars[-1].close)
    return BacktestOutcome(
        equity=simulation.equity,
        trades=simulation.trades,
        exposed_bars=simulation.exposed_bars,
        total_fees=simulation.total_fees,
    )


# The kernel's risk limits (size and exposure caps, the daily-loss and drawdown circuit
# breaker) are not part of docs/backtesting.md, and the reference does not model them: it
# refuses settings that turn them on. Tests build settings with these values.
RISK_LIMITS_OFF: dict[str, Any] = {
    "max_position_size": math.nan,
    "max_total_exposure": math.nan,
    "max_positions": math.nan,
    "max_daily_loss": math.nan,
    "max_drawdown_pct": math.nan,
    "daily_reset_offset_ns": 0,
}


def _refuse_unmodelled_settings(settings: object) -> None:
    """Refuse risk limits that are on, rather than silently simulating without them."""
    for name, off in RISK_LIMITS_OFF.items():
        value = getattr(settings, name, off)
        if not (value == off or (math.isnan(off) and math.isnan(value))):
            raise ValueError(f"the reference backtest does not model {name}; set it to {off}")


def _pending_orders(signals: BacktestSignals, t: int, settings: BacktestSettings) -> _Orders:
    """Read bar ``t``'s signals and resolve the page's conflict rules.

    Ambiguity: with shorts disabled the page says short entries "are ignored"; read here as
    ignored entirely, so such a signal neither cancels a long entry nor closes a long.
    """
    wants_long = bool(signals.entries_long[t])
    exit_long = bool(signals.exits_long[t])
    wants_short = bool(signals.entries_short[t]) and bool(settings.allow_short)
    exit_short = bool(signals.exits_short[t])
    # A long entry with a long exit or a short entry is ignored; the mirror for shorts.
    enter_long = wants_long and not exit_long and not wants_short
    enter_short = wants_short and not exit_short and not wants_long
    fraction = float(signals.size_fraction[t])
    if not math.isnan(fraction) and not 0.0 <= fraction <= 1.0:
        raise ValueError(f"size_fraction at bar {t} must be NaN or in [0, 1], got {fraction}")
    return _Orders(
        enter_long=enter_long,
        enter_short=enter_short,
        # "An exit signal, or an opposite entry" (one that survived the conflict rules).
        exit_long=exit_long or enter_short,
        exit_short=exit_short or enter_long,
        size_fraction=fraction,
        tag=int(signals.tag[t]),
    )


def _buy_fill(price: float, slippage: float) -> float:
    return price * (1.0 + slippage)


def _sell_fill(price: float, slippage: float) -> float:
    return price * (1.0 - slippage)


def _is_on(rate: float) -> bool:
    return not math.isnan(rate)


class _Simulation:
    """The account between bars: cash, the position, and what has been recorded so far."""

    def __init__(self, settings: BacktestSettings) -> None:
        self.fee_rate = float(settings.fee_rate)
        self.slippage = float(settings.slippage_rate)
        self.stop_loss = float(settings.stop_loss)
        self.take_profit = float(settings.take_profit)
        self.trailing_stop = float(settings.trailing_stop)
        self.trailing_activation = float(settings.trailing_activation)
        self.max_hold_ns = int(settings.max_hold_ns)
        self.sizing_mode = int(settings.sizing_mode)
        self.sizing_value = float(settings.sizing_value)
        self.cash = float(settings.initial_cash)
        self.position: Position | None = None
        self.equity: list[float] = []
        self.trades: list[Trade] = []
        self.exposed_bars = 0
        self.total_fees = 0.0

    # -- one bar ------------------------------------------------------------------------

    def step(self, index: int, bar: _Bar, orders: _Orders | None) -> None:
        """Run one bar: the open's fills, the intrabar exits, then the close."""
        if orders is not None:
            self._at_the_open(index, bar, orders)
        if self.position is not None:
            # "A bar is exposed when a position is held after the open's fills."
            self.exposed_bars += 1
            self._intrabar(index, bar)
        self._at_the_close(bar)

    def _at_the_open(self, index: int, bar: _Bar, orders: _Orders) -> None:
        held_at_signal = self.position.direction if self.position is not None else FLAT
        if self.position is not None:
            reason = self._gap_exit_reason(self.position, bar.open)
            if reason is None and self._max_hold_reached(self.position, bar.time_ns):
                reason = EXIT_MAX_HOLD
            if reason is None and self._signal_says_exit(self.position, orders):
                reason = EXIT_SIGNAL
            if reason is not None:
                self._close(index, bar.open, reason)
        # The entry is judged against the position the signal saw at the close of t: a long
        # entry while long is ignored even when that long has just been closed at this open.
        direction = FLAT
        if orders.enter_long and held_at_signal != LONG:
            direction = LONG
        if orders.enter_short and held_at_signal != SHORT:
            direction = SHORT
        if direction != FLAT and self.position is None:
            self._open(index, bar, direction, orders)

    def _intrabar(self, index: int, bar: _Bar) -> None:
        position = self.position
        assert position is not None
        triggered = self._intrabar_exit(position, bar)
        if triggered is not None:
            reason, price = triggered
            self._close(index, price, reason)

    def _intrabar_exit(self, position: Position, bar: _Bar) -> tuple[int, float] | None:
        """Stop-loss, then trailing stop, then take-profit against the low/high.

        The page: when a stop and the target both trigger in one bar, the stop is taken; a
        trailing stop is a stop, so it beats the take-profit too. Between the stop-loss and
        the trailing stop the page's order names the stop-loss.
        """
        direction = position.direction
        adverse = bar.low if direction == LONG else bar.high
        favourable = bar.high if direction == LONG else bar.low
        stop = self._stop_loss_level(position)
        if stop is not None and _reached_adverse(direction, adverse, stop):
            return EXIT_STOP_LOSS, _level_or_open(direction, stop, bar.open, adverse=True)
        trail = self._trailing_level(position)
        if trail is not None and _reached_adverse(direction, adverse, trail):
            return EXIT_TRAILING_STOP, _level_or_open(direction, trail, bar.open, adverse=True)
        target = self._take_profit_level(position)
        if target is not None and _reached_favourable(direction, favourable, target):
            return EXIT_TAKE_PROFIT, _level_or_open(direction, target, bar.open, adverse=False)
        return None

    def _at_the_close(self, bar: _Bar) -> None:
        position = self.position
        if position is None:
            self.equity.append(self.cash)
            return
        # The trailing extreme moves only now, after this bar's checks.
        if position.direction == LONG:
            position.extreme = max(position.extreme, bar.high)
            self.equity.append(self.cash + position.units * bar.close)
        else:
            position.extreme = min(position.extreme, bar.low)
            self.equity.append(self.cash - position.units * bar.close)

    # -- the exit rules -----------------------------------------------------------------

    def _stop_loss_level(self, position: Position) -> float | None:
        if not _is_on(self.stop_loss):
            return None
        if position.direction == LONG:
            return position.entry_price * (1.0 - self.stop_loss)
        return position.entry_price * (1.0 + self.stop_loss)

    def _take_profit_level(self, position: Position) -> float | None:
        if not _is_on(self.take_profit):
            return None
        if position.direction == LONG:
            return position.entry_price * (1.0 + self.take_profit)
        return position.entry_price * (1.0 - self.take_profit)

    def _trailing_level(self, position: Position) -> float | None:
        """The trailing stop from the extreme of earlier closes; None while off or unarmed."""
        if not _is_on(self.trailing_stop):
            return None
        activation = self.trailing_activation
        if _is_on(activation) and activation > 0.0:
            if position.direction == LONG:
                armed = position.extreme >= position.entry_price * (1.0 + activation)
            else:
                armed = position.extreme <= position.entry_price * (1.0 - activation)
            if not armed:
                return None
        if position.direction == LONG:
            return position.extreme * (1.0 - self.trailing_stop)
        return position.extreme * (1.0 + self.trailing_stop)

    def _gap_exit_reason(self, position: Position, open_price: float) -> int | None:
        """Stop-loss, then trailing stop, then take-profit: the first the open has reached.

        The page's table uses "<=" / ">=", so an open exactly at a level counts as reached.
        """
        direction = position.direction
        stop = self._stop_loss_level(position)
        if stop is not None and _reached_adverse(direction, open_price, stop):
            return EXIT_STOP_LOSS
        trail = self._trailing_level(position)
        if trail is not None and _reached_adverse(direction, open_price, trail):
            return EXIT_TRAILING_STOP
        target = self._take_profit_level(position)
        if target is not None and _reached_favourable(direction, open_price, target):
            return EXIT_TAKE_PROFIT
        return None

    def _max_hold_reached(self, position: Position, now_ns: int) -> bool:
        if self.max_hold_ns <= 0:
            return False
        return now_ns - position.entry_time_ns >= self.max_hold_ns

    @staticmethod
    def _signal_says_exit(position: Position, orders: _Orders) -> bool:
        if position.direction == LONG:
            return orders.exit_long
        return orders.exit_short

    # -- fills and accounting -----------------------------------------------------------

    def _units_to_trade(self, fill: float, size_fraction: float) -> float:
        """Units for a new position; the account is flat, so its equity is its cash.

        Gap in the page: it does not say what happens when the equity is not positive (a
        short can lose more than the account). Chosen: no entry.
        """
        equity = self.cash
        if equity <= 0.0:
            return 0.0
        if not math.isnan(size_fraction):
            budget = equity * size_fraction
        elif self.sizing_mode == SIZING_FRACTION:
            budget = equity * self.sizing_value
        elif self.sizing_mode == SIZING_FIXED_CASH:
            budget = min(self.sizing_value, equity)
        else:
            budget = equity
        return budget / (fill * (1.0 + self.fee_rate))

    def _open(self, index: int, bar: _Bar, direction: int, orders: _Orders) -> None:
        if direction == LONG:
            fill = _buy_fill(bar.open, self.slippage)
        else:
            fill = _sell_fill(bar.open, self.slippage)
        units = self._units_to_trade(fill, orders.size_fraction)
        if units <= 0.0:
            return
        fee = self.fee_rate * units * fill
        if direction == LONG:
            self.cash -= units * fill + fee
        else:
            self.cash += units * fill - fee
        self.total_fees += fee
        self.position = Position(
            direction=direction,
            units=units,
            entry_bar=index,
            entry_time_ns=bar.time_ns,
            entry_price=fill,
            entry_fee=fee,
            tag=orders.tag,
            extreme=fill,
        )

    def _close(self, index: int, price: float, reason: int) -> None:
        position = self.position
        assert position is not None
        if position.direction == LONG:
            fill = _sell_fill(price, self.slippage)
            fee = self.fee_rate * position.units * fill
            self.cash += position.units * fill - fee
        else:
            fill = _buy_fill(price, self.slippage)
            fee = self.fee_rate * position.units * fill
            self.cash -= position.units * fill + fee
        self.total_fees += fee
        self._record(position, index, fill, fee, reason)
        self.position = None

    def close_at_end_of_data(self, last_index: int, last_close: float) -> None:
        """Report the position still open as a trade at the last close, without exit costs."""
        position = self.position
        assert position is not None
        self._record(position, last_index, last_close, 0.0, EXIT_END_OF_DATA)
        self.position = None

    def _record(
        self, position: Position, exit_bar: int, exit_price: float, exit_fee: float, reason: int
    ) -> None:
        gross = position.direction * position.units * (exit_price - position.entry_price)
        pnl = gross - position.entry_fee - exit_fee
        self.trades.append(
            Trade(
                entry_bar=position.entry_bar,
                exit_bar=exit_bar,
                direction=position.direction,
                size=position.units,
                entry_price=position.entry_price,
                exit_price=exit_price,
                pnl=pnl,
                pnl_pct=100.0 * pnl / (position.units * position.entry_price),
                fees=position.entry_fee + exit_fee,
                exit_reason=reason,
                tag=position.tag,
            )
        )


def _reached_adverse(direction: int, price: float, level: float) -> bool:
    """A stop-like level: a long's is reached at or below it, a short's at or above."""
    return price <= level if direction == LONG else price >= level


def _reached_favourable(direction: int, price: float, level: float) -> bool:
    """A target: a long's is reached at or above it, a short's at or below."""
    return price >= level if direction == LONG else price <= level


def _level_or_open(direction: int, level: float, open_price: float, *, adverse: bool) -> float:
    """The price an intrabar exit gets: its level, or the open when the open is already past.

    Only on the entry bar can the open already be past a level (a held position would have
    gapped out at the open); it then fills at the open, like a gap.
    """
    if adverse:
        open_is_past = open_price < level if direction == LONG else open_price > level
    else:
        open_is_past = open_price > level if direction == LONG else open_price < level
    return open_price if open_is_past else level


def outcome_from_kernel(output: KernelOutput) -> BacktestOutcome:
    """Turn the kernel's output into the reference's plain types, for comparison.

    The kernel's trade records are read by field name (the fields of ``Trade``).
    """
    fields = [field.name for field in dataclasses.fields(Trade)]
    trades = [Trade(**{name: record[name].item() for name in fields}) for record in output.trades]
    return BacktestOutcome(
        equity=[float(value) for value in output.equity],
        trades=trades,
        exposed_bars=int(output.exposed_bars),
        total_fees=float(output.total_fees),
    )
