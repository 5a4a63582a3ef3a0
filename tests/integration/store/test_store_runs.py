"""BacktestRunRepository on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketbot.core.errors import ConfigError, DataError
from marketbot.store import BacktestRecord, BacktestRunRepository, Database, record_from_result
from marketbot.store.runs import file_sha256


def equity(count: int = 100) -> pd.Series:
    index = pd.date_range("2024-01-01", periods=count, freq="1h", tz="UTC", name="timestamp")
    return pd.Series(10_000.0 + np.cumsum(np.sin(np.arange(count))), index=index, name="equity")


def record(**changes: object) -> BacktestRecord:
    fields: dict[str, object] = {
        "strategy": "sma_crossover",
        "symbol": "bitcoin",
        "timeframe": "1h",
        "source": "bitstamp",
        "start": pd.Timestamp("2024-01-01", tz="UTC"),
        "end": pd.Timestamp("2024-01-05 03:00", tz="UTC"),
        "params": {"fast": 10, "slow": 30, "stop_loss": None, "max_hold": math.inf},
        "settings": {"fee_rate": 0.002, "slippage_rate": 0.001, "sizing": "all_in"},
        "metrics": {
            "total_return_pct": 12.5,
            "profit_factor": math.inf,
            "worst_ratio": -math.inf,
            "sharpe": 1.25,
            "trades": 3,
        },
        "recommendation": "MARGINAL",
        "equity_curve": equity(),
        "trades": [
            {
                "entry_time": pd.Timestamp("2024-01-01 05:00", tz="UTC"),
                "size": np.float64(0.5),
                "pnl": 12.0,
                "exit_reason": "signal",
            }
        ],
    }
    fields.update(changes)
    return BacktestRecord(**fields)  # type: ignore[arg-type]


def ticking_clock() -> Callable[[], datetime]:
    times: Iterator[datetime] = (
        datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=i) for i in range(1000)
    )
    return lambda: next(times)


@pytest.fixture
def runs(database: Database) -> BacktestRunRepository:
    return BacktestRunRepository(database, clock=ticking_clock())


def test_get_when_run_saved_returns_it_with_infinite_metrics(runs: BacktestRunRepository) -> None:
    saved = record()

    run_id = runs.save(saved)
    stored = runs.get(run_id)

    loaded = stored.record
    assert stored.id == run_id
    assert stored.created_at == pd.Timestamp("2025-01-01", tz="UTC")
    assert loaded.metrics == {
        "total_return_pct": 12.5,
        "profit_factor": math.inf,
        "worst_ratio": -math.inf,
        "sharpe": 1.25,
        "trades": 3.0,
    }
    assert loaded.params == {"fast": 10, "slow": 30, "stop_loss": None, "max_hold": math.inf}
    assert loaded.settings == saved.settings
    assert (loaded.strategy, loaded.symbol, loaded.timeframe, loaded.source) == (
        "sma_crossover",
        "bitcoin",
        "1h",
        "bitstamp",
    )
    assert (loaded.start, loaded.end) == (saved.start, saved.end)
    assert loaded.recommendation == "MARGINAL"
    # Bar times are nanosecond-resolution everywhere in marketbot (as normalize_ohlcv makes them).
    expected_curve = saved.equity_curve.copy()
    expected_curve.index = expected_curve.index.as_unit("ns")
    pd.testing.assert_series_equal(
        loaded.equity_curve, expected_curve, check_exact=True, check_freq=False
    )
    assert list(loaded.trades) == [
        {
            "entry_time": "2024-01-01T05:00:00+00:00",
            "size": 0.5,
            "pnl": 12.0,
            "exit_reason": "signal",
        }
    ]


def test_get_when_metric_is_nan_restores_nan(runs: BacktestRunRepository) -> None:
    run_id = runs.save(record(metrics={"sortino": math.nan}))

    assert math.isnan(runs.get(run_id).record.metrics["sortino"])


def test_get_when_equity_curve_empty_round_trips(runs: BacktestRunRepository) -> None:
    run_id = runs.save(record(equity_curve=equity(0), trades=[]))

    loaded = runs.get(run_id).record
    assert loaded.equity_curve.empty
    assert str(loaded.equity_curve.index.tz) == "UTC"
    assert list(loaded.trades) == []


def test_get_when_id_unknown_raises_naming_it(runs: BacktestRunRepository) -> None:
    with pytest.raises(DataError, match="no backtest run with id 999"):
        runs.get(999)


def test_list_runs_when_several_saved_returns_newest_first_without_blobs(
    runs: BacktestRunRepository,
) -> None:
    first = runs.save(record())
    second = runs.save(record(strategy="rsi", metrics={"profit_factor": math.inf}))
    third = runs.save(record(symbol="ethereum"))

    listed = runs.list_runs()

    assert [r.id for r in listed] == [third, second, first]
    assert listed[1].strategy == "rsi"
    assert listed[1].metrics == {"profit_factor": math.inf}
    assert listed[2].trade_count == 1
    assert listed[2].params["max_hold"] == math.inf
    assert listed[0].created_at > listed[1].created_at


def test_list_runs_when_filtered_returns_only_matching_runs(runs: BacktestRunRepository) -> None:
    runs.save(record())
    rsi = runs.save(record(strategy="rsi"))
    eth = runs.save(record(symbol="ethereum"))
    both = runs.save(record(strategy="rsi", symbol="ethereum"))

    assert [r.id for r in runs.list_runs(strategy="rsi")] == [both, rsi]
    assert [r.id for r in runs.list_runs(symbol="ethereum")] == [both, eth]
    assert [r.id for r in runs.list_runs(strategy="rsi", symbol="ethereum")] == [both]
    assert [r.id for r in runs.list_runs(limit=2)] == [both, eth]


def test_list_runs_when_limit_below_one_raises(runs: BacktestRunRepository) -> None:
    with pytest.raises(ConfigError, match="limit"):
        runs.list_runs(limit=0)


def test_save_when_metric_not_a_number_raises_and_stores_nothing(
    runs: BacktestRunRepository,
) -> None:
    with pytest.raises(DataError, match=r"metrics\.verdict: must be a number"):
        runs.save(record(metrics={"verdict": "GOOD"}))

    assert runs.list_runs() == []


def test_save_when_param_cannot_be_json_raises_naming_it(runs: BacktestRunRepository) -> None:
    with pytest.raises(DataError, match=r"params\.window: cannot store a value of type object"):
        runs.save(record(params={"window": object()}))


def test_save_when_naive_times_given_stores_them_as_utc(runs: BacktestRunRepository) -> None:
    run_id = runs.save(record(start=datetime(2024, 1, 1), end=datetime(2024, 1, 2)))

    loaded = runs.get(run_id).record
    assert loaded.start == pd.Timestamp("2024-01-01", tz="UTC")
    assert loaded.end == pd.Timestamp("2024-01-02", tz="UTC")


def test_delete_when_run_exists_removes_it(runs: BacktestRunRepository) -> None:
    run_id = runs.save(record())

    assert runs.delete(run_id) is True
    assert runs.delete(run_id) is False
    assert runs.list_runs() == []


@dataclass(frozen=True)
class FakeResult:
    """The shape of a backtest result, as record_from_result reads it."""

    strategy: str
    symbol: str
    params: dict[str, object]
    settings: dict[str, object]
    metrics: dict[str, float]
    recommendation: str
    trades: pd.DataFrame
    equity_curve: pd.Series
    bars: pd.DataFrame


def fake_result() -> FakeResult:
    curve = equity(48)
    curve.index = curve.index.as_unit("ns")
    trades = pd.DataFrame(
        {
            "entry_time": [curve.index[2]],
            "exit_time": [curve.index[9]],
            "pnl": [np.float64(-3.5)],
            "exit_reason": ["stop_loss"],
        }
    )
    return FakeResult(
        strategy="rsi",
        symbol="bitcoin",
        params={"period": 14},
        settings={"fee_rate": 0.002},
        metrics={"profit_factor": math.inf, "trades": 1},
        recommendation="FAILED",
        trades=trades,
        equity_curve=curve,
        bars=pd.DataFrame({"close": np.ones(48)}, index=curve.index),
    )


def test_record_from_result_when_saved_round_trips_its_content(
    runs: BacktestRunRepository,
) -> None:
    result = fake_result()

    run_id = runs.save(record_from_result(result, source="bitstamp"))
    loaded = runs.get(run_id).record

    assert (loaded.timeframe, loaded.source) == ("1h", "bitstamp")  # timeframe inferred
    assert (loaded.start, loaded.end) == (result.bars.index[0], result.bars.index[-1])
    assert loaded.metrics == {"profit_factor": math.inf, "trades": 1.0}
    assert loaded.recommendation == "FAILED"
    assert list(loaded.trades) == [
        {
            "entry_time": "2024-01-01T02:00:00+00:00",
            "exit_time": "2024-01-01T09:00:00+00:00",
            "pnl": -3.5,
            "exit_reason": "stop_loss",
        }
    ]
    pd.testing.assert_series_equal(loaded.equity_curve, result.equity_curve, check_freq=False)


def test_record_from_result_when_source_unknown_records_unspecified() -> None:
    record_ = record_from_result(fake_result(), timeframe="1h")

    assert record_.source == "unspecified"


SAMPLE_SHA256 = "ab" * 32


def test_get_when_run_on_a_data_file_returns_its_name_and_sha256(
    runs: BacktestRunRepository,
) -> None:
    run_id = runs.save(record(data_file="prices.csv", data_sha256=SAMPLE_SHA256))

    loaded = runs.get(run_id).record
    (listed,) = runs.list_runs()
    assert (loaded.data_file, loaded.data_sha256) == ("prices.csv", SAMPLE_SHA256)
    assert (listed.data_file, listed.data_sha256) == ("prices.csv", SAMPLE_SHA256)


def test_list_runs_when_symbol_is_a_data_file_name_returns_runs_on_that_file(
    runs: BacktestRunRepository,
) -> None:
    runs.save(record())
    on_file = runs.save(record(symbol="data", data_file="prices.csv", data_sha256=SAMPLE_SHA256))

    assert [r.id for r in runs.list_runs(symbol="prices.csv")] == [on_file]


@pytest.mark.parametrize(
    ("data_file", "data_sha256", "message"),
    [
        ("prices.csv", None, "data_sha256 None must be 64 lowercase hex digits"),
        ("prices.csv", "AB" * 32, "must be 64 lowercase hex digits"),
        ("var/prices.csv", SAMPLE_SHA256, "must be a file name without folders"),
        (None, SAMPLE_SHA256, "data_file None must be a file name"),
        ("p" * 256, SAMPLE_SHA256, "256 characters long, at most 255 fit"),
    ],
)
def test_save_when_data_file_fields_invalid_raises_naming_them(
    runs: BacktestRunRepository, data_file: str | None, data_sha256: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        runs.save(record(data_file=data_file, data_sha256=data_sha256))

    assert runs.list_runs() == []


def test_file_sha256_when_file_read_returns_hex_digest_of_its_content(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_bytes(b"abc")

    # The FIPS 180-2 test vector for "abc".
    assert file_sha256(path) == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_file_sha256_when_file_missing_raises_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.csv: cannot read the file"):
        file_sha256(tmp_path / "missing.csv")


def test_record_from_result_when_run_on_a_data_file_saves_name_and_sha256(
    runs: BacktestRunRepository, tmp_path: Path
) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("timestamp,open,high,low,close,volume\n")

    run_id = runs.save(
        record_from_result(
            fake_result(),
            timeframe=None,
            source="csv",
            data_file=path.name,
            data_sha256=file_sha256(path),
        )
    )

    loaded = runs.get(run_id).record
    assert (loaded.source, loaded.timeframe) == ("csv", "1h")  # timeframe inferred
    assert (loaded.data_file, loaded.data_sha256) == ("prices.csv", file_sha256(path))


def test_get_summary_when_run_saved_returns_it_without_blobs(
    runs: BacktestRunRepository,
) -> None:
    runs.save(record())
    run_id = runs.save(record(strategy="rsi", data_file="prices.csv", data_sha256=SAMPLE_SHA256))

    summary = runs.get_summary(run_id)

    assert summary == runs.list_runs(strategy="rsi")[0]
    assert (summary.id, summary.strategy, summary.trade_count) == (run_id, "rsi", 1)
    assert summary.data_file == "prices.csv"


def test_get_summary_when_id_unknown_raises_naming_it(runs: BacktestRunRepository) -> None:
    with pytest.raises(DataError, match="no backtest run with id 999"):
        runs.get_summary(999)
