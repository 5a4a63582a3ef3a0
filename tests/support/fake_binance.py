"""A local Binance: the spot market-data endpoints ccxt's ``binance`` class calls.

It answers Binance's documented spot REST format (``/api/v3/exchangeInfo`` and
``/api/v3/klines``) on pytest-httpserver (127.0.0.1) with real hourly BTC prices from the
bundled Bitstamp sample.
"""

from __future__ import annotations

import json

import pandas as pd
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from marketbot.core.bars import normalize_ohlcv
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
