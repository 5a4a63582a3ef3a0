"""``marketbot alerts`` and ``marketbot events`` through the real command line on SQLite.

The bundled daily BTC (Bitstamp) is imported as ``bitcoin``. The acceptance window of issue
14: ``bitcoin close > 20000`` over 2020-12-01..2021-01-31 fires once, on the 2020-12-16 bar
(close 21,365.70); no later close in the window is below 20,000.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from marketbot.sources.csv_file import import_csv
from marketbot.store import Database, PriceRepository
from tests.support.cli import isolated_data_dir, run_cli
from tests.support.frames import SAMPLE_DIR
from tests.support.notify_server import NotifyServer, notify_server

WINDOW = ["--symbol", "bitcoin", "--start", "2020-12-01", "--end", "2021-01-31"]


@pytest.fixture(scope="module")
def btc_database_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database holding the bundled daily BTC, built once for the module."""
    path = tmp_path_factory.mktemp("btc") / "marketbot.db"
    with Database(f"sqlite:///{path}") as database:
        database.migrate()
        import_csv(PriceRepository(database), SAMPLE_DIR / "btc_usd_1d_bitstamp.csv",
                   symbol="bitcoin")  # fmt: skip
    return path


@pytest.fixture
def stored_btc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, btc_database_template: Path
) -> Path:
    """A data directory of the test's own with a copy of the BTC database."""
    data_dir = isolated_data_dir(tmp_path, monkeypatch)
    monkeypatch.delenv("MARKETBOT_NOTIFY_URLS", raising=False)
    monkeypatch.delenv("MARKETBOT_NOTIFY_EVENTS", raising=False)
    data_dir.mkdir(parents=True)
    shutil.copyfile(btc_database_template, data_dir / "marketbot.db")
    return data_dir


@pytest.fixture
def server() -> Iterator[NotifyServer]:
    with notify_server() as running:
        yield running


def cli_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    return json.loads(out)


def refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run_cli(args, capsys)
    assert code == 1, out
    assert err.startswith("error: ") and err.count("\n") == 1
    return err


def test_alerts_add_when_valid_lists_it_armed_with_its_condition(
    stored_btc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["alerts", "add", "bitcoin close > 20000", "--name", "btc20k"], capsys)
    assert code == 0, err
    assert out == "added alert 1: btc20k (bitcoin close > 20000, cooldown 1h)\n"

    (alert,) = cli_json(["alerts", "list", "--json"], capsys)

    assert {k: alert[k] for k in ("id", "name", "condition", "enabled", "armed")} == {
        "id": 1, "name": "btc20k", "condition": "bitcoin close > 20000", "enabled": True,
        "armed": True,
    }  # fmt: skip
    assert (alert["trigger_count"], alert["last_triggered"], alert["cooldown_seconds"]) == (
        0, None, 3600,
    )  # fmt: skip


def test_alerts_test_when_acceptance_window_fires_once_on_the_2020_12_16_bar(
    stored_btc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(["alerts", "add", "bitcoin close > 20000", "--name", "btc20k"], capsys)

    trial = cli_json(["alerts", "test", "1", *WINDOW, "--json"], capsys)

    assert trial["evaluations"] == 62
    assert [f["time"] for f in trial["firings"]] == ["2020-12-16T00:00:00Z"]
    assert trial["firings"][0]["value"] == pytest.approx(21365.70)
    _, out, _ = run_cli(["alerts", "test", "1", *WINDOW], capsys)
    assert out.splitlines()[1] == "  2020-12-16 00:00 UTC  21,365.70"
    # Nothing stored: the alert never fired, no event exists.
    (alert,) = cli_json(["alerts", "list", "--json"], capsys)
    assert (alert["trigger_count"], alert["armed"]) == (0, True)
    assert cli_json(["events", "--json"], capsys) == []


def test_alerts_test_when_csv_of_the_window_gives_the_same_firing(
    stored_btc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(SAMPLE_DIR / "btc_usd_1d_bitstamp.csv")
    window = frame[(frame["timestamp"] >= "2020-12-01") & (frame["timestamp"] < "2021-02-01")]
    csv = tmp_path / "window.csv"
    window.to_csv(csv, index=False)
    run_cli(["alerts", "add", "bitcoin close > 20000", "--cooldown", "1d"], capsys)

    trial = cli_json(["alerts", "test", "1", "--data", str(csv), "--json"], capsys)

    assert [(f["time"], round(f["value"], 2)) for f in trial["firings"]] == [
        ("2020-12-16T00:00:00Z", 21365.70)
    ]


def test_alerts_test_when_value_given_evaluates_once(
    stored_btc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(["alerts", "add", "portfolio drawdown_pct >= 10"], capsys)

    assert (
        len(cli_json(["alerts", "test", "1", "--value", "12.5", "--json"], capsys)["firings"]) == 1
    )
    assert cli_json(["alerts", "test", "1", "--value", "9.9", "--json"], capsys)["firings"] == []
    err = refused(["alerts", "test", "1", "--symbol", "bitcoin"], capsys)
    assert "portfolio alert: bars test price and strategy alerts; test it with --value X" in err


def test_alerts_test_when_send_posts_one_notice_marked_test_and_stores_nothing(
    stored_btc: Path,
    server: NotifyServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_cli(["alerts", "add", "bitcoin close > 20000", "--name", "btc20k"], capsys)
    monkeypatch.setenv("MARKETBOT_NOTIFY_URLS", server.url(password="PWTEST"))

    code, out, err = run_cli(["alerts", "test", "1", *WINDOW, "--send"], capsys)

    assert code == 0, err
    (post,) = server.wait_for(1)
    assert post.body["title"] == "marketbot TEST alert btc20k"
    assert "1 firing(s) in 62 evaluations: 2020-12-16 00:00 UTC (21,365.70)" in post.body["message"]
    assert "PWTEST" not in out + err
    assert cli_json(["events", "--json"], capsys) == []


def test_alerts_test_when_a_notify_url_is_unreadable_names_its_position_only(
    stored_btc: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(["alerts", "add", "bitcoin close > 20000"], capsys)
    monkeypatch.setenv("MARKETBOT_NOTIFY_URLS", "json://u:p@127.0.0.1:9/x, nope://u:PWBAD@h/x")

    err = refused(["alerts", "test", "1", "--value", "1", "--send"], capsys)

    assert err == (
        "error: MARKETBOT_NOTIFY_URLS entry 2 is not a notification URL apprise can read\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["alerts", "add", "bitcoin clos > 1"], "'clos' is not a price metric"),
        (["alerts", "add", "btc close > 1"],
         "no price data for symbol 'btc'; stored symbols: bitcoin"),
        (["alerts", "add", "bitcoin close > 1", "--timeframe", "1h"], "no 1h bars for bitcoin"),
        (["alerts", "add", "bitcoin close > 1", "--cooldown", "soon"], "--cooldown='soon'"),
        (["alerts", "add", "bitcoin close > 1", "--name", " "], "--name: must not be empty"),
        (["alerts", "disable", "x"], "alert id 'x': must be a whole number"),
        (["alerts", "delete", "7"], "no alert with id 7; stored alert ids: none"),
        (["alerts", "test", "7", "--value", "1"], "no alert with id 7"),
        (["alerts", "test", "1"], "give one of --symbol S, --data FILE.csv or --value X"),
        (["alerts", "test", "1", "--value", "1", "--start", "2020-01-01"], "--start and --end go"),
    ],
)  # fmt: skip
def test_alerts_when_input_bad_says_what_in_one_line_and_stores_nothing(
    stored_btc: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    err = refused(args, capsys)

    assert message in err
    assert cli_json(["alerts", "list", "--json"], capsys) == []


def test_alerts_enable_disable_delete_when_id_stored_change_it(
    stored_btc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(["alerts", "add", "bitcoin close > 20000", "--name", "a"], capsys)
    run_cli(["alerts", "add", "bitcoin close < 3000", "--name", "b"], capsys)

    assert run_cli(["alerts", "disable", "1"], capsys)[1] == "alert 1 (a) disabled\n"
    assert [a["enabled"] for a in cli_json(["alerts", "list", "--json"], capsys)] == [False, True]
    assert run_cli(["alerts", "enable", "1"], capsys)[1] == "alert 1 (a) enabled\n"
    assert run_cli(["alerts", "delete", "2"], capsys)[1] == "alert 2 (b) deleted\n"
    assert [a["name"] for a in cli_json(["alerts", "list", "--json"], capsys)] == ["a"]


def test_alerts_watch_when_latest_close_is_above_fires_once_and_events_show_it(
    stored_btc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(["alerts", "add", "bitcoin close > 20000", "--name", "btc20k"], capsys)
    run_cli(["alerts", "add", "bitcoin close < 20000", "--name", "never"], capsys)

    code, out, err = run_cli(["alerts", "watch", "--interval", "1s", "--iterations", "1"], capsys)

    assert code == 0, err
    assert out.splitlines()[-1] == "1 evaluations, 1 firings"
    (event,) = cli_json(["events", "--json"], capsys)
    # The bundled data ends with the 2025-07-04 bar (close 108,033).
    assert (event["kind"], event["alert_id"], event["at"]) == (
        "alert_fired", 1, "2025-07-04T00:00:00Z",
    )  # fmt: skip
    assert event["delivered"] is False and event["delivery_error"] is None
    alerts = cli_json(["alerts", "list", "--json"], capsys)
    assert [(a["trigger_count"], a["armed"], a["last_value"]) for a in alerts] == [
        (1, False, 108033.0), (0, True, 108033.0),
    ]  # fmt: skip
    code, out, _ = run_cli(["events"], capsys)
    assert "alert_fired: alert btc20k: bitcoin close > 20000" in out
