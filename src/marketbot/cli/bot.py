"""``marketbot risk`` and ``marketbot bot``: an operator's commands to the running bot.

Each command queues one ``bot_commands`` row (kind, arguments, ``--by``, ``--reason``) and
returns at once; the bot acknowledges it at its next iteration, or when it starts. Every
command needs ``--reason`` (a missing one is one line on stderr, exit 1, nothing queued);
``--by`` defaults to the login name. See docs/bot_commands.md.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from marketbot.cli.common import open_database

risk_app = typer.Typer(
    help="Steer the bot's risk controls: reset the breaker, halt, override, resume.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
bot_app = typer.Typer(
    help="Commands to the running bot: stop, force an exit or an entry, reload.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why (required; kept with the command).")
]
ByOption = Annotated[str | None, typer.Option("--by", help="Who asks (default: your login name).")]


def _login_name() -> str:
    import getpass

    from marketbot.core.errors import ConfigError

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise ConfigError("cannot tell your login name: say who asks with --by NAME") from None


def _queue(label: str, kind: str, by: str | None, reason: str | None, args: dict[str, Any]) -> None:
    """Check the command, store it, and say what was queued (``label``: the command line)."""
    from marketbot.store.bot_commands import BotCommandRepository, check_command

    who = by if by is not None else _login_name()
    # Checked before the database is opened: a refused command leaves no trace.
    check_command(kind, by=who, reason=reason, args=args, label=label)
    repository = BotCommandRepository(open_database())
    command = repository.queue(kind, by=who, reason=reason or "", args=args)
    target = ""
    if "symbol" in command.args:
        target = f" {command.args['symbol']}"
    elif command.args.get("all"):
        target = " (all positions)"
    typer.echo(f"queued command {command.id}: {command.kind}{target}, by {command.by}")
    typer.echo("the bot acknowledges it at its next iteration (or when it starts)")


@risk_app.command("reset")
def risk_reset(reason: ReasonOption = None, by: ByOption = None) -> None:
    """Reset the circuit breaker: clear its trip and any halt or override.

    The bot also re-bases the equity high-water mark at its current equity, so the drawdown
    limit is measured from there (otherwise a drawdown trip would trip again at once).
    """
    _queue("risk reset", "reset_breaker", by, reason, {})


@risk_app.command("halt")
def risk_halt(reason: ReasonOption = None, by: ByOption = None) -> None:
    """Halt new entries at once, until `risk resume` or `risk reset`.

    Exits, stops and forced exits go on; the halt is recorded as a risk override.
    """
    _queue("risk halt", "halt", by, reason, {})


@risk_app.command("override")
def risk_override(reason: ReasonOption = None, by: ByOption = None) -> None:
    """Allow new entries despite a breaker trip, until `risk resume` or `risk reset`.

    The per-trade limits (position size, exposure, positions) still apply.
    """
    _queue("risk override", "override", by, reason, {})


@risk_app.command("resume")
def risk_resume(reason: ReasonOption = None, by: ByOption = None) -> None:
    """End a halt, pause or override: the breaker's own state applies again.

    A trip stays until `risk reset` (or, for a daily-loss trip, the daily reset).
    """
    _queue("risk resume", "resume", by, reason, {})


@bot_app.command("stop")
def bot_stop(reason: ReasonOption = None, by: ByOption = None) -> None:
    """Stop the bot after its current iteration; it saves its state and exits.

    Open positions and their protective orders stay as they are.
    """
    _queue("bot stop", "stop", by, reason, {})


@bot_app.command("force-exit")
def bot_force_exit(
    symbol: Annotated[
        str | None, typer.Argument(help="The symbol whose position to close.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Close every open position.")] = False,
    reason: ReasonOption = None,
    by: ByOption = None,
) -> None:
    """Close the position in SYMBOL (or every position with --all) at market."""
    args: dict[str, Any] = {}
    if symbol is not None:
        args["symbol"] = symbol
    if every:
        args["all"] = True
    _queue("bot force-exit", "force_exit", by, reason, args)


@bot_app.command("force-entry")
def bot_force_entry(
    symbol: Annotated[str, typer.Argument(help="The symbol to enter.")],
    reason: ReasonOption = None,
    by: ByOption = None,
) -> None:
    """Enter SYMBOL at market now, sized as a signal's entry and within the risk limits."""
    _queue("bot force-entry", "force_entry", by, reason, {"symbol": symbol})


@bot_app.command("reload")
def bot_reload(reason: ReasonOption = None, by: ByOption = None) -> None:
    """Re-read the run configuration and risk limits at the next iteration."""
    _queue("bot reload", "reload", by, reason, {})
