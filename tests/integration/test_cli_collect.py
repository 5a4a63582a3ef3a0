"""``marketbot data collect / gaps / fill-gaps / export`` end to end, against a local CoinGecko."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from marketbot.config import load_settings
from marketbot.store import Database, PriceRepository
from tests.support.cli import run_cli
from tests.support.coingecko_server import FakeCoinGecko
from tests.support.frames import SAMPLE_DIR


@pytest.fixture
def data_dir(coingecko_data_dir: Path) -> Path:
    return coingecko_data_dir


def load(symbol: str, *, source: str, timeframe: str) -> pd.DataFrame:
    with Database.from_settings(load_settings()) as database:
        return PriceRepository(database).load_bars(symbol, timeframe=timeframe, source=source)


def test_data_collect_when_coin_known_stores_bars_and_lists_them(
    data_dir: Path, capsys: pytest.CaptureFixture[str], coingecko: FakeCoinGecko
) -> None:
    code, out, err = run_cli(["data", "collect", "bitcoin", "--days", "30"], capsys)

    assert (code, err) == (0, "")
    # Every hour of the sample has closed by the real "now": 719 bars, none open.
    assert out.startswith("coingecko/bitcoin/1h: 719 bars stored (2021-03-09 12:00 .. ")
    assert coingecko.requests[0].args == {"vs_currency": "usd", "days": "30"}
    code, out, _ = run_cli(["data", "list"], capsys)
    assert "coingecko" in out
    assert "719" in out


def test_data_collect_when_coin_unknown_exits_1_naming_coin_and_endpoint(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run_cli(["data", "collect", "notacoin", "--days", "30"], capsys)

    assert code == 1
    assert err.startswith("error: CoinGecko GET /coins/notacoin/market_chart: HTTP 404")


def test_data_gaps_and_fill_gaps_when_series_has_holes_fetch_only_those(
    data_dir: Path, capsys: pytest.CaptureFixture[str], coingecko: FakeCoinGecko
) -> None:
    assert run_cli(["data", "collect", "bitcoin", "--days", "30"], capsys)[0] == 0
    bars = load("bitcoin", source="coingecko", timeframe="1h")
    holed = bars.drop(bars.index[10:14])
    with Database.from_settings(load_settings()) as database:
        prices = PriceRepository(database)
        prices.delete_series("coingecko", "bitcoin", "1h")
        prices.upsert_bars("coingecko", "bitcoin", "1h", holed)

    code, out, _ = run_cli(["data", "gaps", "bitcoin", "--source", "coingecko"], capsys)
    assert code == 0
    assert "5 missing bars in 2 gaps" in out  # 4 removed + the hour the source lacks

    coingecko.requests.clear()
    end = f"{bars.index[-1]:%Y-%m-%dT%H:%M}"
    code, out, _ = run_cli(["data", "fill-gaps", "bitcoin", "--end", end, "-q"], capsys)
    assert code == 0
    assert "5 missing bars in 2 gaps; 4 filled with 2 requests, 1 still missing" in out
    assert all(r.path.endswith("/market_chart/range") for r in coingecko.requests)
    pd.testing.assert_frame_equal(
        load("bitcoin", source="coingecko", timeframe="1h"), bars, check_freq=False
    )


def test_data_export_when_reimported_gives_the_same_bars(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sample = SAMPLE_DIR / "btc_usd_1d_bitstamp.csv"
    assert run_cli(["data", "import", str(sample), "--symbol", "bitcoin"], capsys)[0] == 0
    exported = tmp_path / "out" / "btc.csv"
    exported.parent.mkdir()

    code, out, _ = run_cli(["data", "export", "bitcoin", "-o", str(exported)], capsys)
    assert code == 0
    assert out.startswith("exported 3872 1d bars of bitcoin (csv), 2014-11-28T00:00:00Z")
    assert exported.read_text().splitlines()[0] == "timestamp,open,high,low,close,volume"

    code, _, _ = run_cli(
        ["data", "import", str(exported), "--symbol", "copy", "--source", "roundtrip"], capsys
    )
    assert code == 0
    original = load("bitcoin", source="csv", timeframe="1d")
    pd.testing.assert_frame_equal(load("copy", source="roundtrip", timeframe="1d"), original)
    assert not list(exported.parent.glob("*.partial"))


def test_data_export_when_range_given_writes_only_that_range(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sample = SAMPLE_DIR / "btc_usd_1d_bitstamp.csv"
    run_cli(["data", "import", str(sample), "--symbol", "bitcoin"], capsys)
    exported = tmp_path / "jan.csv"

    code, _out, _ = run_cli(
        [
            "data",
            "export",
            "bitcoin",
            "-o",
            str(exported),
            "--start",
            "2020-01-01",
            "--end",
            "2020-01-31",
        ],
        capsys,
    )

    assert code == 0
    lines = exported.read_text().splitlines()
    assert len(lines) == 32
    assert lines[1].startswith("2020-01-01T00:00:00Z,")


def test_data_export_when_symbol_not_stored_exits_1(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli(["data", "export", "nothing", "-o", str(tmp_path / "x.csv")], capsys)

    assert code == 1
    assert err.startswith("error: ")
    assert "nothing" in err
    assert not (tmp_path / "x.csv").exists()
