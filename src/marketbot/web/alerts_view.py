"""Alerts for the page: the condition form's choices and what a test of an alert finds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marketbot.bot.alert_expressions import METRICS, AlertCondition
from marketbot.bot.alert_trial import trial_alert, value_snapshot
from marketbot.bot.alerts import condition_of
from marketbot.bot.status import bot_status
from marketbot.config import Settings
from marketbot.core.errors import DataError
from marketbot.store.alerts import AlertInfo
from marketbot.store.database import Database
from marketbot.store.prices import PriceRepository
from marketbot.web.errors import FieldError
from marketbot.web.schemas import AlertCreateRequest


def condition_of_request(body: AlertCreateRequest) -> AlertCondition:
    """The request's condition, its fields checked against the kind; FieldError naming one."""
    metrics = METRICS[body.kind]
    if body.metric not in metrics:
        raise FieldError("body.metric", f"a {body.kind} alert watches one of {', '.join(metrics)}")
    unit = metrics[body.metric]
    if body.unit is not None and body.unit != unit:
        raise FieldError("body.unit", f"{body.metric} is measured in {unit}")
    if body.kind == "portfolio" and body.subject is not None:
        raise FieldError("body.subject", "a portfolio alert has no subject")
    if body.kind != "portfolio" and body.subject is None:
        what = "symbol" if body.kind == "price" else "strategy"
        raise FieldError("body.subject", f"name the {what} the alert watches")
    return AlertCondition(body.kind, body.subject, body.metric, body.op, body.threshold, unit)


def alert_json(alert: AlertInfo) -> dict[str, Any]:
    """An alert with its state, for the API."""
    return {
        "id": alert.id,
        "name": alert.name,
        "kind": alert.kind,
        "subject": alert.subject,
        "metric": alert.metric,
        "op": alert.operator,
        "threshold": alert.threshold,
        "unit": alert.unit,
        "condition": condition_of(alert).describe(),
        "cooldown_seconds": alert.cooldown_seconds,
        "timeframe": alert.timeframe,
        "enabled": alert.enabled,
        "state": "disabled" if not alert.enabled else ("armed" if alert.armed else "fired"),
        "trigger_count": alert.trigger_count,
        "last_triggered": None
        if alert.last_triggered is None
        else alert.last_triggered.isoformat(),
        "last_value": alert.last_value,
    }


def _latest_snapshot_value(
    alert: AlertInfo, database: Database, settings: Settings, symbol: str
) -> tuple[float, datetime]:
    """The metric on the latest stored bar of ``symbol``, read as the alerts module reads it."""
    from marketbot.backtest.run_config import load_run_config
    from marketbot.bot.alert_snapshot import reading_for
    from marketbot.bot.alert_trial import bar_snapshots

    prices = PriceRepository(database)
    try:
        source, timeframe = prices.resolve_series(symbol, timeframe=alert.timeframe)
        frame = prices.load_bars(symbol, timeframe=timeframe, source=source)
    except DataError as exc:
        raise FieldError("body.value", f"no latest data: {exc}") from None
    if frame.empty:
        raise FieldError("body.value", f"no latest data: no stored bars of {symbol}")
    # A strategy's reading is taken as `marketbot run` runs it without --config.
    config = (
        load_run_config(None, settings=settings, bot_defaults=True).backtest_config(
            alert.subject or ""
        )
        if alert.kind == "strategy"
        else None
    )
    last = frame.index[-1]
    snapshots = list(bar_snapshots(alert, frame, last, config))
    reading = (
        reading_for(snapshots[-1], condition_of(alert), alert.timeframe) if snapshots else None
    )
    if reading is None:
        raise FieldError("body.value", f"the latest bar of {symbol} gives no {alert.metric}")
    return reading.value, reading.at


def latest_value(
    alert: AlertInfo, database: Database, settings: Settings
) -> tuple[float, datetime]:
    """The alert metric's latest value: the last stored bar, or the bot's status.

    A price alert reads its symbol's last bar; a strategy alert its strategy on the last bar
    of the symbol the bot's current run trades; a portfolio alert the bot's account.

    Raises:
        FieldError: no data to read it from (type a value instead).
    """
    if alert.kind == "price":
        return _latest_snapshot_value(alert, database, settings, alert.subject or "")
    status = bot_status(database, settings.data_dir)
    if alert.kind == "strategy":
        if status["symbol"] is None:
            raise FieldError("body.value", "no bot run to take the symbol from: type a value")
        return _latest_snapshot_value(alert, database, settings, status["symbol"])
    positions = status["open_positions"]
    values = {
        "total_value": status["equity"],
        "daily_pnl": status["daily_pnl"],
        "exposure_usd": sum(abs(p["size"] * p["entry_price"]) for p in positions),
        "drawdown_pct": None
        if not status["peak_equity"] or status["equity"] is None
        else 100.0 * (status["peak_equity"] - status["equity"]) / status["peak_equity"],
    }
    value = values.get(alert.metric)
    if value is None:
        raise FieldError("body.value", "no bot run to read the portfolio from: type a value")
    return float(value), datetime.now(UTC)


def test_alert(
    alert: AlertInfo, value: float | None, database: Database, settings: Settings
) -> dict[str, Any]:
    """Whether the alert would fire on ``value`` (or the latest data), and on what value."""
    if value is None:
        value, moment = latest_value(alert, database, settings)
        source = "latest data"
    else:
        moment, source = datetime.now(UTC), "typed value"
    trial = trial_alert(alert, [value_snapshot(alert, value, moment)])
    return {
        "alert_id": alert.id,
        "condition": condition_of(alert).describe(),
        "value": value,
        "on": source,
        "at": moment.isoformat(),
        "would_fire": bool(trial.firings),
    }
