"""Strategy contract: parameters, built-in signals on hand-made prices, loading user classes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketbot.core.errors import ConfigError, StrategyError
from marketbot.strategies.base import Parameter
from marketbot.strategies.builtin import MeanReversion, Momentum, SmaCrossover
from marketbot.strategies.indicators import rolling_mean_nb, rolling_std_nb
from marketbot.strategies.loader import builtin_strategies, load_strategy


def closes_frame(closes: list[float]) -> pd.DataFrame:
    close = np.asarray(closes, dtype=float)
    index = pd.date_range("2024-01-01", periods=len(close), freq="1D", tz="UTC")
    return pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )


def test_builtin_strategies_when_listed_have_the_three_names() -> None:
    assert list(builtin_strategies()) == ["sma_crossover", "momentum", "mean_reversion"]


def test_resolve_params_when_no_overrides_gives_defaults() -> None:
    assert SmaCrossover().resolve_params() == {"fast": 10, "slow": 30, "short": False}


def test_resolve_params_when_cli_text_given_converts_types() -> None:
    params = SmaCrossover().resolve_params({"fast": "5", "slow": "20", "short": "true"})
    assert params == {"fast": 5, "slow": 20, "short": True}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"speed": 3}, "has no parameter 'speed'"),
        ({"fast": "ten"}, "fast='ten': expected int"),
        ({"fast": 2.5}, "expected int"),
        ({"fast": 1}, "must be >= 2"),
        ({"slow": 5000}, "must be <= 2000"),
        ({"fast": 30, "slow": 20}, "fast (30) must be less than slow (20)"),
        ({"short": "maybe"}, "expected bool"),
    ],
)
def test_resolve_params_when_invalid_raises_config_error_naming_it(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=pytest.importorskip("re").escape(message)):
        SmaCrossover().resolve_params(overrides)


def test_parameter_when_choices_declared_rejects_other_values() -> None:
    parameter = Parameter("mode", "fast", choices=("fast", "slow"))
    assert parameter.coerce("slow") == "slow"
    with pytest.raises(ConfigError, match="must be one of fast, slow"):
        parameter.coerce("medium")


def test_rolling_mean_when_window_three_matches_hand_sums() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    out = rolling_mean_nb(values, 3)
    assert np.isnan(out[:2]).all()
    # (1+2+3)/3 = 2, (2+3+4)/3 = 3, (3+4+10)/3 = 17/3
    np.testing.assert_allclose(out[2:], [2.0, 3.0, 17.0 / 3.0], rtol=1e-15)


def test_rolling_mean_when_long_series_matches_pandas_to_rounding() -> None:
    values = np.random.default_rng(1).lognormal(10.0, 1.0, 200_000)
    expected = pd.Series(values).rolling(50).mean().to_numpy()
    np.testing.assert_allclose(rolling_mean_nb(values, 50), expected, rtol=1e-12)


def test_rolling_mean_when_a_random_walk_ends_flat_equals_the_exact_window_sum() -> None:
    # 300 walks in whole cents to 8 decimals, then at least a window of one price: the
    # running sum, one compensated addition of each bar's change, ends exactly at the
    # correctly rounded sum of the window (math.fsum) divided by the window in every walk,
    # and so at the price wherever that division gives it back (274 walks). Adding the
    # entering and the leaving value as two compensated steps missed the exact sum in 32
    # of these walks and ended at the price in 247.
    rng = np.random.default_rng(11)
    at_price = 0
    for _ in range(300):
        window = int(rng.integers(2, 120))
        walk = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, int(rng.integers(200, 3000)))))
        walk = np.round(walk, int(rng.integers(0, 9)))
        flat = np.full(window + int(rng.integers(0, 50)), walk[-1])
        values = np.concatenate([walk, flat])
        mean = rolling_mean_nb(values, window)[-1]
        assert mean == math.fsum(values[-window:]) / window
        at_price += mean == walk[-1]
    assert at_price == 274


def test_rolling_std_when_window_four_matches_sample_std() -> None:
    values = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    out = rolling_std_nb(values, 4)
    expected = pd.Series(values).rolling(4).std(ddof=1).to_numpy()
    np.testing.assert_allclose(out[3:], expected[3:], rtol=1e-12)


def test_sma_crossover_when_fast_crosses_above_and_below_signals_on_those_bars() -> None:
    # fast=2, slow=3. closes: 5 5 5 4 3 6 9 3 1
    # sma2:  -  5  5  4.5 3.5 4.5 7.5 6  2
    # sma3:  -  -  5  4.67 4  4.33 6  6  4.33
    # bar 3: 4.5 < 4.67 after 5 >= 5 -> cross down; bar 5: 4.5 > 4.33 after 3.5 <= 4 -> cross
    # up; bar 7: 6 == 6 is not below; bar 8: 2 < 4.33 after 6 >= 6 -> cross down.
    frame = closes_frame([5, 5, 5, 4, 3, 6, 9, 3, 1])
    signals = SmaCrossover().signals(frame, {"fast": 2, "slow": 3, "short": False})
    assert np.flatnonzero(signals.entries_long).tolist() == [5]
    assert np.flatnonzero(signals.exits_long).tolist() == [3, 8]
    assert signals.entries_short is None


def test_sma_crossover_when_short_enabled_mirrors_entries_as_short_exits() -> None:
    frame = closes_frame([5, 5, 5, 4, 3, 6, 9, 3, 1])
    signals = SmaCrossover().signals(frame, {"fast": 2, "slow": 3, "short": True})
    assert signals.entries_short is not None and signals.exits_short is not None
    np.testing.assert_array_equal(signals.entries_short, signals.exits_long)
    np.testing.assert_array_equal(signals.exits_short, signals.entries_long)


def test_momentum_when_roc_crosses_thresholds_enters_and_exits() -> None:
    # lookback 2: roc[t] = 100 (c[t]/c[t-2] - 1). closes 100 100 100 110 120 118 110
    # roc: - - 0 10 20 7.27 -8.33 -> entries (>5) at 3,4,5; exits (<0) at 6.
    frame = closes_frame([100, 100, 100, 110, 120, 118, 110])
    params = Momentum().resolve_params({"lookback": 2})
    signals = Momentum().signals(frame, params)
    assert np.flatnonzero(signals.entries_long).tolist() == [3, 4, 5]
    assert np.flatnonzero(signals.exits_long).tolist() == [6]


def test_momentum_when_exit_not_below_entry_rejects_params() -> None:
    with pytest.raises(ConfigError, match="exit_pct"):
        Momentum().resolve_params({"entry_pct": 1.0, "exit_pct": 2.0})


def test_mean_reversion_when_close_breaks_lower_band_enters_and_exits_at_mean() -> None:
    # window 3, num_std 1: bars 2.. mean/std of the last three closes.
    # closes 10 10 10 7 9 11: at bar 3 mean 9, std sqrt(3) -> lower 7.27 > 7 -> entry.
    # bar 4: mean 8.67, 9 > 8.67 -> exit; bar 5: mean 9, 11 > 9 -> exit.
    frame = closes_frame([10, 10, 10, 7, 9, 11])
    params = MeanReversion().resolve_params({"window": 3, "num_std": 1.0})
    signals = MeanReversion().signals(frame, params)
    assert np.flatnonzero(signals.entries_long).tolist() == [3]
    assert np.flatnonzero(signals.exits_long).tolist() == [4, 5]


def test_load_strategy_when_unknown_name_lists_builtins() -> None:
    with pytest.raises(StrategyError, match=r"unknown strategy 'nope'.*sma_crossover"):
        load_strategy("nope")


def test_load_strategy_when_user_file_given_loads_the_class(tmp_path: Path) -> None:
    source = tmp_path / "mine.py"
    source.write_text(
        "import numpy as np\n"
        "from marketbot.strategies import Parameter, Signals, Strategy\n"
        "class AlwaysIn(Strategy):\n"
        "    parameters = (Parameter('x', 1, low=0, high=5),)\n"
        "    def warmup_bars(self, params): return 0\n"
        "    def signals(self, frame, params):\n"
        "        n = len(frame)\n"
        "        return Signals(np.ones(n, bool), np.zeros(n, bool))\n"
    )
    strategy = load_strategy(f"{source}:AlwaysIn")
    assert strategy.name == "AlwaysIn"
    assert strategy.resolve_params({"x": "3"}) == {"x": 3}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.py:X", "missing.py:X: no such file"),
        ("{dir}/bad.py:X", r"bad.py:X: syntax error in bad.py, line 1: invalid syntax"),
        ("{dir}/ok.py:Nope", "has no class 'Nope'"),
        ("{dir}/ok.py:NotAStrategy", "NotAStrategy is not a Strategy subclass"),
    ],
)
def test_load_strategy_when_user_file_is_wrong_says_what(
    tmp_path: Path, spec: str, message: str
) -> None:
    (tmp_path / "bad.py").write_text("def (:\n")
    (tmp_path / "ok.py").write_text("class NotAStrategy:\n    pass\n")
    with pytest.raises(StrategyError, match=message):
        load_strategy(spec.format(dir=tmp_path))


def test_compute_signals_when_strategy_crashes_wraps_in_strategy_error() -> None:
    class Broken(SmaCrossover):
        name = "broken"

        def signals(self, frame: pd.DataFrame, params: object) -> object:  # type: ignore[override]
            raise ZeroDivisionError("oops")

    with pytest.raises(
        StrategyError,
        match=r"^broken: signals\(\) raised ZeroDivisionError: oops "
        r"\(test_strategies.py, line \d+\)$",
    ):
        Broken().compute_signals(closes_frame([1, 2, 3]), {})


def test_compute_signals_when_wrong_length_says_which_array() -> None:
    class Short(SmaCrossover):
        name = "short_arrays"

        def signals(self, frame: pd.DataFrame, params: object) -> object:  # type: ignore[override]
            from marketbot.strategies.base import Signals

            return Signals(np.zeros(2, bool), np.zeros(3, bool))

    with pytest.raises(
        StrategyError, match=r"entries_long of length 2, expected 3 \(one per bar\)"
    ):
        Short().compute_signals(closes_frame([1, 2, 3]), {})


def test_sma_crossover_signals_when_fused_equal_the_two_pass_computation() -> None:
    from marketbot.strategies.indicators import (
        crossed_above_nb,
        crossed_below,
        sma_crossover_signals_nb,
    )

    values = np.random.default_rng(3).lognormal(8.0, 0.5, 50_000).cumsum() / 1e3
    for fast, slow in ((2, 3), (10, 30), (50, 200)):
        up, down = sma_crossover_signals_nb(values, fast, slow)
        fast_mean, slow_mean = rolling_mean_nb(values, fast), rolling_mean_nb(values, slow)
        np.testing.assert_array_equal(up, crossed_above_nb(fast_mean, slow_mean))
        np.testing.assert_array_equal(down, crossed_below(fast_mean, slow_mean))
