"""Small derived Polymarket CSV files (markets and books) and the bad variants of each.

``MARKETS_CSV`` has a resolved market (``mkt-a``, Up won) and an unresolved one (``mkt-b``);
``BOOKS_CSV`` gives ``mkt-a`` a normal book, then a crossed UP and a locked DOWN book, then a
one-sided UP (no bid) and a DOWN with a 0 bid and no ask, and ``mkt-b`` one snapshot.
``BAD_CASES`` changes one line of either file and names the exact message that must follow.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

MARKETS_CSV = """\
market_id,slug,question,start,end,payout_up,payout_down,winner
0xaaa,mkt-a,"Up or down, A?",2026-09-28T09:00:00Z,2026-09-28T09:15:00Z,1.0,0.0,Up
0xbbb,mkt-b,"Up or down, B?",2026-09-28T09:15:00Z,2026-09-28T09:30:00Z,,,
"""
BOOKS_CSV = """\
timestamp,slug,side,best_bid,bid_size,best_ask,ask_size,mid
2026-09-28T09:00:00.000Z,mkt-a,UP,0.39,100,0.40,200,0.395
2026-09-28T09:00:00.000Z,mkt-a,DOWN,0.59,100,0.60,200,0.595
2026-09-28T09:00:01.500Z,mkt-a,up,0.45,10,0.44,10,
2026-09-28T09:00:01.500Z,mkt-a,Down,0.5,10,0.5,10,0.5
2026-09-28T09:00:02.000Z,mkt-a,UP,,,0.4,50,
2026-09-28T09:00:02.000Z,mkt-a,DOWN,0,25,,,
2026-09-28T09:15:00.250Z,mkt-b,UP,0.5,1,0.51,1,0.505
"""
SNAPSHOTS = 7
TIME_RULE = "allowed: an ISO 8601 time, UTC unless it has an offset, e.g. 2026-09-28T09:15:00Z"


@dataclass(frozen=True)
class BadCase:
    """One line of one file replaced, and the error it must give."""

    name: str
    file: str  # "markets" or "books"
    line: int  # 1 is the header
    text: str
    message: str


def _book(line: int, text: str, name: str, message: str) -> BadCase:
    return BadCase(name, "books", line, text, f"B.csv: line {line}: {message}")


def _market(line: int, text: str, name: str, message: str) -> BadCase:
    return BadCase(name, "markets", line, text, f"M.csv: line {line}: {message}")


_A = '0xaaa,mkt-a,"Up or down, A?",2026-09-28T09:00:00Z'
BAD_CASES = (
    _book(
        4,
        "2026-09-28T09:00:01.500Z,mkt-a,up,0.45,10,1.2,10,",
        "price above 1",
        "best_ask 1.2 is outside [0, 1]",
    ),
    _book(
        4,
        "2026-09-28T09:00:01.500Z,mkt-a,up,-0.01,10,0.44,10,",
        "negative price",
        "best_bid -0.01 is outside [0, 1]",
    ),
    _book(
        4,
        "2026-09-28T09:00:01.500Z,mkt-a,up,abc,10,0.44,10,",
        "price not a number",
        "best_bid 'abc' is not a number in [0, 1] (or empty)",
    ),
    _book(
        4,
        "2026-09-28T09:00:01.500Z,mkt-a,up,0.45,-5,0.44,10,",
        "negative size",
        "bid_size -5 is negative (sizes are >= 0)",
    ),
    _book(
        4,
        "2026-09-28T09:00:01.500Z,mkt-a,up,0.45,,0.44,10,",
        "price without size",
        "bid_size is empty but best_bid is 0.45 (a side of the book is a price and a size, "
        "or both empty)",
    ),
    _book(
        4,
        "2026-09-28T09:00:01.500Z,mkt-a,LEFT,0.45,10,0.44,10,",
        "unknown side",
        "side 'LEFT' is not an outcome of mkt-a (Up or Down, in any case)",
    ),
    _book(
        4,
        "2026-09-28T09:00:01.500Z,mkt-z,up,0.45,10,0.44,10,",
        "slug not in the markets file",
        "slug 'mkt-z' is not in M.csv",
    ),
    _book(
        4,
        "2026-09-28T09:00:00Z,mkt-a,up,0.45,10,0.44,10,",
        "duplicate row",
        "mkt-a up at 2026-09-28T09:00:00Z is on line 2 already (one snapshot per outcome and time)",
    ),
    _book(
        4,
        "yesterday,mkt-a,up,0.45,10,0.44,10,",
        "bad timestamp",
        f"timestamp 'yesterday' is not a time ({TIME_RULE})",
    ),
    _book(
        4,
        "2026-09-28T09:00:01.500Z,mkt-a,up,0.45,10,0.44,10",
        "short row",
        "7 fields, the header (line 1) has 8",
    ),
    _book(
        1,
        "timestamp,slug,side,best_bid,bid_size,best_ask,mid",
        "missing column",
        "missing column(s) ask_size (the header is "
        "timestamp,slug,side,best_bid,bid_size,best_ask,ask_size[,mid])",
    ),
    _market(2, f"{_A},,1.0,0.0,Up", "empty end", f"end is empty ({TIME_RULE})"),
    _market(2, f"{_A},soon,1.0,0.0,Up", "bad end", f"end 'soon' is not a time ({TIME_RULE})"),
    _market(
        2,
        '0xaaa,mkt-a,"A?",2026-09-28T09:20:00Z,2026-09-28T09:15:00Z,1.0,0.0,Up',
        "start after end",
        "start 2026-09-28T09:20:00Z is after end 2026-09-28T09:15:00Z",
    ),
    _market(
        2,
        f"{_A},2026-09-28T09:15:00Z,0.6,0.6,",
        "payouts not summing to 1",
        "payout_up 0.6 + payout_down 0.6 = 1.2, not 1 (a resolved market's payouts sum to 1)",
    ),
    _market(
        2,
        f"{_A},2026-09-28T09:15:00Z,1.5,-0.5,Up",
        "payout outside [0, 1]",
        "payout_up 1.5 is outside [0, 1]",
    ),
    _market(
        2,
        f"{_A},2026-09-28T09:15:00Z,yes,0.0,Up",
        "payout not a number",
        "payout_up 'yes' is not a number in [0, 1] (or empty)",
    ),
    _market(
        2,
        f"{_A},2026-09-28T09:15:00Z,1.0,,Up",
        "one payout empty",
        "payout_down is empty but payout_up is 1.0 (both empty: unresolved; both given: resolved)",
    ),
    _market(
        2,
        f"{_A},2026-09-28T09:15:00Z,1.0,0.0,Down",
        "winner not paid",
        "winner Down but payout_down is 0.0 (the winner is paid 1)",
    ),
    _market(
        3,
        '0xaaa,mkt-c,"C?",2026-09-28T09:15:00Z,2026-09-28T09:30:00Z,,,',
        "market id twice",
        "market_id 0xaaa is on line 2 already (one row a market)",
    ),
)


def write_files(
    folder: Path, *, markets: str = MARKETS_CSV, books: str = BOOKS_CSV, gzipped: bool = False
) -> tuple[Path, Path]:
    """Write ``M.csv`` and ``B.csv`` (gzipped when asked, under the same names)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "M.csv", folder / "B.csv"
    for path, text in zip(paths, (markets, books), strict=True):
        data = text.encode()
        path.write_bytes(gzip.compress(data) if gzipped else data)
    return paths


def with_bad_line(case: BadCase) -> tuple[str, str]:
    """The markets and books texts with the case's line replaced."""
    texts = {"markets": MARKETS_CSV, "books": BOOKS_CSV}
    lines = texts[case.file].splitlines()
    lines[case.line - 1] = case.text
    texts[case.file] = "\n".join(lines) + "\n"
    return texts["markets"], texts["books"]
