"""``marketbot data import`` on real-world CSV shapes, into a real SQLite file.

Each test writes a file, imports it with the command line, and reads back what the store
holds: the right bars in time order, or, when the file is refused, nothing at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from marketbot.cli.common import parse_column_map
from marketbot.config import load_settings
from marketbot.core.errors import ConfigError
from marketbot.store import Database, PriceRepository
from tests.support.cli import isolated_data_dir, run_cli

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "csv" / "bitstamp_btcusd_1d_head.csv"
HEADER = "timestamp,open,high,low,close,volume"
# Three daily bars, oldest first: (open, high, low, close, volume).
BARS = [(10.0, 12.0, 9.0, 11.0, 1.0), (11.0, 13.0, 10.0, 12.0, 2.0), (12.0, 14.0, 11.0, 13.0, 3.0)]
DATES = ["2024-01-01", "2024-01-02", "2024-01-03"]
ROWS = [
    f"{date},{','.join(f'{value:g}' for value in bar)}"
    for date, bar in zip(DATES, BARS, strict=True)
]


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_data_dir(tmp_path, monkeypatch)


def write(tmp_path: Path, *lines: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def import_file(
    path: Path, capsys: pytest.CaptureFixture[str], *options: str
) -> tuple[int, str, str]:
    return run_cli(["data", "import", str(path), "--symbol", "coin", *options], capsys)


def stored() -> pd.DataFrame:
    """The bars stored for ``coin`` (source csv, 1d); empty when there are none."""
    with Database.from_settings(load_settings()) as database:
        database.migrate()
        prices = PriceRepository(database)
        if not prices.list_series():
            return pd.DataFrame()
        bars: pd.DataFrame = prices.load_bars("coin", timeframe="1d", source="csv")
        return bars


def assert_stored(dates: list[str], bars: Sequence[tuple[float, ...]]) -> None:
    frame = stored()
    assert [f"{stamp:%Y-%m-%d}" for stamp in frame.index] == dates
    assert [tuple(row) for row in frame.itertuples(index=False)] == bars


def test_data_import_when_rows_are_newest_first_stores_them_oldest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = import_file(write(tmp_path, HEADER, *reversed(ROWS)), capsys)

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "imported 3 1d bars of coin (csv) from 2024-01-01 to 2024-01-03",
        "note: rows were newest-first (line 2 is the latest): sorted oldest-first",
    ]
    assert_stored(DATES, BARS)


def test_data_import_when_rows_are_exact_copies_stores_each_bar_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = import_file(write(tmp_path, HEADER, ROWS[0], ROWS[0], ROWS[1], ROWS[2]), capsys)

    assert code == 0
    assert "note: dropped 1 exact duplicate row(s) (the first: line 3, a copy of line 2)" in out
    assert_stored(DATES, BARS)


@pytest.mark.parametrize(
    ("name", "stamps"),
    [
        ("date", DATES),
        ("Date", DATES),
        ("time", DATES),
        ("datetime", [f"{date} 00:00:00" for date in DATES]),
        ("unix", ["1704067200", "1704153600", "1704240000"]),
        ("timestamp", ["1704067200000", "1704153600000", "1704240000000"]),  # milliseconds
    ],
)
def test_data_import_when_timestamp_column_has_a_usual_name_stores_the_bars(
    name: str, stamps: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f"{stamp},{row.partition(',')[2]}" for stamp, row in zip(stamps, ROWS, strict=True)]
    path = write(tmp_path, f"{name},open,high,low,close,volume", *rows)

    code, _, err = import_file(path, capsys)

    assert (code, err) == (0, "")
    assert_stored(DATES, BARS)


def test_data_import_when_volume_is_per_currency_stores_the_base_asset_volume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f"{row},{bar[4] * bar[3]:g}" for row, bar in zip(ROWS, BARS, strict=True)]
    path = write(tmp_path, "date,open,high,low,close,Volume BTC,Volume USD", *rows)

    code, out, _ = import_file(path, capsys)

    assert code == 0
    assert "note: volume from column 'Volume BTC' (the base asset's); ignored 'Volume USD'" in out
    assert_stored(DATES, BARS)


def test_data_import_when_a_banner_precedes_the_header_skips_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "https://www.CryptoDataDownload.com", HEADER, *ROWS)

    code, out, _ = import_file(path, capsys)

    assert code == 0
    assert (
        "note: skipped line 1 ('https://www.CryptoDataDownload.com'): the header is line 2" in out
    )
    assert_stored(DATES, BARS)


def test_data_import_when_file_is_a_real_bitstamp_export_stores_38_daily_bars(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = import_file(FIXTURE, capsys)

    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "imported 38 1d bars of coin (csv) from 2025-05-29 to 2025-07-05"
    assert len(out.splitlines()) == 5  # the summary and four notes
    frame = stored()
    assert len(frame) == 38 and frame.index.is_monotonic_increasing
    # Line 40, the oldest: 1748476800,2025-05-29,BTC/USD,107821,108924,105374,105578,1431.77...
    assert tuple(frame.iloc[0]) == (107821.0, 108924.0, 105374.0, 105578.0, 1431.77890157)
    assert frame.index[-1] == pd.Timestamp("2025-07-05", tz="UTC")


@pytest.mark.parametrize(
    "options",
    [
        ["--columns", "timestamp=Day,open=First,high=Top,low=Bottom,close=Last,volume=Qty"],
        ["--columns", "timestamp=Day,close=Last", "--columns", "OPEN=First, high=Top",
         "--columns", "low=Bottom,volume=Qty"],
    ],
)  # fmt: skip
def test_data_import_when_columns_are_mapped_stores_the_named_columns(
    options: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "Qty,Last,Bottom,Top,First,Day", *(
        f"{bar[4]:g},{bar[3]:g},{bar[2]:g},{bar[1]:g},{bar[0]:g},{date}"
        for date, bar in zip(DATES, BARS, strict=True)
    ))  # fmt: skip

    code, out, err = import_file(path, capsys, *options)

    assert (code, err) == (0, "")
    assert out.splitlines() == ["imported 3 1d bars of coin (csv) from 2024-01-01 to 2024-01-03"]
    assert_stored(DATES, BARS)


def test_data_import_when_only_close_is_mapped_stores_close_only_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "Day,Last", "2024-01-02,12", "2024-01-01,11")

    code, out, _ = import_file(path, capsys, "--columns", "timestamp=Day,close=Last")

    assert code == 0
    assert "note: no volume column: volume 0" in out
    assert_stored(DATES[:2], [(11.0, 11.0, 11.0, 11.0, 0.0), (12.0, 12.0, 12.0, 12.0, 0.0)])


@pytest.mark.parametrize(
    ("lines", "options", "message"),
    [
        (
            [HEADER, ROWS[0], ROWS[1], "2024-01-02,11,13,10,12.5,2", ROWS[2]],
            [],
            "error: prices.csv: lines 3 and 4 are both 2024-01-02, with different values "
            "(close 12 and 12.5)",
        ),
        (
            ["Exported by Some Exchange", HEADER, ROWS[2], ROWS[1], "2024-01-01,10,12,13,11,1"],
            [],
            "error: prices.csv: high < low at 2024-01-01 (line 5)",
        ),
        (
            ["Date,Last", *ROWS],
            [],
            "error: prices.csv: missing column(s) 'close' in the header (line 1): expected "
            "timestamp,open,high,low,close,volume or a column mapping; found: Date, Last",
        ),
        (
            [HEADER, *ROWS],
            ["--columns", "stamp=Date"],
            "error: --columns stamp=Date: 'stamp' is not a field; use one of timestamp, open, "
            "high, low, close, volume",
        ),
        ([HEADER, *ROWS], ["--columns", "close"], "error: --columns 'close': use FIELD=COLUMN"),
        (
            [HEADER, *ROWS],
            ["--columns", "close=Last"],
            "error: prices.csv: missing column(s) 'Last' (for close) in the header (line 1)",
        ),
    ],
)
def test_data_import_when_file_or_columns_are_wrong_fails_in_one_line_and_stores_nothing(
    lines: list[str],
    options: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = import_file(write(tmp_path, *lines), capsys, *options)

    assert (code, out) == (1, "")
    assert err.startswith(message) and err.count("\n") == 1
    assert stored().empty


def test_parse_column_map_when_values_hold_pairs_merges_them_with_lower_case_fields() -> None:
    assert parse_column_map(None) is None
    assert parse_column_map(["Timestamp=Date, close=Adj Close", "volume=Vol."]) == {
        "timestamp": "Date",
        "close": "Adj Close",
        "volume": "Vol.",
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["price=Close"], "--columns price=Close: 'price' is not a field; use one of timestamp"),
        (["close="], "--columns 'close=': use FIELD=COLUMN"),
        (["=Close"], "--columns '=Close': use FIELD=COLUMN"),
    ],
)
def test_parse_column_map_when_a_pair_is_wrong_names_it(values: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_column_map(values)
    assert str(raised.value).startswith(message)
