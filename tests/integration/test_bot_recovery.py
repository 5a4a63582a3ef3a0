"""What a restarted bot does with what a crash left: intents, orders, state files, the lock,
and the operator's commands.

Each test replays the acceptance configuration over stored daily BTC from 2018-09-01, whose
decisions are few and known: an entry at the 2018-09-04 close (stopped out on the 2018-09-05
bar), an entry at the 2018-09-28 close (filled at the 2018-09-29 open) and a signal exit at
the 2018-10-02 close (filled at the 2018-10-03 open). Runs that must die are child processes
of the real console script (a fault point SIGKILLs them); the others run in this process.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from marketbot.bot import StatePaths, load_state
from tests.support.bot_process import (
    STRATEGY_ARGS,
    BotDir,
    copy_database,
    duplicates,
    import_daily_btc,
    stop,
    wait_for_lock,
    wait_until,
)

START, END = "2018-09-01", "2018-10-10"
KILLED = -signal.SIGKILL
SLIPPAGE = 0.001  # the acceptance configuration's (the default)


@pytest.fixture(scope="module")
def daily_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_daily_btc(tmp_path_factory.mktemp("daily_btc"))


@pytest.fixture(scope="module")
def expected(daily_database: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``backtest --json`` of the window: what every recovered replay must end with."""
    bot = BotDir.with_database(tmp_path_factory.mktemp("backtest"), daily_database)
    code, out, err = bot.cli(
        "backtest", *STRATEGY_ARGS, "--config", str(bot.config_file),
        "--start", START, "--end", END, "--json",
    )  # fmt: skip
    assert code == 0, err
    result = dict(json.loads(out))
    assert [t["exit_reason"] for t in result["trades"]] == ["stop_loss", "signal"]
    return result


@pytest.fixture
def bot(tmp_path: Path, daily_database: Path) -> BotDir:
    return BotDir.with_database(tmp_path, daily_database, start=START, end=END)


def replay(bot: BotDir, end: str = END, *extra: str) -> str:
    """``marketbot run`` in this process, to END; returns its stderr (the bot's log)."""
    bot.end = end
    code, _, err = bot.cli(*bot.run_args(*extra))
    assert code == 0, err
    return err


def assert_trades_as_backtest(bot: BotDir, expected: dict[str, Any]) -> None:
    status = bot.status()
    got, theirs = status["trades"], expected["trades"]
    assert [(t["entry_time"], t["exit_time"], t["exit_reason"]) for t in got] == [
        (t["entry_time"], t["exit_time"], t["exit_reason"]) for t in theirs
    ]
    for mine, their in zip(got, theirs, strict=True):
        for key in ("entry_price", "exit_price", "size", "pnl", "fees"):
            assert math.isclose(mine[key], their[key], rel_tol=1e-9, abs_tol=1e-9), key
    assert status["last_bar_time"].startswith(END)
    assert_each_client_id_once(bot)


def assert_each_client_id_once(bot: BotDir) -> None:
    assert duplicates(bot.ledger_client_ids()) == []
    assert duplicates(bot.bot_client_ids()) == []


def order_rows(bot: BotDir) -> list[tuple[str, str, str, bool]]:
    """(client id, intent, status, sent) of the bot's orders."""
    with sqlite3.connect(bot.database) as connection:
        rows = connection.execute(
            "SELECT client_order_id, intent, status, sent_at IS NOT NULL FROM orders ORDER BY id"
        ).fetchall()
    return [(str(cid), str(intent), str(status), bool(sent)) for cid, intent, status, sent in rows]


def run_until_fault(bot: BotDir, spec: str) -> None:
    code = bot.run(env={"MARKETBOT_TESTING": "1", "MARKETBOT_FAULT_POINT": spec})
    assert code == KILLED, f"{spec} did not fire (exit {code}):\n{bot.last_log()}"


# -- END may grow -------------------------------------------------------------------------------


@pytest.mark.slow
def test_replay_when_end_grows_past_a_close_that_decided_an_entry_still_makes_it(
    bot: BotDir, expected: dict[str, Any]
) -> None:
    replay(bot, "2018-09-28")  # the entry signal is on at this close, END's last bar
    assert bot.orders()[-1] == ("entry", "buy", "open", "2018-09-28")  # waits at the venue

    replay(bot)

    assert_trades_as_backtest(bot, expected)


# -- orders a crash left half done ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("nth", "intent"), [(1, "entry"), (3, "exit")])
def test_restart_when_killed_after_the_intent_commit_sends_it_under_its_id(
    bot: BotDir, expected: dict[str, Any], nth: int, intent: str
) -> None:
    run_until_fault(bot, f"after_intent_commit:{nth}")
    client_id, stored_intent, status, sent = order_rows(bot)[-1]
    assert (stored_intent, status, sent) == (intent, "intent", False)
    assert client_id not in bot.ledger_client_ids()

    replay(bot)

    assert bot.ledger_client_ids().count(client_id) == 1
    assert [row for row in order_rows(bot) if row[0] == client_id] == [
        (client_id, intent, "closed", True)
    ]
    assert_trades_as_backtest(bot, expected)


@pytest.mark.slow
@pytest.mark.parametrize(("nth", "intent"), [(1, "entry"), (3, "exit")])
def test_restart_when_killed_after_the_send_resolves_the_order_by_client_id_once(
    bot: BotDir, expected: dict[str, Any], nth: int, intent: str
) -> None:
    run_until_fault(bot, f"after_send:{nth}")
    client_id, stored_intent, status, sent = order_rows(bot)[-1]
    assert (stored_intent, status, sent) == (intent, "intent", False)
    assert bot.ledger_client_ids().count(client_id) == 1  # the venue has it

    log = replay(bot)

    assert f"recovered {client_id}" in log
    assert bot.ledger_client_ids().count(client_id) == 1  # not sent twice
    assert [row for row in order_rows(bot) if row[0] == client_id] == [
        (client_id, intent, "closed", True)
    ]
    assert_trades_as_backtest(bot, expected)


@pytest.mark.slow
def test_restart_when_the_venue_filled_an_entry_the_database_missed_adopts_its_bracket(
    bot: BotDir, expected: dict[str, Any]
) -> None:
    # The files a kill leaves right after the venue committed the 2018-09-29 bar (the entry
    # filled, its bracket attached) and before the bot recorded it: the database and the
    # state files of the 2018-09-28 close, the ledger of the 2018-09-29 open.
    replay(bot, "2018-09-28")
    saved = bot.root / "saved"
    saved.mkdir()
    copy_database(bot.database, saved / "marketbot.db")
    shutil.copytree(bot.data_dir / "state", saved / "state")
    replay(bot, "2018-09-29")
    entry, protect = order_rows(bot)[-2:]
    assert (entry[1:], protect[1:]) == (("entry", "closed", True), ("protect", "open", True))
    copy_database(saved / "marketbot.db", bot.database)
    for name in ("bot_state.json", "bot_state.backup.json"):
        shutil.copy2(saved / "state" / name, bot.data_dir / "state" / name)
    assert protect[0] not in [row[0] for row in order_rows(bot)]

    log = replay(bot)

    assert f"recovered {entry[0]}" in log
    assert f"recovered {protect[0]}" in log
    assert [row[1:] for row in order_rows(bot) if row[0] in (entry[0], protect[0])] == [
        ("entry", "closed", True),
        ("protect", "canceled", True),  # the signal exit took the bracket off
    ]
    assert_trades_as_backtest(bot, expected)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("before", "fill_day", "intent"),
    [("2018-09-28", "2018-09-29", "entry"), ("2018-10-02", "2018-10-03", "exit")],
)
def test_restart_when_a_fill_was_stored_but_not_its_bar_rebuilds_the_round_trip(
    bot: BotDir, expected: dict[str, Any], before: str, fill_day: str, intent: str
) -> None:
    # The files a kill leaves right after a fill's order row is committed: what the rest of
    # the bar writes (the verification, the trade row or the bracket it adopts, the run's
    # progress and last_bar_time, the state files) is missing, the order row says filled.
    replay(bot, before)
    saved = bot.root / "saved"
    saved.mkdir()
    copy_database(bot.database, saved / "marketbot.db")
    shutil.copytree(bot.data_dir / "state", saved / "state")
    replay(bot, fill_day)
    client_id = [row[0] for row in order_rows(bot) if row[1] == intent][-1]
    with sqlite3.connect(saved / "marketbot.db") as old:
        progress, last_bar = old.execute("SELECT progress, last_bar_time FROM bot_runs").fetchone()
    with sqlite3.connect(bot.database) as db:
        db.execute("UPDATE bot_runs SET progress = ?, last_bar_time = ?", (progress, last_bar))
        db.execute("DELETE FROM verifications WHERE client_order_id = ?", (client_id,))
        db.execute("DELETE FROM trades WHERE exit_client_order_id = ?", (client_id,))
        later = "SELECT id FROM orders WHERE intent = 'protect' AND bar_time >= ?"
        for (order_id,) in db.execute(later, (f"{fill_day} 00:00:00.000000",)).fetchall():
            db.execute("DELETE FROM order_events WHERE order_id = ?", (order_id,))
            db.execute("DELETE FROM orders WHERE id = ?", (order_id,))
    for name in ("bot_state.json", "bot_state.backup.json"):
        shutil.copy2(saved / "state" / name, bot.data_dir / "state" / name)

    replay(bot)

    assert_trades_as_backtest(bot, expected)


# -- the state files ----------------------------------------------------------------------------


@pytest.mark.slow
def test_restart_when_the_state_file_is_corrupt_uses_the_backup(
    bot: BotDir, expected: dict[str, Any]
) -> None:
    replay(bot, "2018-09-30")
    paths = StatePaths.in_data_dir(bot.data_dir)
    paths.main.write_bytes(b'{"torn": ')

    log = replay(bot)

    assert f"state file {paths.main} corrupt, using backup {paths.backup}" in log
    state = load_state(paths.state_dir)
    assert state is not None and state.last_bar_time is not None
    assert state.last_bar_time.date().isoformat() == END
    assert_trades_as_backtest(bot, expected)


@pytest.mark.slow
def test_restart_when_both_state_files_are_corrupt_names_both_until_reset_state(
    bot: BotDir, expected: dict[str, Any]
) -> None:
    replay(bot, "2018-09-30")  # a position is open (entered at the 2018-09-29 open)
    paths = StatePaths.in_data_dir(bot.data_dir)
    paths.main.write_bytes(b"\x00" * 64)
    paths.backup.write_text("[]")
    before = bot.last_bar_time()

    bot.end = END
    code, _, err = bot.cli(*bot.run_args())

    assert code == 1
    assert str(paths.main) in err and str(paths.backup) in err
    assert "--reset-state" in err
    assert bot.last_bar_time() == before

    log = replay(bot, END, "--reset-state")

    assert "state file set aside" in log
    assert len(list(paths.state_dir.glob("bot_state.reset-*.json"))) == 1
    assert len(list(paths.state_dir.glob("bot_state.backup.reset-*.json"))) == 1
    assert load_state(paths.state_dir) is not None
    assert_trades_as_backtest(bot, expected)


# -- the lock -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_second_bot_when_the_lock_is_held_by_a_live_one_is_refused_naming_its_pid(
    bot: BotDir,
) -> None:
    running = bot.spawn("--speed", "2")
    try:
        wait_for_lock(bot, running)

        code, _, err = bot.cli(*bot.run_args())

        assert code == 1
        assert f"another bot is running (pid {running.pid})" in err
        assert running.poll() is None
    finally:
        stop(running)


# -- operator commands --------------------------------------------------------------------------


@pytest.mark.slow
def test_bot_stop_when_queued_stops_after_the_next_bar_and_the_run_resumes_later(
    bot: BotDir, expected: dict[str, Any]
) -> None:
    running = bot.spawn("--speed", "10")
    try:
        wait_until(lambda: bot.last_bar_time() is not None, running)
        code, _, err = bot.cli("bot", "stop", "--reason", "drill")
        assert code == 0, err
        assert running.wait(timeout=60) == 0
    finally:
        stop(running)
    assert "stopped: run 1" in bot.last_log()
    assert bot.commands() == [("stop", "acknowledged", "stopping after this bar")]
    stopped_at = bot.last_bar_time()
    assert stopped_at is not None and stopped_at < END

    replay(bot)

    assert_trades_as_backtest(bot, expected)


@pytest.mark.slow
def test_bot_force_exit_when_holding_exits_at_the_next_open_labelled_force_exit(
    bot: BotDir,
) -> None:
    replay(bot, "2018-09-30")  # holding since the 2018-09-29 open
    code, _, err = bot.cli("bot", "force-exit", "bitcoin", "--reason", "drill")
    assert code == 0, err

    # Acknowledged at the next iteration (the 2018-10-01 bar, at its open time), filled at
    # that open: the first open after the command.
    replay(bot)

    assert bot.commands() == [
        ("force_exit", "acknowledged", "exit of bitcoin sent for the next open")
    ]
    (_, trade) = bot.status()["trades"]
    assert (trade["entry_time"], trade["exit_time"], trade["exit_reason"]) == (
        "2018-09-29T00:00:00Z", "2018-10-01T00:00:00Z", "force_exit",
    )  # fmt: skip
    with sqlite3.connect(bot.ledger) as ledger:
        (open_price,) = ledger.execute(
            "SELECT open FROM paper_bars WHERE time LIKE '2018-10-01%'"
        ).fetchone()
    assert math.isclose(trade["exit_price"], open_price * (1 - SLIPPAGE), rel_tol=1e-12)
    assert [o[0] for o in bot.orders()].count("exit") == 0  # no signal exit: flat by then
    assert_each_client_id_once(bot)


@pytest.mark.slow
def test_risk_halt_when_queued_blocks_entries_until_risk_resume(bot: BotDir) -> None:
    assert bot.cli("risk", "halt", "--reason", "drill")[0] == 0

    replay(bot, "2018-09-10")  # the 2018-09-04 entry signal comes and goes

    status = bot.status()
    assert status["circuit_breaker_active"] is True
    assert status["circuit_breaker"]["override"]["mode"] == "halt"
    assert status["trades"] == [] and bot.orders() == []
    assert ("entry_denied", "2018-09-04") in bot.risk_events()

    assert bot.cli("risk", "resume", "--reason", "drill")[0] == 0
    replay(bot)

    status = bot.status()
    assert status["circuit_breaker_active"] is False
    assert [(t["entry_time"], t["exit_reason"]) for t in status["trades"]] == [
        ("2018-09-29T00:00:00Z", "signal")
    ]
    assert [kind for kind, _, _ in bot.commands()] == ["halt", "resume"]


@pytest.mark.slow
def test_commands_when_the_bot_dies_in_the_bar_that_applied_them_still_apply_after_restart(
    bot: BotDir,
) -> None:
    # A halt acknowledged in a bar whose progress a kill lost must not be lost with it: the
    # halt is applied first, then the force exit's intent is committed and the bot dies.
    replay(bot, "2018-09-30")
    for command in (["risk", "halt"], ["bot", "force-exit", "bitcoin"]):
        assert bot.cli(*command, "--reason", "drill")[0] == 0
    bot.end = END
    run_until_fault(bot, "after_intent_commit:1")

    replay(bot)

    status = bot.status()
    assert status["circuit_breaker_active"] is True
    assert status["circuit_breaker"]["override"]["mode"] == "halt"
    assert [kind for kind, state, _ in bot.commands() if state == "acknowledged"] == [
        "halt",
        "force_exit",
    ]
    assert [t["exit_reason"] for t in status["trades"]] == ["stop_loss", "force_exit"]
    assert_each_client_id_once(bot)


def test_bot_force_entry_when_flat_enters_at_the_next_open_tagged_force_entry(
    bot: BotDir,
) -> None:
    replay(bot, "2018-09-20")
    assert bot.status()["open_positions"] == []
    code, _, err = bot.cli("bot", "force-entry", "bitcoin", "--reason", "drill")
    assert code == 0, err

    replay(bot, "2018-09-22")

    ((kind, status, result),) = bot.commands()
    assert (kind, status) == ("force_entry", "acknowledged")
    assert result is not None
    assert result.startswith("entry of 1,000.00 in bitcoin sent for the next open")
    (position,) = bot.status()["open_positions"]
    assert position["entry_time"].startswith("2018-09-21")
    with sqlite3.connect(bot.ledger) as ledger:
        (open_price,) = ledger.execute(
            "SELECT open FROM paper_bars WHERE time LIKE '2018-09-21%'"
        ).fetchone()
    assert math.isclose(position["entry_price"], open_price * (1 + SLIPPAGE), rel_tol=1e-12)
    assert [o[1] for o in order_rows(bot)].count("force_entry") == 1
    assert_each_client_id_once(bot)


def test_bot_force_entry_when_holding_is_rejected_and_sends_nothing(bot: BotDir) -> None:
    replay(bot, "2018-09-30")  # holding since the 2018-09-29 open
    before = order_rows(bot)
    assert bot.cli("bot", "force-entry", "bitcoin", "--reason", "drill")[0] == 0

    replay(bot, "2018-10-01")

    assert bot.commands() == [
        ("force_entry", "rejected", "bitcoin: a position is already open (one per symbol)")
    ]
    new = [row for row in order_rows(bot) if row not in before]
    assert "force_entry" not in [row[1] for row in new]


def test_restart_when_the_state_file_holds_a_position_nobody_knows_flags_it_and_trades_on(
    bot: BotDir, expected: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    from marketbot.bot.state import PositionState, save_state

    replay(bot, "2018-09-20")
    state_dir = StatePaths.in_data_dir(bot.data_dir).state_dir
    state = load_state(state_dir)
    assert state is not None and state.last_bar_time is not None
    ghost = PositionState(
        position_id="ghost-1", strategy="sma_crossover", symbol="bitcoin", direction="long",
        size=0.5, entry_price=6000.0, entry_time=state.last_bar_time, extreme_price=None,
        entry_client_order_id=None,
    )  # fmt: skip
    save_state(state_dir, replace(state, open_positions=(ghost,)))

    with caplog.at_level("WARNING", logger="marketbot.bot"):
        replay(bot)

    with sqlite3.connect(bot.database) as connection:
        rows = connection.execute("SELECT kind, message FROM risk_events").fetchall()
    flagged = [message for kind, message in rows if kind == "flagged_position"]
    assert len(flagged) == 1
    assert flagged[0].startswith("flagged position ghost-1"), rows
    assert "flagged position ghost-1" in caplog.text
    assert_trades_as_backtest(bot, expected)  # never traded: the run goes on as if absent


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_when_received_mid_replay_exits_0_once_the_bar_is_saved_and_resumes_later(
    bot: BotDir, expected: dict[str, Any], signum: int
) -> None:
    running = bot.spawn("--speed", "10")
    try:
        wait_until(lambda: bot.last_bar_time() is not None, running)
        running.send_signal(signum)
        assert running.wait(timeout=60) == 0
    finally:
        stop(running)
    assert "stopped: run 1" in bot.last_log()
    stopped_at = bot.last_bar_time()
    assert stopped_at is not None and stopped_at < END
    state = load_state(StatePaths.in_data_dir(bot.data_dir).state_dir)
    assert state is not None and state.last_bar_time is not None
    assert state.last_bar_time.isoformat().startswith(stopped_at[:10])

    replay(bot)

    assert_trades_as_backtest(bot, expected)
