"""A local Binance: the spot endpoints ccxt's ``binance`` class calls, in Binance's formats.

:class:`FakeBinance` answers the market-data endpoints (``/api/v3/exchangeInfo`` and
``/api/v3/klines``) on pytest-httpserver (127.0.0.1) with real hourly BTC prices from the
bundled Bitstamp sample. :class:`FakeBinanceSpot` is a whole spot account on a server of its
own: exchangeInfo, ticker/24hr, ticker/price, bookTicker, klines, order POST/GET/DELETE,
openOrders, allOrders, myTrades and account, HMAC-SHA256 signatures checked, Binance's error
codes (-1013, -2010, -2011, -2013, -2015, -1022), and faults to inject (429 with
Retry-After, 503, a connection dropped before or after the order is taken, an answer slower
than the client's timeout). It logs every request with its time by an injected clock, for
pacing and priority tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from marketbot.core.bars import normalize_ohlcv
from marketbot.core.clock import Clock, SystemClock
from tests.support.fake_binance_ledger import BinanceError, FakeOrder, Ledger, text
from tests.support.frames import SAMPLE_DIR

HOUR = pd.Timedelta(hours=1)
HOUR_MS = 3_600_000
PAIR = "BTC/USDT"
SPOT_ONLY = {"fetchMarkets": {"types": ["spot"]}}


def sample_bars(count: int = 2500) -> pd.DataFrame:
    """The first ``count`` bars of the bundled hourly BTC/USD sample (real prices)."""
    raw = pd.read_csv(SAMPLE_DIR / "btc_usd_1h_bitstamp.csv", nrows=count)
    return normalize_ohlcv(raw, where="btc_usd_1h_bitstamp.csv")


BARS = sample_bars()


def epoch_ms(moment: pd.Timestamp) -> int:
    return int(moment.value // 1_000_000)


def symbol_info(symbol: str, base: str, quote: str) -> dict[str, object]:
    """One entry of Binance's exchangeInfo ``symbols``, as the spot API documents it."""
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
             "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
             "stepSize": "0.00001000"},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
             "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }  # fmt: skip


EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": 1_700_000_000_000,
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ],
    "exchangeFilters": [],
    "symbols": [symbol_info("BTCUSDT", "BTC", "USDT"), symbol_info("ETHUSDT", "ETH", "USDT")],
}


class FakeBinance:
    """Binance's spot market-data endpoints on a local server, serving the given hourly bars."""

    def __init__(self, server: HTTPServer, bars: pd.DataFrame) -> None:
        self.server = server
        self.bars = bars
        self.open_ms = bars.index.asi8 // 1_000_000
        server.expect_request("/api/v3/exchangeInfo").respond_with_json(EXCHANGE_INFO)
        server.expect_request("/api/v3/klines").respond_with_handler(self.klines)

    def klines(self, request: Request) -> Response:
        if request.args.get("symbol") != "BTCUSDT":
            return self.error(400, -1121, "Invalid symbol.")
        if request.args.get("interval") != "1h":
            return self.error(400, -1120, "Invalid interval.")
        start = int(request.args.get("startTime", 0))
        end = int(request.args.get("endTime", 2**62))
        limit = min(int(request.args.get("limit", 500)), 1000)
        chosen = self.bars[(self.open_ms >= start) & (self.open_ms <= end)].iloc[:limit]
        return Response(json.dumps(self.rows(chosen)), content_type="application/json")

    @staticmethod
    def rows(bars: pd.DataFrame) -> list[list[object]]:
        """Klines exactly as Binance sends them: numbers as strings, times in ms."""
        return [
            [
                int(moment.value // 1_000_000),
                f"{bar.open:.8f}",
                f"{bar.high:.8f}",
                f"{bar.low:.8f}",
                f"{bar.close:.8f}",
                f"{bar.volume:.8f}",
                int(moment.value // 1_000_000) + HOUR_MS - 1,
                f"{bar.volume * bar.close:.8f}",
                int(bar.volume * 10),
                f"{bar.volume / 2:.8f}",
                f"{bar.volume * bar.close / 2:.8f}",
                "0",
            ]
            for moment, bar in zip(bars.index, bars.itertuples(), strict=True)
        ]

    @staticmethod
    def error(status: int, code: int, message: str) -> Response:
        body = json.dumps({"code": code, "msg": message})
        return Response(body, status=status, content_type="application/json")

    def kline_requests(self) -> list[dict[str, str]]:
        """The query of every klines request the server saw, in order."""
        return [
            dict(request.args) for request, _ in self.server.log if request.path.endswith("klines")
        ]

    def start_times(self) -> list[pd.Timestamp]:
        return [
            pd.Timestamp(int(query["startTime"]), unit="ms", tz="UTC")
            for query in self.kline_requests()
        ]


# --- The trading half: Binance spot's signed endpoints on a server of its own -------------

SPOT_SYMBOLS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT"), "BNBUSDT": ("BNB", "USDT")}
SPOT_ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                    "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"]  # fmt: skip


def spot_exchange_info() -> dict[str, object]:
    """exchangeInfo with the order types a stop-loss market order needs, and BNBUSDT."""
    symbols = []
    for name, (base, quote) in SPOT_SYMBOLS.items():
        info = symbol_info(name, base, quote)
        info["orderTypes"] = SPOT_ORDER_TYPES
        symbols.append(info)
    return {**EXCHANGE_INFO, "symbols": symbols}


class Fault(StrEnum):
    """What the fake does to the next matching request instead of answering it normally."""

    RATE_LIMITED = "429"  # HTTP 429 with Retry-After, nothing done
    SERVER_ERROR = "503"  # HTTP 503, nothing done
    DROP_BEFORE = "drop_before"  # the connection closed, nothing done
    DROP_AFTER_ACCEPT = "drop_after_accept"  # the request carried out, then the connection closed
    SLOW_AFTER_ACCEPT = "slow_after_accept"  # carried out, answered after `slow_seconds`


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake received: when (by its clock), method, path and parameters."""

    at: datetime
    method: str
    path: str
    params: dict[str, str]
    fault: str = ""


class FakeBinanceSpot:
    """Binance spot (public and signed endpoints) on its own server on 127.0.0.1.

    Signed requests must carry ``X-MBX-APIKEY`` and an HMAC-SHA256 ``signature`` of the
    query (or form body) under ``secret``; a wrong key is -2015, a wrong signature -1022.
    Orders live in a :class:`~tests.support.fake_binance_ledger.Ledger` that outlives any
    client; market orders fill at the price set with :meth:`set_price`.

    Args:
        api_key: The account's API key.
        secret: The account's secret.
        clock: Stamps the request log (a ManualClock in pacing tests); the system clock
            otherwise. Order times are its milliseconds too.
        balances: Free balances by asset.
        price: The BTCUSDT price; ETHUSDT is a 20th of it and BNBUSDT 300.
        fee_asset: ``received`` (Binance's default) or ``BNB``.
        bars: Hourly bars for klines.
    """

    def __init__(
        self,
        *,
        api_key: str,
        secret: str,
        clock: Clock | None = None,
        balances: dict[str, str] | None = None,
        price: str = "30000",
        fee_asset: str = "received",
        bars: pd.DataFrame = BARS,
    ) -> None:
        self.api_key, self.secret = api_key, secret
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.bars = bars
        self.open_ms = bars.index.asi8 // 1_000_000
        start = {"USDT": "10000", "BNB": "10"} if balances is None else balances
        btc = Decimal(price)
        self.ledger = Ledger(
            {asset: Decimal(amount) for asset, amount in start.items()},
            {"BTCUSDT": btc, "ETHUSDT": btc / 20, "BNBUSDT": Decimal(300)},
            SPOT_SYMBOLS,
            fee_asset=fee_asset,
        )
        self.requests: list[LoggedRequest] = []
        self.retry_after_seconds = 1
        self.slow_seconds = 0.5
        self._faults: list[tuple[str, str, Fault]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll, so that close() (shutdown) returns at once rather than in 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The server's root, ``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_urls(self) -> dict[str, str]:
        """ccxt's binance API roots pointed here (for ``api_urls=``)."""
        return {"public": f"{self.url}/api/v3", "private": f"{self.url}/api/v3"}

    def close(self) -> None:
        """Stop the server."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeBinanceSpot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def set_price(self, price: str, symbol: str = "BTCUSDT") -> None:
        """Move the market; resting stops and limits that it crosses fill."""
        with self._lock:
            self.ledger.set_price(symbol, Decimal(price), self.now_ms())

    def fail_next(self, method: str, path: str, fault: Fault) -> None:
        """Make the next ``method`` request to ``path`` (``/api/v3/order``) meet ``fault``."""
        with self._lock:
            self._faults.append((method, path, fault))

    def paths(self, method: str | None = None) -> list[str]:
        """``METHOD /path`` of every request received, in order."""
        return [
            f"{entry.method} {entry.path}"
            for entry in self.requests
            if method is None or entry.method == method
        ]

    def orders(self) -> list[FakeOrder]:
        """Every order the account has, in the order placed."""
        return list(self.ledger.orders)

    # -- one request ------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str], raw: str, key: str) -> Any:
        """Answer one request: ``(status, body, headers)`` or a :class:`Fault` to act out."""
        with self._lock:
            fault = self._take_fault(method, path)
            self.requests.append(
                LoggedRequest(self.clock.now(), method, path, params, fault.value if fault else "")
            )
            if fault in (Fault.RATE_LIMITED, Fault.SERVER_ERROR, Fault.DROP_BEFORE):
                return fault
            try:
                answer = self._route(method, path, params, raw, key)
            except BinanceError as exc:
                status = exc.status
                answer = (status, {"code": exc.code, "msg": exc.message})
            if fault is Fault.SLOW_AFTER_ACCEPT:
                return (fault, answer)
            return Fault.DROP_AFTER_ACCEPT if fault is Fault.DROP_AFTER_ACCEPT else answer

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for index, (want_method, want_path, fault) in enumerate(self._faults):
            if want_method == method and want_path == path:
                del self._faults[index]
                return fault
        return None

    def _route(self, method: str, path: str, params: dict[str, str], raw: str, key: str) -> Any:
        public = {
            "/api/v3/ping": lambda: {},
            "/api/v3/time": lambda: {"serverTime": self.now_ms()},
            "/api/v3/exchangeInfo": spot_exchange_info,
            "/api/v3/ticker/24hr": lambda: self._ticker(params),
            "/api/v3/ticker/price": lambda: self._price(params),
            "/api/v3/ticker/bookTicker": lambda: self._book(params),
            "/api/v3/klines": lambda: self._klines(params),
        }
        if method == "GET" and path in public:
            return 200, public[path]()
        self._check_signature(raw, key)
        ledger, now = self.ledger, self.now_ms()
        private = {
            ("GET", "/api/v3/account"): self._account,
            ("POST", "/api/v3/order"): lambda: self._placed(ledger.place(params, now)),
            ("GET", "/api/v3/order"): lambda: ledger.find(params).as_json(),
            ("DELETE", "/api/v3/order"): lambda: self._canceled(ledger.cancel(params, now)),
            ("GET", "/api/v3/openOrders"): lambda: self._listed(params, open_only=True),
            ("GET", "/api/v3/allOrders"): lambda: self._listed(params, open_only=False),
            ("GET", "/api/v3/myTrades"): lambda: [
                t for t in ledger.trades if t["symbol"] == params.get("symbol")
            ],
        }
        if (method, path) not in private:
            return 404, {"code": -1000, "msg": f"fake binance has no {method} {path}"}
        return 200, private[(method, path)]()

    def _check_signature(self, raw: str, key: str) -> None:
        if key != self.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload, sep, signature = raw.rpartition("&signature=")
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not sep or not hmac.compare_digest(signature, expected) or "timestamp=" not in raw:
            raise BinanceError(400, -1022, "Signature for this request is not valid.")

    def _price_of(self, params: dict[str, str]) -> tuple[str, Decimal]:
        symbol = params.get("symbol", "")
        if symbol not in self.ledger.prices:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return symbol, self.ledger.prices[symbol]

    def _ticker(self, params: dict[str, str]) -> dict[str, object]:
        symbol, last = self._price_of(params)
        now = self.now_ms()
        half_tick = Decimal("0.01")
        return {
            "symbol": symbol, "priceChange": "0.00000000", "priceChangePercent": "0.000",
            "weightedAvgPrice": text(last), "prevClosePrice": text(last),
            "lastPrice": text(last), "lastQty": "0.01000000",
            "bidPrice": text(last - half_tick), "bidQty": "1.00000000",
            "askPrice": text(last + half_tick), "askQty": "1.00000000",
            "openPrice": text(last), "highPrice": text(last), "lowPrice": text(last),
            "volume": "100.00000000", "quoteVolume": text(last * 100),
            "openTime": now - 86_400_000, "closeTime": now, "firstId": 1, "lastId": 100,
            "count": 100,
        }  # fmt: skip

    def _price(self, params: dict[str, str]) -> dict[str, str]:
        symbol, last = self._price_of(params)
        return {"symbol": symbol, "price": text(last)}

    def _book(self, params: dict[str, str]) -> dict[str, str]:
        symbol, last = self._price_of(params)
        return {"symbol": symbol, "bidPrice": text(last), "bidQty": "1.00000000",
                "askPrice": text(last), "askQty": "1.00000000"}  # fmt: skip

    def _klines(self, params: dict[str, str]) -> list[list[object]]:
        if params.get("symbol") not in self.ledger.prices:
            raise BinanceError(400, -1121, "Invalid symbol.")
        start = int(params.get("startTime", 0))
        # No bar opens after the fake's "now": an exchange knows no future (the bar still
        # forming is served whole, as Binance serves it partly formed).
        end = min(int(params.get("endTime", 2**62)), self.now_ms())
        limit = min(int(params.get("limit", 500)), 1000)
        chosen = self.bars[(self.open_ms >= start) & (self.open_ms <= end)].iloc[:limit]
        return FakeBinance.rows(chosen)

    def _account(self) -> dict[str, object]:
        return {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0,
            "sellerCommission": 0, "canTrade": True, "canWithdraw": True, "canDeposit": True,
            "brokered": False, "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": self.now_ms(), "accountType": "SPOT",
            "balances": self.ledger.balances(), "permissions": ["SPOT"], "uid": 354937868,
        }  # fmt: skip

    @staticmethod
    def _placed(order: FakeOrder) -> dict[str, object]:
        answer = order.as_json()
        answer["transactTime"] = order.time_ms
        answer["fills"] = order.fills
        return answer

    @staticmethod
    def _canceled(order: FakeOrder) -> dict[str, object]:
        answer = order.as_json()
        answer["origClientOrderId"] = order.client_order_id
        answer["transactTime"] = order.update_ms
        return answer

    def _listed(self, params: dict[str, str], *, open_only: bool) -> list[dict[str, object]]:
        symbol = params.get("symbol")
        return [
            order.as_json()
            for order in self.ledger.orders
            if (symbol is None or order.symbol == symbol)
            and (not open_only or order.status == "NEW")
        ]


class _Server(ThreadingHTTPServer):
    """The fake's server: a client that hung up (a timeout test) is not an error to print."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _handler_for(fake: FakeBinanceSpot) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Headers and body go out in separate writes: with Nagle on, each answer waits for
        # the client's delayed ACK (about 40 ms a request on Linux).
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # the fake keeps its own log

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            raw = body if method == "POST" and body else parts.query
            params = {key: values[-1] for key, values in parse_qs(raw).items()}
            answer = fake.handle(
                method, parts.path, params, raw, self.headers.get("X-MBX-APIKEY", "")
            )
            if isinstance(answer, tuple) and answer[0] is Fault.SLOW_AFTER_ACCEPT:
                # Past the client's timeout: it gives up while the order already exists.
                time.sleep(fake.slow_seconds)
                answer = answer[1]
            if answer in (Fault.DROP_BEFORE, Fault.DROP_AFTER_ACCEPT):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if answer is Fault.RATE_LIMITED:
                status, payload = 429, {"code": -1003, "msg": "Too many requests."}
                extra = {"Retry-After": str(fake.retry_after_seconds)}
            elif answer is Fault.SERVER_ERROR:
                status, payload, extra = 503, None, {}
            else:
                (status, payload), extra = answer, {}
            data = b"Service Unavailable" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header(
                "Content-Type", "text/plain" if payload is None else "application/json"
            )
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
