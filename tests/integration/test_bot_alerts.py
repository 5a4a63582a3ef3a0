"""Alerts evaluated by the bot at each replayed bar: the issue's acceptance check, in-process.

``alerts add "bitcoin close > 20000"`` then a replay of 2020-12-01..2021-01-31 on the bundled
daily BTC: the 2020-12-16 bar closes at 21,365.70, the first close above 20,000, and no later
close in the window is below it, so the alert fires once, stamped with that bar's open time;
apprise posts it once to a local server; no password is left in any file of the data dir.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import isolated_data_dir, run_cli
from tests.support.frames import SAMPLE_DIR
from tests.support.notify_server import NotifyServer, notify_server


@pytest.fixture
def server() -> Iterator[NotifyServer]:
    with notify_server() as running:
        yield running


@pytest.fixture
def data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    folder = isolated_data_dir(tmp_path, monkeypatch)
    csv = SAMPLE_DIR / "btc_usd_1d_bitstamp.csv"
    code, _, err = run_cli(["data", "import", str(csv), "--symbol", "bitcoin"], capsys)
    assert code == 0, err
    return folder


def test_replay_when_an_alert_crosses_fires_once_on_its_bar_and_posts_one_notice(
    data_dir: Path,
    server: NotifyServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MARKETBOT_NOTIFY_URLS", server.url("/h"))
    code, _, err = run_cli(["alerts", "add", "bitcoin close > 20000", "--name", "btc20k"], capsys)
    assert code == 0, err

    code, _, err = run_cli(
        ["run", "--strategy", "sma_crossover", "--symbol", "bitcoin",
         "--replay", "2020-12-01", "2021-01-31"], capsys,
    )  # fmt: skip
    assert code == 0, err

    (post,) = server.wait_for(1)
    assert "btc20k" in post.body["title"]
    assert "21,365.7" in post.body["message"]
    code, out, err = run_cli(["alerts", "list", "--json"], capsys)
    assert code == 0, err
    (alert,) = json.loads(out)
    assert alert["trigger_count"] == 1
    assert alert["last_triggered"].startswith("2020-12-16T00:00:00")
    with sqlite3.connect(data_dir / "marketbot.db") as connection:
        events = connection.execute(
            "SELECT kind, delivered FROM events WHERE kind = 'alert_fired'"
        ).fetchall()
    assert events == [("alert_fired", 1)]
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert b"PWTEST" not in path.read_bytes(), path


def test_replay_when_no_alert_is_stored_sends_nothing(
    data_dir: Path,
    server: NotifyServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MARKETBOT_NOTIFY_URLS", server.url("/h"))
    code, _, err = run_cli(
        ["run", "--strategy", "sma_crossover", "--symbol", "bitcoin",
         "--replay", "2020-12-01", "2021-01-31"], capsys,
    )  # fmt: skip
    assert code == 0, err
    assert server.wait_for(1, timeout_seconds=0.5) == []
