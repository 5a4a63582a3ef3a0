"""``marketbot data download`` end to end: ccxt's binance against a local Binance look-alike.

The command runs in-process on a real SQLite file in a temporary data directory; its
``--api-url`` options point ccxt's spot, USD-M and COIN-M roots at the local server.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

from tests.support.cli import isolated_data_dir, run_cli
from tests.support.fake_binance import BARS, FakeBinance

SINCE, UNTIL = BARS.index[100], BARS.index[1599]  # 1500 bars: two pages


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    isolated_data_dir(tmp_path, monkeypatch)
    yield tmp_path / "var"


@pytest.fixture
def binance(httpserver: HTTPServer) -> FakeBinance:
    # Binance's markets load from the spot, USD-M and COIN-M APIs; the futures have none here.
    for root in ("/fapi/v1", "/dapi/v1"):
        httpserver.expect_request(f"{root}/exchangeInfo").respond_with_json({"symbols": []})
    return FakeBinance(httpserver, BARS)


def api_urls(httpserver: HTTPServer) -> list[str]:
    return [
        "--api-url", f"public={httpserver.url_for('/api/v3')}",
        "--api-url", f"fapiPublic={httpserver.url_for('/fapi/v1')}",
        "--api-url", f"dapiPublic={httpserver.url_for('/dapi/v1')}",
    ]  # fmt: skip


def download(
    httpserver: HTTPServer, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    return run_cli(
        ["data", "download", "--exchange", "binance", "--pair", "BTC/USDT", "--timeframe", "1h",
         *api_urls(httpserver), *extra],
        capsys,
    )  # fmt: skip


def stored_rows(data_dir: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(data_dir / "marketbot.db") as connection:
        return connection.execute(
            "SELECT source, symbol, timeframe, timestamp, open, close FROM crypto_price_history "
            "ORDER BY timestamp"
        ).fetchall()


def test_data_download_stores_the_bars_and_prints_a_summary(
    data_dir: Path, httpserver: HTTPServer, binance: FakeBinance, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = download(
        httpserver, capsys, "--since", "2018-05-19T10:00:00Z", "--until", UNTIL.isoformat()
    )

    assert code == 0, err
    assert out == (
        "stored 1500 1h bars of BTC/USDT (binance) from 2018-05-19T10:00:00+00:00 to "
        "2018-07-20T21:00:00+00:00 (2 page(s), 1 range(s))\n"
    )
    assert binance.start_times() == [SINCE, SINCE + pd.Timedelta(hours=1000)]
    rows = stored_rows(data_dir)
    assert len(rows) == 1500
    assert rows[0] == ("binance", "BTC/USDT", "1h", SINCE.value // 10**9,
                       BARS["open"].iloc[100], BARS["close"].iloc[100])  # fmt: skip

    code, out, err = download(
        httpserver, capsys, "--since", "2018-05-19T10:00", "--until", "2018-07-20 21:00"
    )

    assert code == 0, err
    assert len(stored_rows(data_dir)) == 1500  # a re-run overwrites, it adds no duplicates


def test_data_download_when_pair_unknown_exits_1_with_one_error_line(
    data_dir: Path, httpserver: HTTPServer, binance: FakeBinance, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        ["data", "download", "--exchange", "binance", "--pair", "BTC/XYZ", *api_urls(httpserver)],
        capsys,
    )

    assert code == 1
    assert out == ""
    assert err == (
        "error: binance has no market 'BTC/XYZ'; close matches: BTC/USDT "
        "(pairs are spelt BASE/QUOTE, e.g. BTC/USDT)\n"
    )
    assert binance.kline_requests() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exchange", "binanse", "--pair", "BTC/USDT"], "error: unknown exchange 'binanse'"),
        (["--exchange", "binance", "--pair", "BTC/USDT", "--timeframe", "7h"],
         "error: binance does not offer '7h' candles; it offers: 1s, 1m"),
        (["--exchange", "binance", "--pair", "BTC/USDT", "--since", "soon"],
         "error: since: not a date or time: 'soon'"),
        (["--exchange", "binance", "--pair", "BTC/USDT", "--api-url", "public"],
         "error: --api-url 'public': use KEY=URL"),
    ],
    ids=["exchange", "timeframe", "since", "api-url"],
)  # fmt: skip
def test_data_download_when_an_argument_is_wrong_exits_1_naming_it(
    data_dir: Path,
    httpserver: HTTPServer,
    binance: FakeBinance,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code, _, err = run_cli(["data", "download", *args, *api_urls(httpserver)], capsys)

    assert code == 1
    assert err.startswith(message)
    assert len(err.splitlines()) == 1


def test_cli_help_does_not_import_ccxt() -> None:
    # ccxt costs seconds to import; `marketbot --help` must not pay for it.
    check = "import sys, marketbot.cli; sys.exit('ccxt' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], check=False).returncode == 0


def test_data_fill_gaps_when_exchange_pair_has_a_hole_fetches_only_it_then_backtests(
    data_dir: Path,
    httpserver: HTTPServer,
    binance: FakeBinance,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "MARKETBOT_EXCHANGE_API_URLS",
        json.dumps(
            {
                "binance": {
                    "public": httpserver.url_for("/api/v3"),
                    "fapiPublic": httpserver.url_for("/fapi/v1"),
                    "dapiPublic": httpserver.url_for("/dapi/v1"),
                }
            }
        ),
    )
    code, _, err = run_cli(
        ["data", "download", "--exchange", "binance", "--pair", "BTC/USDT",
         "--since", SINCE.isoformat(), "--until", UNTIL.isoformat()],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    hole = BARS.index[300:310]
    with sqlite3.connect(data_dir / "marketbot.db") as connection:
        connection.execute(
            "DELETE FROM crypto_price_history WHERE timestamp BETWEEN ? AND ?",
            (hole[0].value // 10**9, hole[-1].value // 10**9),
        )
    before = len(binance.kline_requests())

    code, out, err = run_cli(
        ["data", "fill-gaps", "BTC/USDT", "--source", "binance", "--end", UNTIL.isoformat(), "-q"],
        capsys,
    )

    assert code == 0, err
    assert out.startswith("stored 10 1h bars of BTC/USDT (binance)")
    [request] = binance.kline_requests()[before:]
    assert int(request["startTime"]) == hole[0].value // 10**6
    assert len(stored_rows(data_dir)) == 1500

    code, out, err = run_cli(
        ["backtest", "--strategy", "sma_crossover", "--symbol", "BTC/USDT", "--source", "binance",
         "--param", "fast=10", "--param", "slow=50", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["symbol"] == "BTC/USDT"
