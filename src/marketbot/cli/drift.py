"""``marketbot drift``: the bot run's trades against a backtest of the same bars and config."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from marketbot.cli.common import open_database


def drift(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Compare the current bot run's trades with a backtest of its bars, trade by trade."""
    from marketbot.bot.drift import drift_report

    payload = drift_report(open_database()).to_dict()
    if as_json:
        sys.stdout.write(json.dumps(payload, allow_nan=False) + "\n")
        return
    for line in drift_lines(payload):
        typer.echo(line)


def drift_lines(payload: dict[str, Any]) -> list[str]:
    """The comparison for people: a summary, then one line per trade."""
    run, summary = payload["run"], payload["summary"]
    lines = [
        f"run {run['id']} ({run['mode']}): {run['strategy']} on {run['symbol']} "
        f"({run['timeframe']}), {payload['start'][:10]} to {payload['end'][:10]}",
        f"bot {summary['bot_trades']} trades, backtest {summary['backtest_trades']}; "
        f"{summary['matched']} paired by entry time, {summary['same_exits']} with the same "
        f"exit; closed P&L {summary['bot_pnl']:,.2f} vs {summary['backtest_pnl']:,.2f} "
        f"({summary['pnl_difference']:+,.2f})",
    ]
    for pair in payload["trades"]:
        bot, test, diff = pair["bot"], pair["backtest"], pair["differences"]
        if bot is None or test is None:
            side = "backtest only" if bot is None else "bot only"
            trade = test or bot
            lines.append(
                f"  {pair['entry_time']}  {side}: entry {trade['entry_price']:,.2f}, exit "
                f"{trade['exit_time'] or 'open'} ({trade['exit_reason']})"
            )
            continue
        lines.append(
            f"  {pair['entry_time']}  entry {bot['entry_price']:,.2f} vs "
            f"{test['entry_price']:,.2f} ({diff.get('entry_price_pct', 0.0):+.3f} %), exit "
            f"{bot['exit_time'] or 'open'} vs {test['exit_time']} ({bot['exit_reason']} / "
            f"{test['exit_reason']}), size {diff.get('size_pct', 0.0):+.3f} %"
        )
    return lines
