"""Alert expressions: the three forms, their metrics and units, and one-line refusals."""

from __future__ import annotations

import pytest

from marketbot.bot.alert_expressions import AlertCondition, parse_alert_expression
from marketbot.core.errors import ConfigError


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("bitcoin close > 20000", AlertCondition("price", "bitcoin", "close", ">", 20000, "price")),
        ("price BTC/USDT last >= $20,000.5",
         AlertCondition("price", "BTC/USDT", "last", ">=", 20000.5, "price")),
        ("bitcoin change_pct<-5", AlertCondition("price", "bitcoin", "change_pct", "<", -5, "pct")),
        ("bitcoin > 100000", AlertCondition("price", "bitcoin", "close", ">", 100000, "price")),
        ("strategy momentum size_fraction > 0.8",
         AlertCondition("strategy", "momentum", "size_fraction", ">", 0.8, "fraction")),
        ("strategy sma_crossover entry_signal >= 1",
         AlertCondition("strategy", "sma_crossover", "entry_signal", ">=", 1, "signal")),
        ("strategy sma_crossover pnl_usd <= -100",
         AlertCondition("strategy", "sma_crossover", "pnl_usd", "<=", -100, "usd")),
        ("strategy x win_rate < 40%", AlertCondition("strategy", "x", "win_rate", "<", 40, "pct")),
        ("strategy x open_positions > 0",
         AlertCondition("strategy", "x", "open_positions", ">", 0, "count")),
        ("portfolio total_value > 15000",
         AlertCondition("portfolio", None, "total_value", ">", 15000, "usd")),
        ("PORTFOLIO daily_pnl < -250",
         AlertCondition("portfolio", None, "daily_pnl", "<", -250, "usd")),
        ("portfolio exposure_usd >= 1e4",
         AlertCondition("portfolio", None, "exposure_usd", ">=", 10000, "usd")),
        ("portfolio drawdown_pct >= 10%",
         AlertCondition("portfolio", None, "drawdown_pct", ">=", 10, "pct")),
    ],
)  # fmt: skip
def test_parse_when_expression_valid_gives_its_condition(
    expression: str, expected: AlertCondition
) -> None:
    assert parse_alert_expression(expression) == expected


def test_describe_when_parsed_again_gives_the_same_condition() -> None:
    for text in (
        "bitcoin close > 20000",
        "strategy m pnl_usd <= -100.5",
        "portfolio daily_pnl < 0",
    ):
        condition = parse_alert_expression(text)
        assert condition.describe() == text
        assert parse_alert_expression(condition.describe()) == condition


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "it is empty"),
        (
            "bitcoin clos > 20000",
            "'clos' is not a price metric; use one of close, last",
        ),
        ("bitcoin pnl_usd > 1", "(pnl_usd is a strategy metric)"),
        ("strategy m close > 1", "'close' is not a strategy metric; use one of entry_signal"),
        ("portfolio value > 1", "'value' is not a portfolio metric; use one of total_value"),
        ("bitcoin close = 20000", "'=' is not an operator; use >, >=, <, <="),
        ("bitcoin close >> 20000", "'>' is not a number"),
        ("bitcoin close > twenty", "'twenty' is not a number"),
        ("bitcoin close >", "a number is missing after '>'"),
        ("bitcoin close", "an operator is missing after 'close'"),
        ("bitcoin close > 1 2", "'2' after the number"),
        ("strategy", "a strategy name is missing"),
        ("strategy > 3", "a strategy name is missing"),
        ("portfolio", "a portfolio metric is missing"),
        ("bitcoin close > 5%", "a percent sign only goes with"),
        ("bitcoin close > nan", "'nan' is not a number"),
    ],
)
def test_parse_when_expression_bad_names_the_token_and_what_is_allowed(
    expression: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_alert_expression(expression)

    text = str(caught.value)
    assert text.startswith(f"alert expression {expression!r}: ")
    assert message in text
    assert "\n" not in text


def test_holds_when_operator_given_compares_inclusive_and_strict() -> None:
    above = parse_alert_expression("bitcoin close > 10")
    at_least = parse_alert_expression("bitcoin close >= 10")
    below = parse_alert_expression("bitcoin close < 10")
    at_most = parse_alert_expression("bitcoin close <= 10")

    assert [above.holds(10), at_least.holds(10), below.holds(10), at_most.holds(10)] == [
        False, True, False, True,
    ]  # fmt: skip
    assert above.holds(10.000001) and below.holds(9.999999)
