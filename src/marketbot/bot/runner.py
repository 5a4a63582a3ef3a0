"""A bot run from start to exit: lock, state, run record, recovery, the bars, a clean stop.

``BotRunner(...).run()`` takes the lock (a second bot is refused, naming its pid), loads the
state file (the backup when it is corrupt), finds or starts the run (a changed strategy,
symbol, timeframe, parameter, config or START is refused, naming ``--fresh``), resolves what
the exchange did with the run's orders while the bot was down, then replays the bars after
the last one acted on. After each bar the database is committed first (the run's progress:
the risk book and the open trade), then the state file. SIGINT and SIGTERM stop it once the
current bar is saved. docs/bot.md and docs/recovery.md describe it.
"""

from __future__ import annotations

import logging
import time as wall
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from marketbot.backtest.step_state_nb import KernelSettings
from marketbot.bot.alerts import AlertManager
from marketbot.bot.commands import CommandHandler
from marketbot.bot.forward import ForwardBars, NewBar
from marketbot.bot.live_venue import LiveVenue
from marketbot.bot.lock import BotLock
from marketbot.bot.loop import VENUE_NAME, BotLoop, LoopParts, LoopState, replay_rows
from marketbot.bot.loop_alerts import LoopAlerts
from marketbot.bot.plan import BotPlan
from marketbot.bot.recorder import FillRecorder, LogNotifier, Notifier, OpenTrade
from marketbot.bot.recovery import flag_unknown_positions, resolve_exchange_orders
from marketbot.bot.risk_book import RiskBook
from marketbot.bot.run_record import archive_ledger, archive_runs, current_and_others
from marketbot.bot.signals import stop_on_signals
from marketbot.bot.state import BotState, PositionState, load_state, reset_state, save_state
from marketbot.bot.venue import Venue
from marketbot.core.clock import ManualClock
from marketbot.core.errors import ConfigError
from marketbot.execution.ccxt_exchange import CcxtExchange
from marketbot.execution.exchange import Exchange
from marketbot.execution.models import OrderType, Ticker
from marketbot.execution.paper import PaperExchange, PaperSettings
from marketbot.execution.timeouts import OrderTimeoutHandler
from marketbot.execution.verifier import TradeVerifier
from marketbot.store.bot import (
    BotCommandRepository,
    BotRecordRepository,
    BotRunInfo,
    BotRunRepository,
    BotRunSpec,
    OrderRepository,
    config_hash,
)
from marketbot.store.database import Database

_log = logging.getLogger("marketbot.bot")


@dataclass(frozen=True)
class RunOptions:
    """How to run: where the data lives, whether to start afresh, how fast to replay.

    Attributes:
        data_dir: ``$MARKETBOT_DATA_DIR`` (state/, paper/, logs/ live in it).
        fresh: Archive the current run and its paper account; start a new one.
        reset_state: Set the state files aside and rebuild from the database and exchange.
        speed: Bars per second; 0 never sleeps.
        sleep: How to wait between bars (injected in tests).
    """

    data_dir: Path
    fresh: bool = False
    reset_state: bool = False
    speed: float = 0.0
    sleep: Callable[[float], None] = wall.sleep


@dataclass(frozen=True)
class LiveSetup:
    """A live run: the exchange (keys loaded, gates passed) and what shutdown cancels.

    Attributes:
        exchange: The ccxt exchange the bot trades on.
        cancel_all_on_exit: ``--cancel-all-on-exit``: also cancel protective orders.
    """

    exchange: CcxtExchange
    cancel_all_on_exit: bool = False


@dataclass(frozen=True)
class RunSummary:
    """What a run did: bars processed, trades closed, and where it stopped."""

    run: BotRunInfo
    bars: int
    trades: int
    stopped_early: bool


class BotRunner:
    """Runs one plan as a paper bot (a replay of stored bars)."""

    def __init__(
        self,
        database: Database,
        plan: BotPlan,
        options: RunOptions,
        *,
        notifier: Notifier | None = None,
        forward: ForwardBars | None = None,
        alerts: AlertManager | None = None,
        live: LiveSetup | None = None,
    ) -> None:
        self.database = database
        self.alerts = alerts
        self.live = live
        self.plan = plan
        self.options = options
        self.notifier = notifier or LogNotifier()
        self.forward = forward
        self._stop_signal = False

    @property
    def state_dir(self) -> Path:
        """Where the state file and the lock live."""
        return self.options.data_dir / "state"

    @property
    def ledger_path(self) -> Path:
        """The paper exchange's own ledger."""
        return self.options.data_dir / "paper" / "ledger.db"

    def run(self) -> RunSummary:
        """Run to the end of the plan, or until stopped; return what was done."""
        with BotLock.in_state_dir(self.state_dir), self._signals():
            now = datetime.now(UTC)
            if self.options.reset_state:
                for path in reset_state(self.state_dir, now):
                    _log.warning("state file set aside: %s", path)
            state = load_state(self.state_dir)
            runs = BotRunRepository(self.database)
            run = self._current_run(runs, state)
            if self.forward is not None:
                self.plan = _forward_resume(self.plan, run)
            return self._execute(runs, run, state)

    def _current_run(self, runs: BotRunRepository, state: BotState | None) -> BotRunInfo:
        plan = self.plan
        current, others = current_and_others(
            runs, plan.strategy.name, plan.symbol, fresh=self.options.fresh,
            archives="it and its paper account",
        )  # fmt: skip
        if current is not None and not self.options.fresh:
            if current.config_hash != config_hash(plan.identity()):
                raise ConfigError(
                    f"the stored run {current.id} ({current.strategy} on {current.symbol}, "
                    f"{current.timeframe}) was started with another strategy, symbol, "
                    "timeframe, parameters, config or START: run with --fresh to archive it "
                    "and start a new run (and a new paper account)"
                )
            return current
        if state is not None and current is None and state.open_positions:
            raise ConfigError(
                f"the state file in {self.state_dir} holds another run's positions: start "
                "with --reset-state to rebuild it from the database, or --fresh"
            )
        archive_runs(runs, current, others)
        archive_ledger(self.ledger_path)
        return runs.start_run(
            BotRunSpec(
                strategy=plan.strategy.name, symbol=plan.symbol, timeframe=plan.timeframe,
                source=plan.source, mode="paper" if self.live is None else "live",
                params=plan.identity()["params"],
                config=plan.identity(), start=_start_time(plan),
            )
        )  # fmt: skip

    def _events(self, run: BotRunInfo, loop: BotLoop) -> Iterator[NewBar | Ticker]:
        """A replay's stored bars; or a forward run's bars as they close, tickers between."""
        if self.forward is None:
            for row in replay_rows(self.plan, run.last_bar_time):
                yield NewBar(self.plan, row, latest=True)
            return
        yield from self.forward.events(
            self.plan, lambda: loop.state.stop_requested or self._stop_signal
        )

    def _build_loop(self, run: BotRunInfo, state: BotState | None) -> BotLoop:
        """The loop's parts on the run's paper account, with what the venue did while down."""
        plan = self.plan
        settings = plan.config.kernel_settings(allow_short=False)
        clock = ManualClock(plan.bar_times[plan.first].to_pydatetime())
        exchange, timed = self._venue(plan, settings, clock)
        orders = OrderRepository(self.database, clock=clock.now)
        records = BotRecordRepository(self.database)
        # Live, the account is what the exchange holds, not the configured starting cash.
        start_cash = plan.config.initial_cash if self.live is None else exchange.quote_cash()
        risk = RiskBook(plan.config.risk, start_cash, clock)
        recorder = FillRecorder(
            run, orders, records, TradeVerifier(_max_slippage(plan), clock=clock), self.notifier
        )
        loop_state = LoopState()
        if run.progress:
            risk.restore(run.progress["risk"])
            loop_state.open_trade = _open_trade(run.progress.get("open_trade"))
            loop_state.paused = bool(run.progress.get("paused", False))
        parts = LoopParts(
            plan=plan, run=run, exchange=exchange, orders=orders, records=records, risk=risk,
            clock=clock, recorder=recorder,
            commands=CommandHandler(BotCommandRepository(self.database), risk, plan.symbol),
            timeouts=OrderTimeoutHandler({VENUE_NAME: timed}, clock), settings=settings,
            alerts=None if self.alerts is None else LoopAlerts(
                self.alerts, plan.strategy.name, plan.symbol, plan.timeframe
            ),
        )  # fmt: skip
        loop = BotLoop(parts, loop_state)
        if isinstance(exchange, LiveVenue):
            exchange.recover_position()  # the exchange's truth first, then the database's
        loop_state.open_trade = resolve_exchange_orders(
            exchange, orders, records, recorder, plan, run, loop_state.open_trade
        )
        if state is not None:
            flag_unknown_positions(
                state.open_positions, loop_state.open_trade, exchange, recorder, clock.now()
            )
        if isinstance(exchange, LiveVenue):
            exchange.hold(loop_state.open_trade)
        return loop

    def _venue(
        self, plan: BotPlan, settings: KernelSettings, clock: ManualClock
    ) -> tuple[Venue, Exchange]:
        """The paper exchange (its own ledger), or the live venue; and who times orders out."""
        if self.live is not None:
            venue = LiveVenue(
                self.live.exchange, plan.symbol, settings, clock,
                stop_on_exchange=plan.run_config.stop_on_exchange,
            )  # fmt: skip
            return venue, self.live.exchange
        self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        paper = PaperExchange(self.ledger_path, PaperSettings(plan.config), clock=clock)
        return paper, paper

    def _execute(
        self, runs: BotRunRepository, run: BotRunInfo, state: BotState | None
    ) -> RunSummary:
        loop = self._build_loop(run, state)
        parts, loop_state = loop.parts, loop.state
        exchange, risk, plan = parts.exchange, parts.risk, self.plan
        save_count = 0 if state is None else state.save_count + 1
        bars = 0
        stopped = False
        bar_time = run.last_bar_time
        last_row = -1
        for event in self._events(run, loop):
            with self.database.batch():  # one commit of the iteration's records
                if isinstance(event, NewBar):
                    if event.plan is not loop.parts.plan:
                        loop.extend(event.plan)
                        self.plan = event.plan
                    loop.run_bar(event.row, decide=event.latest)
                    if self.forward is not None and _market_orders_open(exchange, plan.symbol):
                        loop.on_ticker(self.forward.feed.ticker())  # forward: at the ticker
                    bars += 1
                    bar_time = self.plan.bar_times[event.row].to_pydatetime()
                    last_row = event.row
                else:
                    loop.on_ticker(event)
                if bar_time is None:  # a ticker before any bar: nothing to save against yet
                    continue
                progress = _progress(risk, loop_state, exchange.quote_cash())
                run = runs.save_progress(run.id, bar_time, progress)
            parts.commands.settle()  # only now: a command a kill undid stays pending
            state_now = self._state(exchange, loop_state, risk, bar_time, save_count)
            save_state(self.state_dir, state_now)
            save_count += 1
            if loop_state.stop_requested or self._stop_signal:
                stopped = self.forward is not None or last_row + 1 < len(self.plan.frame)
                break
            if self.options.speed > 0 and isinstance(event, NewBar):
                self.options.sleep(1.0 / self.options.speed)
        if isinstance(exchange, LiveVenue):
            self._shut_down_live(exchange)
        exchange.close()
        trades = len(parts.records.trades(run.id))
        return RunSummary(run=run, bars=bars, trades=trades, stopped_early=stopped)

    def _shut_down_live(self, venue: LiveVenue) -> None:
        """Cancel the bot's open entry orders (priority 1); protective exits stay the bot's."""
        assert self.live is not None
        for cid in venue.cancel_open_entries():
            _log.warning("shutdown: canceled open entry %s", cid)
        if self.live.cancel_all_on_exit:
            canceled = venue.cancel_resting_stop()
            if canceled is not None:
                _log.warning("shutdown: canceled the resting stop %s", canceled)

    def _state(
        self,
        exchange: Venue,
        loop_state: LoopState,
        risk: RiskBook,
        bar_time: datetime,
        count: int,
    ) -> BotState:
        plan = self.plan
        close = float(plan.frame["close"].loc[bar_time])  # the bar's; a ticker marks equity
        trade = loop_state.open_trade
        positions: tuple[PositionState, ...] = ()
        if trade is not None:
            position = exchange.open_position(plan.symbol)
            positions = (
                PositionState(
                    position_id=trade.entry_client_order_id, strategy=plan.strategy.name,
                    symbol=plan.symbol, direction="long", size=trade.size,
                    entry_price=trade.entry_price, entry_time=trade.entry_time,
                    extreme_price=None if position is None else position.extreme,
                    entry_client_order_id=trade.entry_client_order_id,
                ),
            )  # fmt: skip
        pending = tuple(order.client_order_id for order in exchange.fetch_open_orders(plan.symbol))
        return BotState(
            timestamp=datetime.now(UTC), portfolio_value=exchange.equity({plan.symbol: close}),
            active_strategies=(plan.strategy.name,), open_positions=positions,
            pending_trades=pending,
            circuit_breaker_active=loop_state.paused or risk.halted(bar_time),
            save_count=count, last_bar_time=bar_time,
        )  # fmt: skip

    def _signals(self) -> AbstractContextManager[None]:
        return stop_on_signals(self._request_stop, "bar")

    def _request_stop(self) -> None:
        self._stop_signal = True


def _progress(risk: RiskBook, loop_state: LoopState, cash: float) -> dict[str, Any]:
    trade = loop_state.open_trade
    return {
        "risk": risk.snapshot(),
        "cash": cash,
        "open_trade": None
        if trade is None
        else {
            "entry_client_order_id": trade.entry_client_order_id,
            "entry_time": trade.entry_time.isoformat(),
            "entry_price": trade.entry_price,
            "size": trade.size,
            "entry_fee": trade.entry_fee,
            "tag": trade.tag,
        },
        "paused": loop_state.paused,
        "denials": dict(loop_state.denials),
        "heartbeat": datetime.now(UTC).isoformat(),
    }


def _open_trade(data: dict[str, Any] | None) -> OpenTrade | None:
    if not data:
        return None
    return OpenTrade(
        entry_client_order_id=str(data["entry_client_order_id"]),
        entry_time=datetime.fromisoformat(str(data["entry_time"])),
        entry_price=float(data["entry_price"]),
        size=float(data["size"]),
        entry_fee=float(data["entry_fee"]),
        tag=data.get("tag"),
    )


def _market_orders_open(exchange: Venue, symbol: str) -> bool:
    return any(o.type is OrderType.MARKET for o in exchange.fetch_open_orders(symbol))


def _forward_resume(plan: BotPlan, run: BotRunInfo) -> BotPlan:
    """A forward run restarted: show the venue the bars that closed since the last one acted on.

    They signal nothing (only the latest closed bar may enter); with no stored bar, trading
    starts at the latest closed bar.
    """
    if run.last_bar_time is None:
        return plan
    after = int(plan.bar_times.searchsorted(run.last_bar_time, side="right"))
    return replace(plan, first=min(after, len(plan.frame) - 1))


def _start_time(plan: BotPlan) -> datetime:
    return plan.bar_times[plan.first].to_pydatetime()


def _max_slippage(plan: BotPlan) -> float:
    value = plan.run_config.max_slippage
    return 0.01 if value is None else float(value)
