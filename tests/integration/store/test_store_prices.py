"""PriceRepository on SQLite and PostgreSQL: upsert, load, choice rules, gaps, atomicity."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from marketbot.core.bars import normalize_ohlcv
from marketbot.core.errors import ConfigError, DataError
from marketbot.store import CryptoPriceHistory, Database, PriceRepository

SAMPLE_DIR = Path(__file__).resolve().parents[3] / "data" / "sample"


def sample(name: str) -> pd.DataFrame:
    return normalize_ohlcv(pd.read_csv(SAMPLE_DIR / name), where=name)


def make_bars(times: pd.DatetimeIndex | list[str], *, level: float = 100.0) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.to_datetime(times, utc=True), name="timestamp")
    close = level + np.arange(len(index), dtype=np.float64)
    frame = pd.DataFrame(
        {
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.full(len(index), 10.0),
        },
        index=index,
    )
    return normalize_ohlcv(frame)


def hours(start: str, count: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=count, freq="1h", tz="UTC", name="timestamp")


def row_count(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(
            connection.scalar(sa.select(sa.func.count()).select_from(CryptoPriceHistory)) or 0
        )


def reject_inserts_at(database: Database, epoch_seconds: int) -> None:
    """Make the database itself refuse one bar, the way a real constraint failure would."""
    with database.engine.begin() as connection:
        if database.dialect == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER reject_bar BEFORE INSERT ON crypto_price_history "
                f"WHEN NEW.timestamp = {epoch_seconds} "
                "BEGIN SELECT RAISE(ABORT, 'bar rejected by test trigger'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION reject_bar() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.timestamp = {epoch_seconds} THEN "
                "RAISE EXCEPTION 'bar rejected by test trigger'; END IF; RETURN NEW; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER reject_bar BEFORE INSERT ON crypto_price_history "
                "FOR EACH ROW EXECUTE FUNCTION reject_bar()"
            )


@pytest.fixture
def prices(database: Database) -> PriceRepository:
    return PriceRepository(database)


def test_load_bars_when_sample_imported_returns_identical_frame(prices: PriceRepository) -> None:
    frame = sample("btc_usd_1d_bitstamp.csv")

    written = prices.upsert_bars("bitstamp", "bitcoin", "1d", frame)
    loaded = prices.load_bars("bitcoin")

    assert written == len(frame)
    pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
    assert str(loaded.index.tz) == "UTC"
    assert loaded.index.name == "timestamp"
    assert list(loaded.dtypes) == [np.dtype("float64")] * 5


def test_upsert_bars_when_imported_twice_keeps_one_row_per_timestamp(
    prices: PriceRepository, database: Database
) -> None:
    frame = sample("eth_usd_1d_bitstamp.csv")

    prices.upsert_bars("bitstamp", "ethereum", "1d", frame)
    prices.upsert_bars("bitstamp", "ethereum", "1d", frame)

    assert row_count(database) == len(frame)


def test_upsert_bars_when_timestamps_overlap_later_values_win(prices: PriceRepository) -> None:
    prices.upsert_bars("test", "coin", "1h", make_bars(hours("2024-01-01", 10), level=100.0))
    prices.upsert_bars("test", "coin", "1h", make_bars(hours("2024-01-01 05:00", 10), level=500.0))

    loaded = prices.load_bars("coin")

    assert len(loaded) == 15
    assert loaded["close"].iloc[:5].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert loaded["close"].iloc[5:].tolist() == [500.0 + i for i in range(10)]


def test_upsert_bars_when_33k_rows_stores_all_and_loads_fast(prices: PriceRepository) -> None:
    frame = sample("btc_usd_1h_bitstamp.csv")
    assert len(frame) > 33_000

    prices.upsert_bars("bitstamp", "bitcoin", "1h", frame)
    timings = []
    for _ in range(5):
        began = time.perf_counter()
        loaded = prices.load_bars("bitcoin", timeframe="1h")
        timings.append(time.perf_counter() - began)

    pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
    assert min(timings) < 0.3, timings


def test_upsert_bars_when_database_rejects_a_late_row_stores_nothing_of_the_batch(
    prices: PriceRepository, database: Database
) -> None:
    frame = sample("btc_usd_1h_bitstamp.csv")
    stored = frame.iloc[:1000]
    prices.upsert_bars("bitstamp", "bitcoin", "1h", stored)
    changed = frame.copy()
    changed["volume"] += 1.0  # would overwrite the stored bars if the batch went through
    reject_inserts_at(database, int(frame.index[-1].timestamp()))
    statements: list[str] = []
    event.listen(
        database.engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: statements.append(statement),
    )

    with pytest.raises(DataError, match=r"bitstamp/bitcoin/1h: .*none of them was stored"):
        prices.upsert_bars("bitstamp", "bitcoin", "1h", changed)

    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) > 1, "the failure should come after earlier chunks were sent"
    assert row_count(database) == 1000
    pd.testing.assert_frame_equal(prices.load_bars("bitcoin"), stored, check_exact=True)


def test_upsert_bars_when_frame_invalid_raises_and_stores_nothing(
    prices: PriceRepository, database: Database
) -> None:
    frame = make_bars(hours("2024-01-01", 5))
    frame.loc[frame.index[3], "low"] = frame["high"].iloc[3] + 1.0

    with pytest.raises(DataError, match=r"test/coin/1h: high < low at 2024-01-01T03:00:00"):
        prices.upsert_bars("test", "coin", "1h", frame)

    assert row_count(database) == 0


def test_upsert_bars_when_times_have_sub_seconds_raises(prices: PriceRepository) -> None:
    frame = make_bars(["2024-01-01T00:00:00.500Z", "2024-01-01T01:00:00.000Z"])

    with pytest.raises(DataError, match="whole seconds"):
        prices.upsert_bars("test", "coin", "1h", frame)


def test_upsert_bars_when_timeframe_malformed_raises_config_error(
    prices: PriceRepository,
) -> None:
    with pytest.raises(ConfigError, match="unknown timeframe"):
        prices.upsert_bars("test", "coin", "hourly", make_bars(hours("2024-01-01", 2)))


def test_upsert_bars_when_timeframe_spelled_differently_uses_one_series(
    prices: PriceRepository,
) -> None:
    prices.upsert_bars("test", "coin", "60m", make_bars(hours("2024-01-01", 3)))
    prices.upsert_bars("test", "coin", "1h", make_bars(hours("2024-01-01 03:00", 3)))

    assert [(s.timeframe, s.rows) for s in prices.list_series()] == [("1h", 6)]


def test_load_bars_when_start_and_end_given_includes_both_ends(prices: PriceRepository) -> None:
    prices.upsert_bars("test", "coin", "1h", make_bars(hours("2024-01-01", 24)))

    loaded = prices.load_bars("coin", start="2024-01-01T05:00:00Z", end="2024-01-01 08:00")

    assert loaded.index.tolist() == hours("2024-01-01 05:00", 4).tolist()


def test_load_bars_when_bounds_between_bars_rounds_inwards(prices: PriceRepository) -> None:
    prices.upsert_bars("test", "coin", "1h", make_bars(hours("2024-01-01", 24)))

    loaded = prices.load_bars(
        "coin",
        start=pd.Timestamp("2024-01-01 04:59:59.5", tz="UTC"),
        end=pd.Timestamp("2024-01-01 09:00", tz="Europe/Berlin"),  # 08:00 UTC
    )

    assert loaded.index[0] == pd.Timestamp("2024-01-01 05:00", tz="UTC")
    assert loaded.index[-1] == pd.Timestamp("2024-01-01 08:00", tz="UTC")


def test_load_bars_when_range_holds_no_bars_returns_empty_canonical_frame(
    prices: PriceRepository,
) -> None:
    prices.upsert_bars("test", "coin", "1h", make_bars(hours("2024-01-01", 5)))

    loaded = prices.load_bars("coin", start="2030-01-01")

    assert loaded.empty
    assert list(loaded.columns) == ["open", "high", "low", "close", "volume"]
    assert str(loaded.index.tz) == "UTC"
    assert loaded.index.name == "timestamp"


def test_load_bars_when_symbol_unknown_names_it_and_stored_symbols(
    prices: PriceRepository,
) -> None:
    prices.upsert_bars("test", "ethereum", "1d", make_bars(["2024-01-01", "2024-01-02"]))
    prices.upsert_bars("test", "bitcoin", "1d", make_bars(["2024-01-01", "2024-01-02"]))

    with pytest.raises(DataError, match=r"'dogecoin'; stored symbols: bitcoin, ethereum"):
        prices.load_bars("dogecoin")


def test_load_bars_when_database_empty_says_to_import(prices: PriceRepository) -> None:
    with pytest.raises(DataError, match=r"'bitcoin'; stored symbols: none \(import data"):
        prices.load_bars("bitcoin")


def test_load_bars_when_timeframe_none_and_1d_stored_picks_1d(prices: PriceRepository) -> None:
    prices.upsert_bars("test", "coin", "1h", make_bars(hours("2024-01-01", 48)))
    prices.upsert_bars("test", "coin", "1d", make_bars(["2024-01-01", "2024-01-02"]))

    assert len(prices.load_bars("coin")) == 2


def test_load_bars_when_timeframe_none_and_one_stored_picks_it(prices: PriceRepository) -> None:
    prices.upsert_bars("test", "coin", "4h", make_bars(["2024-01-01 00:00", "2024-01-01 04:00"]))

    assert len(prices.load_bars("coin")) == 2


def test_load_bars_when_timeframe_none_and_several_without_1d_raises_listing_them(
    prices: PriceRepository,
) -> None:
    prices.upsert_bars("test", "coin", "4h", make_bars(["2024-01-01 00:00", "2024-01-01 04:00"]))
    prices.upsert_bars("test", "coin", "1h", make_bars(hours("2024-01-01", 3)))

    with pytest.raises(DataError, match=r"several timeframes \(1h, 4h\).*timeframe="):
        prices.load_bars("coin")


def test_load_bars_when_timeframe_not_stored_lists_stored_ones(prices: PriceRepository) -> None:
    prices.upsert_bars("test", "coin", "1d", make_bars(["2024-01-01", "2024-01-02"]))

    with pytest.raises(DataError, match=r"no 1h bars for coin; stored timeframes: 1d"):
        prices.load_bars("coin", timeframe="1h")


def test_load_bars_when_two_sources_and_none_chosen_raises_listing_them(
    prices: PriceRepository,
) -> None:
    prices.upsert_bars("coingecko", "coin", "1d", make_bars(["2024-01-01", "2024-01-02"]))
    prices.upsert_bars("bitstamp", "coin", "1d", make_bars(["2024-01-01"], level=7.0))

    with pytest.raises(DataError, match=r"several sources \(bitstamp, coingecko\)"):
        prices.load_bars("coin")
    assert prices.load_bars("coin", source="bitstamp")["close"].tolist() == [7.0]


def test_resolve_series_when_choice_unique_names_source_and_timeframe(
    prices: PriceRepository,
) -> None:
    prices.upsert_bars("coingecko", "coin", "1d", make_bars(["2024-01-01", "2024-01-02"]))
    prices.upsert_bars("bitstamp", "coin", "1h", make_bars(hours("2024-01-01", 2)))

    assert prices.resolve_series("coin") == ("coingecko", "1d")
    assert prices.resolve_series("coin", timeframe="60m") == ("bitstamp", "1h")


def test_load_bars_when_source_not_stored_lists_stored_ones(prices: PriceRepository) -> None:
    prices.upsert_bars("coingecko", "coin", "1d", make_bars(["2024-01-01", "2024-01-02"]))

    with pytest.raises(DataError, match=r"source 'kraken'; stored sources: coingecko"):
        prices.load_bars("coin", source="kraken")


def test_load_bars_when_start_not_a_date_raises_config_error(prices: PriceRepository) -> None:
    prices.upsert_bars("test", "coin", "1d", make_bars(["2024-01-01", "2024-01-02"]))

    with pytest.raises(ConfigError, match="start: not a date"):
        prices.load_bars("coin", start="yesterday-ish")


def test_find_gaps_when_series_has_holes_counts_missing_bars(prices: PriceRepository) -> None:
    times = hours("2024-01-01", 24).delete([3, 10, 11, 12, 20])
    prices.upsert_bars("test", "coin", "1h", make_bars(times))

    gaps = prices.find_gaps("coin", "1h")

    assert [(g.first_missing.hour, g.missing_bars) for g in gaps] == [(3, 1), (10, 3), (20, 1)]
    assert all(g.bar_seconds == 3600 for g in gaps)


def test_list_series_when_several_stored_summarises_each(prices: PriceRepository) -> None:
    prices.upsert_bars("test", "coin", "1h", make_bars(hours("2024-01-01", 24).delete([3, 10, 11])))
    prices.upsert_bars("test", "coin", "1d", make_bars(["2024-01-01", "2024-01-05"]))
    prices.upsert_bars("other", "alpha", "1d", make_bars(["2024-01-01", "2024-01-02"]))

    summaries = prices.list_series()

    assert [
        (s.source, s.symbol, s.timeframe, s.rows, s.gaps, s.missing_bars) for s in summaries
    ] == [
        ("other", "alpha", "1d", 2, 0, 0),
        ("test", "coin", "1h", 21, 2, 3),
        ("test", "coin", "1d", 2, 1, 3),
    ]
    hourly = summaries[1]
    assert hourly.first == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    assert hourly.last == pd.Timestamp("2024-01-01 23:00", tz="UTC")


def test_list_series_when_sample_imported_matches_core_gap_finder(
    prices: PriceRepository,
) -> None:
    frame = sample("btc_usd_1h_bitstamp.csv")
    prices.upsert_bars("bitstamp", "bitcoin", "1h", frame)

    (summary,) = prices.list_series()
    gaps = prices.find_gaps("bitcoin", "1h")

    assert summary.rows == len(frame)
    assert summary.gaps == len(gaps)
    assert summary.missing_bars == sum(g.missing_bars for g in gaps)


def test_delete_series_when_stored_removes_only_that_series(prices: PriceRepository) -> None:
    prices.upsert_bars("test", "coin", "1h", make_bars(hours("2024-01-01", 5)))
    prices.upsert_bars("test", "coin", "1d", make_bars(["2024-01-01"]))

    assert prices.delete_series("test", "coin", "60m") == 5
    assert [s.timeframe for s in prices.list_series()] == ["1d"]


def test_last_timestamp_when_stored_returns_newest_bar_time(prices: PriceRepository) -> None:
    assert prices.last_timestamp("test", "coin", "1h") is None
    prices.upsert_bars("test", "coin", "1h", make_bars(hours("2024-01-01", 5)))

    assert prices.last_timestamp("test", "coin", "1h") == pd.Timestamp("2024-01-01 04:00", tz="UTC")
