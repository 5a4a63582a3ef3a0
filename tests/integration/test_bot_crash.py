"""The paper bot, SIGKILLed again and again, ends exactly where an uninterrupted run ends.

Everything goes through the real console script on real files: three data directories get
the same stored daily BTC and replay the acceptance configuration over the same window.

- *uninterrupted*: one ``marketbot run --replay`` to the end;
- *killed A* and *killed B*: the same run SIGKILLed 11 times each, each kill followed by a
  restart with the same command (a restart resumes after the run's ``last_bar_time``): A
  first while Python starts (before the lock), B first the moment it holds the lock (before
  or just after the run record is committed), then 10 times each at seeded random delays, a
  quarter of them from the start of the process (during start-up) and the rest from the
  moment it took the lock (recovery and the replay); then each runs to the end;
- *faulted*: the same run killed by each fault point in turn (``MARKETBOT_TESTING=1``,
  ``MARKETBOT_FAULT_POINT=NAME:N``, N chosen so that it fires mid-replay), each kill followed
  by the next restart, and a last restart to the end.

After every kill no client order id occurs twice in the paper ledger's ``paper_orders`` or
in the bot's ``orders``; at the end ``status --json`` of both interrupted runs shows the
uninterrupted run's trades (times, reasons; prices, sizes, P&L and fees to 1e-9), open
position, orders, cash and equity. The three directories run side by side (threads waiting
on child processes): the kills cost mostly process start-ups (about 2 s of CPU each), and two
kill chains side by side keep the test near a minute on two idle cores.

The window is 2018-01-01..2019-01-09 (374 daily bars): 5 closed trades (2 stop_loss,
2 trailing_stop, 1 signal) and a position entered on 2019-01-08, still open at the end.
"""

from __future__ import annotations

import math
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.bot_process import (
    BotDir,
    duplicates,
    import_daily_btc,
    kill_after,
    stop,
    wait_for_lock,
)

START, END = "2018-01-01", "2019-01-09"
SEED = 20180425
RANDOM_KILLS = 20
# A quarter of the random kills hit the start-up (imports, the plan, the lock, recovery), the
# rest recovery and the replay (the lock is the origin of their delay, so start-up time does
# not matter; kill_chain scales them to the replay's pace).
STARTUP_SHARE = 0.25
STARTUP_SECONDS = 2.0
MAX_DELAY_AFTER_LOCK = 1.5
# A state-file point fires at every save (one per bar), an order point at every order sent:
# each N lands mid-replay, and the chain resumes between them.
FAULT_SPECS = (
    "after_temp_write:60",
    "after_intent_commit:1",
    "after_fsync:60",
    "after_send:1",
    "after_rename:60",
)
KILLED = -signal.SIGKILL


@dataclass(frozen=True)
class Kill:
    """One kill of the chain: when, and what the process had reached."""

    delay: str
    exit_code: int
    held_lock: bool
    run_stored: bool
    bars_before: str | None
    bars_after: str | None

    @property
    def stage(self) -> str:
        if self.exit_code != KILLED:
            return "finished before the kill"
        if not self.held_lock:
            return "starting (before the lock)"
        if not self.run_stored:
            return "holding the lock, before the run record"
        if self.bars_before == self.bars_after:
            return "holding the lock, no bar saved"
        return "replaying"

    @property
    def bars_saved(self) -> int:
        return days_between(self.bars_before, self.bars_after)


def days_between(earlier: str | None, later: str | None) -> int:
    """Daily bars from one stored ``last_bar_time`` to another (None: before START)."""
    first = date.fromisoformat(START) - timedelta(days=1)
    since = first if earlier is None else date.fromisoformat(earlier[:10])
    until = first if later is None else date.fromisoformat(later[:10])
    return (until - since).days


@pytest.fixture(scope="module")
def daily_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_daily_btc(tmp_path_factory.mktemp("daily_btc"))


def bot_dir(root: Path, database: Path) -> BotDir:
    return BotDir.with_database(root, database, start=START, end=END)


def assert_no_client_id_twice(bot: BotDir) -> None:
    assert duplicates(bot.ledger_client_ids()) == [], "paper_orders holds a client id twice"
    assert duplicates(bot.bot_client_ids()) == [], "orders holds a client id twice"


def kill_once(bot: BotDir, delay: float, *, from_lock: bool) -> Kill:
    before = bot.last_bar_time()
    child = bot.spawn()
    try:
        if from_lock:
            wait_for_lock(bot, child)
        code = kill_after(child, delay)
    finally:
        stop(child)
    assert code in (KILLED, 0), bot.last_log()
    assert_no_client_id_twice(bot)
    label = f"{delay:.2f} s after the {'lock' if from_lock else 'start'}"
    held = bot.lock_holder() == child.pid
    return Kill(label, code, held, bot.run_count() > 0, before, bot.last_bar_time())


def kill_chain(bot: BotDir, seed: int, first: Kill) -> list[Kill]:
    """A first kill at a fixed moment, then RANDOM_KILLS // 2 at seeded random delays, each
    followed by a restart; the last restart runs to the end.

    A delay from the lock is a seeded fraction of a budget that spreads the kills over the
    bars still to replay at the pace seen so far (at most MAX_DELAY_AFTER_LOCK): on a quiet
    disk a bar takes 3 ms, in a busy spell 40 ms, and fixed delays would let a fast replay
    finish after a few kills.
    """
    kills = [first]
    rng = random.Random(seed)
    replaying_seconds, bars_saved = 0.0, 0
    chances = RANDOM_KILLS // 2
    for chance in range(chances):
        if rng.random() < STARTUP_SHARE:
            kills.append(kill_once(bot, rng.uniform(0.05, STARTUP_SECONDS), from_lock=False))
            continue
        seconds_per_bar = replaying_seconds / bars_saved if bars_saved else 0.01
        left = days_between(bot.last_bar_time(), END)
        budget = 0.2 + 2 * seconds_per_bar * left / (chances - chance)
        delay = rng.random() * min(budget, MAX_DELAY_AFTER_LOCK)
        kills.append(kill_once(bot, delay, from_lock=True))
        if kills[-1].bars_saved:
            replaying_seconds, bars_saved = (
                replaying_seconds + delay,
                bars_saved + kills[-1].bars_saved,
            )
    assert bot.run() == 0, bot.last_log()
    return kills


def killed_while_starting(bot: BotDir) -> list[Kill]:
    """Chain A: the first kill while Python starts, before the lock."""
    first = kill_once(bot, 0.05, from_lock=False)
    assert first.stage == "starting (before the lock)"
    assert bot.run_count() == 0
    return kill_chain(bot, SEED, first)


def killed_at_the_lock(bot: BotDir) -> list[Kill]:
    """Chain B: the first kill the moment the bot holds the lock, before or just after the
    run record is committed."""
    first = kill_once(bot, 0.0, from_lock=True)
    return kill_chain(bot, SEED + 1, first)


def fault_chain(bot: BotDir) -> list[str | None]:
    """A run killed at each fault point in turn, each followed by a restart."""
    reached = []
    for spec in FAULT_SPECS:
        code = bot.run(env={"MARKETBOT_TESTING": "1", "MARKETBOT_FAULT_POINT": spec})
        assert code == KILLED, f"{spec} did not fire (exit {code}):\n{bot.last_log()}"
        assert_no_client_id_twice(bot)
        reached.append(bot.last_bar_time())
    assert bot.run() == 0, bot.last_log()
    return reached


def assert_same_outcome(expected: dict[str, Any], got: dict[str, Any]) -> None:
    assert got["last_bar_time"] == expected["last_bar_time"]
    assert len(got["trades"]) == len(expected["trades"])
    for mine, theirs in zip(got["trades"], expected["trades"], strict=True):
        for key in ("entry_time", "exit_time", "exit_reason", "direction", "tag"):
            assert mine[key] == theirs[key], key
        for key in ("entry_price", "exit_price", "size", "pnl", "pnl_pct", "fees"):
            assert math.isclose(mine[key], theirs[key], rel_tol=1e-9, abs_tol=1e-9), key
    assert [_position(p) for p in got["open_positions"]] == [
        _position(p) for p in expected["open_positions"]
    ]
    for key in ("cash", "equity", "peak_equity"):
        assert math.isclose(got[key], expected[key], rel_tol=1e-9), key
    assert [_order(o) for o in got["orders"]] == [_order(o) for o in expected["orders"]]


def _position(position: dict[str, Any]) -> tuple[Any, ...]:
    return (
        position["symbol"],
        position["side"],
        position["entry_time"],
        round(position["entry_price"], 6),
        round(position["size"], 12),
    )


def _order(order: dict[str, Any]) -> tuple[Any, ...]:
    # Client ids differ between runs (each run has its own random run id); all else agrees.
    average = order["average_price"]
    return (
        order["intent"],
        order["side"],
        order["type"],
        order["status"],
        round(order["filled"], 12),
        None if average is None else round(average, 6),
        order["bar_time"],
    )


@pytest.mark.slow
def test_replay_when_killed_22_times_and_at_each_fault_point_ends_as_if_uninterrupted(
    tmp_path: Path, daily_database: Path
) -> None:
    began = time.perf_counter()
    uninterrupted = bot_dir(tmp_path / "uninterrupted", daily_database)

    chain_a = bot_dir(tmp_path / "killed_a", daily_database)
    chain_b = bot_dir(tmp_path / "killed_b", daily_database)
    faulted = bot_dir(tmp_path / "faulted", daily_database)

    with ThreadPoolExecutor(max_workers=4) as pool:
        clean = pool.submit(uninterrupted.run)
        kills_a = pool.submit(killed_while_starting, chain_a)
        kills_b = pool.submit(killed_at_the_lock, chain_b)
        faults_done = pool.submit(fault_chain, faulted)
        assert clean.result() == 0, uninterrupted.last_log()
        kills = kills_a.result() + kills_b.result()
        fault_bars = faults_done.result()

    expected = uninterrupted.status()
    reasons = [trade["exit_reason"] for trade in expected["trades"]]
    assert reasons == ["stop_loss", "trailing_stop", "trailing_stop", "stop_loss", "signal"]
    assert len(expected["open_positions"]) == 1
    assert_no_client_id_twice(uninterrupted)
    for bot in (chain_a, chain_b, faulted):
        assert_no_client_id_twice(bot)
        assert_same_outcome(expected, bot.status())
    stages = [kill.stage for kill in kills]
    assert len(kills) == 2 + RANDOM_KILLS
    assert stages.count("replaying") >= RANDOM_KILLS // 4, stages
    assert len(set(fault_bars)) == len(FAULT_SPECS), fault_bars  # each fired at another bar
    print(  # shown with -s: what the kills hit, and how long it all took
        f"\n{time.perf_counter() - began:.1f} s; kills: "
        + ", ".join(f"{stage} x{stages.count(stage)}" for stage in sorted(set(stages)))
        + f"; fault points fired after bars {fault_bars}"
    )
