"""A local Polymarket: Gamma and CLOB handlers on pytest-httpserver, answering from the samples.

Gamma is served under ``/gamma`` and the CLOB under ``/clob`` of one local server, in the
documented formats: ``/markets/{id}`` (404 when unknown), ``/markets?slug=``/``?id=`` and
``/events?slug=`` (``[]`` when unknown), ``/prices-history?market=&startTs=&endTs=
&fidelity=``, which refuses a span over 15 days with HTTP 400 like the real API, and
``/book?token_id=``: the token's order book as the CLOB gives it (prices and sizes as decimal
strings, bids listed from the lowest price, asks from the highest; 404 for a token without a
book).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "polymarket"
EVENT_SLUG = "microstrategy-sell-any-bitcoin-in-2025"
OPEN_MARKET_ID = "824952"
OPEN_MARKET_SLUG = "microstrategy-sells-any-bitcoin-by-december-31-2026"
CLOSED_MARKET_ID = "516926"
YES_TOKEN = "111128191581505463501777127559667396812474366956707382672202929745167742497287"
NO_TOKEN = "99807503632459517030616292055983105381849115736225256331133222076990620978808"
# Just after the CLOB sample's last point (2026-02-07 16:08:19 UTC).
NOW = datetime(2026, 2, 7, 16, 10, tzinfo=UTC)
MAX_SPAN_SECONDS = 15 * 86_400


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def sample_history() -> list[dict[str, Any]]:
    """The CLOB sample's points (the YES token of the open market)."""
    return list(load("clob_prices_history_interval-1d_response.json")["history"])


class FakePolymarket:
    """Serves Gamma and CLOB from the samples; tests may change ``history`` and ``markets``.

    Attributes:
        markets: Gamma market objects by id (the 20 closed 2020 markets and the event's 4).
        events: Gamma event objects.
        history: CLOB points ``{"t", "p"}`` per token id; the NO token is ``1 - p``.
        history_requests: Query arguments of every ``/prices-history`` request.
        books: Each token's book levels: ``{"bids": [(price, size), ...], "asks": [...]}``;
            tests change them between polls.
        book_requests: The token id of every ``/book`` request.
    """

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.events: list[dict[str, Any]] = load("gamma_events_response.json")
        self.markets: dict[str, dict[str, Any]] = {
            m["id"]: m for m in load("gamma_markets_response.json")
        }
        for event in self.events:
            for market in event["markets"]:
                self.markets[market["id"]] = market
        yes = sample_history()
        self.history: dict[str, list[dict[str, Any]]] = {
            YES_TOKEN: yes,
            NO_TOKEN: [{"t": p["t"], "p": round(1 - p["p"], 6)} for p in yes],
        }
        self.history_requests: list[dict[str, str]] = []
        self.books: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self.book_requests: list[str] = []
        server.expect_request("/gamma/markets").respond_with_handler(self._markets)
        server.expect_request(re.compile(r"^/gamma/markets/[^/]+$")).respond_with_handler(
            self._market
        )
        server.expect_request("/gamma/events").respond_with_handler(self._events)
        server.expect_request("/clob/prices-history").respond_with_handler(self._prices)
        server.expect_request("/clob/book").respond_with_handler(self._book)

    @property
    def gamma_url(self) -> str:
        return self.server.url_for("/gamma")

    @property
    def clob_url(self) -> str:
        return self.server.url_for("/clob")

    def gamma_requests(self, path: str) -> int:
        """How many requests Gamma got for this path (e.g. ``/markets/516926``)."""
        return sum(1 for request, _ in self.server.log if request.path == f"/gamma{path}")

    def fail_next(self, path: str, respond: Callable[[Any], Any]) -> None:
        """Answer the next request to ``path`` (e.g. ``/clob/prices-history``) differently."""
        respond(self.server.expect_oneshot_request(path))

    # -- handlers --------------------------------------------------------------------------

    @staticmethod
    def _json(payload: Any, status: int = 200) -> Response:
        return Response(json.dumps(payload), status=status, content_type="application/json")

    def _markets(self, request: Request) -> Response:
        slug, market_id = request.args.get("slug"), request.args.get("id")
        found = [
            copy.deepcopy(m)
            for m in self.markets.values()
            if (slug is not None and m["slug"] == slug) or m["id"] == market_id
        ]
        return self._json(found)

    def _market(self, request: Request) -> Response:
        market_id = request.path.rsplit("/", 1)[-1]
        if market_id not in self.markets:
            return self._json({"type": "not found error", "error": "id not found"}, 404)
        return self._json(copy.deepcopy(self.markets[market_id]))

    def _events(self, request: Request) -> Response:
        slug = request.args.get("slug")
        return self._json([copy.deepcopy(e) for e in self.events if e["slug"] == slug])

    def _prices(self, request: Request) -> Response:
        args = dict(request.args)
        self.history_requests.append(args)
        start, end = int(args["startTs"]), int(args["endTs"])
        if end - start > MAX_SPAN_SECONDS:
            return self._json(
                {"error": "invalid filters: 'startTs' and 'endTs' interval is too long"}, 400
            )
        points = [p for p in self.history.get(args["market"], []) if start <= p["t"] <= end]
        fidelity_minutes = int(args.get("fidelity", "1"))
        if fidelity_minutes > 1:  # the last point of each bucket of that many minutes
            buckets = {p["t"] // (60 * fidelity_minutes): p for p in points}
            points = list(buckets.values())
        return self._json({"history": points})

    def _book(self, request: Request) -> Response:
        token = request.args.get("token_id", "")
        self.book_requests.append(token)
        if token not in self.books:
            return self._json({"error": "No orderbook exists for the requested token id"}, 404)
        levels = self.books[token]
        bids = sorted(levels.get("bids", []))  # the CLOB's order: the best bid last
        asks = sorted(levels.get("asks", []), reverse=True)  # the best ask last
        return self._json(
            {
                "market": "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1",
                "asset_id": token,
                "timestamp": "1770480600000",
                "hash": "0x1d2c0c4e8b0e6d2b8f0e2a6a1e6c7d8f9a0b1c2d",
                "bids": [{"price": f"{p:g}", "size": f"{q:g}"} for p, q in bids],
                "asks": [{"price": f"{p:g}", "size": f"{q:g}"} for p, q in asks],
                "min_order_size": "5",
                "tick_size": "0.01",
                "neg_risk": False,
            }
        )
