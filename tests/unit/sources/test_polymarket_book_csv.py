"""The derived Polymarket CSV files: normalised frames, the rows that are data, and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketbot.core.errors import DataError
from marketbot.sources.polymarket_book_csv import read_books_csv, read_markets_csv
from tests.support.book_csv_files import (
    BAD_CASES,
    BOOKS_CSV,
    MARKETS_CSV,
    SNAPSHOTS,
    BadCase,
    with_bad_line,
    write_files,
)

MARKET_DTYPES = {
    "market_id": "str",
    "slug": "str",
    "question": "str",
    "start": "datetime64[ms, UTC]",
    "end": "datetime64[ms, UTC]",
    "label_0": "str",
    "label_1": "str",
    "payout_0": "float64",
    "payout_1": "float64",
    "winner": "object",
}
BOOK_DTYPES = {
    "market_id": "str",
    "slug": "str",
    "outcome_index": "int8",
    "timestamp": "datetime64[ms, UTC]",
    "best_bid": "float64",
    "bid_size": "float64",
    "best_ask": "float64",
    "ask_size": "float64",
}


def read_both(folder: Path, **texts: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    markets_path, books_path = write_files(folder, **texts)
    markets = read_markets_csv(markets_path)
    return markets, read_books_csv(books_path, markets)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_read_when_files_good_gives_the_normalised_frames(tmp_path: Path, gzipped: bool) -> None:
    markets_path, books_path = write_files(tmp_path, gzipped=gzipped)

    markets = read_markets_csv(markets_path)
    books = read_books_csv(books_path, markets)

    assert {name: str(dtype) for name, dtype in markets.dtypes.items()} == MARKET_DTYPES
    assert {name: str(dtype) for name, dtype in books.dtypes.items()} == BOOK_DTYPES
    resolved, open_market = markets.iloc[0], markets.iloc[1]
    assert (resolved["slug"], resolved["label_0"], resolved["label_1"]) == ("mkt-a", "Up", "Down")
    assert (resolved["payout_0"], resolved["payout_1"], resolved["winner"]) == (1.0, 0.0, "Up")
    assert resolved["question"] == "Up or down, A?"
    assert resolved["end"] == pd.Timestamp("2026-09-28T09:15:00Z")
    assert math.isnan(open_market["payout_0"]) and math.isnan(open_market["payout_1"])
    assert open_market["winner"] is None
    assert len(books) == SNAPSHOTS
    assert books["slug"].tolist() == ["mkt-a"] * 6 + ["mkt-b"]
    assert books["market_id"].tolist() == ["0xaaa"] * 6 + ["0xbbb"]
    assert books["outcome_index"].tolist() == [0, 1, 0, 1, 0, 1, 0]
    assert books["timestamp"].iloc[2] == pd.Timestamp("2026-09-28T09:00:01.500Z")


def test_read_books_when_crossed_locked_one_sided_or_zero_keeps_them_as_recorded(
    tmp_path: Path,
) -> None:
    _, books = read_both(tmp_path)

    crossed, locked, no_bid, zero_bid = (books.iloc[row] for row in (2, 3, 4, 5))
    assert (crossed["best_bid"], crossed["best_ask"]) == (0.45, 0.44)
    assert (locked["best_bid"], locked["best_ask"]) == (0.5, 0.5)
    assert math.isnan(no_bid["best_bid"]) and math.isnan(no_bid["bid_size"])
    assert (no_bid["best_ask"], no_bid["ask_size"]) == (0.4, 50.0)
    assert (zero_bid["best_bid"], zero_bid["bid_size"]) == (0.0, 25.0)
    assert math.isnan(zero_bid["best_ask"]) and math.isnan(zero_bid["ask_size"])


def test_read_books_when_rows_out_of_order_sorts_by_slug_time_and_outcome(
    tmp_path: Path,
) -> None:
    header, *rows = BOOKS_CSV.splitlines()
    _, books = read_both(tmp_path, books="\n".join([header, *reversed(rows)]) + "\n")

    assert books["slug"].tolist() == ["mkt-a"] * 6 + ["mkt-b"]
    assert books["outcome_index"].tolist() == [0, 1, 0, 1, 0, 1, 0]
    assert books["timestamp"].is_monotonic_increasing


def test_read_markets_when_payouts_split_has_no_winner_and_other_labels_are_kept(
    tmp_path: Path,
) -> None:
    text = (
        "market_id,slug,question,start,end,payout_yes,payout_No\n"
        "1,will-it,Will it?,2026-01-01,2026-01-02T00:00:00+01:00,0.5,0.5\n"
    )
    markets, _ = read_both(
        tmp_path,
        markets=text,
        books="timestamp,slug,side,best_bid,bid_size,best_ask,ask_size\n"
        "2026-01-01T10:00:00Z,will-it,no,0.4,1,0.6,1\n",
    )

    market = markets.iloc[0]
    assert (market["label_0"], market["label_1"]) == ("Yes", "No")
    assert (market["payout_0"], market["payout_1"], market["winner"]) == (0.5, 0.5, None)
    assert market["end"] == pd.Timestamp("2026-01-01T23:00:00Z")


def test_read_markets_when_winner_column_absent_names_the_outcome_paid_one(
    tmp_path: Path,
) -> None:
    text = "\n".join(line.rsplit(",", 1)[0] for line in MARKETS_CSV.splitlines()) + "\n"

    markets, _ = read_both(tmp_path, markets=text)

    assert markets["winner"].tolist() == ["Up", None]


@pytest.mark.parametrize("case", BAD_CASES, ids=[case.name for case in BAD_CASES])
def test_read_when_a_line_is_bad_names_file_line_field_and_value(
    tmp_path: Path, case: BadCase
) -> None:
    markets_text, books_text = with_bad_line(case)

    with pytest.raises(DataError) as raised:
        read_both(tmp_path, markets=markets_text, books=books_text)

    assert str(raised.value) == case.message


@pytest.mark.parametrize(
    ("books_text", "message"),
    [
        ("", "B.csv: the file is empty"),
        (
            BOOKS_CSV.splitlines()[0] + "\n",
            "B.csv: no snapshots (the file has a header but no rows)",
        ),
        (
            BOOKS_CSV.replace(",mid", ",mid,extra"),
            "B.csv: line 1: unknown column(s) extra (the header is "
            "timestamp,slug,side,best_bid,bid_size,best_ask,ask_size[,mid])",
        ),
        (
            BOOKS_CSV.replace("09:00:01.500Z,mkt-a,up", "09:00:01.5004Z,mkt-a,up"),
            "B.csv: line 4: timestamp 2026-09-28T09:00:01.5004Z is finer than a millisecond",
        ),
        (
            BOOKS_CSV.replace("0.39,100,", "0.39,inf,"),
            "B.csv: line 2: bid_size 'inf' is not a number >= 0 (or empty)",
        ),
    ],
    ids=["empty", "header only", "unknown column", "sub-millisecond", "infinite size"],
)
def test_read_books_when_file_shape_wrong_says_what_is_wrong(
    tmp_path: Path, books_text: str, message: str
) -> None:
    with pytest.raises(DataError) as raised:
        read_both(tmp_path, books=books_text)

    assert str(raised.value) == message


def test_read_markets_when_three_payout_columns_refuses_the_header(tmp_path: Path) -> None:
    text = MARKETS_CSV.replace("payout_down,", "payout_down,payout_flat,").replace(
        "1.0,0.0,Up", "1.0,0.0,0.0,Up"
    )

    with pytest.raises(DataError) as raised:
        read_both(tmp_path, markets=text)

    assert str(raised.value).startswith(
        "M.csv: line 1: a binary market needs 2 payout columns named payout_<outcome>, found "
        "payout_up, payout_down, payout_flat"
    )


def test_read_when_file_missing_or_not_gzip_says_so(tmp_path: Path) -> None:
    broken = tmp_path / "M.csv.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00 truncated")

    with pytest.raises(DataError, match=r"^nowhere\.csv: no such file$"):
        read_markets_csv(Path("nowhere.csv"))
    with pytest.raises(DataError, match=r"^M\.csv\.gz: not a readable gzip file"):
        read_markets_csv(broken)


def test_read_books_when_sample_sized_keeps_every_value(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    prices = np.round(rng.uniform(0, 1, size=(500, 2)), 3)
    lines = [BOOKS_CSV.splitlines()[0]]
    for row, (bid, ask) in enumerate(prices):
        stamp = pd.Timestamp("2026-09-28T09:00:00Z") + pd.Timedelta(milliseconds=137 * row)
        side = "UP" if row % 2 else "DOWN"
        lines.append(f"{stamp:%Y-%m-%dT%H:%M:%S.%f}Z,mkt-a,{side},{bid},{row},{ask},{row + 1},")

    _, books = read_both(tmp_path, books="\n".join(lines) + "\n")

    by_size = books.sort_values("bid_size")
    assert np.array_equal(by_size["best_bid"].to_numpy(), prices[:, 0])
    assert np.array_equal(by_size["best_ask"].to_numpy(), prices[:, 1])
    assert np.array_equal(by_size["ask_size"].to_numpy(), np.arange(1, 501, dtype=float))
