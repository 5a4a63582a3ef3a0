"""No lookahead: changing bars after t never changes a trade that closed by t."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from marketbot import BacktestingEngine
from tests.support.frames import random_walk_frame

STRATEGY_PARAMS = st.sampled_from(
    [
        ("sma_crossover", {"fast": 3, "slow": 12}),
        ("sma_crossover", {"fast": 5, "slow": 20, "short": True}),
        ("momentum", {"lookback": 5, "entry_pct": 1.0}),
        ("mean_reversion", {"window": 10, "num_std": 1.0}),
    ]
)


@given(
    seed=st.integers(0, 10_000),
    cut_fraction=st.floats(0.2, 0.9),
    strategy=STRATEGY_PARAMS,
    stop_loss=st.sampled_from([None, 0.01, 0.03]),
    trailing_stop=st.sampled_from([None, 0.02]),
    take_profit=st.sampled_from([None, 0.04]),
    shock=st.floats(0.5, 2.0),
)
def test_trades_when_future_bars_change_closed_trades_are_unchanged(
    seed: int,
    cut_fraction: float,
    strategy: tuple[str, dict[str, object]],
    stop_loss: float | None,
    trailing_stop: float | None,
    take_profit: float | None,
    shock: float,
) -> None:
    frame = random_walk_frame(400, seed=seed)
    cut = int(len(frame) * cut_fraction)
    altered = frame.copy()
    rng = np.random.default_rng(seed + 1)
    factors = shock * np.exp(np.cumsum(rng.normal(0.0, 0.03, len(frame) - cut - 1)))
    for column in ("open", "high", "low", "close"):
        values = altered[column].to_numpy(copy=True)
        values[cut + 1 :] *= factors
        altered[column] = values

    name, params = strategy
    engine = BacktestingEngine()
    kwargs = {"stop_loss": stop_loss, "trailing_stop": trailing_stop, "take_profit": take_profit}
    original = engine.run_backtest(name, data=frame, params=params, **kwargs)  # type: ignore[arg-type]
    changed = engine.run_backtest(name, data=altered, params=params, **kwargs)  # type: ignore[arg-type]

    def closed_by_cut(trades: pd.DataFrame) -> pd.DataFrame:
        done = trades[(trades["exit_bar"] <= cut) & (trades["exit_reason"] != "end_of_data")]
        return done.reset_index(drop=True)

    pd.testing.assert_frame_equal(closed_by_cut(original.trades), closed_by_cut(changed.trades))
    np.testing.assert_array_equal(
        original.equity_curve.to_numpy()[: cut + 1], changed.equity_curve.to_numpy()[: cut + 1]
    )
