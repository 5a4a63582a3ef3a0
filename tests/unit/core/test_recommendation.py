"""Tests of the verdict: each boundary, the trade-count cap, custom and invalid thresholds."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from marketbot.core.errors import ConfigError
from marketbot.core.metrics import ClosedTrades, compute_metrics
from marketbot.core.recommendation import (
    DEFAULT_THRESHOLDS,
    Recommendation,
    RecommendationThresholds,
    explain,
    recommend,
)

# Exactly at every EXCELLENT threshold of the defaults.
AT_EXCELLENT: dict[str, float | int] = {
    "sharpe": 2.0,
    "max_drawdown_pct": 15.0,
    "profit_factor": 1.5,
    "num_trades": 30,
    "return_pct": 12.0,
}
# Exactly at every GOOD threshold of the defaults.
AT_GOOD: dict[str, float | int] = {
    "sharpe": 1.0,
    "max_drawdown_pct": 25.0,
    "profit_factor": 1.2,
    "num_trades": 20,
    "return_pct": 5.0,
}
# Exactly at the MARGINAL sharpe, with the smallest positive return used here.
AT_MARGINAL: dict[str, float | int] = {
    "sharpe": 0.5,
    "max_drawdown_pct": 60.0,
    "profit_factor": 1.0,
    "num_trades": 3,
    "return_pct": 0.01,
}


def with_(metrics: dict[str, float | int], **changes: Any) -> dict[str, Any]:
    """A copy of ``metrics`` with some values changed."""
    return metrics | changes


def test_recommendation_when_printed_is_the_upper_case_name() -> None:
    assert [str(level) for level in Recommendation] == [
        "EXCELLENT",
        "GOOD",
        "MARGINAL",
        "FAILED",
    ]


def test_default_thresholds_when_read_are_the_documented_values() -> None:
    t = DEFAULT_THRESHOLDS

    assert (t.excellent_min_sharpe, t.excellent_max_drawdown_pct) == (2.0, 15.0)
    assert (t.excellent_min_profit_factor, t.excellent_min_trades) == (1.5, 30)
    assert (t.good_min_sharpe, t.good_max_drawdown_pct) == (1.0, 25.0)
    assert (t.good_min_profit_factor, t.good_min_trades) == (1.2, 20)
    assert t.marginal_min_sharpe == 0.5
    assert t.min_trades_for_better_than_marginal == 10
    assert RecommendationThresholds() == DEFAULT_THRESHOLDS


# --- boundaries ---------------------------------------------------------------------------


def test_recommend_when_exactly_at_excellent_thresholds_is_excellent() -> None:
    assert recommend(AT_EXCELLENT) is Recommendation.EXCELLENT


@pytest.mark.parametrize(
    "change",
    [
        {"sharpe": 1.999},
        {"max_drawdown_pct": 15.001},
        {"profit_factor": 1.499},
        {"num_trades": 29},
    ],
    ids=["sharpe", "drawdown", "profit_factor", "trades"],
)
def test_recommend_when_just_past_one_excellent_threshold_is_good(change: dict[str, Any]) -> None:
    assert recommend(with_(AT_EXCELLENT, **change)) is Recommendation.GOOD


def test_recommend_when_exactly_at_good_thresholds_is_good() -> None:
    assert recommend(AT_GOOD) is Recommendation.GOOD


@pytest.mark.parametrize(
    "change",
    [
        {"sharpe": 0.999},
        {"max_drawdown_pct": 25.001},
        {"profit_factor": 1.199},
        {"num_trades": 19},
    ],
    ids=["sharpe", "drawdown", "profit_factor", "trades"],
)
def test_recommend_when_just_past_one_good_threshold_is_marginal(change: dict[str, Any]) -> None:
    assert recommend(with_(AT_GOOD, **change)) is Recommendation.MARGINAL


def test_recommend_when_exactly_at_marginal_sharpe_with_positive_return_is_marginal() -> None:
    assert recommend(AT_MARGINAL) is Recommendation.MARGINAL


@pytest.mark.parametrize(
    "change",
    [{"sharpe": 0.499}, {"return_pct": 0.0}, {"return_pct": -0.01}],
    ids=["sharpe", "zero_return", "negative_return"],
)
def test_recommend_when_just_past_a_marginal_condition_is_failed(change: dict[str, Any]) -> None:
    assert recommend(with_(AT_MARGINAL, **change)) is Recommendation.FAILED


def test_recommend_when_excellent_stats_but_money_lost_is_failed() -> None:
    assert recommend(with_(AT_EXCELLENT, return_pct=-1.0)) is Recommendation.FAILED


def test_recommend_when_nothing_lost_profit_factor_inf_meets_its_threshold() -> None:
    assert recommend(with_(AT_EXCELLENT, profit_factor=math.inf)) is Recommendation.EXCELLENT


def test_recommend_when_profit_factor_is_json_null_counts_it_as_inf() -> None:
    assert recommend(with_(AT_EXCELLENT, profit_factor=None)) is Recommendation.EXCELLENT


def test_recommend_when_sharpe_is_nan_is_failed() -> None:
    assert recommend(with_(AT_EXCELLENT, sharpe=math.nan)) is Recommendation.FAILED


# --- the trade-count cap ------------------------------------------------------------------

# Thresholds that ask for only 5 trades, so the cap of 10 is what decides.
FEW_TRADES_NEEDED = RecommendationThresholds(excellent_min_trades=5, good_min_trades=5)


def test_recommend_when_fewer_than_10_trades_is_at_most_marginal() -> None:
    metrics = with_(AT_EXCELLENT, sharpe=5.0, profit_factor=10.0, num_trades=9)

    assert recommend(metrics, FEW_TRADES_NEEDED) is Recommendation.MARGINAL


def test_recommend_when_exactly_10_trades_is_no_longer_capped() -> None:
    metrics = with_(AT_EXCELLENT, num_trades=10)

    assert recommend(metrics, FEW_TRADES_NEEDED) is Recommendation.EXCELLENT


def test_recommend_when_cap_is_lowered_allows_excellent_with_few_trades() -> None:
    thresholds = dataclasses.replace(FEW_TRADES_NEEDED, min_trades_for_better_than_marginal=5)

    assert recommend(with_(AT_EXCELLENT, num_trades=5), thresholds) is Recommendation.EXCELLENT


def test_recommend_when_capped_but_failing_marginal_is_failed() -> None:
    metrics = with_(AT_EXCELLENT, num_trades=9, return_pct=-2.0)

    assert recommend(metrics, FEW_TRADES_NEEDED) is Recommendation.FAILED


# --- custom thresholds --------------------------------------------------------------------


def test_recommend_when_thresholds_are_stricter_downgrades() -> None:
    strict = RecommendationThresholds(excellent_min_sharpe=3.0)

    assert recommend(with_(AT_EXCELLENT, sharpe=2.5), strict) is Recommendation.GOOD
    assert recommend(with_(AT_EXCELLENT, sharpe=3.0), strict) is Recommendation.EXCELLENT


def test_recommend_when_thresholds_are_looser_upgrades() -> None:
    loose = RecommendationThresholds(
        good_min_sharpe=0.5, good_max_drawdown_pct=60.0, good_min_profit_factor=1.0
    )

    assert recommend(with_(AT_MARGINAL, num_trades=20), loose) is Recommendation.GOOD


def test_recommend_when_metrics_come_from_compute_metrics_accepts_them() -> None:
    # a flat curve with no trades: sharpe 0, so not even MARGINAL
    metrics = compute_metrics(
        np.full(3, 100.0),
        np.arange(3, dtype=np.int64),
        np.full(3, 1.0),
        ClosedTrades(np.array([]), np.array([]), np.array([], dtype=np.int64)),
        exposed_bars=0,
        total_fees=0.0,
        initial_cash=100.0,
    )

    assert recommend(metrics) is Recommendation.FAILED


def test_recommend_when_a_metric_is_missing_raises_config_error() -> None:
    metrics = dict(AT_EXCELLENT)
    del metrics["max_drawdown_pct"]

    with pytest.raises(ConfigError, match="max_drawdown_pct"):
        recommend(metrics)


def test_recommend_when_sharpe_is_none_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="sharpe"):
        recommend(with_(AT_EXCELLENT, sharpe=None))


# --- invalid thresholds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("marginal_min_sharpe", -0.1),
        ("good_max_drawdown_pct", -1.0),
        ("good_min_profit_factor", math.nan),
        ("excellent_min_sharpe", math.inf),
        ("min_trades_for_better_than_marginal", -1),
        ("good_min_trades", 2.5),
        ("excellent_min_trades", True),
        ("good_min_sharpe", "1.0"),
    ],
)
def test_thresholds_when_a_value_is_invalid_raise_config_error_naming_the_field(
    field: str, value: Any
) -> None:
    with pytest.raises(ConfigError, match=field):
        RecommendationThresholds(**{field: value})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"excellent_min_sharpe": 0.8}, "excellent_min_sharpe"),
        ({"excellent_max_drawdown_pct": 30.0}, "excellent_max_drawdown_pct"),
        ({"excellent_min_profit_factor": 1.1}, "excellent_min_profit_factor"),
        ({"excellent_min_trades": 19}, "excellent_min_trades"),
        ({"marginal_min_sharpe": 1.5}, "good_min_sharpe"),
    ],
)
def test_thresholds_when_a_better_level_is_easier_raise_config_error_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        RecommendationThresholds(**changes)


def test_thresholds_when_levels_are_equal_are_accepted() -> None:
    equal = RecommendationThresholds(
        excellent_min_sharpe=1.0,
        excellent_max_drawdown_pct=25.0,
        excellent_min_profit_factor=1.2,
        excellent_min_trades=20,
        marginal_min_sharpe=1.0,
    )

    assert recommend(AT_GOOD, equal) is Recommendation.EXCELLENT


def test_thresholds_when_assigned_to_raise_because_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_THRESHOLDS.good_min_sharpe = 0.0  # type: ignore[misc]


# --- explain ------------------------------------------------------------------------------


def test_explain_when_excellent_is_empty() -> None:
    assert explain(AT_EXCELLENT) == []


def test_explain_when_good_lists_the_missed_excellent_conditions() -> None:
    metrics = with_(AT_GOOD, sharpe=1.5, max_drawdown_pct=20.0)

    assert explain(metrics) == [
        "EXCELLENT needs sharpe >= 2, got 1.5",
        "EXCELLENT needs max_drawdown_pct <= 15, got 20",
        "EXCELLENT needs profit_factor >= 1.5, got 1.2",
        "EXCELLENT needs num_trades >= 30, got 20",
    ]


def test_explain_when_capped_by_trades_names_the_trade_count() -> None:
    metrics = with_(AT_EXCELLENT, num_trades=8)

    assert recommend(metrics, FEW_TRADES_NEEDED) is Recommendation.MARGINAL
    assert explain(metrics, FEW_TRADES_NEEDED) == ["GOOD needs num_trades >= 10, got 8"]


def test_explain_when_failed_lists_the_missed_marginal_conditions() -> None:
    metrics = with_(AT_MARGINAL, sharpe=0.2, return_pct=-3.0)

    assert explain(metrics) == [
        "MARGINAL needs sharpe >= 0.5, got 0.2",
        "MARGINAL needs return_pct > 0, got -3",
    ]
