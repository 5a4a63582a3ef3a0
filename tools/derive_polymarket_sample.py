"""Derive marketbot's shipped Polymarket sample from resolvedkit's sample data.

resolvedkit 0.1.0 (PyPI; code MIT, sample data CC BY 4.0 from Resolved Markets) ships
``resolvedkit/sample_data/markets.parquet`` and ``books.parquet``: 18 settled "Bitcoin Up or
Down" 15-minute markets and their order books (20 levels a side, one snapshot per side per
second). This script keeps the top level of each book and writes the two derived CSV files
that ``marketbot polymarket import-book`` reads, gzipped without a name or time in the
header, so that running it again gives the same bytes:

    python tools/derive_polymarket_sample.py MARKETS.parquet BOOKS.parquet OUT_DIR

It needs pyarrow (``pip install pyarrow``), which marketbot itself does not depend on.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
import pandas as pd

MARKETS_FILE = "btc_15m_updown_markets.csv"
BOOKS_FILE = "btc_15m_updown_top_of_book.csv"


def iso_ms(milliseconds: pd.Series) -> pd.Series:
    """Epoch milliseconds as ``2026-09-28T08:45:12.649Z``."""
    times = pd.to_datetime(milliseconds, unit="ms", utc=True)
    return times.dt.strftime("%Y-%m-%dT%H:%M:%S.") + (milliseconds % 1000).map("{:03d}Z".format)


def iso_s(milliseconds: pd.Series) -> pd.Series:
    """Epoch milliseconds on whole seconds as ``2026-09-28T09:00:00Z``."""
    return pd.to_datetime(milliseconds, unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def top(levels: pd.Series) -> pd.Series:
    """Element 0 of each level list; NaN for an empty side."""
    return levels.map(lambda values: float(values[0]) if len(values) else np.nan)


def derive_markets(markets: pd.DataFrame) -> pd.DataFrame:
    """``market_id,slug,question,start,end,payout_up,payout_down,winner`` in start order."""
    markets = markets.sort_values("start_ts", kind="stable")
    winner = np.where(markets["payout_up"] >= markets["payout_down"], "Up", "Down")
    return pd.DataFrame(
        {
            "market_id": markets["market_id"],
            "slug": markets["slug"],
            "question": markets["question"],
            "start": iso_s(markets["start_ts"]),
            "end": iso_s(markets["end_ts"]),
            "payout_up": markets["payout_up"],
            "payout_down": markets["payout_down"],
            "winner": winner,
        }
    )


def derive_books(books: pd.DataFrame, markets: pd.DataFrame) -> pd.DataFrame:
    """``timestamp,slug,side,best_bid,bid_size,best_ask,ask_size,mid``, by market and time."""
    slugs = dict(zip(markets["market_id"], markets["slug"], strict=True))
    starts = dict(zip(markets["market_id"], markets["start_ts"], strict=True))
    books = books.assign(_start=books["market_id"].map(starts))
    books = books.sort_values(["_start", "ts", "side"], kind="stable")
    bid, ask = top(books["bid_px"]), top(books["ask_px"])
    return pd.DataFrame(
        {
            "timestamp": iso_ms(books["ts"]),
            "slug": books["market_id"].map(slugs),
            "side": books["side"],
            "best_bid": bid,
            "bid_size": top(books["bid_sz"]),
            "best_ask": ask,
            "ask_size": top(books["ask_sz"]),
            "mid": ((bid + ask) / 2).round(6),
        }
    )


def write_gzipped(frame: pd.DataFrame, path: Path) -> None:
    """The frame as CSV, gzipped with no file name or time in the header (reproducible)."""
    text = frame.to_csv(index=False, lineterminator="\n")
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        out.write(text.encode("utf-8"))


def main() -> None:
    """Read the two parquet files, write the two gzipped CSV files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("markets", type=Path, help="resolvedkit's markets.parquet")
    parser.add_argument("books", type=Path, help="resolvedkit's books.parquet")
    parser.add_argument("out_dir", type=Path, help="where the .csv.gz files go")
    args = parser.parse_args()
    markets = pd.read_parquet(args.markets)
    books = pd.read_parquet(args.books)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_gzipped(derive_markets(markets), args.out_dir / f"{MARKETS_FILE}.gz")
    write_gzipped(derive_books(books, markets), args.out_dir / f"{BOOKS_FILE}.gz")


if __name__ == "__main__":
    main()
