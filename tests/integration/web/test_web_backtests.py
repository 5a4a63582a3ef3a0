"""Backtests through the dashboard: queue a run, the worker saves it, the pages show it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.web.conftest import run_jobs, store_sample_bars


def test_backtest_when_run_through_a_job_is_saved_and_charted(
    client: TestClient, csrf: str
) -> None:
    store_sample_bars(client)

    queued = client.post(
        "/api/backtests/run",
        json={
            "strategy": "sma_crossover",
            "symbol": "bitcoin",
            "fee": "0.003",
            "start": "2024-06-01",
        },
    )
    assert queued.status_code == 202
    job_id = queued.json()["job_id"]
    assert client.get(f"/api/jobs/{job_id}").json()["status"] == "queued"

    (job,) = run_jobs(client)

    assert job.status == "done", job.error
    run_id = job.result["run_id"]
    listed = client.get("/api/backtests/list").json()
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == run_id
    detail = client.get(f"/api/backtests/{run_id}").json()
    assert detail["strategy"] == "sma_crossover"
    assert detail["settings"]["fee_rate"] == 0.003
    assert len(detail["trades"]) == detail["trade_count"]
    chart = client.get(f"/api/backtests/{run_id}/chart").json()
    assert chart["price"]["kind"] == "candles"
    assert len(chart["time"]) == len(chart["equity"]) == len(chart["buy_hold"])
    assert len(chart["markers"]) == 2 * detail["trade_count"]
    page = client.get(f"/backtests/{run_id}")
    assert page.status_code == 200
    assert 'data-chart="backtest-price"' in page.text
    report = client.get(f"/backtests/{run_id}/report")
    assert report.status_code == 200
    assert "attachment" in report.headers["content-disposition"]
    assert "<html" in report.text.lower()


def test_backtest_when_strategy_unknown_is_refused_naming_the_field(
    client: TestClient, csrf: str
) -> None:
    response = client.post(
        "/api/backtests/run", json={"strategy": "/etc/passwd.py", "symbol": "bitcoin"}
    )

    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == "body.strategy"
    assert client.get("/api/jobs/list").json()["total"] == 0


def test_backtest_when_body_has_wrong_type_or_extra_field_is_422_without_the_value(
    client: TestClient, csrf: str
) -> None:
    wrong = client.post(
        "/api/backtests/run",
        json={"strategy": "sma_crossover", "symbol": "bitcoin", "fee": "lots-of-fee-7731"},
    )
    extra = client.post(
        "/api/backtests/run",
        json={"strategy": "sma_crossover", "symbol": "bitcoin", "sneaky": "value-8842"},
    )

    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["field"] == "body.fee"
    assert set(wrong.json()["detail"][0]) == {"field", "message"}
    assert "lots-of-fee-7731" not in wrong.text
    assert extra.status_code == 422
    assert extra.json()["detail"][0]["field"] == "body.sneaky"
    assert "value-8842" not in extra.text


def test_backtest_when_symbol_not_stored_fails_the_job_in_one_line(
    client: TestClient, csrf: str
) -> None:
    client.post("/api/backtests/run", json={"strategy": "momentum", "symbol": "dogecoin"})

    (job,) = run_jobs(client)

    assert job.status == "failed"
    assert "dogecoin" in job.error
    assert "\n" not in job.error


def test_backtest_when_unknown_id_is_404(client: TestClient, csrf: str) -> None:
    assert client.get("/api/backtests/99").status_code == 404
    assert client.get("/backtests/99").status_code == 404
    assert client.post("/api/backtests/99/delete").status_code == 404
    assert client.get("/api/backtests/99999999999999999999").status_code == 422


BREAKOUT = """
from marketbot import Signals, Strategy


class Breakout(Strategy):
    def signals(self, frame, params):
        close = frame["close"]
        prior_high = close.shift(1).rolling(20).max()
        prior_low = close.shift(1).rolling(20).min()
        return Signals(entries_long=close > prior_high, exits_long=close < prior_low)
"""


def test_backtest_when_strategy_is_a_file_in_the_data_dir_runs_it_by_name(
    client: TestClient, csrf: str
) -> None:
    data_dir = client.app.state.web_context.data_dir  # type: ignore[attr-defined]
    (data_dir / "strategies").mkdir()
    (data_dir / "strategies" / "breakout.py").write_text(BREAKOUT)
    store_sample_bars(client)

    listed = client.get("/api/strategies/list").json()["items"]
    client.post(
        "/api/backtests/run",
        json={"strategy": "breakout.py", "symbol": "bitcoin", "start": "2024-01-01"},
    )
    (job,) = run_jobs(client)

    assert {"name": "breakout.py", "kind": "file"} in listed
    assert job.status == "done", job.error
    assert client.get(f"/api/backtests/{job.result['run_id']}").json()["strategy"] == "Breakout"
    assert "breakout.py" in client.get("/backtests").text


def test_backtest_when_form_gives_parameters_as_text_uses_them(
    client: TestClient, csrf: str
) -> None:
    store_sample_bars(client)

    client.post(
        "/api/backtests/run",
        json={"strategy": "sma_crossover", "symbol": "bitcoin", "params": "fast=7, slow=40",
              "start": "2024-01-01"},
    )  # fmt: skip
    (job,) = run_jobs(client)
    bad = client.post(
        "/api/backtests/run",
        json={"strategy": "sma_crossover", "symbol": "bitcoin", "params": "fast:7"},
    )

    assert job.status == "done", job.error
    params = client.get(f"/api/backtests/{job.result['run_id']}").json()["params"]
    assert (params["fast"], params["slow"]) == (7, 40)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "body.params"
    assert "fast:7" not in bad.text


def test_backtest_when_more_symbols_given_is_a_portfolio_run(client: TestClient, csrf: str) -> None:
    from marketbot.store.prices import PriceRepository
    from tests.support.frames import sample_daily_btc

    store_sample_bars(client)
    ether = sample_daily_btc()
    ether[["open", "high", "low", "close"]] /= 20
    PriceRepository(client.app.state.web_context.database).upsert_bars(  # type: ignore[attr-defined]
        "bitstamp", "ethereum", "1d", ether
    )

    client.post(
        "/api/backtests/run",
        json={"strategy": "momentum", "symbol": "bitcoin", "symbols": "ethereum",
              "max_positions": "1", "start": "2024-01-01"},
    )  # fmt: skip
    (job,) = run_jobs(client)

    assert job.status == "done", job.error
    run_id = job.result["run_id"]
    chart = client.get(f"/api/backtests/{run_id}/chart").json()
    assert chart["symbols"][0]["name"] == "bitcoin"
    assert "ethereum" in client.get(f"/api/backtests/{run_id}").json()["symbol"]
    assert client.get(f"/backtests/{run_id}").status_code == 200
    assert client.get(f"/backtests/{run_id}/report").status_code == 200
