"""Property: any books file is read, stored and loaded back with every value exactly as written.

Batches overlap, so the store must keep the union of snapshots with the last-written values
(an import is an upsert), and a side left empty must come back empty, never 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketbot.sources.polymarket_book_csv import read_books_csv, read_markets_csv
from marketbot.store import Database, PolymarketBook, PolymarketBookRepository
from tests.support.book_csv_files import MARKETS_CSV

HEADER = "timestamp,slug,side,best_bid,bid_size,best_ask,ask_size"
START_MS = 1_790_586_000_000
SIDES = ("UP", "down")  # any case names the outcome
# Prices sit on the edges (0 and 1 are valid) as often as anywhere between.
prices_st = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0))
sizes_st = st.one_of(st.just(0.0), st.floats(0.0, 1e9))


@st.composite
def sides(draw: st.DrawFn) -> tuple[float, float] | None:
    """A price and its size, or None for an empty side."""
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    return draw(prices_st), draw(sizes_st)


Key = tuple[str, int, int]  # slug, outcome index, ms after START_MS
Row = tuple[tuple[float, float] | None, tuple[float, float] | None]


@st.composite
def batches(draw: st.DrawFn) -> dict[Key, Row]:
    keys = draw(
        st.sets(
            st.tuples(st.sampled_from(["mkt-a", "mkt-b"]), st.integers(0, 1), st.integers(0, 40)),
            min_size=1,
            max_size=12,
        )
    )
    return {key: (draw(sides()), draw(sides())) for key in sorted(keys)}


def csv_text(batch: dict[Key, Row]) -> str:
    lines = [HEADER]
    for (slug, outcome, step), (bid, ask) in batch.items():
        stamp = pd.Timestamp(START_MS + 250 * step, unit="ms", tz="UTC")
        cells = [f"{value!r}" for side in (bid, ask) for value in (side or ("", ""))]
        cells = ["" if cell == "''" else cell for cell in cells]
        lines.append(f"{stamp:%Y-%m-%dT%H:%M:%S.%f}Z,{slug},{SIDES[outcome]}," + ",".join(cells))
    return "\n".join(lines) + "\n"


def expected_values(batch: dict[Key, Row]) -> list[float]:
    values: list[float] = []
    for bid, ask in batch.values():
        for side in (bid, ask):
            values.extend(side if side is not None else (np.nan, np.nan))
    return values


@pytest.fixture
def markets(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "M.csv"
    path.write_text(MARKETS_CSV)
    return read_markets_csv(path)


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    with Database(f"sqlite:///{tmp_path / 'books.db'}") as database:
        database.migrate()
        yield database


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(written=st.lists(batches(), min_size=1, max_size=2))
def test_import_when_batches_overlap_loads_the_union_with_last_written_values(
    sqlite_database: Database,
    markets: pd.DataFrame,
    tmp_path: Path,
    written: list[dict[Key, Row]],
) -> None:
    # One database serves every example, so each example starts from an empty table.
    with sqlite_database.engine.begin() as connection:
        connection.execute(sa.delete(PolymarketBook))
    repository = PolymarketBookRepository(sqlite_database)

    for number, batch in enumerate(written):
        books_path = tmp_path / f"B{number}.csv"
        books_path.write_text(csv_text(batch))
        repository.import_frames(markets, read_books_csv(books_path, markets))
    _, loaded = repository.load_frames()

    union: dict[Key, Row] = {}
    for batch in written:
        union.update(batch)
    union = dict(sorted(union.items(), key=lambda item: (item[0][0], item[0][2], item[0][1])))
    keys = list(zip(loaded["slug"], loaded["outcome_index"], loaded["timestamp"], strict=True))
    assert keys == [
        (slug, outcome, pd.Timestamp(START_MS + 250 * step, unit="ms", tz="UTC"))
        for slug, outcome, step in union
    ]
    values = loaded[["best_bid", "bid_size", "best_ask", "ask_size"]].to_numpy().ravel()
    np.testing.assert_array_equal(values, np.array(expected_values(union)))
