"""Property: any sequence of upserts leaves the union of bars with the last-written values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketbot.store import CryptoPriceHistory, Database, PriceRepository

GRID = pd.date_range("2024-01-01", periods=24, freq="1h", tz="UTC", name="timestamp")
prices_st = st.floats(min_value=0.01, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def bar_batches(draw: st.DrawFn) -> pd.DataFrame:
    """A random, non-empty subset of the grid with random but valid OHLCV values."""
    positions = sorted(draw(st.sets(st.integers(0, len(GRID) - 1), min_size=1, max_size=len(GRID))))
    rows = []
    for _ in positions:
        open_, close = draw(prices_st), draw(prices_st)
        high = max(open_, close) * draw(st.floats(1.0, 2.0))
        low = min(open_, close) * draw(st.floats(0.5, 1.0))
        volume = draw(st.floats(0.0, 1e12, allow_nan=False))
        rows.append((open_, high, low, close, volume))
    return pd.DataFrame(
        rows, index=GRID[positions], columns=["open", "high", "low", "close", "volume"]
    )


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(bar_batches(), min_size=1, max_size=5))
def test_upsert_bars_when_batches_overlap_leaves_union_with_last_written_values(
    database: Database, batches: list[pd.DataFrame]
) -> None:
    # One database serves every example, so each example starts from an empty table.
    with database.engine.begin() as connection:
        connection.execute(sa.delete(CryptoPriceHistory))
    prices = PriceRepository(database)

    for batch in batches:
        prices.upsert_bars("test", "coin", "1h", batch)

    expected = pd.concat(batches)
    expected = expected[~expected.index.duplicated(keep="last")].sort_index()
    loaded = prices.load_bars("coin")
    assert loaded.index.equals(expected.index)
    np.testing.assert_array_equal(loaded.to_numpy(), expected.to_numpy())
