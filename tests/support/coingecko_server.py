"""A local CoinGecko: answers market_chart, market_chart/range and ohlc from real saved points.

It runs on pytest-httpserver (a real HTTP server on 127.0.0.1) and answers in CoinGecko's
documented formats, from the real ``market_chart`` answer in ``tests/fixtures/coingecko``.
Like CoinGecko, it answers a range of more than 90 days with daily points only.
Faults are queued per path: the next matching requests get them before the normal answer.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FIXTURE = Path(__file__).parents[1] / "fixtures" / "coingecko"
SAMPLE = FIXTURE / "bitcoin_market_chart_usd_30d_2021-04-08.json"
# The sample was saved at its last point's time: that is "now" for the server and the tests.
SAMPLE_NOW = pd.Timestamp("2021-04-08T11:45:11Z")
DAY_MS = 86_400_000


def load_sample() -> dict[str, list[list[float]]]:
    """The saved market_chart answer."""
    data: dict[str, list[list[float]]] = json.loads(SAMPLE.read_text())
    return data


@dataclass
class Fault:
    """One faulty answer: a status with a body, and headers."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class LoggedRequest:
    """What the server received."""

    path: str
    args: dict[str, str]
    headers: dict[str, str]


class FakeCoinGecko:
    """Serves one coin (``bitcoin``) from the sample; any other coin id is a 404."""

    def __init__(self, server: HTTPServer, coin: str = "bitcoin") -> None:
        self.server = server
        self.coin = coin
        self.sample = load_sample()
        self.requests: list[LoggedRequest] = []
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        server.expect_request(re.compile(r"^/api/v3/coins/.*")).respond_with_handler(self._handle)

    @property
    def base_url(self) -> str:
        """The API root to configure (``MARKETBOT_COINGECKO_URL``)."""
        return self.server.url_for("/api/v3")

    def fail_next(self, endpoint: str, *faults: Fault) -> None:
        """Answer the next requests to ``endpoint`` (``market_chart``, ...) with ``faults``."""
        self.faults[endpoint].extend(faults)

    def _handle(self, request: Request) -> Response:
        self.requests.append(LoggedRequest(request.path, dict(request.args), dict(request.headers)))
        prefix = f"/api/v3/coins/{self.coin}/"
        if not request.path.startswith(prefix):
            return Response(
                json.dumps({"error": "coin not found"}), 404, mimetype="application/json"
            )
        endpoint = request.path[len(prefix) :]
        if self.faults[endpoint]:
            fault = self.faults[endpoint].popleft()
            return Response(
                fault.body, fault.status, headers=fault.headers, mimetype=fault.content_type
            )
        if endpoint == "market_chart":
            days = float(request.args["days"])
            start_ms = (SAMPLE_NOW - pd.Timedelta(days=days)).value // 1_000_000
            return self._json(self._chart(start_ms, SAMPLE_NOW.value // 1_000_000))
        if endpoint == "market_chart/range":
            start_ms = int(request.args["from"]) * 1000
            end_ms = int(request.args["to"]) * 1000
            chart = self._chart(start_ms, end_ms)
            if end_ms - start_ms > 90 * DAY_MS:
                chart = self._daily(chart)  # CoinGecko answers ranges over 90 days daily
            return self._json(chart)
        if endpoint == "ohlc":
            return self._json(self.ohlc_4h())
        return Response("{}", 404, mimetype="application/json")

    @staticmethod
    def _json(body: Any) -> Response:
        return Response(json.dumps(body), 200, mimetype="application/json")

    def _chart(self, start_ms: int, end_ms: int) -> dict[str, list[list[float]]]:
        return {
            key: [point for point in points if start_ms <= point[0] <= end_ms]
            for key, points in self.sample.items()
        }

    @staticmethod
    def _daily(chart: dict[str, list[list[float]]]) -> dict[str, list[list[float]]]:
        """The first point of each UTC day, as CoinGecko's daily granularity gives."""
        return {
            key: [
                point
                for i, point in enumerate(points)
                if i == 0 or int(point[0]) // DAY_MS != int(points[i - 1][0]) // DAY_MS
            ]
            for key, points in chart.items()
        }

    def ohlc_4h(self) -> list[list[float]]:
        """4-hour candles of the sample's prices, stamped at their close, as CoinGecko does."""
        prices = self.sample["prices"]
        step = 4 * 3600 * 1000
        candles: dict[int, list[float]] = {}
        for stamp, price in prices:
            close_ms = -(-int(stamp) // step) * step
            candle = candles.setdefault(close_ms, [price, price, price, price])
            candle[1] = max(candle[1], price)
            candle[2] = min(candle[2], price)
            candle[3] = price
        return [[float(close_ms), *candle] for close_ms, candle in sorted(candles.items())]


def point_settings_at(fake: FakeCoinGecko, monkeypatch: Any) -> None:
    """Send the CLI's CoinGecko calls to ``fake``, without the demo plan's limits.

    The sample is from 2021, beyond the plan's 365 days from the real now, and bringing it up
    to now takes about 25 requests: neither limit may make a test wait or skip.
    """
    monkeypatch.setenv("MARKETBOT_COINGECKO_URL", fake.base_url)
    monkeypatch.setenv("MARKETBOT_COINGECKO_HISTORY_DAYS", "0")
    monkeypatch.setenv("MARKETBOT_COINGECKO_CALLS_PER_MINUTE", "600")
