"""``make screenshots``: a PNG of every dashboard page on demo data, for docs/screenshots/.

Run by hand (not part of ``make test``): ``python -m tests.integration.web.screenshots DIR``.
It serves the dashboard on 127.0.0.1 with a temporary data directory holding the bundled
sample bars, makes a few runs through the API (backtests, a comparison, an optimisation with
walk-forward), a journal entry, an alert, a demo key and a bot command, then photographs
each page in chromium with everything off 127.0.0.1 blocked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.integration.web.browser import fenced_browser
from tests.integration.web.conftest import PASSWORD, USERNAME
from tests.integration.web.live_server import live_dashboard

PAGES = {
    "bot": "/bot",
    "backtests": "/backtests",
    "backtest": "/backtests/{backtest}",
    "strategy_comparison": "/strategy_comparison?runs={runs}",
    "optimizations": "/optimizations",
    "optimization": "/optimizations/{optimization}",
    "trade_journal": "/trade_journal",
    "data": "/data",
    "api_keys": "/api_keys",
    "alerts": "/alerts",
    "jobs": "/jobs",
    "login": "/login",
}


def signed_in(base: str) -> httpx.Client:
    """An API client with a session cookie and its CSRF token."""
    client = httpx.Client(base_url=base, timeout=60)
    client.post("/login", data={"username": USERNAME, "password": PASSWORD})
    page = client.get("/jobs").text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    if match is None:
        raise RuntimeError("no CSRF token: the sign-in failed")
    client.headers["X-CSRF-Token"] = match.group(1)
    return client


def finished(client: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    """Wait for the job a 202 answer queued; its result."""
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] == "done":
            return dict(job["result"])
        if job["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
        time.sleep(1)
    raise RuntimeError(f"job {job_id} did not finish in 10 minutes")


def demo_data(client: httpx.Client) -> dict[str, str]:
    """Runs, notes, an alert, a key and a command; the ids the page URLs need."""
    backtest = finished(client, client.post("/api/backtests/run", json={
        "strategy": "sma_crossover", "symbol": "bitcoin", "start": "2023-01-01"}))  # fmt: skip
    comparison = finished(client, client.post("/api/strategies/compare", json={
        "items": [str(backtest["run_id"]), "momentum", "mean_reversion"]}))  # fmt: skip
    optimization = finished(client, client.post("/api/optimizations/run", json={
        "strategy": "sma_crossover", "symbol": "bitcoin", "start": "2020-01-01",
        "grid": {"fast": "5:30:5", "slow": "40,60,80,100,150"},
        "in_sample": "730d", "out_of_sample": "180d"}))  # fmt: skip
    client.post("/api/trade_journal/save", json={
        "symbol": "bitcoin", "strategy": "sma_crossover",
        "trade_ref": f"run:{backtest['run_id']}:1",
        "entry_reason": "fast SMA crossed above the slow one", "confidence": 6,
        "exit_reason": "crossed back", "lessons": "the trend held longer than the signal",
        "rating": 4})  # fmt: skip
    client.post("/api/alerts/create", json={
        "name": "BTC above 100k", "kind": "price", "subject": "bitcoin", "metric": "close",
        "op": ">", "threshold": 100000})  # fmt: skip
    client.post("/api/keys/save", json={
        "exchange": "binance", "api_key": "demo-key-not-real-A1B2",
        "secret": "demo-secret"})  # fmt: skip
    client.post("/api/bot/commands", json={
        "kind": "pause", "reason": "reviewing the week's trades", "confirm": True})  # fmt: skip
    return {
        "backtest": str(backtest["run_id"]),
        "runs": ",".join(str(run) for run in comparison["runs"]),
        "optimization": str(optimization["optimization_id"]),
    }


def paper_bot_replay(data_dir: Path) -> None:
    """A finished paper bot run (2024 to mid-2025) for the bot page, as a user starts one."""
    marketbot = Path(sys.executable).with_name("marketbot")
    env = {**os.environ, "MARKETBOT_DATA_DIR": str(data_dir)}
    env.pop("MARKETBOT_DATABASE_URL", None)
    subprocess.run(
        [str(marketbot), "run", "--strategy", "sma_crossover", "--symbol", "bitcoin",
         "--replay", "2024-01-01", "2025-07-04", "--speed", "0"],
        env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip


def main(target: Path) -> None:
    """Write one PNG per page into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with live_dashboard(root / "data") as base:
            paper_bot_replay(root / "data")
            client = signed_in(base)
            try:
                ids = demo_data(client)
            finally:
                client.close()
            with fenced_browser(root / "profile") as (page, fence):
                page.goto(f"{base}/login")
                page.screenshot(path=target / "login.png")
                page.fill("input[name=username]", USERNAME)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/")
                for name, path in PAGES.items():
                    if name == "login":
                        continue
                    page.goto(base + path.format(**ids))
                    page.wait_for_load_state("networkidle")
                    page.wait_for_timeout(500)
                    page.screenshot(path=target / f"{name}.png", full_page=True)
            if fence.problems():
                raise RuntimeError("; ".join(fence.problems()))
    print(f"wrote {len(PAGES)} screenshots to {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
