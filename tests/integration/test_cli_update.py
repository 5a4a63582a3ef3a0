"""``marketbot data update`` once and as a daemon, against a local CoinGecko."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from marketbot.config import load_settings
from marketbot.sources.coingecko_api import close_only_bars, parse_market_chart
from marketbot.store import Database, PriceRepository
from tests.support.cli import run_cli
from tests.support.coingecko_server import (
    SAMPLE_NOW,
    load_sample,
)


@pytest.fixture
def data_dir(coingecko_data_dir: Path) -> Path:
    return coingecko_data_dir


def store_hourly(symbol: str, drop_last: int) -> pd.DataFrame:
    bars = close_only_bars(parse_market_chart(load_sample(), "sample"), "1h", SAMPLE_NOW)
    with Database.from_settings(load_settings()) as database:
        database.migrate()
        PriceRepository(database).upsert_bars("coingecko", symbol, "1h", bars.iloc[:-drop_last])
    return bars


def stored_count(symbol: str) -> int:
    with Database.from_settings(load_settings()) as database:
        return len(PriceRepository(database).load_bars(symbol, timeframe="1h", source="coingecko"))


def test_data_update_when_series_behind_fetches_the_tail(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = store_hourly("bitcoin", drop_last=24)

    code, out, _ = run_cli(["data", "update", "-q"], capsys)

    assert code == 0
    # The 24 dropped bars plus the hour the sample ends in (it has closed by the real now).
    assert "coingecko/bitcoin/1h:" in out
    assert "25 filled" in out
    assert stored_count("bitcoin") == len(bars) + 1


def test_data_update_when_a_series_fails_reports_it_and_exits_1(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_hourly("bitcoin", drop_last=5)
    store_hourly("gone-coin", drop_last=5)

    code, out, _ = run_cli(["data", "update", "-q"], capsys)

    assert code == 1
    assert "coingecko/gone-coin/1h: FAILED: CoinGecko GET /coins/gone-coin/" in out
    assert "6 filled" in out  # bitcoin still updated


def test_data_update_when_nothing_stored_says_so(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["data", "update"], capsys)

    assert code == 0
    assert "nothing to update" in out


def _lines(stream: object, sink: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.put(line)


def test_data_update_daemon_when_started_updates_at_once_and_stops_on_sigterm(
    data_dir: Path,
) -> None:
    bars = store_hourly("bitcoin", drop_last=10)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", "from marketbot.cli import main; main()"]
    process = subprocess.Popen(
        [*command, "data", "update", "--daemon", "--hour", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, output), daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any("filled" in line for line in seen) and time.monotonic() < deadline:
            try:
                seen.append(output.get(timeout=0.5))
            except queue.Empty:
                assert process.poll() is None, "".join(seen)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    time.sleep(0.2)
    while not output.empty():
        seen.append(output.get())
    text = "".join(seen)
    assert "updating now, then daily at 03:00 UTC" in text
    assert "11 filled" in text
    assert "stopping on SIGTERM" in text
    assert text.rstrip().endswith("stopped")
    assert stored_count("bitcoin") == len(bars) + 1
