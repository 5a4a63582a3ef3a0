"""Synthetic OHLCV frames for tests: geometric Brownian motion with consistent bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"


def random_walk_frame(
    bars: int,
    *,
    seed: int = 0,
    start: str = "2020-01-01",
    freq: str = "1h",
    volatility: float = 0.01,
) -> pd.DataFrame:
    """Valid OHLCV bars (low <= open, close <= high) following a seeded random walk."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, bars)))
    open_ = np.empty(bars)
    open_[0] = 100.0
    open_[1:] = close[:-1] * np.exp(rng.normal(0.0, volatility / 4, bars - 1))
    spread = np.abs(rng.normal(0.0, volatility, bars))
    high = np.maximum(open_, close) * (1.0 + spread)
    low = np.minimum(open_, close) * (1.0 - spread)
    volume = rng.uniform(1.0, 100.0, bars)
    index = pd.date_range(start, periods=bars, freq=freq, tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def sample_daily_btc() -> pd.DataFrame:
    """The bundled daily BTC/USD bars as a raw frame (timestamp column, as in the CSV)."""
    return pd.read_csv(SAMPLE_DIR / "btc_usd_1d_bitstamp.csv")
