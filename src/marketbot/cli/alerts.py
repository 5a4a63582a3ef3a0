"""``marketbot alerts``: add, list, enable, disable, delete, test and watch alerts.

Expressions, semantics and notify URLs are described in docs/alerts.md. Every bad input
(an expression, an unknown symbol, a cooldown, an id) is one line on stderr and exit 1,
with nothing stored.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from marketbot.cli.common import open_database

if TYPE_CHECKING:
    from marketbot.bot.alert_trial import AlertTrial
    from marketbot.store.alerts import AlertInfo

alerts_app = typer.Typer(
    help="Price, strategy and portfolio alerts: add, list, test, watch.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

IdArgument = Annotated[str, typer.Argument(help="The alert's id (see `alerts list`).")]


@alerts_app.command("add")
def alerts_add(
    expression: Annotated[
        str, typer.Argument(help='e.g. "bitcoin close > 20000", "portfolio drawdown_pct >= 10".')
    ],
    name: Annotated[str | None, typer.Option(help="Its name (default: the expression).")] = None,
    cooldown: Annotated[
        str, typer.Option(help="Least time between two firings, e.g. 1h, 30m, 1d, 0.")
    ] = "1h",
    timeframe: Annotated[
        str | None, typer.Option(help="Evaluate a price alert on bars of this timeframe only.")
    ] = None,
) -> None:
    """Add an alert; it starts armed and fires when its condition becomes true."""
    from marketbot.bot.alert_expressions import parse_alert_expression
    from marketbot.bot.alert_sources import check_alert_subject
    from marketbot.core.errors import ConfigError
    from marketbot.store.alerts import AlertRepository, AlertSpec

    condition = parse_alert_expression(expression)
    cooldown_seconds = parse_cooldown(cooldown)
    label = (name if name is not None else condition.describe()).strip()
    if not label:
        raise ConfigError("--name: must not be empty")
    database = open_database()
    canonical = check_alert_subject(database, condition, timeframe)
    alert = AlertRepository(database).add(
        AlertSpec(
            name=label, kind=condition.kind, subject=condition.subject, metric=condition.metric,
            operator=condition.operator, threshold=condition.threshold, unit=condition.unit,
            cooldown_seconds=cooldown_seconds, timeframe=canonical,
        )
    )  # fmt: skip
    typer.echo(
        f"added alert {alert.id}: {alert.name} ({condition.describe()}, cooldown "
        f"{_duration(alert.cooldown_seconds)})"
    )


@alerts_app.command("list")
def alerts_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
) -> None:
    """Every alert: its condition, whether it is enabled and armed, its firings."""
    from marketbot.store.alerts import AlertRepository

    alerts = AlertRepository(open_database()).all()
    rows = [alert_json(alert) for alert in alerts]
    if as_json:
        sys.stdout.write(json.dumps(rows, allow_nan=False) + "\n")
        return
    if not rows:
        typer.echo('no alerts yet: add one with marketbot alerts add "bitcoin close > 20000"')
        return
    for row in rows:
        state = "enabled" if row["enabled"] else "disabled"
        armed = "armed" if row["armed"] else "disarmed"
        last = row["last_triggered"] or "never"
        typer.echo(
            f"{row['id']:>4}  {row['name']}: {row['condition']}  [{state}, {armed}]  fired "
            f"{row['trigger_count']}x, last {last}, cooldown "
            f"{_duration(row['cooldown_seconds'])}"
        )


@alerts_app.command("enable")
def alerts_enable(alert_id: IdArgument) -> None:
    """Enable an alert (it re-arms)."""
    from marketbot.store.alerts import AlertRepository

    alert = AlertRepository(open_database()).set_enabled(parse_alert_id(alert_id), True)
    typer.echo(f"alert {alert.id} ({alert.name}) enabled")


@alerts_app.command("disable")
def alerts_disable(alert_id: IdArgument) -> None:
    """Disable an alert: it is kept but not evaluated."""
    from marketbot.store.alerts import AlertRepository

    alert = AlertRepository(open_database()).set_enabled(parse_alert_id(alert_id), False)
    typer.echo(f"alert {alert.id} ({alert.name}) disabled")


@alerts_app.command("delete")
def alerts_delete(alert_id: IdArgument) -> None:
    """Delete an alert (its events are kept)."""
    from marketbot.store.alerts import AlertRepository

    alert = AlertRepository(open_database()).delete(parse_alert_id(alert_id))
    typer.echo(f"alert {alert.id} ({alert.name}) deleted")


@alerts_app.command("test")
def alerts_test(
    alert_id: IdArgument,
    symbol: Annotated[str | None, typer.Option(help="Replay this stored symbol's bars.")] = None,
    start: Annotated[str | None, typer.Option(help="First bar (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last bar (YYYY-MM-DD), with --symbol.")] = None,
    data: Annotated[Path | None, typer.Option(help="Replay the bars of this CSV file.")] = None,
    value: Annotated[float | None, typer.Option(help="Evaluate once on this value.")] = None,
    send: Annotated[
        bool, typer.Option(help="Send one notice marked TEST to MARKETBOT_NOTIFY_URLS.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Evaluate an alert on past bars or a value: its firings (time, value). Nothing stored."""
    from marketbot.core.errors import ConfigError
    from marketbot.store.alerts import AlertRepository

    if sum(x is not None for x in (symbol, data, value)) != 1:
        raise ConfigError("alerts test: give one of --symbol S, --data FILE.csv or --value X")
    if (start is not None or end is not None) and symbol is None:
        raise ConfigError("--start and --end go with --symbol")
    database = open_database()
    alert = AlertRepository(database).get(parse_alert_id(alert_id))
    trial = _trial(database, alert, symbol=symbol, start=start, end=end, data=data, value=value)
    if send:
        _send_test(trial)
    if as_json:
        sys.stdout.write(json.dumps(trial.to_dict(), allow_nan=False) + "\n")
        return
    payload = trial.to_dict()
    count = len(trial.firings)
    typer.echo(
        f"alert {alert.id} {alert.name} ({payload['condition']}): {count} "
        f"firing{'s' if count != 1 else ''} in {trial.evaluations} evaluations"
    )
    for firing in trial.firings:
        typer.echo(f"  {firing.at:%Y-%m-%d %H:%M} UTC  {firing.value:,.2f}")


@alerts_app.command("watch")
def alerts_watch(
    interval: Annotated[str, typer.Option(help="Time between evaluations, e.g. 60s, 5m.")] = "60s",
    iterations: Annotated[
        int | None, typer.Option(help="Stop after this many evaluations (default: never).")
    ] = None,
) -> None:
    """Evaluate the alerts every interval on the latest stored bars and the bot's records.

    Also reports, as an emergency, a bot run whose heartbeat is older than two of its bars.
    """
    from marketbot.backtest.config import parse_duration_seconds
    from marketbot.bot.alert_watch import AlertWatcher
    from marketbot.bot.notify import AppriseNotifier
    from marketbot.config import load_settings
    from marketbot.core.clock import SystemClock
    from marketbot.core.errors import ConfigError
    from marketbot.store.events import EventRepository

    seconds = parse_duration_seconds(interval, name="--interval")
    if iterations is not None and iterations < 1:
        raise ConfigError(f"--iterations {iterations}: must be 1 or more")
    settings = load_settings()
    database = open_database()
    with AppriseNotifier.from_settings(settings, EventRepository(database)) as notifier:
        watcher = AlertWatcher(database, notifier, SystemClock())
        typer.echo(f"watching alerts every {_duration(seconds)} (Ctrl-C stops)")
        try:
            report = watcher.run(seconds, iterations)
        except KeyboardInterrupt:
            typer.echo("stopped")
            return
    typer.echo(f"{report.iterations} evaluations, {len(report.firings)} firings")


def parse_alert_id(text: str) -> int:
    """An alert id given on the command line.

    Raises:
        ConfigError: not a whole number above 0.
    """
    from marketbot.core.errors import ConfigError

    try:
        number = int(text.strip())
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"alert id {text!r}: must be a whole number (see `alerts list`)")
    return number


def parse_cooldown(text: str) -> int:
    """``--cooldown`` in whole seconds (``0`` for none).

    Raises:
        ConfigError: not a duration like 1h, 30m, 1d or 0.
    """
    from marketbot.backtest.config import parse_duration_seconds

    if text.strip().lower() in {"0", "0s", "0m", "0h", "0d"}:
        return 0
    return parse_duration_seconds(text, name="--cooldown")


def alert_json(alert: AlertInfo) -> dict[str, Any]:
    """One alert as ``alerts list --json`` prints it."""
    from marketbot.bot.alerts import condition_of

    return {
        "id": alert.id,
        "name": alert.name,
        "condition": condition_of(alert).describe(),
        "kind": alert.kind,
        "subject": alert.subject,
        "metric": alert.metric,
        "op": alert.operator,
        "threshold": alert.threshold,
        "unit": alert.unit,
        "timeframe": alert.timeframe,
        "enabled": alert.enabled,
        "armed": alert.armed,
        "trigger_count": alert.trigger_count,
        "last_triggered": None
        if alert.last_triggered is None
        else f"{alert.last_triggered:%Y-%m-%dT%H:%M:%SZ}",
        "last_value": alert.last_value,
        "cooldown_seconds": alert.cooldown_seconds,
    }


def _trial(
    database: Any,
    alert: AlertInfo,
    *,
    symbol: str | None,
    start: str | None,
    end: str | None,
    data: Path | None,
    value: float | None,
) -> AlertTrial:
    from marketbot.backtest.run_config import load_run_config
    from marketbot.bot.alert_trial import bar_snapshots, trial_alert, value_snapshot
    from marketbot.config import load_settings
    from marketbot.core.clock import SystemClock

    if value is not None:
        return trial_alert(alert, [value_snapshot(alert, value, SystemClock().now())])
    # A strategy alert's strategy runs as `marketbot run` runs it without --config.
    config = (
        load_run_config(None, settings=load_settings(), bot_defaults=True).backtest_config(
            alert.subject or ""
        )
        if alert.kind == "strategy"
        else None
    )
    if data is not None:
        from marketbot.sources.csv_file import load_ohlcv_csv

        frame = load_ohlcv_csv(data).frame
        return trial_alert(alert, bar_snapshots(alert, frame, None, config))
    from marketbot.backtest.engine import BacktestingEngine, parse_date_range

    first, last = parse_date_range(start, end)
    _, _, frame = BacktestingEngine(database).load_stored(
        symbol or "", timeframe=alert.timeframe, source=None, end=last
    )
    return trial_alert(alert, bar_snapshots(alert, frame, first, config))


def _send_test(trial: AlertTrial) -> None:
    from marketbot.bot.notify import AppriseNotifier
    from marketbot.config import load_settings
    from marketbot.core.errors import ConfigError

    notifier = AppriseNotifier.from_settings(load_settings(), None)
    if not notifier.targets:
        raise ConfigError("--send: MARKETBOT_NOTIFY_URLS is empty; set it to send a TEST notice")
    payload = trial.to_dict()
    firings = ", ".join(f"{f.at:%Y-%m-%d %H:%M} UTC ({f.value:,.2f})" for f in trial.firings)
    message = (
        f"TEST of alert {trial.alert.name} ({payload['condition']}): "
        f"{len(trial.firings)} firing(s) in {trial.evaluations} evaluations"
        + (f": {firings}" if firings else "")
    )
    with notifier:
        failures = notifier.send_test(f"marketbot TEST alert {trial.alert.name}", message)
    if failures:
        raise ConfigError(f"the TEST notice was not delivered: {'; '.join(failures)}")


def _duration(seconds: int) -> str:
    if seconds == 0:
        return "none"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
