"""Alert snapshots from what is stored: price bars, and the bot's runs for the rest.

``alerts watch`` reads price alerts from the latest stored bars (which the collectors keep
fresh) and strategy and portfolio alerts from the bot's tables (the current runs' closed
trades and saved progress); ``alerts test`` replays bars one snapshot per bar. The bot's
loop builds its snapshots from its live account instead (``bot.alert_snapshot`` helpers).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from marketbot.bot.alert_expressions import AlertCondition
from marketbot.bot.alert_snapshot import (
    AlertSnapshot,
    PortfolioReading,
    PriceReading,
    StrategyReading,
    change_pct,
    portfolio_reading,
    strategy_reading,
)
from marketbot.core.clock import as_utc
from marketbot.core.errors import DataError
from marketbot.core.timeframes import timeframe_seconds
from marketbot.store.alerts import AlertInfo
from marketbot.store.bot import BotRecordRepository, BotRunInfo, BotRunRepository
from marketbot.store.database import Database
from marketbot.store.prices import PriceRepository, canonical_timeframe

# How many bars back a latest-bar query looks: enough to find the previous close over a gap.
_LOOKBACK_BARS = 10


def check_alert_subject(
    database: Database, condition: AlertCondition, timeframe: str | None
) -> str | None:
    """Refuse a price alert on a symbol (or timeframe) that is not stored.

    Returns:
        The canonical timeframe (None stays None).

    Raises:
        DataError: the symbol is not stored (the message lists the stored symbols), or not
            in that timeframe (listing the stored ones).
        ConfigError: a malformed timeframe.
    """
    canonical = None if timeframe is None else canonical_timeframe(timeframe)
    if condition.kind == "price" and condition.subject is not None:
        PriceRepository(database).resolve_series(condition.subject, timeframe=canonical)
    return canonical


def price_snapshots(
    frame: pd.DataFrame, symbol: str, timeframe: str | None, *, first: int = 0
) -> Iterator[AlertSnapshot]:
    """One snapshot per bar from row ``first`` on: the bar's close, its change, its open time."""
    closes = frame["close"].to_numpy(dtype=float)
    times = pd.DatetimeIndex(frame.index)
    for row in range(first, len(frame)):
        time = times[row].to_pydatetime()
        close = float(closes[row])
        previous = float(closes[row - 1]) if row > 0 else None
        reading = PriceReading(
            symbol=symbol, time=time, close=close, last=close,
            change_pct=change_pct(close, previous), timeframe=timeframe,
        )  # fmt: skip
        yield AlertSnapshot(at=time, prices=(reading,))


def latest_price(
    prices: PriceRepository, symbol: str, timeframe: str | None
) -> PriceReading | None:
    """The latest stored bar of a symbol as a reading; None when it is not stored (any more)."""
    try:
        source, chosen = prices.resolve_series(symbol, timeframe=timeframe)
    except DataError:
        return None
    last = prices.last_timestamp(source, symbol, chosen)
    if last is None:
        return None
    start = last - pd.Timedelta(seconds=_LOOKBACK_BARS * timeframe_seconds(chosen))
    frame = prices.load_bars(symbol, timeframe=chosen, source=source, start=start)
    if frame.empty:
        return None
    snapshot = next(price_snapshots(frame, symbol, chosen, first=len(frame) - 1))
    return snapshot.prices[0]


def snapshot_from_database(
    database: Database, alerts: Sequence[AlertInfo], now: datetime
) -> AlertSnapshot:
    """What ``alerts watch`` evaluates: the latest stored bars and the bot's current runs."""
    prices = PriceRepository(database)
    wanted = {(a.subject, a.timeframe) for a in alerts if a.kind == "price" and a.subject}
    readings = []
    for symbol, timeframe in sorted(wanted, key=lambda pair: (pair[0] or "", pair[1] or "")):
        if symbol is None:
            continue
        reading = latest_price(prices, symbol, timeframe)
        if reading is not None:
            readings.append(reading)
    strategies, portfolio = bot_readings(database)
    return AlertSnapshot(
        at=as_utc(now), prices=tuple(readings), strategies=strategies, portfolio=portfolio
    )


def bot_readings(database: Database) -> tuple[tuple[StrategyReading, ...], PortfolioReading | None]:
    """Strategy and portfolio readings from the bot's current runs (empty when none).

    ``pnl_usd`` and ``win_rate`` come from the closed trades, ``open_positions`` from the
    saved progress, the portfolio from the risk book saved after the last bar. The latest
    signal (``entry_signal``, ``size_fraction``) is known only inside the bot's loop.
    """
    runs = BotRunRepository(database).current_runs()
    if not runs:
        return (), None
    records = BotRecordRepository(database)
    strategies = []
    total = day_start = peak = exposure = 0.0
    marked = False
    for run in runs:
        progress = run.progress or {}
        open_trade = progress.get("open_trade")
        strategies.append(
            strategy_reading(
                run.strategy,
                (trade.pnl for trade in records.trades(run.id)),
                open_positions=1 if open_trade else 0,
            )
        )
        risk = progress.get("risk") or {}
        if "last_equity" in risk:
            marked = True
            equity = float(risk["last_equity"])
            total += equity
            day_start += float(risk.get("day_start_equity", equity))
            peak += _finite(risk.get("peak_equity"), equity)
            exposure += max(equity - _finite(progress.get("cash"), equity), 0.0)
    portfolio = (
        portfolio_reading(total, day_start_value=day_start, peak_value=peak, exposure_usd=exposure)
        if marked
        else None
    )
    return tuple(strategies), portfolio


@dataclass(frozen=True, slots=True)
class StaleHeartbeat:
    """A current bot run whose heartbeat is older than two of its bars."""

    run: BotRunInfo
    heartbeat: datetime
    age: timedelta

    @property
    def message(self) -> str:
        """For the emergency notice."""
        hours = self.age.total_seconds() / 3600
        return (
            f"bot run {self.run.id} ({self.run.strategy} on {self.run.symbol}, "
            f"{self.run.timeframe}): no heartbeat for {hours:.1f} h (since "
            f"{self.heartbeat:%Y-%m-%d %H:%M} UTC), more than two bars"
        )


def stale_heartbeats(database: Database, now: datetime) -> list[StaleHeartbeat]:
    """The current runs whose last heartbeat is older than two bars at ``now``."""
    stale = []
    for run in BotRunRepository(database).current_runs():
        text = (run.progress or {}).get("heartbeat")
        if not text:
            continue
        heartbeat = as_utc(datetime.fromisoformat(str(text)))
        age = as_utc(now) - heartbeat
        if age > timedelta(seconds=2 * timeframe_seconds(run.timeframe)):
            stale.append(StaleHeartbeat(run, heartbeat, age))
    return stale


def _finite(value: object, default: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default
