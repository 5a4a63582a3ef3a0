"""A paper run of several strategies: one run record, one account, one risk book, sleeves.

``MultiRunner(...).run()`` does what :class:`~marketbot.bot.runner.BotRunner` does for one
strategy (the lock, the state file, the run record and ``--fresh``, recovery by client id,
a commit then the state file after each step, SIGINT/SIGTERM) for a
:class:`~marketbot.bot.sleeves.MultiPlan`. The sleeves share one paper exchange (one ledger,
one cash balance), one :class:`~marketbot.bot.sleeve_loop.AccountRiskBook` (the account's
limits and breaker) and the operator's commands. Each step is one bar time of the union of
the sleeves' bars: the commands; the new risk day; each sleeve's bar at the venue, in file
order; the account marked once with every close; a rebalance when one is due; each
sleeve's decision under its capital; one commit of the run's progress (the risk book, the
weights, every sleeve's open trade), then the state file. docs/bot.md ("Several
strategies") describes it.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from marketbot.bot.alerts import AlertManager
from marketbot.bot.lock import BotLock
from marketbot.bot.loop import VENUE_NAME, LoopParts, LoopState
from marketbot.bot.loop_alerts import LoopAlerts
from marketbot.bot.recorder import FillRecorder, LogNotifier, Notifier, OpenTrade
from marketbot.bot.recovery import flag_unknown_positions, resolve_exchange_orders
from marketbot.bot.run_record import archive_ledger, archive_runs, current_and_others
from marketbot.bot.runner import RunOptions, RunSummary
from marketbot.bot.signals import stop_on_signals
from marketbot.bot.sleeve_capital import SleeveCapital
from marketbot.bot.sleeve_commands import SleeveCommands
from marketbot.bot.sleeve_loop import AccountRiskBook, SleeveLoop
from marketbot.bot.sleeves import MultiPlan, Sleeve
from marketbot.bot.state import BotState, PositionState, load_state, reset_state, save_state
from marketbot.core.clock import ManualClock
from marketbot.core.errors import ConfigError
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
class _Account:
    """What the sleeves share, wired once per run."""

    exchange: PaperExchange
    risk: AccountRiskBook
    clock: ManualClock
    records: BotRecordRepository
    recorder: FillRecorder  # the run's own: risk events, flagged positions
    commands: SleeveCommands
    capital: SleeveCapital
    timeouts: OrderTimeoutHandler
    loops: tuple[SleeveLoop, ...]
    marks: dict[str, float]


class MultiRunner:
    """Runs a multi-strategy plan as one paper bot (a replay of stored bars)."""

    def __init__(
        self,
        database: Database,
        plan: MultiPlan,
        options: RunOptions,
        *,
        notifier: Notifier | None = None,
        alerts: AlertManager | None = None,
    ) -> None:
        self.database = database
        self.plan = plan
        self.options = options
        self.notifier = notifier or LogNotifier()
        self.alerts = alerts
        self._stop_signal = False

    @property
    def state_dir(self) -> Path:
        """Where the state file and the lock live."""
        return self.options.data_dir / "state"

    @property
    def ledger_path(self) -> Path:
        """The paper exchange's own ledger (the account every sleeve trades in)."""
        return self.options.data_dir / "paper" / "ledger.db"

    def run(self) -> RunSummary:
        """Run to the end of the plan, or until stopped; return what was done."""
        with BotLock.in_state_dir(self.state_dir), self._signals():
            if self.options.reset_state:
                for path in reset_state(self.state_dir, datetime.now(UTC)):
                    _log.warning("state file set aside: %s", path)
            state = load_state(self.state_dir)
            runs = BotRunRepository(self.database)
            run = self._current_run(runs, state)
            return self._execute(runs, run, state)

    def _current_run(self, runs: BotRunRepository, state: BotState | None) -> BotRunInfo:
        plan = self.plan
        identity = plan.identity()
        current, others = current_and_others(
            runs, plan.strategy_label, plan.symbol_label, fresh=self.options.fresh,
            archives="it and its paper account",
        )  # fmt: skip
        if current is not None and not self.options.fresh:
            if current.config_hash != config_hash(identity):
                raise ConfigError(
                    f"the stored run {current.id} ({current.strategy} on {current.symbol}) was "
                    "started with other strategies, symbols, timeframes, parameters, config "
                    "or START: run with --fresh to archive it and start a new run (and a new "
                    "paper account)"
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
                strategy=plan.strategy_label, symbol=plan.symbol_label,
                timeframe=plan.timeframe_label, source=plan.source_label, mode="paper",
                params={s.key: s.plan.identity()["params"] for s in plan.sleeves},
                config=identity, start=plan.start_time,
            )
        )  # fmt: skip

    def _build(self, run: BotRunInfo, state: BotState | None) -> _Account:
        """The account, the sleeves' loops, and what the venue did while the bot was down."""
        plan = self.plan
        clock = ManualClock(plan.start_time)
        self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        exchange = PaperExchange(self.ledger_path, PaperSettings(plan.account), clock=clock)
        orders = OrderRepository(self.database, clock=clock.now)
        records = BotRecordRepository(self.database)
        marks = _venue_marks(exchange, plan.sleeves)

        def exposure() -> tuple[float, int]:
            held, count = 0.0, 0
            for sleeve in plan.sleeves:
                position = exchange.open_position(sleeve.plan.symbol)
                if position is not None:
                    held += position.units * marks.get(sleeve.plan.symbol, 0.0)
                    count += 1
            return held, count

        risk = AccountRiskBook(plan.account.risk, plan.account.initial_cash, clock, exposure)
        capital = SleeveCapital(
            [s.key for s in plan.sleeves], plan.run_config.rebalance, plan.start_time
        )
        progress = run.progress or {}
        if progress:
            risk.restore(progress["risk"])
            capital.restore(progress["capital"])
        max_slippage = plan.run_config.max_slippage
        verifier = TradeVerifier(0.01 if max_slippage is None else max_slippage, clock=clock)
        recorder = FillRecorder(run, orders, records, verifier, self.notifier)
        commands = SleeveCommands(BotCommandRepository(self.database), risk, plan.symbol_label)
        timeouts = OrderTimeoutHandler({VENUE_NAME: exchange}, clock)
        loops: list[SleeveLoop] = []
        for sleeve in plan.sleeves:
            sleeve_plan = sleeve.plan
            view = replace(
                run, strategy=sleeve_plan.strategy.name, symbol=sleeve_plan.symbol,
                timeframe=sleeve_plan.timeframe, source=sleeve_plan.source,
            )  # fmt: skip
            parts = LoopParts(
                plan=sleeve_plan, run=view, exchange=exchange, orders=orders, records=records,
                risk=risk, clock=clock,
                recorder=FillRecorder(view, orders, records, verifier, self.notifier),
                commands=commands, timeouts=timeouts,
                settings=sleeve_plan.config.kernel_settings(allow_short=False),
                alerts=None if self.alerts is None else LoopAlerts(
                    self.alerts, sleeve_plan.strategy.name, sleeve_plan.symbol,
                    sleeve_plan.timeframe,
                ),
            )  # fmt: skip
            loop_state = _sleeve_state(progress, sleeve.key)
            loop = SleeveLoop(
                parts, loop_state, key=sleeve.key, capital=capital, exposure=exposure,
                marks=marks,
            )  # fmt: skip
            loop_state.open_trade = resolve_exchange_orders(
                exchange, orders, records, parts.recorder, sleeve_plan, view,
                loop_state.open_trade,
            )  # fmt: skip
            loops.append(loop)
        commands.loops = tuple(loops)
        if state is not None:
            held = {
                loop.state.open_trade.entry_client_order_id
                for loop in loops
                if loop.state.open_trade is not None
            }
            for position in state.open_positions:
                if held & {position.position_id, position.entry_client_order_id}:
                    continue
                flag_unknown_positions([position], None, exchange, recorder, clock.now())
        return _Account(
            exchange=exchange, risk=risk, clock=clock, records=records, recorder=recorder,
            commands=commands, capital=capital, timeouts=timeouts, loops=tuple(loops),
            marks=marks,
        )  # fmt: skip

    def _execute(
        self, runs: BotRunRepository, run: BotRunInfo, state: BotState | None
    ) -> RunSummary:
        account = self._build(run, state)
        save_count = 0 if state is None else state.save_count + 1
        steps = self.plan.steps(run.last_bar_time)
        bars = 0
        stopped = False
        for number, (time, members) in enumerate(steps):
            with self.database.batch():  # one commit of the iteration's records
                self._step(account, run, time, members)
                bars += len(members)
                run = runs.save_progress(run.id, time, self._progress(account))
            account.commands.settle()  # only now: a command a kill undid stays pending
            save_state(self.state_dir, self._state(account, time, save_count))
            save_count += 1
            if self._stop_signal or any(loop.state.stop_requested for loop in account.loops):
                stopped = number + 1 < len(steps)
                break
            if self.options.speed > 0:
                self.options.sleep(1.0 / self.options.speed)
        account.exchange.close()
        trades = len(account.records.trades(run.id))
        return RunSummary(run=run, bars=bars, trades=trades, stopped_early=stopped)

    def _step(
        self, account: _Account, run: BotRunInfo, time: datetime, members: list[tuple[int, int]]
    ) -> None:
        """One bar time: every sleeve with a bar there, the account marked once between."""
        loops, risk = account.loops, account.risk
        account.clock.set(time)
        account.commands.apply_pending(loops[0], time)
        risk.open_bar(time)
        shown = [(loops[number], row, loops[number].venue_bar(row)) for number, row in members]
        account.timeouts.poll()
        equity = account.exchange.equity(dict(account.marks))
        risk.mark(equity, time)
        account.recorder.record_risk_events(risk.drain_events())
        if account.capital.due(time):
            event = account.capital.rebalance(time, account.records.trades(run.id), equity)
            account.recorder.record_risk_events([] if event is None else [event])
        for loop, row, bar in shown:
            loop.close_bar(row, bar)
        account.recorder.record_risk_events(risk.drain_events())

    def _progress(self, account: _Account) -> dict[str, Any]:
        denials: dict[str, int] = {}
        sleeves: dict[str, Any] = {}
        for loop in account.loops:
            for limit, count in loop.state.denials.items():
                denials[limit] = denials.get(limit, 0) + count
            sleeves[loop.key] = {
                "open_trade": _trade_json(loop.state.open_trade),
                "denials": dict(loop.state.denials),
            }
        return {
            "risk": account.risk.snapshot(),
            "cash": account.exchange.quote_cash(),
            "capital": account.capital.snapshot(),
            "sleeves": sleeves,
            "paused": any(loop.state.paused for loop in account.loops),
            "denials": denials,
            "heartbeat": datetime.now(UTC).isoformat(),
        }

    def _state(self, account: _Account, bar_time: datetime, count: int) -> BotState:
        exchange = account.exchange
        positions: list[PositionState] = []
        for loop in account.loops:
            trade = loop.state.open_trade
            if trade is None:
                continue
            position = exchange.open_position(loop.symbol)
            positions.append(
                PositionState(
                    position_id=trade.entry_client_order_id,
                    strategy=loop.parts.plan.strategy.name, symbol=loop.symbol,
                    direction="long", size=trade.size, entry_price=trade.entry_price,
                    entry_time=trade.entry_time,
                    extreme_price=None if position is None else position.extreme,
                    entry_client_order_id=trade.entry_client_order_id,
                )
            )  # fmt: skip
        paused = any(loop.state.paused for loop in account.loops)
        names = dict.fromkeys(sleeve.plan.strategy.name for sleeve in self.plan.sleeves)
        return BotState(
            timestamp=datetime.now(UTC), portfolio_value=exchange.equity(dict(account.marks)),
            active_strategies=tuple(names), open_positions=tuple(positions),
            pending_trades=tuple(o.client_order_id for o in exchange.fetch_open_orders()),
            circuit_breaker_active=paused or account.risk.halted(bar_time),
            save_count=count, last_bar_time=bar_time,
        )  # fmt: skip

    def _signals(self) -> AbstractContextManager[None]:
        return stop_on_signals(self._request_stop, "bar")

    def _request_stop(self) -> None:
        self._stop_signal = True


def _venue_marks(exchange: PaperExchange, sleeves: tuple[Sleeve, ...]) -> dict[str, float]:
    """Each symbol's last close the venue saw (a restart marks from there)."""
    marks: dict[str, float] = {}
    for sleeve in sleeves:
        seen = exchange.fetch_ohlcv(sleeve.plan.symbol, sleeve.plan.timeframe)
        if seen:
            marks[sleeve.plan.symbol] = seen[-1].close
    return marks


def _sleeve_state(progress: dict[str, Any], key: str) -> LoopState:
    saved = (progress.get("sleeves") or {}).get(key) or {}
    return LoopState(
        open_trade=_trade_from(saved.get("open_trade")),
        paused=bool(progress.get("paused", False)),
        denials={str(k): int(v) for k, v in (saved.get("denials") or {}).items()},
    )


def _trade_json(trade: OpenTrade | None) -> dict[str, Any] | None:
    """The open trade as the single run's progress stores it."""
    if trade is None:
        return None
    return {
        "entry_client_order_id": trade.entry_client_order_id,
        "entry_time": trade.entry_time.isoformat(),
        "entry_price": trade.entry_price,
        "size": trade.size,
        "entry_fee": trade.entry_fee,
        "tag": trade.tag,
    }


def _trade_from(data: dict[str, Any] | None) -> OpenTrade | None:
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
