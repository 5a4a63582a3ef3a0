"""Reading real-world OHLCV CSV shapes: what is read, the notes, and the ``line N`` messages.

Every test writes a real file; the line numbers in messages are the file's own lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.core.errors import ConfigError, DataError
from marketbot.sources.csv_file import load_ohlcv_csv, read_ohlcv_csv

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "csv" / "bitstamp_btcusd_1d_head.csv"
HEADER = "timestamp,open,high,low,close,volume"
# Three daily bars, oldest first: close 11, 12, 13 and volume 1, 2, 3.
ROWS = [
    "2024-01-01,10,12,9,11,1",
    "2024-01-02,11,13,10,12,2",
    "2024-01-03,12,14,11,13,3",
]


def write(tmp_path: Path, *lines: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def days(*dates: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([pd.Timestamp(date, tz="UTC") for date in dates], name="timestamp")


def test_load_when_header_is_canonical_reads_the_bars_without_notes(tmp_path: Path) -> None:
    loaded = load_ohlcv_csv(write(tmp_path, HEADER, *ROWS))

    assert loaded.notes == ()
    assert list(loaded.frame.index) == list(days("2024-01-01", "2024-01-02", "2024-01-03"))
    assert loaded.frame["close"].tolist() == [11.0, 12.0, 13.0]
    pd.testing.assert_frame_equal(read_ohlcv_csv(tmp_path / "prices.csv"), loaded.frame)


def test_load_when_rows_are_newest_first_sorts_them_and_says_so(tmp_path: Path) -> None:
    loaded = load_ohlcv_csv(write(tmp_path, HEADER, *reversed(ROWS)))

    assert loaded.frame["close"].tolist() == [11.0, 12.0, 13.0]
    assert loaded.frame.index.is_monotonic_increasing
    assert loaded.notes == ("rows were newest-first (line 2 is the latest): sorted oldest-first",)


def test_load_when_a_row_is_an_exact_copy_drops_it_and_names_the_lines(tmp_path: Path) -> None:
    loaded = load_ohlcv_csv(write(tmp_path, HEADER, ROWS[0], ROWS[1], ROWS[1], ROWS[2], ROWS[2]))

    assert loaded.frame["volume"].tolist() == [1.0, 2.0, 3.0]
    assert loaded.notes == (
        "dropped 2 exact duplicate row(s) (the first: line 4, a copy of line 3)",
    )


def test_load_when_copies_are_equal_numbers_written_differently_drops_them(
    tmp_path: Path,
) -> None:
    loaded = load_ohlcv_csv(write(tmp_path, HEADER, ROWS[0], "2024-01-01,10.0,12,9,1.1e1,1"))

    assert len(loaded.frame) == 1
    assert "dropped 1 exact duplicate row(s)" in loaded.notes[0]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [ROWS[0], ROWS[1], "2024-01-02,11,13,10,12.5,2"],
            "prices.csv: lines 3 and 4 are both 2024-01-02, with different values "
            "(close 12 and 12.5)",
        ),
        (  # newest-first: still the file's own lines, in the file's order
            [ROWS[2], "2024-01-02,11,13,10,12,7", ROWS[1], ROWS[0]],
            "prices.csv: lines 3 and 4 are both 2024-01-02, with different values (volume 7 and 2)",
        ),
    ],
)
def test_load_when_two_rows_of_one_time_differ_fails_naming_both_lines(
    tmp_path: Path, rows: list[str], message: str
) -> None:
    with pytest.raises(DataError) as raised:
        load_ohlcv_csv(write(tmp_path, HEADER, *rows))
    assert str(raised.value) == message


def test_load_when_times_are_in_neither_order_fails_naming_the_lines(tmp_path: Path) -> None:
    with pytest.raises(DataError) as raised:
        load_ohlcv_csv(write(tmp_path, HEADER, ROWS[0], ROWS[2], ROWS[1]))
    assert str(raised.value) == (
        "prices.csv: timestamps neither oldest-first nor newest-first: 2024-01-02 (line 4) "
        "follows 2024-01-03 (line 3)"
    )


@pytest.mark.parametrize("name", ["timestamp", "Date", "time", "DateTime", "unix"])
def test_load_when_timestamp_column_has_a_usual_name_reads_it(tmp_path: Path, name: str) -> None:
    stamps = ["1704067200", "1704153600"] if name == "unix" else ["2024-01-01", "2024-01-02"]
    rows = [f"{stamp},{row.partition(',')[2]}" for stamp, row in zip(stamps, ROWS[:2], strict=True)]
    loaded = load_ohlcv_csv(write(tmp_path, f"{name},open,high,low,close,volume", *rows))

    assert list(loaded.frame.index) == list(days("2024-01-01", "2024-01-02"))
    assert loaded.notes == ()


def test_load_when_unix_and_date_both_exist_uses_unix_and_says_so(tmp_path: Path) -> None:
    # The written date is a local time two hours ahead: only the epoch number is unambiguous.
    loaded = load_ohlcv_csv(
        write(
            tmp_path,
            "date,unix,open,high,low,close,volume",
            "2024-01-01 02:00:00,1704067200,10,12,9,11,1",
            "2024-01-02 02:00:00,1704153600,11,13,10,12,2",
        )
    )

    assert list(loaded.frame.index) == list(days("2024-01-01", "2024-01-02"))
    assert loaded.notes == (
        "timestamps from column 'unix' (epoch times: unambiguous); ignored 'date'",
    )


def test_load_when_date_and_time_are_separate_columns_joins_them(tmp_path: Path) -> None:
    loaded = load_ohlcv_csv(
        write(
            tmp_path,
            "Date,Time,Open,High,Low,Close,Volume",
            "2024-01-01,05:00,10,12,9,11,1",
            "2024-01-01,06:00,11,13,10,12,2",
        )
    )

    assert loaded.frame.index[1] == pd.Timestamp("2024-01-01T06:00", tz="UTC")
    assert loaded.notes == ("timestamps from columns 'Date' and 'Time' joined",)


@pytest.mark.parametrize(
    ("volumes", "values", "expected", "note"),
    [
        (
            "Volume BTC,Volume USD",
            "2.5,27.5",
            2.5,
            "volume from column 'Volume BTC' (the base asset's); ignored 'Volume USD'",
        ),
        (
            "Volume USDT,Volume ETH",
            "27.5,2.5",
            2.5,
            "volume from column 'Volume ETH' (the base asset's); ignored 'Volume USDT'",
        ),
        (  # ETH/BTC: neither is a quote currency of the list, the first is the base
            "volume_eth,volume_btc",
            "2.5,0.1",
            2.5,
            "volume from column 'volume_eth' (the base asset's); ignored 'volume_btc'",
        ),
        (
            "Volume USD",
            "27.5",
            27.5,
            "volume from column 'Volume USD' (in the quote currency: no base-asset volume column)",
        ),
        ("Volume,Volume USD", "2.5,27.5", 2.5, None),
    ],
)
def test_load_when_volume_columns_name_currencies_uses_the_base_asset_one(
    tmp_path: Path, volumes: str, values: str, expected: float, note: str | None
) -> None:
    path = write(
        tmp_path, f"timestamp,open,high,low,close,{volumes}", f"2024-01-01,10,12,9,11,{values}"
    )
    loaded = load_ohlcv_csv(path)

    assert loaded.frame["volume"].tolist() == [expected]
    assert loaded.notes == (() if note is None else (note,))


def test_load_when_a_banner_precedes_the_header_skips_it_and_says_so(tmp_path: Path) -> None:
    loaded = load_ohlcv_csv(write(tmp_path, "https://www.CryptoDataDownload.com", HEADER, *ROWS))

    assert loaded.frame["close"].tolist() == [11.0, 12.0, 13.0]
    assert loaded.notes == (
        "skipped line 1 ('https://www.CryptoDataDownload.com'): the header is line 2",
    )


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (  # the banner is line 1, the header line 2: the third bar is line 5
            ["Exported by Some Exchange", HEADER, ROWS[0], ROWS[1], "2024-01-03,12,14,15,13,3"],
            "prices.csv: high < low at 2024-01-03 (line 5)",
        ),
        (  # blank lines count too
            [HEADER, ROWS[0], "", ROWS[1], "2024-01-03T05:00:00Z,12,14,11,-13,3"],
            "prices.csv: non-positive close at 2024-01-03T05:00:00Z (line 5)",
        ),
        ([HEADER, ROWS[0], "2024-01-02,11,13,10,,2"], "prices.csv: empty close at line 3"),
        (
            [HEADER, ROWS[0], "2024-01-02,11,13,10,1.234,5,2"],
            "prices.csv: line 3 has 7 fields, the header (line 1) has 6",
        ),
        (
            [HEADER, ROWS[0], "2024-01-02,11,13,10,n/a,2"],
            "prices.csv: close 'n/a' at line 3 is not a number",
        ),
        (
            [HEADER, ROWS[0], "02/01/2024,11,13,10,12,2"],
            "prices.csv: timestamp '02/01/2024' (line 3) is not an ISO 8601 date or epoch number",
        ),
        (
            ["unix,open,high,low,close,volume", "1704067200,10,12,9,11,1", "soon,11,13,10,12,2"],
            "prices.csv: timestamp 'soon' (line 3) is not an epoch number like the first (line 2)",
        ),
        ([HEADER, ",11,13,10,12,2"], "prices.csv: empty timestamp at line 2"),
        ([HEADER], "prices.csv: no bars (the file has a header but no rows)"),
        ([""], "prices.csv: the file is empty"),
    ],
)
def test_load_when_a_row_is_bad_names_the_file_and_its_line(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    with pytest.raises(DataError) as raised:
        load_ohlcv_csv(write(tmp_path, *lines))
    assert str(raised.value) == message


def test_load_when_rows_end_in_empty_fields_or_are_blank_ignores_them(tmp_path: Path) -> None:
    loaded = load_ohlcv_csv(write(tmp_path, HEADER, f"{ROWS[0]},", "", ",,,,,", f"{ROWS[1]},,"))

    assert loaded.frame["close"].tolist() == [11.0, 12.0]


def test_load_when_fields_are_separated_by_semicolons_reads_them(tmp_path: Path) -> None:
    loaded = load_ohlcv_csv(
        write(tmp_path, HEADER.replace(",", ";"), *(row.replace(",", ";") for row in ROWS))
    )

    assert loaded.frame["close"].tolist() == [11.0, 12.0, 13.0]


def test_load_when_file_starts_with_a_byte_order_mark_reads_the_header(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("\ufeff" + "\n".join([HEADER, *ROWS]), encoding="utf-8")

    assert len(load_ohlcv_csv(path).frame) == len(ROWS)


def test_load_when_columns_are_mapped_reads_the_named_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Day,Opening,Top,Bottom,Last,Vol.,Volume",
        "2024-01-01,10,12,9,11,5,1",
    )
    mapping = {"timestamp": "day", "Open": "Opening", "high": "Top", "low": "Bottom",
               "close": "Last", "volume": "Vol."}  # fmt: skip
    loaded = load_ohlcv_csv(path, columns=mapping)

    assert loaded.frame.iloc[0].tolist() == [10.0, 12.0, 9.0, 11.0, 5.0]
    assert loaded.notes == ()


def test_load_when_only_some_columns_are_mapped_finds_the_others(tmp_path: Path) -> None:
    path = write(tmp_path, "Date,Open,High,Low,Last,Volume", "2024-01-01,10,12,9,11,1")

    assert load_ohlcv_csv(path, columns={"close": "Last"}).frame["close"].tolist() == [11.0]


def test_load_when_a_mapped_column_is_missing_names_it_and_the_columns_found(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "Date,Price", "2024-01-01,11")

    with pytest.raises(DataError) as raised:
        load_ohlcv_csv(path, columns={"close": "Last"})
    assert str(raised.value) == (
        "prices.csv: missing column(s) 'Last' (for close) in the header (line 1): expected "
        "timestamp,open,high,low,close,volume or a column mapping; found: Date, Price"
    )


def test_load_when_mapping_names_an_unknown_field_refuses_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"columns: 'price' is not a field; use one of "
                       r"timestamp, open, high, low, close, volume"):  # fmt: skip
        load_ohlcv_csv(write(tmp_path, HEADER, *ROWS), columns={"price": "close"})


@pytest.mark.parametrize("close_name", ["close", "Price"])
def test_load_when_only_a_close_column_makes_close_only_bars_with_zero_volume(
    tmp_path: Path, close_name: str
) -> None:
    loaded = load_ohlcv_csv(write(tmp_path, f"date,{close_name}", "2024-01-01,11", "2024-01-02,12"))

    assert loaded.frame.to_numpy().tolist() == [[11, 11, 11, 11, 0], [12, 12, 12, 12, 0]]
    assert loaded.notes[-2:] == (
        "no open, high and low columns: close-only bars (open = high = low = close)",
        "no volume column: volume 0",
    )
    assert ("close from column 'Price'" in loaded.notes) == (close_name == "Price")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ["when,price", "2024-01-01,11"],
            "prices.csv: missing column(s) 'timestamp' in the header (line 1): expected "
            "timestamp,open,high,low,close,volume or a column mapping; found: when, price",
        ),
        (  # high and low without open: not close-only, not OHLC either
            ["timestamp,high,low,close", "2024-01-01,12,9,11"],
            "prices.csv: missing column(s) 'open' in the header (line 1): expected "
            "timestamp,open,high,low,close,volume or a column mapping; found: timestamp, "
            "high, low, close",
        ),
        (  # a banner, then a header of an unknown shape: the header line is reported
            ["Exported 2024-01-05", "Zeit,Kurs", "2024-01-01,11"],
            "prices.csv: missing column(s) 'timestamp', 'close' in the header (line 2): "
            "expected timestamp,open,high,low,close,volume or a column mapping; found: Zeit, Kurs",
        ),
    ],
)
def test_load_when_header_shape_is_unknown_names_the_expected_and_found_columns(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    with pytest.raises(DataError) as raised:
        load_ohlcv_csv(write(tmp_path, *lines))
    assert str(raised.value) == message


def test_load_when_file_is_a_real_bitstamp_export_reads_it_oldest_first() -> None:
    loaded = load_ohlcv_csv(FIXTURE)

    frame = loaded.frame
    assert len(frame) == 38
    assert frame.index[0] == pd.Timestamp("2025-05-29", tz="UTC")
    assert frame.index[-1] == pd.Timestamp("2025-07-05", tz="UTC")
    assert (np.diff(frame.index.asi8) == 86_400 * 10**9).all()
    # 2025-07-04 (line 4): 109647,109799,107303,108033, 607.88228740 BTC.
    assert frame.loc["2025-07-04"].tolist() == [109647.0, 109799.0, 107303.0, 108033.0, 607.8822874]
    assert loaded.notes == (
        "skipped line 1 ('https://www.CryptoDataDownload.com'): the header is line 2",
        "timestamps from column 'unix' (epoch times: unambiguous); ignored 'date'",
        "volume from column 'Volume BTC' (the base asset's); ignored 'Volume USD'",
        "rows were newest-first (line 3 is the latest): sorted oldest-first",
    )


def test_load_when_real_export_has_a_bad_row_counts_the_banner_line(tmp_path: Path) -> None:
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    lines[9] = lines[9].replace(",BTC/USD,", ",BTC/USD,-")  # line 10: a negative open
    path = write(tmp_path, *lines, name="Bitstamp_BTCUSD_d.csv")

    with pytest.raises(DataError) as raised:
        load_ohlcv_csv(path)
    assert str(raised.value) == "Bitstamp_BTCUSD_d.csv: non-positive open at 2025-06-28 (line 10)"


bar_rows = st.lists(
    st.tuples(st.integers(1, 1000), st.integers(0, 50), st.integers(0, 50), st.integers(0, 9)),
    min_size=1,
    max_size=30,
)


@given(rows=bar_rows, copies=st.lists(st.integers(0, 29), max_size=5), newest_first=st.booleans())
def test_load_when_rows_are_reversed_or_copied_reads_the_same_bars(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[int, int, int, int]],
    copies: list[int],
    newest_first: bool,
) -> None:
    lines = [
        f"2024-01-{1 + day // 24:02d}T{day % 24:02d}:00:00Z,{low + up},{low + up + down},{low},"
        f"{low + up},{volume}"
        for day, (low, up, down, volume) in enumerate(rows)
    ]
    canonical = load_ohlcv_csv(write(tmp_path_factory.mktemp("a"), HEADER, *lines)).frame
    for position in sorted({copy % len(lines) for copy in copies}, reverse=True):
        lines.insert(position, lines[position])
    if newest_first:
        lines.reverse()

    variant = load_ohlcv_csv(write(tmp_path_factory.mktemp("b"), HEADER, *lines)).frame

    pd.testing.assert_frame_equal(variant, canonical)
