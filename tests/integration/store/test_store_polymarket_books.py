"""PolymarketBookRepository on SQLite and PostgreSQL: one-transaction imports, upserts, loading."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from marketbot.core.errors import DataError
from marketbot.sources.polymarket_book_csv import read_books_csv, read_markets_csv
from marketbot.sources.polymarket_book_sample import read_sample
from marketbot.store import (
    Database,
    PolymarketBookRepository,
    PolymarketMarketInfo,
    PolymarketRepository,
)
from tests.support.book_csv_files import SNAPSHOTS, write_files


def small_frames(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    markets_path, books_path = write_files(folder)
    markets = read_markets_csv(markets_path)
    return markets, read_books_csv(books_path, markets)


def stored_rows(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of both tables, to see that a refused import changed nothing."""
    with database.engine.connect() as connection:
        return {
            table: [
                tuple(row)
                for row in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))
            ]
            for table in ("polymarket_markets", "polymarket_books")
        }


@pytest.fixture
def frames(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return small_frames(tmp_path / "files")


def test_import_frames_when_files_good_loads_back_the_same_frames(
    database: Database, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    repository = PolymarketBookRepository(database)

    summary = repository.import_frames(*frames)
    markets, books = repository.load_frames()

    assert (summary.markets, summary.snapshots) == (2, SNAPSHOTS)
    assert summary.line() == (
        "stored 2 market(s) (1 Up, 1 unresolved) and 7 book snapshot(s), "
        "2026-09-28 09:00:00 .. 2026-09-28 09:15:00 UTC"
    )
    pd.testing.assert_frame_equal(markets, frames[0])
    pd.testing.assert_frame_equal(books, frames[1])
    assert repository.markets_with_books() == ["mkt-a", "mkt-b"]
    assert repository.snapshot_counts() == {"0xaaa": 6, "0xbbb": 1}


def test_import_frames_when_paid_stores_a_closed_resolved_market_with_its_payouts(
    database: Database, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    PolymarketBookRepository(database).import_frames(*frames)

    markets = PolymarketRepository(database)
    paid, unpaid = markets.get_market("mkt-a"), markets.get_market("mkt-b")
    assert paid is not None and unpaid is not None
    assert paid.info.outcomes == ("Up", "Down")
    assert paid.info.outcome_prices == (1.0, 0.0)
    assert (paid.info.closed, paid.info.resolution_status) == (True, "resolved")
    assert paid.winning_outcome == "Up"
    assert paid.info.closed_time == pd.Timestamp("2026-09-28T09:15:00Z")
    assert unpaid.info.outcome_prices == ()
    assert (unpaid.info.closed, unpaid.info.resolution_status) == (False, None)
    assert unpaid.winning_outcome is None


def test_import_frames_when_run_twice_stores_nothing_twice(
    database: Database, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    repository = PolymarketBookRepository(database)
    repository.import_frames(*frames)
    first = stored_rows(database)

    repository.import_frames(*frames)

    again = stored_rows(database)
    assert len(again["polymarket_books"]) == SNAPSHOTS
    assert again["polymarket_books"] == first["polymarket_books"]
    assert len(again["polymarket_markets"]) == 2


def test_import_frames_when_a_value_changed_overwrites_that_snapshot(
    database: Database, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    repository = PolymarketBookRepository(database)
    repository.import_frames(*frames)
    markets, books = frames
    books = books.copy()
    books.loc[0, "best_ask"] = 0.41

    repository.import_frames(markets, books)

    _, loaded = repository.load_frames()
    assert loaded["best_ask"].iloc[0] == 0.41
    assert len(loaded) == SNAPSHOTS


def test_import_frames_when_the_database_refuses_a_row_keeps_what_was_stored(
    database: Database, frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    repository = PolymarketBookRepository(database)
    repository.import_frames(*frames)
    before = stored_rows(database)
    markets, books = frames
    # Past the reader's checks (a frame built by hand): the table's CHECK refuses it.
    changed = markets.assign(question="changed")
    bad = books.copy()
    bad.loc[len(bad) - 1, "best_ask"] = 1.5

    with pytest.raises(DataError, match=r"^the database rejected the import of 2 market\(s\)"):
        repository.import_frames(changed, bad)

    assert stored_rows(database) == before


def test_import_frames_when_slug_stored_for_another_market_refuses_it(
    database: Database, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    repository = PolymarketBookRepository(database)
    repository.import_frames(*frames)
    before = stored_rows(database)
    markets, books = frames
    renamed = markets.assign(market_id=markets["market_id"] + "-new")

    with pytest.raises(DataError) as raised:
        repository.import_frames(renamed, books.assign(market_id=books["market_id"] + "-new"))

    assert str(raised.value) == (
        "market mkt-a is stored already with market_id 0xaaa, not 0xaaa-new; nothing was imported"
    )
    assert stored_rows(database) == before


def test_import_frames_when_market_collected_from_gamma_keeps_its_token_ids(
    database: Database, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    gamma = PolymarketMarketInfo(
        market_id="0xaaa",
        condition_id="0xaaa",
        slug="mkt-a",
        question="Up or down, A?",
        event_slug="event-a",
        outcomes=("Up", "Down"),
        token_ids=("111", "222"),
        outcome_prices=(0.5, 0.5),
        volume=10.0,
        liquidity=5.0,
        start_date=None,
        end_date=None,
        closed=False,
        closed_time=None,
        resolution_status=None,
    )
    PolymarketRepository(database).upsert_market(gamma)

    PolymarketBookRepository(database).import_frames(*frames)

    stored = PolymarketRepository(database).get_market("mkt-a")
    assert stored is not None
    info = stored.info
    assert (info.token_ids, info.outcome_prices, info.volume) == (("111", "222"), (1.0, 0.0), 10.0)
    assert (info.event_slug, info.closed) == ("event-a", True)


def test_load_frames_when_slugs_given_loads_only_those_and_names_unknown_ones(
    database: Database, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    repository = PolymarketBookRepository(database)
    repository.import_frames(*frames)

    markets, books = repository.load_frames(["mkt-b"])

    assert markets["slug"].tolist() == ["mkt-b"]
    assert books["slug"].tolist() == ["mkt-b"]
    with pytest.raises(DataError) as raised:
        repository.load_frames(["mkt-b", "mkt-x"])
    assert str(raised.value).startswith("no order books stored for market(s) mkt-x; import")


def test_load_frames_when_nothing_stored_gives_empty_frames_of_the_right_shape(
    database: Database, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    markets, books = PolymarketBookRepository(database).load_frames()

    assert markets.empty and books.empty
    assert dict(markets.dtypes) == dict(frames[0].dtypes)
    assert dict(books.dtypes) == dict(frames[1].dtypes)


# -- the shipped sample --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A real SQLite file with the shipped sample imported once."""
    path = tmp_path_factory.mktemp("sample") / "marketbot.db"
    with Database(f"sqlite:///{path}") as database:
        database.migrate()
        PolymarketBookRepository(database).import_frames(*read_sample())
        yield database


def test_sample_when_imported_has_the_facts_the_issue_states(sample_database: Database) -> None:
    with sample_database.engine.connect() as connection:
        winners = dict(
            connection.execute(
                sa.text(
                    "SELECT winning_outcome, count(*) FROM polymarket_markets "
                    "WHERE resolution_status = 'resolved' GROUP BY winning_outcome"
                )
            ).all()
        )
        snapshots, crossed, locked = connection.execute(
            sa.text(
                "SELECT count(*), sum(best_bid > best_ask), sum(best_bid = best_ask) "
                "FROM polymarket_books"
            )
        ).one()

    assert winners == {"Up": 13, "Down": 5}
    assert (snapshots, crossed, locked) == (38_333, 12, 10)


def test_sample_when_loaded_gives_back_the_frames_read_from_the_files(
    sample_database: Database,
) -> None:
    markets, books = PolymarketBookRepository(sample_database).load_frames()
    expected_markets, expected_books = read_sample()

    pd.testing.assert_frame_equal(markets, expected_markets)
    pd.testing.assert_frame_equal(books, expected_books)
    assert len(markets) == 18
    assert books["timestamp"].min() == pd.Timestamp("2026-09-28T08:45:12.649Z")
