"""A paper run on binary markets from start to exit: lock, state, run record, the instants.

``BinaryRunner(...).run()`` takes the bot's lock, loads the state file, finds or starts the
run (a changed strategy, parameter, market, setting or START is refused, naming ``--fresh``),
restores the paper venue from the run's progress and acts on each instant after the last one
saved: a replay's stored events up to END, or live paper's polled books until stopped.
After an instant where something happened (and at the last one), the database is committed
first (progress: the venue's account and waiting orders, the equity marks), then the state
file. SIGINT and SIGTERM stop it once the current instant is saved.
"""

from __future__ import annotations

import logging
import time as wall
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from marketbot.backtest.binary_account import MarketInput
from marketbot.bot.binary_loop import BinaryLoop, no_signals, utc
from marketbot.bot.binary_plan import BinaryPlan
from marketbot.bot.lock import BotLock
from marketbot.bot.run_record import archive_runs, current_and_others
from marketbot.bot.signals import stop_on_signals
from marketbot.bot.state import BotState, PositionState, load_state, reset_state, save_state
from marketbot.core.clock import epoch_ns
from marketbot.core.errors import ConfigError
from marketbot.execution.paper_books import PaperBooks
from marketbot.store.bot import BotRunInfo, BotRunRepository, BotRunSpec, config_hash
from marketbot.store.database import Database

_log = logging.getLogger("marketbot.bot")
HEARTBEAT_SECONDS: Final = 30.0
"""At most this long (wall time) between two saves, even when nothing happened."""


@dataclass(frozen=True)
class BinarySummary:
    """What a run did: instants acted on, trades closed, whether it stopped early."""

    run: BotRunInfo
    instants: int
    trades: int
    stopped_early: bool


Instants = Callable[[BinaryLoop, Callable[[], bool]], Iterable[int]]
"""Yields the instants (UTC ns) to act on; live paper also grows the loop's markets."""


class BinaryRunner:
    """Runs one :class:`BinaryPlan` on the paper venue.

    Args:
        database: The bot's database.
        plan: What to trade.
        data_dir: ``$MARKETBOT_DATA_DIR`` (state/ lives in it).
        fresh: Archive the current run; start a new one.
        reset_state: Set the state files aside first.
        sleep: Waits ``1 / speed`` seconds between instants (replays at a speed).
        speed: Instants per second; 0 never sleeps.
        instants: Live paper's source of instants; None replays the stored events.
    """

    def __init__(  # noqa: PLR0913 - the run options, each with a default
        self,
        database: Database,
        plan: BinaryPlan,
        data_dir: Path,
        *,
        fresh: bool = False,
        reset_state: bool = False,
        sleep: Callable[[float], None] | None = None,
        speed: float = 0.0,
        instants: Instants | None = None,
    ) -> None:
        self.database = database
        self.plan = plan
        self.state_dir = data_dir / "state"
        self.fresh = fresh
        self.reset = reset_state
        self.sleep = sleep
        self.speed = speed
        self.instants = instants
        self._stop_signal = False

    def run(self) -> BinarySummary:
        """Run to END (or until stopped) and say what was done."""
        with BotLock.in_state_dir(self.state_dir), self._signals():
            if self.reset:
                for path in reset_state(self.state_dir, datetime.now(UTC)):
                    _log.warning("state file set aside: %s", path)
            state = load_state(self.state_dir)
            runs = BotRunRepository(self.database)
            run = self._current_run(runs)
            return self._execute(runs, run, 0 if state is None else state.save_count + 1)

    def _current_run(self, runs: BotRunRepository) -> BotRunInfo:
        plan = self.plan
        current, others = current_and_others(
            runs, plan.strategy.name, plan.symbol, fresh=self.fresh, archives="it"
        )
        if current is not None and not self.fresh:
            if current.config_hash != config_hash(plan.identity()) or current.params != (
                plan.params
            ):
                raise ConfigError(
                    f"the stored run {current.id} ({current.strategy} on {current.symbol}) was "
                    "started with other parameters, markets, settings or START: run with "
                    "--fresh to archive it and start a new run"
                )
            return current
        archive_runs(runs, current, others)
        return runs.start_run(
            BotRunSpec(strategy=plan.strategy.name, symbol=plan.symbol, timeframe="events",
                       source="polymarket", mode="paper", params=plan.params,
                       config=plan.identity(), start=plan.start, end=plan.end)
        )  # fmt: skip

    def _venue(self, run: BotRunInfo) -> PaperBooks:
        inputs = [MarketInput.of(market, no_signals(len(market.book)))
                  for market in self.plan.markets.values()]  # fmt: skip
        venue = PaperBooks(inputs, self.plan.config)
        if run.progress:
            venue.restore(run.progress["venue"])
        return venue

    def _execute(self, runs: BotRunRepository, run: BotRunInfo, save_count: int) -> BinarySummary:
        venue = self._venue(run)
        loop = BinaryLoop(self.database, self.plan, run, venue)
        marks = dict((run.progress or {}).get("risk") or {})
        after = None if run.last_bar_time is None else epoch_ns(run.last_bar_time)
        source = self.instants or _replay_instants(self.plan)
        instants = stopped = 0
        last: int | None = None
        saved_at = wall.monotonic()
        for time_ns in source(loop, lambda: self._stop_signal):
            if after is not None and time_ns <= after:
                continue
            changed = loop.act(time_ns)
            instants += 1
            last = time_ns
            # Quiet instants are saved now and then too: the heartbeat `status` shows.
            if changed or self._stop_signal or wall.monotonic() - saved_at >= HEARTBEAT_SECONDS:
                run = self._save(runs, run, loop, marks, time_ns, save_count)
                save_count += 1
                saved_at = wall.monotonic()
            if self._stop_signal:
                stopped = 1
                break
            if self.speed > 0 and self.sleep is not None:
                self.sleep(1.0 / self.speed)
        if last is not None and (run.last_bar_time is None or utc(last) > run.last_bar_time):
            run = self._save(runs, run, loop, marks, last, save_count)
        return BinarySummary(run, instants, loop.trades_closed, bool(stopped))

    def _save(
        self,
        runs: BotRunRepository,
        run: BotRunInfo,
        loop: BinaryLoop,
        marks: dict[str, Any],
        time_ns: int,
        save_count: int,
    ) -> BotRunInfo:
        """The run's progress (one transaction), then the state file."""
        venue = loop.venue
        at = utc(time_ns)
        equity = venue.account.equity(time_ns)
        day = at.date().isoformat()
        if marks.get("day") != day:
            marks["day"] = day
            marks["day_start_equity"] = marks.get("last_equity", self.plan.config.initial_cash)
        marks["last_equity"] = equity
        marks["peak_equity"] = max(float(marks.get("peak_equity", equity)), equity)
        progress = {
            "instrument": "binary",
            "venue": venue.snapshot(),
            "cash": venue.account.cash,
            "risk": marks,
            "denials": {k: v for k, v in venue.account.run.denials.items() if v},
            "heartbeat": datetime.now(UTC).isoformat(),
        }
        run = runs.save_progress(run.id, at, progress)
        save_state(self.state_dir, self._state(loop, equity, at, save_count))
        return run

    def _state(self, loop: BinaryLoop, equity: float, at: datetime, count: int) -> BotState:
        venue, name = loop.venue, self.plan.strategy.name
        positions = []
        for group in venue.account.open.values():
            market = loop.markets[group.market]
            ids = venue.entry_ids.get(group.number, {})
            for leg in group.legs:
                if leg.held <= 0.0:
                    continue
                cid = ids.get(leg.outcome) or f"group-{group.number}-{leg.outcome}"
                positions.append(
                    PositionState(position_id=cid, strategy=name,
                                  symbol=f"{market.slug}:{market.labels[leg.outcome]}",
                                  direction="long", size=leg.held, entry_price=leg.price,
                                  entry_time=utc(group.entry_ns), entry_client_order_id=cid)
                )  # fmt: skip
        return BotState(
            timestamp=datetime.now(UTC), portfolio_value=equity, active_strategies=(name,),
            open_positions=tuple(positions), pending_trades=tuple(venue.pending_ids()),
            save_count=count, last_bar_time=at,
        )  # fmt: skip

    def _signals(self) -> AbstractContextManager[None]:
        return stop_on_signals(self._request_stop, "instant")

    def _request_stop(self) -> None:
        self._stop_signal = True


def _replay_instants(plan: BinaryPlan) -> Instants:
    """Every event of every market and every market's end within START..END, in order."""
    assert plan.end is not None
    first, last = epoch_ns(plan.start), epoch_ns(plan.end)
    parts = [market.times_ns for market in plan.markets.values()]
    parts.append(np.array([m.end_ns for m in plan.markets.values()], dtype=np.int64))
    axis = np.unique(np.concatenate(parts))
    chosen = axis[(axis >= first) & (axis <= last)].tolist()

    def instants(loop: BinaryLoop, stop: Callable[[], bool]) -> Iterable[int]:
        return (int(t) for t in chosen)

    return instants
