"""Volatility-adjusted sizing and realised volatility: known answers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.core.errors import ConfigError
from marketbot.risk.portfolio_manager import PortfolioManager
from marketbot.risk.volatility_nb import (
    SIZE_ZERO_INVALID_SETTINGS,
    realized_volatility_pct_nb,
    volatility_adjusted_size_nb,
)
from marketbot.risk.volatility_sizing import (
    VolatilitySizingConfig,
    realized_volatility_pct,
    volatility_adjusted_size,
)

# --- the seed's examples (defaults: $10,000 portfolio, target volatility 10 %) -----------


def test_calculate_size_when_seed_high_volatility_example_returns_exactly_100() -> None:
    manager = PortfolioManager()

    # 100 x 10 / 10 = 100; caps 20 % x 10,000 = 2,000 do not bind.
    size = manager.calculate_position_size_volatility_adjusted("momentum", 100.0, volatility=10.0)

    assert size == 100.0


def test_calculate_size_when_seed_low_volatility_example_returns_exactly_500() -> None:
    manager = PortfolioManager()

    # 100 x 10 / 2 = 500, five times the size at 10 %.
    size = manager.calculate_position_size_volatility_adjusted("momentum", 100.0, volatility=2.0)

    assert size == 500.0


def test_size_position_when_uncapped_reports_volatility_as_the_bound() -> None:
    decision = PortfolioManager().size_position("momentum", 100.0, 2.0)

    assert decision.size_usd == 500.0
    assert decision.scaled_size_usd == 500.0
    assert decision.limited_by == "volatility"
    assert decision.strategy == "momentum"
    assert decision.allowed
    assert decision.reason == "$500.00 = base $100.00 x target 10 % / volatility 2 %"


# --- caps ---------------------------------------------------------------------------------


def test_size_position_when_volatility_tiny_caps_at_20_pct_of_portfolio() -> None:
    decision = PortfolioManager().size_position("momentum", 100.0, 0.1)

    # 100 x 10 / 0.1 = 10,000 > 0.2 x 10,000 = 2,000.
    assert decision.scaled_size_usd == pytest.approx(10_000.0)
    assert decision.size_usd == 2_000.0
    assert decision.limited_by == "portfolio_cap"
    assert "20 % of portfolio value $10,000.00" in decision.reason


def test_size_position_when_risk_limit_below_portfolio_cap_caps_at_risk_limit() -> None:
    sizing = VolatilitySizingConfig(max_position_size_usd=1_000.0)
    decision = PortfolioManager(sizing=sizing).size_position("momentum", 100.0, 0.5)

    # 100 x 10 / 0.5 = 2,000; caps: 2,000 (20 %) and 1,000 (risk limit) -> 1,000.
    assert decision.size_usd == 1_000.0
    assert decision.limited_by == "position_limit"


def test_size_position_when_risk_limit_above_portfolio_cap_caps_at_portfolio() -> None:
    sizing = VolatilitySizingConfig(max_position_size_usd=5_000.0)
    decision = PortfolioManager(sizing=sizing).size_position("momentum", 100.0, 0.1)

    # 10,000 scaled; caps 2,000 (20 %) and 5,000 (risk limit) -> 2,000.
    assert decision.size_usd == 2_000.0
    assert decision.limited_by == "portfolio_cap"


def test_size_position_when_caps_tie_reports_the_risk_limit() -> None:
    sizing = VolatilitySizingConfig(max_position_size_usd=2_000.0)
    decision = PortfolioManager(sizing=sizing).size_position("momentum", 100.0, 0.1)

    assert decision.size_usd == 2_000.0
    assert decision.limited_by == "position_limit"


def test_size_position_when_scaled_size_equals_cap_is_not_capped() -> None:
    # 400 x 10 / 2 = 2,000 = the 20 % cap exactly: the volatility rule set it.
    decision = PortfolioManager().size_position("momentum", 400.0, 2.0)

    assert decision.size_usd == 2_000.0
    assert decision.limited_by == "volatility"


def test_size_position_when_portfolio_value_updated_uses_the_new_value_for_the_cap() -> None:
    manager = PortfolioManager()
    manager.update_portfolio_value(1_000.0)

    # 100 x 10 / 2 = 500 > 0.2 x 1,000 = 200.
    assert manager.calculate_position_size_volatility_adjusted("m", 100.0, 2.0) == 200.0


def test_size_position_when_custom_target_and_fraction_applies_both() -> None:
    sizing = VolatilitySizingConfig(target_volatility_pct=4.0, max_portfolio_fraction=0.5)
    manager = PortfolioManager(portfolio_value_usd=2_000.0, sizing=sizing)

    # 300 x 4 / 8 = 150 (uncapped); 300 x 4 / 1 = 1,200 > 0.5 x 2,000 = 1,000.
    assert manager.calculate_position_size_volatility_adjusted("m", 300.0, 8.0) == 150.0
    assert manager.calculate_position_size_volatility_adjusted("m", 300.0, 1.0) == 1_000.0


# --- failing closed -----------------------------------------------------------------------


@pytest.mark.parametrize("volatility", [0.0, -1.0, math.nan, math.inf, -math.inf, None])
def test_size_position_when_volatility_invalid_returns_zero_with_reason(
    volatility: float | None,
) -> None:
    decision = PortfolioManager().size_position("momentum", 100.0, volatility)

    assert decision.size_usd == 0.0
    assert not decision.allowed
    assert decision.limited_by == "invalid_volatility"
    assert decision.reason.startswith("size 0: volatility")


@pytest.mark.parametrize("base_size", [-100.0, math.nan, math.inf])
def test_size_position_when_base_size_invalid_returns_zero_with_reason(base_size: float) -> None:
    decision = PortfolioManager().size_position("momentum", base_size, 10.0)

    assert decision.size_usd == 0.0
    assert decision.limited_by == "invalid_base_size"


@pytest.mark.parametrize("value_usd", [0.0, -5.0, math.nan, math.inf])
def test_size_position_when_portfolio_value_invalid_returns_zero_with_reason(
    value_usd: float,
) -> None:
    manager = PortfolioManager()
    manager.update_portfolio_value(value_usd)

    decision = manager.size_position("momentum", 100.0, 10.0)

    assert decision.size_usd == 0.0
    assert decision.limited_by == "invalid_portfolio_value"


def test_size_position_when_inputs_are_not_numbers_returns_zero_without_raising() -> None:
    decision = volatility_adjusted_size(
        "momentum",
        "100",  # type: ignore[arg-type]
        [10.0],  # type: ignore[arg-type]
        10_000.0,
        VolatilitySizingConfig(),
    )

    assert decision.size_usd == 0.0
    assert decision.limited_by == "invalid_base_size"


def test_size_position_when_base_size_zero_returns_zero_and_not_allowed() -> None:
    decision = PortfolioManager().size_position("momentum", 0.0, 10.0)

    assert decision.size_usd == 0.0
    assert not decision.allowed


def test_size_nb_when_settings_invalid_returns_zero_with_settings_code() -> None:
    # The compiled rule is safe on its own: a target of 0 or a cap above 1 means size 0.
    assert volatility_adjusted_size_nb(100.0, 10.0, 0.0, 10_000.0, 0.2, math.nan) == (
        0.0,
        SIZE_ZERO_INVALID_SETTINGS,
    )
    assert volatility_adjusted_size_nb(100.0, 10.0, 10.0, 10_000.0, 1.5, math.nan)[0] == 0.0
    assert volatility_adjusted_size_nb(100.0, 10.0, 10.0, 10_000.0, 0.2, -1.0)[0] == 0.0


@given(
    base=st.floats(allow_nan=True, allow_infinity=True),
    volatility=st.floats(allow_nan=True, allow_infinity=True),
    value=st.floats(allow_nan=True, allow_infinity=True),
)
def test_size_position_when_any_floats_never_raises_and_stays_within_caps(
    base: float, volatility: float, value: float
) -> None:
    manager = PortfolioManager(sizing=VolatilitySizingConfig(max_position_size_usd=1_000.0))
    manager.update_portfolio_value(value)

    decision = manager.size_position("s", base, volatility)

    assert decision.size_usd >= 0.0
    assert decision.size_usd <= 1_000.0
    if math.isfinite(value) and value > 0.0:
        assert decision.size_usd <= 0.2 * value


@given(
    low=st.floats(min_value=0.01, max_value=100.0),
    high=st.floats(min_value=0.01, max_value=100.0),
)
def test_size_position_when_volatility_higher_gives_smaller_or_equal_size(
    low: float, high: float
) -> None:
    manager = PortfolioManager()
    low, high = min(low, high), max(low, high)

    assert manager.calculate_position_size_volatility_adjusted(
        "s", 100.0, high
    ) <= manager.calculate_position_size_volatility_adjusted("s", 100.0, low)


# --- realised volatility ------------------------------------------------------------------


def test_realized_volatility_when_two_returns_is_their_sample_std_in_pct() -> None:
    # Returns +5 % and -5 %: mean 0, std (ddof 1) = sqrt((0.05^2 + 0.05^2) / 1) = 0.0707107.
    volatility = realized_volatility_pct([100.0, 105.0, 99.75], window=2)

    assert volatility == pytest.approx(5.0 * math.sqrt(2.0), rel=1e-12)


def test_realized_volatility_when_longer_history_uses_only_last_window_returns() -> None:
    # The first prices (a 100x jump) fall outside the last 2 returns and do not count.
    closes = [1.0, 100.0, 100.0, 105.0, 99.75]

    assert realized_volatility_pct(closes, window=2) == pytest.approx(5.0 * math.sqrt(2.0))


def test_realized_volatility_when_hourly_bars_scales_by_sqrt_bars_per_day() -> None:
    closes = [100.0, 105.0, 99.75]

    daily = realized_volatility_pct(closes, window=2, bars_per_day=24.0)

    # 7.0711 % per hour x sqrt(24) = 34.641 % per day.
    assert daily == pytest.approx(5.0 * math.sqrt(2.0) * math.sqrt(24.0))


def test_realized_volatility_when_prices_flat_is_zero_and_sizing_fails_closed() -> None:
    manager = PortfolioManager()

    volatility = manager.volatility_pct([100.0] * 21)

    assert volatility == 0.0
    assert manager.size_position("s", 100.0, volatility).size_usd == 0.0


@pytest.mark.parametrize(
    "closes",
    [[100.0, 101.0], [100.0, 0.0, 101.0], [100.0, math.nan, 101.0], [100.0, -1.0, 101.0], []],
)
def test_realized_volatility_when_too_few_or_bad_closes_is_nan(closes: list[float]) -> None:
    assert math.isnan(realized_volatility_pct(closes, window=2))


def test_realized_volatility_when_input_not_numeric_is_nan() -> None:
    assert math.isnan(realized_volatility_pct(["a", "b", "c"], window=2))
    assert math.isnan(realized_volatility_pct([[1.0, 2.0], [3.0, 4.0]], window=2))


def test_realized_volatility_when_pandas_series_matches_numpy_std() -> None:
    rng = np.random.default_rng(7)
    closes = pd.Series(100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.02, 60)))
    returns = closes.to_numpy()[1:] / closes.to_numpy()[:-1] - 1.0

    volatility = realized_volatility_pct(closes, window=20)

    assert volatility == pytest.approx(np.std(returns[-20:], ddof=1) * 100.0, rel=1e-10)


def test_realized_volatility_nb_when_end_inside_series_uses_window_ending_there() -> None:
    closes = np.array([100.0, 105.0, 99.75, 500.0])

    assert realized_volatility_pct_nb(closes, 2, 2, 1.0) == pytest.approx(5.0 * math.sqrt(2.0))
    assert math.isnan(realized_volatility_pct_nb(closes, 4, 2, 1.0))


def test_size_from_prices_when_volatility_known_scales_base_size() -> None:
    manager = PortfolioManager(sizing=VolatilitySizingConfig(volatility_window=2))

    decision = manager.size_position_from_prices("s", 100.0, [100.0, 105.0, 99.75])

    # 100 x 10 / 7.0711 = 141.42.
    assert decision.size_usd == pytest.approx(1000.0 / (5.0 * math.sqrt(2.0)))
    assert decision.limited_by == "volatility"


def test_size_from_prices_when_history_too_short_returns_zero() -> None:
    decision = PortfolioManager().size_position_from_prices("s", 100.0, [100.0, 101.0])

    assert decision.size_usd == 0.0
    assert decision.limited_by == "invalid_volatility"


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("target_volatility_pct", 0.0),
        ("target_volatility_pct", -10.0),
        ("target_volatility_pct", math.nan),
        ("max_portfolio_fraction", 0.0),
        ("max_portfolio_fraction", 1.5),
        ("max_portfolio_fraction", -0.2),
        ("max_position_size_usd", -1.0),
        ("max_position_size_usd", 0.0),
        ("volatility_window", 1),
        ("volatility_window", 2.5),
        ("bars_per_day", 0.0),
        ("bars_per_day", math.inf),
    ],
)
def test_sizing_config_when_field_invalid_raises_config_error_naming_it(
    field: str, value: float
) -> None:
    with pytest.raises(ConfigError, match=field):
        VolatilitySizingConfig(**{field: value})  # type: ignore[arg-type]


def test_sizing_config_when_cap_is_exactly_one_is_accepted() -> None:
    assert VolatilitySizingConfig(max_portfolio_fraction=1.0).max_portfolio_fraction == 1.0


@pytest.mark.parametrize("value_usd", [0.0, -10_000.0, math.nan, math.inf])
def test_portfolio_manager_when_portfolio_value_invalid_raises_config_error(
    value_usd: float,
) -> None:
    with pytest.raises(ConfigError, match="portfolio_value_usd"):
        PortfolioManager(portfolio_value_usd=value_usd)


def test_realized_volatility_when_window_or_scaling_invalid_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="volatility_window"):
        realized_volatility_pct([1.0, 2.0, 3.0], window=1)
    with pytest.raises(ConfigError, match="bars_per_day"):
        realized_volatility_pct([1.0, 2.0, 3.0], window=2, bars_per_day=-1.0)
