"""The bot's risk limits: the breaker trips where the backtest's does, survives kill -9, and
only an operator's ``marketbot risk reset`` lets entries resume.

The acceptance check of issue 12: with ``max_drawdown_pct = 1`` under ``[risk.limits]``, the
acceptance configuration's replay of daily BTC trips the breaker on the 2018-04-25 bar (as
``backtest --config`` of the same file says in its notes), a SIGKILL after the trip and a
restart leave it tripped (the risk book is restored from the run's progress, never rebuilt
clear), and entries resume only after ``risk reset --reason test``, acknowledged at the next
iteration. Then each limit a one-symbol, long-only bot can reach, against the backtest.
"""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.bot_process import (
    ACCEPTANCE_CONFIG,
    STRATEGY_ARGS,
    BotDir,
    import_daily_btc,
    kill_after,
    stop,
    wait_until,
)

DRAWDOWN_CONFIG = ACCEPTANCE_CONFIG + "\n[risk.limits]\nmax_drawdown_pct = 1\n"
TRIPPED = "circuit_breaker_tripped"


@pytest.fixture(scope="module")
def daily_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_daily_btc(tmp_path_factory.mktemp("daily_btc"))


def backtest(bot: BotDir, start: str, end: str, config: str | None = None) -> dict[str, Any]:
    config_file = bot.config_file
    if config is not None:
        config_file = bot.root / "backtest.toml"
        config_file.write_text(config)
    code, out, err = bot.cli(
        "backtest", *STRATEGY_ARGS, "--config", str(config_file),
        "--start", start, "--end", end, "--json",
    )  # fmt: skip
    assert code == 0, err
    return dict(json.loads(out))


def replay(bot: BotDir, end: str) -> None:
    """``marketbot run --replay START END`` in this process (END may grow between runs)."""
    bot.end = end
    code, _, err = bot.cli(*bot.run_args())
    assert code == 0, err


def trade_keys(trades: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(t["entry_time"], t["exit_time"], t["exit_reason"]) for t in trades]


def assert_same_trades(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    assert trade_keys(mine) == trade_keys(theirs)
    for got, expected in zip(mine, theirs, strict=True):
        for key in ("entry_price", "exit_price", "size", "pnl", "fees"):
            assert math.isclose(got[key], expected[key], rel_tol=1e-9, abs_tol=1e-9), key


def trip_days(notes: list[str]) -> list[str]:
    """The bar dates of the backtest's notes ``circuit breaker tripped (...) at ...``."""
    return [note.rsplit(" ", 1)[-1][:10] for note in notes if "breaker tripped" in note]


@pytest.mark.slow
def test_breaker_when_drawdown_reaches_1_pct_trips_on_2018_04_25_and_holds_until_reset(
    tmp_path: Path, daily_database: Path
) -> None:
    bot = BotDir.with_database(tmp_path, daily_database, config=DRAWDOWN_CONFIG, end="2018-06-30")
    preview = backtest(bot, "2018-01-01", "2018-06-30")
    assert trip_days(preview["notes"]) == ["2018-04-25"]
    assert "(drawdown)" in preview["notes"][0]

    # The replay, SIGKILLed the moment the trip is stored (the bar's progress may not be).
    child = bot.spawn()
    try:
        wait_until(lambda: (TRIPPED, "2018-04-25") in bot.risk_events(), child)
        assert kill_after(child, 0.0) == -signal.SIGKILL
    finally:
        stop(child)

    # Restarted, with END grown past the next entry signal (the 2018-07-20 close): refused.
    replay(bot, "2018-07-25")
    status = bot.status()
    assert status["circuit_breaker_active"] is True
    assert status["circuit_breaker"]["trip"] == "drawdown"
    assert status["circuit_breaker"]["tripped_at"].startswith("2018-04-25")
    assert status["entry_denials"] == {"circuit breaker": 1}
    assert ("entry_denied", "2018-07-20") in bot.risk_events()
    assert {at for kind, at in bot.risk_events() if kind == TRIPPED} == {"2018-04-25"}
    assert_same_trades(status["trades"], preview["trades"])
    assert not [o for o in bot.orders() if o[0] == "entry" and o[3] > "2018-04-25"]

    # Killed again and restarted: a restart never clears a trip.
    child = bot.spawn()
    try:
        wait_until(lambda: bot.lock_holder() == child.pid, child)
        assert kill_after(child, 0.3) in (-signal.SIGKILL, 0)
    finally:
        stop(child)
    replay(bot, "2018-07-25")
    assert bot.status()["circuit_breaker_active"] is True

    # The operator's reset, acknowledged at the next iteration; entries resume after it.
    code, _, err = bot.cli("risk", "reset", "--reason", "test")
    assert code == 0, err
    replay(bot, "2018-10-31")
    status = bot.status()
    assert status["circuit_breaker_active"] is False
    assert bot.commands() == [
        ("reset_breaker", "acknowledged", "breaker reset; high-water mark re-based at 9,937.21")
    ]
    assert ("circuit_breaker_reset", "2018-07-26") in bot.risk_events()
    unlimited = backtest(bot, "2018-01-01", "2018-10-31", config=ACCEPTANCE_CONFIG)
    resumed = [t for t in unlimited["trades"] if t["entry_time"] > "2018-07-26"]
    assert trade_keys(resumed) == [
        ("2018-09-05T00:00:00Z", "2018-09-05T00:00:00Z", "stop_loss"),
        ("2018-09-29T00:00:00Z", "2018-10-03T00:00:00Z", "signal"),
    ]
    assert_same_trades(status["trades"][2:], resumed)


@pytest.mark.slow
@pytest.mark.parametrize(
    "limit",
    ["max_position_size_usd = 500", "max_daily_loss_usd = 40", "max_drawdown_pct = 1"],
    ids=["position-size-cap", "daily-loss-trips", "drawdown-trips"],
)
def test_limit_when_replayed_caps_and_trips_as_the_backtest_does(
    tmp_path: Path, daily_database: Path, limit: str
) -> None:
    # max_total_exposure_usd and max_positions cannot bind for a long-only bot on one symbol
    # (it enters only when flat, and exposure must be at least the position size limit).
    config = f"{ACCEPTANCE_CONFIG}\n[risk.limits]\n{limit}\n"
    bot = BotDir.with_database(tmp_path, daily_database, config=config, end="2018-08-15")
    expected = backtest(bot, bot.start, bot.end)

    replay(bot, bot.end)

    status = bot.status()
    assert_same_trades(status["trades"], expected["trades"])
    trips = [at for kind, at in bot.risk_events() if kind == TRIPPED]
    assert trips == trip_days(expected["notes"])
