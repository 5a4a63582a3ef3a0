"""``alerts test`` fires exactly as a replay through the bot does (pinned choice 2).

Price and strategy alerts are tested on the stored bars of a window, then the same window is
replayed by ``marketbot run`` (which evaluates the stored alerts at every bar): the firings
the replay stores as events are the test's, time for time and value for value.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from marketbot.sources.csv_file import import_csv
from marketbot.store import Database, PriceRepository
from tests.support.cli import isolated_data_dir, run_cli
from tests.support.frames import SAMPLE_DIR

EXPRESSIONS = [
    "bitcoin close > 11000",
    "bitcoin change_pct <= -3",
    "strategy sma_crossover entry_signal >= 1",
    "strategy sma_crossover open_positions > 0",
    "strategy sma_crossover pnl_usd < 0",
    "strategy sma_crossover win_rate < 50",
]
WINDOW = ("2020-09-01", "2020-12-31")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = isolated_data_dir(tmp_path, monkeypatch)
    monkeypatch.delenv("MARKETBOT_NOTIFY_URLS", raising=False)
    directory.mkdir(parents=True)
    template = tmp_path / "template.db"
    with Database(f"sqlite:///{template}") as database:
        database.migrate()
        import_csv(PriceRepository(database), SAMPLE_DIR / "btc_usd_1d_bitstamp.csv",
                   symbol="bitcoin")  # fmt: skip
    shutil.copyfile(template, directory / "marketbot.db")
    return directory


def cli_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    return json.loads(out)


def test_alerts_test_when_window_replayed_by_the_bot_fires_the_same_times_and_values(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for expression in EXPRESSIONS:
        code, _, err = run_cli(["alerts", "add", expression, "--cooldown", "0"], capsys)
        assert code == 0, err
    window = ["--symbol", "bitcoin", "--start", WINDOW[0], "--end", WINDOW[1], "--json"]
    tested = {
        number: [(f["time"], f["value"]) for f in trial["firings"]]
        for number in range(1, len(EXPRESSIONS) + 1)
        for trial in [cli_json(["alerts", "test", str(number), *window], capsys)]
    }

    code, _, err = run_cli(
        ["run", "--strategy", "sma_crossover", "--symbol", "bitcoin", "--replay", *WINDOW], capsys
    )
    assert code == 0, err

    replayed: dict[int, list[tuple[str, float]]] = defaultdict(list)
    events = cli_json(["events", "--json", "--kind", "alert_fired", "--limit", "1000"], capsys)
    for event in reversed(events):
        replayed[event["alert_id"]].append((event["at"], event["details"]["value"]))
    assert all(tested[number] for number in tested), tested  # every alert fires in the window
    for number, firings in tested.items():
        label = EXPRESSIONS[number - 1]
        assert [time for time, _ in replayed[number]] == [time for time, _ in firings], label
        assert [value for _, value in replayed[number]] == pytest.approx(
            [value for _, value in firings], rel=1e-12
        ), label
    alerts = cli_json(["alerts", "list", "--json"], capsys)
    assert [a["trigger_count"] for a in alerts] == [len(tested[n]) for n in sorted(tested)]
