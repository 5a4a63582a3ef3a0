"""``marketbot polymarket import-book`` and ``import-sample`` end to end, on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from marketbot.sources.polymarket_book_csv import read_books_csv, read_markets_csv
from marketbot.store import Database, PolymarketBookRepository
from tests.support.book_csv_files import BAD_CASES, BadCase, with_bad_line, write_files
from tests.support.cli import isolated_data_dir, run_cli

SMALL_SUMMARY = (
    "stored 2 market(s) (1 Up, 1 unresolved) and 7 book snapshot(s), "
    "2026-09-28 09:00:00 .. 2026-09-28 09:15:00 UTC from M.csv and B.csv"
)


def stored_rows(data_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    with (
        Database(f"sqlite:///{data_dir / 'marketbot.db'}") as database,
        database.engine.connect() as connection,
    ):
        return {
            table: [tuple(row) for row in connection.execute(sa.text(f"SELECT * FROM {table}"))]
            for table in ("polymarket_markets", "polymarket_books")
        }


@pytest.fixture(scope="module")
def stocked_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose SQLite file already holds the small files' markets and books."""
    data_dir = tmp_path_factory.mktemp("stocked") / "var"
    data_dir.mkdir()
    markets_path, books_path = write_files(data_dir.parent / "good")
    markets = read_markets_csv(markets_path)
    with Database(f"sqlite:///{data_dir / 'marketbot.db'}") as database:
        database.migrate()
        PolymarketBookRepository(database).import_frames(
            markets, read_books_csv(books_path, markets)
        )
    return data_dir


@pytest.fixture
def stocked(stocked_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MARKETBOT_DATA_DIR", str(stocked_data_dir))
    monkeypatch.delenv("MARKETBOT_DATABASE_URL", raising=False)
    yield stocked_data_dir


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_import_book_when_files_good_stores_them_and_prints_one_summary_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gzipped: bool,
) -> None:
    data_dir = isolated_data_dir(tmp_path, monkeypatch)
    markets, books = write_files(tmp_path / "files", gzipped=gzipped)

    code, out, err = run_cli(
        ["polymarket", "import-book", "--markets", str(markets), "--books", str(books)], capsys
    )

    assert (code, err) == (0, "")
    assert out == SMALL_SUMMARY + "\n"
    rows = stored_rows(data_dir)
    assert (len(rows["polymarket_markets"]), len(rows["polymarket_books"])) == (2, 7)


@pytest.mark.parametrize("case", BAD_CASES, ids=[case.name for case in BAD_CASES])
def test_import_book_when_a_line_is_bad_exits_1_with_one_line_and_stores_nothing(
    stocked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: BadCase
) -> None:
    before = stored_rows(stocked)
    markets_text, books_text = with_bad_line(case)
    markets, books = write_files(tmp_path, markets=markets_text, books=books_text)

    code, out, err = run_cli(
        ["polymarket", "import-book", "--markets", str(markets), "--books", str(books)], capsys
    )

    assert (code, out) == (1, "")
    assert err == f"error: {case.message}\n"
    assert stored_rows(stocked) == before


def test_import_sample_then_list_shows_each_market_with_its_book_snapshots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = isolated_data_dir(tmp_path, monkeypatch)
    expected = (
        "stored 18 market(s) (13 Up, 5 Down) and 38,333 book snapshot(s), "
        "2026-09-28 08:45:12 .. 2026-09-28 13:45:31 UTC "
        "(Resolved Markets, resolvedkit sample data, CC BY 4.0)\n"
    )

    imported = run_cli(["polymarket", "import-sample"], capsys)
    code, listed, err = run_cli(["polymarket", "list"], capsys)

    assert imported == (0, expected, "")
    assert (code, err) == (0, "")
    assert "book snapshots" in listed
    assert listed.count("btc-updown-15m-") == 18
    assert "2,032" in listed  # the first market's snapshots
    rows = stored_rows(data_dir)
    assert (len(rows["polymarket_markets"]), len(rows["polymarket_books"])) == (18, 38_333)
