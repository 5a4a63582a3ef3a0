"""The shipped Polymarket order-book sample (``marketbot/assets/polymarket``).

Eighteen settled "Bitcoin Up or Down" 15-minute markets and the top of their books, derived
from Resolved Markets' resolvedkit sample data (CC BY 4.0; see the NOTICE beside the files).
"""

from __future__ import annotations

from importlib import resources
from typing import Final

import pandas as pd

from marketbot.sources.polymarket_book_csv import read_books_csv, read_markets_csv

__all__ = ["SAMPLE_BOOKS", "SAMPLE_MARKETS", "read_sample"]

SAMPLE_MARKETS: Final = "btc_15m_updown_markets.csv.gz"
SAMPLE_BOOKS: Final = "btc_15m_updown_top_of_book.csv.gz"
_SAMPLE_FOLDER: Final = ("assets", "polymarket")


def read_sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sample's normalised markets and books frames (read and validated like any file).

    Raises:
        DataError: the installed sample files are missing or damaged.
    """
    folder = resources.files("marketbot").joinpath(*_SAMPLE_FOLDER)
    # as_file: a real path even when the package is imported from a zip.
    with (
        resources.as_file(folder.joinpath(SAMPLE_MARKETS)) as markets_path,
        resources.as_file(folder.joinpath(SAMPLE_BOOKS)) as books_path,
    ):
        markets = read_markets_csv(markets_path)
        return markets, read_books_csv(books_path, markets)
