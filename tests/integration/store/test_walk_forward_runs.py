"""Walk-forward runs are stored: by the repository, and by ``optimize --walk-forward``."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from marketbot.core.errors import ConfigError
from marketbot.store import Database
from marketbot.store.walk_forward_runs import WalkForwardRecord, WalkForwardRunRepository
from tests.support.cli import isolated_data_dir, run_cli
from tests.support.frames import SAMPLE_DIR

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def record(symbol: str = "BTC/USDT", verdict: str = "GOOD") -> WalkForwardRecord:
    return WalkForwardRecord(
        strategy="sma_crossover", symbol=symbol, timeframe="1h", params={"fast": 10},
        metric="sharpe", windows=3,
        out_of_sample_metrics={"sharpe": 1.4, "profit_factor": float("inf")},
        recommendation=verdict, summary={"windows": [{"window": 1}]},
    )  # fmt: skip


def test_walk_forward_runs_when_saved_list_newest_first_with_filters(database: Database) -> None:
    times = iter([T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)])
    repository = WalkForwardRunRepository(database, clock=lambda: next(times))
    first = repository.save(record())
    repository.save(record(symbol="ETH/USDT"))
    third = repository.save(record(verdict="FAILED"))

    runs = repository.list_runs(symbol="BTC/USDT", timeframe="1h", strategy="sma_crossover")

    assert [(run.id, run.recommendation) for run in runs] == [(third, "FAILED"), (first, "GOOD")]
    assert runs[1].params == {"fast": 10} and runs[1].windows == 3
    assert runs[1].out_of_sample_metrics["profit_factor"] == float("inf")
    assert runs[1].created_at == T0
    with pytest.raises(ConfigError, match="strategy must not be empty"):
        repository.save(replace(record(), strategy=" "))


def test_optimize_walk_forward_when_on_stored_bars_stores_its_out_of_sample_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_data_dir(tmp_path, monkeypatch)
    data = str(SAMPLE_DIR / "btc_usd_1d_bitstamp.csv")
    assert run_cli(["data", "import", data, "--symbol", "bitcoin"], capsys)[0] == 0

    code, out, err = run_cli(
        ["optimize", "--strategy", "sma_crossover", "--symbol", "bitcoin", "--grid",
         "fast=5,10", "--grid", "slow=50", "--walk-forward", "1460d:365d", "--jobs", "1",
         "--json"],
        capsys,
    )  # fmt: skip

    assert code == 0, err
    walk = json.loads(out)["walk_forward"]
    from marketbot.config import load_settings

    database = Database.from_settings(load_settings())
    [run] = WalkForwardRunRepository(database).list_runs()
    assert (run.strategy, run.symbol, run.timeframe) == ("sma_crossover", "bitcoin", "1d")
    assert run.recommendation == walk["recommendation"]
    assert run.windows == len(walk["windows"])
    assert run.params == walk["windows"][-1]["params"]
    assert run.out_of_sample_metrics["num_trades"] == walk["out_of_sample_metrics"]["num_trades"]
