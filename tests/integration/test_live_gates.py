"""The live gates, each in turn, on a real database with stored runs and keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from marketbot.bot.live_gates import (
    LiveGateError,
    LiveRequest,
    check_live_gates,
    same_params,
)
from marketbot.store import BacktestRecord, BacktestRunRepository, Database
from marketbot.store.keys import Credentials, KeyStore, MasterKey
from marketbot.store.walk_forward_runs import WalkForwardRecord, WalkForwardRunRepository

PARAMS = {"fast": 10, "slow": 30}
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def keys(database: Database, tmp_path: Path) -> KeyStore:
    store = KeyStore(database, MasterKey(tmp_path / "var"))
    store.save("binance", Credentials(api_key="AKTEST0000wxyz", secret="SKTEST9f8e"))
    return store


def request(**changes: Any) -> LiveRequest:
    values: dict[str, Any] = {
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "strategy": "sma_crossover",
        "params": PARAMS,
    }
    return LiveRequest(**(values | changes))


def save_backtest(database: Database, verdict: str, at: datetime, **changes: Any) -> int:
    values: dict[str, Any] = {
        "strategy": "sma_crossover", "symbol": "BTC/USDT", "timeframe": "1h",
        "source": "binance", "start": T0 - timedelta(days=300), "end": T0,
        "params": PARAMS, "settings": {}, "metrics": {"sharpe": 1.2},
        "recommendation": verdict,
    }  # fmt: skip
    repository = BacktestRunRepository(database, clock=lambda: at)
    return repository.save(BacktestRecord(**(values | changes)))


def save_walk_forward(database: Database, verdict: str, at: datetime) -> int:
    record = WalkForwardRecord(
        strategy="sma_crossover", symbol="BTC/USDT", timeframe="1h", params=PARAMS,
        metric="sharpe", windows=4, out_of_sample_metrics={"sharpe": 0.4},
        recommendation=verdict, summary={"windows": []},
    )  # fmt: skip
    return WalkForwardRunRepository(database, clock=lambda: at).save(record)


def test_gate_when_no_exchange_is_given_refuses() -> None:
    with pytest.raises(LiveGateError, match="live needs --exchange"):
        check_live_gates(request(exchange=None), database=None, keys=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("symbol", ["bitcoin", "BTC", "BTC/", "BTC/USDT/X"])
def test_gate_when_the_symbol_is_not_an_exchange_pair_refuses(
    database: Database, keys: KeyStore, symbol: str
) -> None:
    with pytest.raises(
        LiveGateError, match=f"live needs an exchange pair like BTC/USDT, not '{symbol}'"
    ):
        check_live_gates(request(symbol=symbol), database=database, keys=keys)


def test_gate_when_the_pair_is_not_quoted_in_dollars_refuses(
    database: Database, keys: KeyStore
) -> None:
    with pytest.raises(LiveGateError, match="quoted in USD, USDT, USDC, not 'BTC/EUR'"):
        check_live_gates(request(symbol="BTC/EUR"), database=database, keys=keys)


def test_gate_when_no_key_is_stored_refuses_saying_how_to_set_one(
    database: Database, keys: KeyStore
) -> None:
    with pytest.raises(
        LiveGateError, match=r"^no API key for kraken: run marketbot keys set kraken$"
    ):
        check_live_gates(request(exchange="kraken"), database=database, keys=keys)
    with pytest.raises(LiveGateError, match=r"keys set binance --label testnet$"):
        check_live_gates(request(key_label="testnet"), database=database, keys=keys)


def test_gate_when_nothing_was_backtested_refuses_naming_force(
    database: Database, keys: KeyStore
) -> None:
    save_backtest(database, "EXCELLENT", T0, params={"fast": 10, "slow": 50})
    save_backtest(database, "EXCELLENT", T0, timeframe="4h")
    save_backtest(database, "EXCELLENT", T0, symbol="bitcoin")

    with pytest.raises(LiveGateError) as caught:
        check_live_gates(request(), database=database, keys=keys)
    assert str(caught.value).startswith(
        "no stored backtest of sma_crossover (fast=10, slow=30) on BTC/USDT 1h"
    )
    assert "--force --reason TEXT" in str(caught.value)


def test_gate_when_the_latest_backtest_is_good_passes(database: Database, keys: KeyStore) -> None:
    save_backtest(database, "FAILED", T0)
    run_id = save_backtest(
        database, "GOOD", T0 + timedelta(hours=1), params={"slow": 30.0, "fast": 10}
    )

    clearance = check_live_gates(request(), database=database, keys=keys)

    assert clearance.verdict is not None and not clearance.forced
    assert (clearance.verdict.kind, clearance.verdict.run_id) == ("backtest", run_id)


def test_gate_when_the_latest_backtest_is_marginal_refuses_naming_the_run(
    database: Database, keys: KeyStore
) -> None:
    save_backtest(database, "EXCELLENT", T0)
    run_id = save_backtest(database, "MARGINAL", T0 + timedelta(days=1))

    with pytest.raises(LiveGateError) as caught:
        check_live_gates(request(), database=database, keys=keys)
    assert str(caught.value) == (
        "the latest verdict on sma_crossover (fast=10, slow=30) on BTC/USDT 1h is backtest "
        f"run {run_id} (2026-03-02 12:00 UTC): MARGINAL: live needs GOOD or better; "
        "--force --reason TEXT overrides it"
    )


def test_gate_when_a_newer_walk_forward_failed_out_of_sample_refuses(
    database: Database, keys: KeyStore
) -> None:
    save_backtest(database, "EXCELLENT", T0)
    walk_id = save_walk_forward(database, "FAILED", T0 + timedelta(hours=2))

    with pytest.raises(LiveGateError, match=f"is walk-forward run {walk_id} .*: FAILED"):
        check_live_gates(request(), database=database, keys=keys)
    # A backtest newer than the walk-forward is the latest verdict again.
    save_backtest(database, "GOOD", T0 + timedelta(hours=3))
    assert check_live_gates(request(), database=database, keys=keys).verdict.kind == "backtest"  # type: ignore[union-attr]


def test_gate_when_a_walk_forward_is_good_out_of_sample_passes(
    database: Database, keys: KeyStore
) -> None:
    save_backtest(database, "FAILED", T0)
    walk_id = save_walk_forward(database, "GOOD", T0 + timedelta(hours=2))

    verdict = check_live_gates(request(), database=database, keys=keys).verdict

    assert verdict is not None and (verdict.kind, verdict.run_id) == ("walk-forward", walk_id)


def test_gate_when_forced_without_a_reason_refuses(database: Database, keys: KeyStore) -> None:
    with pytest.raises(LiveGateError, match="--force needs --reason TEXT"):
        check_live_gates(request(force=True, reason="  "), database=database, keys=keys)


def test_gate_when_forced_with_a_reason_passes_and_says_so(
    database: Database, keys: KeyStore
) -> None:
    run_id = save_backtest(database, "FAILED", T0)

    clearance = check_live_gates(
        request(force=True, reason="closing a position by hand"), database=database, keys=keys
    )

    assert clearance.forced and clearance.reason == "closing a position by hand"
    assert clearance.verdict is not None and clearance.verdict.run_id == run_id
    # --force overrides the verdict only, never the key or the pair.
    with pytest.raises(LiveGateError, match="exchange pair"):
        check_live_gates(
            request(symbol="bitcoin", force=True, reason="x"), database=database, keys=keys
        )


def test_same_params_when_numbers_differ_in_type_only_match() -> None:
    assert same_params({"fast": 10, "slow": 30.0}, {"slow": 30, "fast": 10.0})
    assert not same_params({"fast": 10}, {"fast": 11})
    assert not same_params({"fast": 10}, {"fast": 10, "slow": 30})
    assert not same_params({"flag": True}, {"flag": 1})
