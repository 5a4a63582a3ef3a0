"""The ``marketbot`` command line: wiring only; the work happens in the layers below.

One module per command group registers its commands here. Heavy imports (pandas, numba,
SQLAlchemy) happen inside the commands, so ``marketbot --help`` stays fast.

Exit codes: 0 success; 1 a marketbot error (one line on stderr, ``error: ...``) or a failed
check (``lookahead`` finding bias); 2 a usage error (typer's short usage message). No command
prints a traceback unless ``MARKETBOT_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

import marketbot.cli.download  # noqa: F401 - registers `data download`
from marketbot.cli import backtest as backtest_commands
from marketbot.cli import drift as drift_commands
from marketbot.cli import events as event_commands
from marketbot.cli import optimize as optimize_commands
from marketbot.cli import run as run_commands
from marketbot.cli import strategies as strategy_commands
from marketbot.cli.alerts import alerts_app
from marketbot.cli.bot import bot_app, risk_app
from marketbot.cli.data import data_app
from marketbot.cli.keys import keys_app
from marketbot.cli.polymarket import polymarket_app
from marketbot.cli.runs import runs_app
from marketbot.cli.web import web_app

app = typer.Typer(
    name="marketbot",
    help="Test trading strategies on real price history before money is at risk.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich formatter imports markdown-it and costs ~0.7 s per call.
    rich_markup_mode=None,
)
app.command()(backtest_commands.backtest)
app.command()(strategy_commands.strategies)
app.command()(strategy_commands.lookahead)
app.command()(optimize_commands.optimize)
app.command()(backtest_commands.demo)
app.command()(run_commands.run)
app.command()(run_commands.status)
app.add_typer(data_app, name="data")
app.add_typer(runs_app, name="runs")
app.add_typer(polymarket_app, name="polymarket")
app.add_typer(risk_app, name="risk")
app.add_typer(bot_app, name="bot")
app.add_typer(web_app, name="web")
app.add_typer(keys_app, name="keys")
app.add_typer(alerts_app, name="alerts")
app.command()(event_commands.events)
app.command()(drift_commands.drift)

DEBUG_VARIABLE = "MARKETBOT_DEBUG"


def _debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: run the app, turning every failure into one line.

    Typer's standalone mode prints usage errors itself (exit 2) and help for a group given
    without a command. A ``MarketbotError`` becomes ``error: ...`` and exit 1; any other
    exception too, naming its type, unless ``MARKETBOT_DEBUG=1`` asks for the traceback.
    """
    from marketbot.core.errors import MarketbotError

    try:
        return app(args=argv, prog_name="marketbot", standalone_mode=True)
    except MarketbotError as exc:
        if _debugging():
            raise
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    except Exception as exc:
        if _debugging():
            raise
        typer.echo(
            f"error: internal error: {type(exc).__name__}: {exc} "
            f"(set {DEBUG_VARIABLE}=1 to see the traceback)",
            err=True,
        )
        raise SystemExit(1) from None
    finally:
        run_commands.close_bot_log()  # a command in-process (tests) leaves no handler behind
        sys.stdout.flush()
