"""The rebalancer: scores, bounded allocation, plans and the schedule, with hand-worked answers."""

from __future__ import annotations

import itertools
import json
import math
import string
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.core.errors import ConfigError
from marketbot.risk.rebalancer import (
    Rebalancer,
    RebalancerConfig,
    StrategyStats,
    allocate_by_score,
    is_due,
    next_run,
    score_strategies,
)

TOLERANCE = 1e-9
DOCS = Path(__file__).resolve().parents[3] / "docs" / "sizing_and_rebalancing.md"

# Three strategies whose normalised components are easy to read off:
#   Sharpe 2 / 1 / 0 -> 1 / 0.5 / 0;  win rate 60 / 40 / 50 -> 1 / 0 / 0.5;
#   P&L 1000 / 0 / 500 -> 1 / 0 / 0.5.
# Scores: a = 1; b = 0.4 x 0.5 = 0.2; c = 0.3 x 0.5 + 0.3 x 0.5 = 0.3.
THREE = [
    StrategyStats("a", sharpe=2.0, win_rate_pct=60.0, total_pnl_usd=1_000.0, num_trades=40),
    StrategyStats("b", sharpe=1.0, win_rate_pct=40.0, total_pnl_usd=0.0, num_trades=30),
    StrategyStats("c", sharpe=0.0, win_rate_pct=50.0, total_pnl_usd=500.0, num_trades=20),
]
# Four in a line: components 1, 2/3, 1/3, 0 in each, so the scores are the same numbers.
FOUR = [
    StrategyStats("a", 3.0, 70.0, 600.0, 50),
    StrategyStats("b", 2.0, 60.0, 300.0, 50),
    StrategyStats("c", 1.0, 50.0, 0.0, 50),
    StrategyStats("d", 0.0, 40.0, -300.0, 50),
]


def many(count: int) -> list[StrategyStats]:
    """``count`` strategies s00, s01, ... with rising Sharpe, win rate and P&L."""
    return [StrategyStats(f"s{i:02d}", i * 0.1, 40.0 + i, i * 10.0, 10) for i in range(count)]


# --- scoring ------------------------------------------------------------------------------


def test_score_when_three_strategies_weights_normalised_components_40_30_30() -> None:
    scores = {item.name: item.score for item in score_strategies(THREE)}

    assert scores == pytest.approx({"a": 1.0, "b": 0.2, "c": 0.3})


def test_score_when_input_shuffled_returns_same_scores_sorted_by_name() -> None:
    forward = score_strategies(THREE)
    backward = score_strategies(list(reversed(THREE)))

    assert forward == backward
    assert [item.name for item in forward] == ["a", "b", "c"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_score_when_sharpe_not_finite_scores_it_as_worst(bad: float) -> None:
    stats = [StrategyStats("good", 0.5, 50.0, 0.0), StrategyStats("bad", bad, 50.0, 0.0)]

    scores = {item.name: item for item in score_strategies(stats)}

    # good: Sharpe 1 (the only finite, so the best), win rate and P&L equal -> 1 each.
    assert scores["good"].score == pytest.approx(1.0)
    assert scores["bad"].sharpe_score == 0.0
    assert scores["bad"].score == pytest.approx(0.6)


@pytest.mark.parametrize("bad", [-1.0, 100.5, math.nan])
def test_score_when_win_rate_outside_0_to_100_scores_it_as_worst(bad: float) -> None:
    stats = [StrategyStats("good", 1.0, 10.0, 0.0), StrategyStats("bad", 1.0, bad, 0.0)]

    scores = {item.name: item for item in score_strategies(stats)}

    assert scores["bad"].win_rate_score == 0.0
    assert scores["good"].win_rate_score == 1.0


def test_score_when_all_values_equal_every_component_is_one() -> None:
    stats = [StrategyStats(name, 1.5, 55.0, 100.0) for name in "xyz"]

    assert [item.score for item in score_strategies(stats)] == [1.0, 1.0, 1.0]


def test_score_when_values_near_float_limits_normalises_without_overflow() -> None:
    stats = [
        StrategyStats("hi", 1.7e308, 50.0, 0.0),
        StrategyStats("lo", -1.7e308, 50.0, 0.0),
        StrategyStats("mid", 0.0, 50.0, 0.0),
    ]

    sharpe = {item.name: item.sharpe_score for item in score_strategies(stats)}

    assert sharpe == pytest.approx({"hi": 1.0, "lo": 0.0, "mid": 0.5})


def test_strategy_stats_when_from_metrics_total_pnl_is_expectancy_times_trades() -> None:
    metrics = {"sharpe": 1.2, "win_rate": 55.0, "expectancy": 12.5, "num_trades": 8}

    stats = StrategyStats.from_metrics("momentum", metrics)

    assert stats == StrategyStats("momentum", 1.2, 55.0, 100.0, 8)  # 12.5 x 8 = 100


# --- allocation ---------------------------------------------------------------------------


def test_allocate_when_top_exceeds_max_water_fills_the_rest_by_score() -> None:
    # Scores 1, 0.2, 0.3 -> c x 1 > 0.4 caps a at 40 %; 0.2c + 0.3c = 0.6 -> c = 1.2:
    # b = 24 %, c = 36 %.
    plan = Rebalancer().plan(THREE, portfolio_value_usd=10_000.0)

    assert plan.target_pct() == pytest.approx({"a": 40.0, "c": 36.0, "b": 24.0})
    assert plan.target_cash_pct == pytest.approx(0.0, abs=TOLERANCE)


def test_allocate_when_bottom_below_min_raises_it_and_scales_the_middle() -> None:
    # Scores 1, 2/3, 1/3, 0: a at max 40 %, d at min 5 %; b + c = c x (2/3 + 1/3) = 55 %.
    plan = Rebalancer().plan(FOUR, portfolio_value_usd=10_000.0)

    assert plan.target_pct() == pytest.approx({"a": 40.0, "b": 110 / 3, "c": 55 / 3, "d": 5.0})
    assert [change.bound for change in plan.changes] == ["max", "score", "score", "min"]


def test_allocate_when_positive_scores_cannot_fill_zero_scores_share_remainder() -> None:
    # One score above 0 holds at most 40 %; the three at 0 share 60 % -> 20 % each.
    allocation = allocate_by_score([1.0, 0.0, 0.0, 0.0])

    assert allocation.weights == pytest.approx((0.4, 0.2, 0.2, 0.2))
    assert allocation.bounds == ("max", "remainder", "remainder", "remainder")


def test_allocate_when_all_scores_equal_gives_equal_shares() -> None:
    allocation = allocate_by_score([0.7] * 4)

    assert allocation.weights == pytest.approx((0.25,) * 4)


def test_plan_when_one_strategy_holds_max_and_keeps_60_pct_cash() -> None:
    plan = Rebalancer().plan(many(1), portfolio_value_usd=10_000.0)

    # 1 x 40 % < 100 %: 60 % stays in cash.
    assert plan.target_pct() == {"s00": 40.0}
    assert plan.target_cash_pct == pytest.approx(60.0)
    assert "only 1 strategy: at most 1 x 40 % = 40 % can be allocated" in plan.notes[0]


def test_plan_when_two_strategies_holds_both_at_max_and_keeps_20_pct_cash() -> None:
    plan = Rebalancer().plan(many(2), portfolio_value_usd=10_000.0)

    # 2 x 40 % = 80 %: 20 % cash, whatever the scores.
    assert plan.target_pct() == {"s01": 40.0, "s00": 40.0}
    assert plan.target_cash_pct == pytest.approx(20.0)
    assert "20 % stays in cash" in plan.notes[0]
    assert "too few strategies" in plan.changes[0].reason


def test_plan_when_25_strategies_lowers_min_to_4_pct_equal_shares() -> None:
    plan = Rebalancer().plan(many(25), portfolio_value_usd=10_000.0)

    # 25 x 5 % = 125 % > 100 %: minimum lowered to 100 % / 25 = 4 %, so everyone has 4 %.
    assert all(change.target_pct == pytest.approx(4.0) for change in plan.changes)
    assert plan.min_allocation_pct == pytest.approx(4.0)
    assert plan.notes == (
        "25 strategies x min 5 % = 125 % > 100 %: minimum lowered to 100 %/25 = 4 %, "
        "an equal share each",
    )
    assert "min lowered to 100 %/25 = 4 %" in plan.changes[0].reason


def test_plan_when_exactly_20_strategies_gives_each_the_min_5_pct() -> None:
    plan = Rebalancer().plan(many(20), portfolio_value_usd=10_000.0)

    assert all(change.target_pct == pytest.approx(5.0) for change in plan.changes)
    assert plan.min_allocation_pct == pytest.approx(5.0)


def test_plan_when_21_strategies_gives_each_one_21st() -> None:
    plan = Rebalancer().plan(many(21), portfolio_value_usd=10_000.0)

    assert all(change.target_pct == pytest.approx(100 / 21) for change in plan.changes)


def test_plan_when_no_strategies_keeps_everything_in_cash() -> None:
    plan = Rebalancer().plan([], {"old": 30.0}, portfolio_value_usd=10_000.0)

    assert plan.target_cash_pct == 100.0
    assert plan.changes[0].bound == "removed"
    assert plan.notes[0].startswith("no strategies with statistics")


# --- the plan -----------------------------------------------------------------------------


def test_plan_when_current_given_lists_changes_in_pct_and_usd_with_reasons() -> None:
    current = {"a": 25.0, "b": 25.0, "c": 25.0, "d": 25.0}

    plan = Rebalancer().plan(FOUR, current, portfolio_value_usd=10_000.0)
    changes = {change.strategy: change for change in plan.changes}

    # a: 25 % -> 40 % = +15 points = +$1,500; d: 25 % -> 5 % = -20 points = -$2,000.
    assert changes["a"].change_pct == pytest.approx(15.0)
    assert changes["a"].change_usd == pytest.approx(1_500.0)
    assert changes["d"].change_usd == pytest.approx(-2_000.0)
    assert changes["a"].reason == (
        "increase: score 1.00, top Sharpe, top win rate, top P&L; held at max 40 %"
    )
    assert changes["d"].reason == (
        "decrease: score 0.00, losing (P&L -300.00 USD); raised to min 5 %"
    )
    assert changes["b"].reason == "increase: score 0.67; proportional to score"
    assert plan.current_cash_pct == 0.0


def test_plan_when_strategy_has_no_stats_targets_zero_and_says_so() -> None:
    plan = Rebalancer().plan(THREE, {"a": 50.0, "retired": 30.0}, portfolio_value_usd=1_000.0)

    last = plan.changes[-1]
    assert (last.strategy, last.target_pct, last.bound) == ("retired", 0.0, "removed")
    assert last.change_usd == pytest.approx(-300.0)  # -30 % of $1,000
    assert "retired: no statistics, target 0 %" in plan.notes
    assert plan.current_cash_pct == pytest.approx(20.0)


def test_plan_when_scores_tie_orders_by_name_and_gives_equal_targets() -> None:
    stats = [
        StrategyStats("zeta", 1.0, 50.0, 10.0),
        StrategyStats("alpha", 1.0, 50.0, 10.0),
        StrategyStats("mid", 0.0, 40.0, 0.0),
    ]

    plan = Rebalancer().plan(stats, portfolio_value_usd=10_000.0)

    assert [change.strategy for change in plan.changes] == ["alpha", "zeta", "mid"]
    assert plan.changes[0].target_pct == plan.changes[1].target_pct


def test_plan_when_all_scores_equal_notes_it_and_shares_equally() -> None:
    stats = [StrategyStats(name, 0.0, 0.0, 0.0, num_trades=0) for name in "pqrs"]

    plan = Rebalancer().plan(stats, portfolio_value_usd=10_000.0)

    assert plan.target_pct() == pytest.approx({"p": 25.0, "q": 25.0, "r": 25.0, "s": 25.0})
    assert "all 4 scores are equal (1.00): equal shares" in plan.notes
    assert "no trades" in plan.changes[0].reason


def test_plan_when_current_allocations_exceed_100_notes_it() -> None:
    plan = Rebalancer().plan(THREE, {"a": 70.0, "b": 50.0}, portfolio_value_usd=10_000.0)

    assert plan.current_cash_pct == pytest.approx(-20.0)
    assert "current allocations sum to 120.00 %, more than 100 %" in plan.notes


def test_plan_when_serialised_is_plain_json() -> None:
    plan = Rebalancer().plan(THREE, {"gone": 5.0}, portfolio_value_usd=10_000.0)

    data = json.loads(json.dumps(plan.as_dict()))

    assert data["changes"][0]["strategy"] == "a"
    assert data["changes"][-1]["score"] is None


@pytest.mark.parametrize("current", [{"a": -1.0}, {"a": math.nan}, {"a": "10"}])
def test_plan_when_current_allocation_invalid_raises_config_error(
    current: dict[str, float],
) -> None:
    with pytest.raises(ConfigError, match=r"current_pct\['a'\]"):
        Rebalancer().plan(THREE, current, portfolio_value_usd=10_000.0)


@pytest.mark.parametrize("value_usd", [0.0, -1.0, math.nan])
def test_plan_when_portfolio_value_invalid_raises_config_error(value_usd: float) -> None:
    with pytest.raises(ConfigError, match="portfolio_value_usd"):
        Rebalancer().plan(THREE, portfolio_value_usd=value_usd)


def test_plan_when_names_repeat_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="'a' appears twice"):
        Rebalancer().plan([*THREE, THREE[0]], portfolio_value_usd=10_000.0)


# --- properties over random statistics ----------------------------------------------------

ANY_FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, -1.0, 50.0]),  # repeated values make ties and equal scores
)
STATS = st.builds(
    StrategyStats,
    name=st.text(string.ascii_lowercase, min_size=1, max_size=6),
    sharpe=ANY_FLOAT,
    win_rate_pct=ANY_FLOAT,
    total_pnl_usd=ANY_FLOAT,
    num_trades=st.integers(0, 500),
)
STATS_LISTS = st.lists(STATS, min_size=1, max_size=30, unique_by=lambda item: item.name)


def assert_within_bounds(targets_pct: list[float]) -> None:
    """Default bounds: min 5 % (100 %/n above 20 strategies), max 40 %, total min(100, 40n)."""
    count = len(targets_pct)
    applied_min = min(5.0, 100.0 / count)
    assert all(applied_min - TOLERANCE <= target <= 40.0 + TOLERANCE for target in targets_pct)
    assert sum(targets_pct) <= 100.0 + TOLERANCE
    assert sum(targets_pct) == pytest.approx(min(100.0, 40.0 * count), abs=TOLERANCE)


@given(STATS_LISTS)
def test_plan_when_random_stats_respects_bounds_and_total(stats: list[StrategyStats]) -> None:
    plan = Rebalancer().plan(stats, portfolio_value_usd=10_000.0)

    targets = [change.target_pct for change in plan.changes]
    assert_within_bounds(targets)
    assert plan.target_cash_pct == pytest.approx(max(0.0, 100.0 - 40.0 * len(stats)), abs=1e-9)
    if len(stats) > 20:
        assert all(target == pytest.approx(100.0 / len(stats)) for target in targets)
    if len(stats) < 3:
        assert all(target == 40.0 for target in targets)


@given(STATS, st.integers(1, 30))
def test_plan_when_all_stats_equal_gives_equal_shares(stats: StrategyStats, count: int) -> None:
    same = [
        StrategyStats(f"s{i:02d}", stats.sharpe, stats.win_rate_pct, stats.total_pnl_usd)
        for i in range(count)
    ]

    targets = [
        change.target_pct for change in Rebalancer().plan(same, portfolio_value_usd=1.0).changes
    ]

    assert_within_bounds(targets)
    assert max(targets) - min(targets) <= TOLERANCE


@given(STATS_LISTS, st.randoms(use_true_random=False))
def test_plan_when_input_order_changes_gives_identical_plan(
    stats: list[StrategyStats], random: object
) -> None:
    shuffled = list(stats)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    rebalancer = Rebalancer()

    assert rebalancer.plan(stats, portfolio_value_usd=1.0) == rebalancer.plan(
        shuffled, portfolio_value_usd=1.0
    )


@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30),
    st.floats(0.0, 0.5),
    st.floats(0.01, 1.0),
)
def test_allocate_when_any_scores_and_bounds_respects_them_and_score_order(
    scores: list[float], min_allocation: float, max_allocation: float
) -> None:
    min_allocation = min(min_allocation, max_allocation)
    count = len(scores)

    allocation = allocate_by_score(scores, min_allocation, max_allocation)

    weights = allocation.weights
    applied_min = min_allocation if count * min_allocation <= 1.0 else 1.0 / count
    assert all(applied_min - TOLERANCE <= w <= max_allocation + TOLERANCE for w in weights)
    assert sum(weights) == pytest.approx(min(1.0, count * max_allocation), abs=TOLERANCE)
    ranked = sorted(zip(scores, weights, strict=True))
    assert all(low[1] <= high[1] + TOLERANCE for low, high in itertools.pairwise(ranked))


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_allocation": -0.05}, "min_allocation"),
        ({"min_allocation": math.nan}, "min_allocation"),
        ({"max_allocation": 0.0}, "max_allocation"),
        ({"max_allocation": 1.2}, "max_allocation"),
        ({"min_allocation": 0.5, "max_allocation": 0.4}, "min_allocation=0.5 > max_allocation"),
        ({"sharpe_weight": -0.4, "win_rate_weight": 0.7, "pnl_weight": 0.7}, "sharpe_weight"),
        ({"sharpe_weight": 0.5}, "sharpe_weight \\+ win_rate_weight \\+ pnl_weight"),
        ({"schedule": "hourly"}, "schedule"),
    ],
)
def test_rebalancer_config_when_invalid_raises_config_error_naming_field(
    kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        RebalancerConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", ""), ("num_trades", -1), ("num_trades", 1.5), ("sharpe", "1.2"), ("sharpe", None)],
)
def test_strategy_stats_when_invalid_raises_config_error(field: str, value: object) -> None:
    kwargs: dict[str, object] = {"name": "s", "sharpe": 1.0, "win_rate_pct": 50.0}
    kwargs["total_pnl_usd"] = 0.0
    kwargs[field] = value

    with pytest.raises(ConfigError, match=field):
        StrategyStats(**kwargs)  # type: ignore[arg-type]


def test_rebalancer_when_custom_bounds_applies_them() -> None:
    config = RebalancerConfig(min_allocation=0.1, max_allocation=0.6)

    plan = Rebalancer(config).plan(THREE, portfolio_value_usd=10_000.0)

    # Scores 1, 0.2, 0.3: c x 1.5 = 100 % -> c = 2/3: a = 66.7 % > 60 % -> a = 60 %,
    # then 0.5c = 40 % -> c = 0.8: b = 16 %, c = 24 %.
    assert plan.target_pct() == pytest.approx({"a": 60.0, "c": 24.0, "b": 16.0})


# --- schedule -----------------------------------------------------------------------------

TUESDAY = datetime(2024, 3, 5, 13, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "last_run", "expected"),
    [
        ("daily", TUESDAY, datetime(2024, 3, 6, tzinfo=UTC)),
        ("weekly", TUESDAY, datetime(2024, 3, 11, tzinfo=UTC)),  # the next Monday
        ("weekly", datetime(2024, 3, 11, tzinfo=UTC), datetime(2024, 3, 18, tzinfo=UTC)),
        ("weekly", datetime(2024, 3, 10, 23, 59, tzinfo=UTC), datetime(2024, 3, 11, tzinfo=UTC)),
        ("monthly", TUESDAY, datetime(2024, 4, 1, tzinfo=UTC)),
        ("monthly", datetime(2024, 12, 31, 23, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        ("daily", datetime(2024, 3, 5, 13, 45), datetime(2024, 3, 6, tzinfo=UTC)),  # naive = UTC
    ],
)
def test_next_run_when_schedule_given_is_start_of_next_utc_period(
    schedule: str, last_run: datetime, expected: datetime
) -> None:
    assert next_run(schedule, last_run) == expected  # type: ignore[arg-type]


def test_next_run_when_last_run_in_other_zone_converts_to_utc_first() -> None:
    # 23:30 at UTC-5 on 5 March is 04:30 UTC on 6 March: the next UTC day starts 7 March.
    new_york = timezone(timedelta(hours=-5))

    assert next_run("daily", datetime(2024, 3, 5, 23, 30, tzinfo=new_york)) == datetime(
        2024, 3, 7, tzinfo=UTC
    )


def test_is_due_when_never_run_is_true() -> None:
    assert is_due("monthly", None, TUESDAY)


def test_is_due_when_before_next_period_false_and_at_its_start_true() -> None:
    boundary = datetime(2024, 3, 11, tzinfo=UTC)

    assert not is_due("weekly", TUESDAY, boundary - timedelta(microseconds=1))
    assert is_due("weekly", TUESDAY, boundary)
    assert not is_due("weekly", TUESDAY, TUESDAY - timedelta(days=1))  # clock went back


def test_is_due_when_schedule_unknown_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="schedule"):
        is_due("hourly", None, TUESDAY)  # type: ignore[arg-type]


def test_rebalancer_when_schedule_configured_uses_it() -> None:
    rebalancer = Rebalancer(RebalancerConfig(schedule="daily"))

    assert rebalancer.next_run(TUESDAY) == datetime(2024, 3, 6, tzinfo=UTC)
    assert rebalancer.is_due(TUESDAY, datetime(2024, 3, 6, 0, 0, 1, tzinfo=UTC))


# --- the documentation --------------------------------------------------------------------


def test_docs_examples_when_run_pass_their_own_asserts() -> None:
    # Covers the sizing examples too: the seed's $100 / $500 and the worked volatility.
    text = DOCS.read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    examples = [block for block in blocks if block.startswith(("import", "from"))]

    assert len(examples) == 4
    for example in examples:
        exec(compile(example, str(DOCS), "exec"), {})
