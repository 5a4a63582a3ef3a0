"""``marketbot polymarket ...`` end to end: a local Gamma and CLOB, a real SQLite data directory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.support.cli import isolated_data_dir, run_cli
from tests.support.fake_polymarket import (
    CLOSED_MARKET_ID,
    OPEN_MARKET_ID,
    OPEN_MARKET_SLUG,
    FakePolymarket,
)

SAMPLE_POINTS = 1439  # 1,440 in the CLOB sample, the last second twice
SAMPLE_DAYS = ["--start", "2026-02-06", "--end", "2026-02-07"]


@pytest.fixture
def polymarket(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakePolymarket]:
    fake = FakePolymarket(httpserver)
    isolated_data_dir(tmp_path, monkeypatch)
    monkeypatch.setenv("MARKETBOT_POLYMARKET_GAMMA_URL", fake.gamma_url)
    monkeypatch.setenv("MARKETBOT_POLYMARKET_CLOB_URL", fake.clob_url)
    # Local answers are instant; the default budget would make `update` wait for the window.
    monkeypatch.setenv("MARKETBOT_POLYMARKET_CALLS_PER_MINUTE", "10000")
    yield fake


def collect_open_market(capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run_cli(
        ["polymarket", "collect", "--market", OPEN_MARKET_SLUG, *SAMPLE_DAYS, "--fidelity", "1"],
        capsys,
    )
    assert code == 0, err
    return out


def test_collect_when_slug_given_stores_both_tokens_and_prints_a_summary(
    polymarket: FakePolymarket, capsys: pytest.CaptureFixture[str]
) -> None:
    out = collect_open_market(capsys)

    lines = out.strip().splitlines()
    assert lines[0].startswith(
        f"{OPEN_MARKET_SLUG}: {2 * SAMPLE_POINTS} points (Yes {SAMPLE_POINTS}, No "
        f"{SAMPLE_POINTS}), 2026-02-06 00:00 .. 2026-02-07 23:59 UTC"
    )
    assert lines[-1] == (
        f"collected 1 market(s), 2 token(s), {2 * SAMPLE_POINTS} points in 2 "
        "price-history request(s)"
    )
    assert {r["fidelity"] for r in polymarket.history_requests} == {"1"}


def test_collect_when_run_twice_then_list_shows_one_market_with_its_points(
    polymarket: FakePolymarket, capsys: pytest.CaptureFixture[str]
) -> None:
    collect_open_market(capsys)
    collect_open_market(capsys)

    code, out, err = run_cli(["polymarket", "list"], capsys)

    assert code == 0, err
    assert out.count(OPEN_MARKET_SLUG) == 1
    assert "Yes 0.23 / No 0.77" in out
    assert str(2 * SAMPLE_POINTS) in out
    assert "2026-02-06 16:09" in out and "2026-02-07 16:08" in out


def test_collect_when_market_closed_names_its_resolution(
    polymarket: FakePolymarket, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        ["polymarket", "collect", "--market", CLOSED_MARKET_ID, "--start", "2025-12-25"], capsys
    )

    assert code == 0, err
    assert "(closed, resolved No)" in out
    assert "2025-12-25 00:00 .. 2026-01-05 04:22 UTC" in out  # it stopped trading then
    code, out, _ = run_cli(["polymarket", "list"], capsys)
    assert "No 1 (won)" in out and "closed, complete" in out


def test_export_when_market_stored_writes_one_column_per_outcome(
    polymarket: FakePolymarket, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    collect_open_market(capsys)

    code, out, err = run_cli(["polymarket", "export", "--market", OPEN_MARKET_ID], capsys)
    rows = list(csv.reader(io.StringIO(out)))

    assert code == 0, err
    assert rows[0] == ["timestamp", "Yes", "No"]
    assert rows[1] == ["2026-02-06T16:09:17Z", "0.23", "0.77"]
    assert len(rows) == 1 + SAMPLE_POINTS
    target = tmp_path / "prices.csv"
    code, out, err = run_cli(
        ["polymarket", "export", "--market", OPEN_MARKET_SLUG, "--output", str(target)], capsys
    )
    assert code == 0, err
    assert f"exported {SAMPLE_POINTS} rows" in out
    assert target.read_text().splitlines()[0] == "timestamp,Yes,No"


def test_update_when_market_stored_brings_it_up_to_date(
    polymarket: FakePolymarket, capsys: pytest.CaptureFixture[str]
) -> None:
    collect_open_market(capsys)

    code, out, err = run_cli(["polymarket", "update", "--quiet"], capsys)

    assert code == 0, err
    # Everything the local CLOB has is stored already; the update asks from the last point on.
    assert out.strip().splitlines()[-1] == (
        "updated 1 market(s), 0 points; 0 complete market(s) skipped; 0 failed"
    )


def test_collect_when_slug_unknown_exits_1_with_one_clear_line(
    polymarket: FakePolymarket, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["polymarket", "collect", "--market", "no-such-market"], capsys)

    assert code == 1
    assert out == ""
    assert err.startswith(
        "error: Polymarket has no market or event with slug 'no-such-market' (asked "
        "Polymarket Gamma GET /events?slug=no-such-market"
    )
    assert len(err.strip().splitlines()) == 1


def test_collect_when_clob_refuses_exits_1_naming_market_and_endpoint(
    polymarket: FakePolymarket, capsys: pytest.CaptureFixture[str]
) -> None:
    polymarket.fail_next(
        "/clob/prices-history", lambda handler: handler.respond_with_data("gone", status=404)
    )

    code, _, err = run_cli(["polymarket", "collect", "--market", OPEN_MARKET_SLUG], capsys)

    assert code == 1
    assert f"market {OPEN_MARKET_SLUG!r}, outcome 'Yes'" in err
    assert "Polymarket CLOB GET /prices-history: HTTP 404" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "someday"], "error: --start 'someday': not a date"),
        (["--start", "2026-02-08", "--end", "2026-02-07"], "error: start 2026-02-08 00:00 is"),
    ],
)
def test_collect_when_dates_wrong_exits_1_naming_the_option(
    polymarket: FakePolymarket,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code, _, err = run_cli(["polymarket", "collect", "--market", OPEN_MARKET_SLUG, *args], capsys)

    assert code == 1
    assert err.startswith(message)


def test_list_and_export_when_nothing_stored_say_so(
    polymarket: FakePolymarket, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["polymarket", "list"], capsys)
    assert code == 0
    assert "no Polymarket markets stored" in out

    code, _, err = run_cli(["polymarket", "export", "--market", "nope"], capsys)
    assert code == 1
    assert "no Polymarket market 'nope' is stored; collect it first" in err
