"""Operator commands for a multi-strategy run: the account's, or routed to a sleeve.

Pause, resume, halt, override, reset and stop act on the account as in a single run (a
pause pauses every sleeve); ``force-exit SYMBOL`` goes to the sleeve trading SYMBOL and
``force-exit --all`` to every sleeve; ``force-entry SYMBOL`` to the sleeve trading SYMBOL
(sized as its signal's entry, under its capital). A symbol no sleeve trades is rejected,
naming the ones traded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from marketbot.bot.commands import CommandHandler
from marketbot.store.bot_commands import BotCommandInfo

if TYPE_CHECKING:
    from marketbot.bot.loop import BotLoop


class SleeveCommands(CommandHandler):
    """Acts on the pending commands for every sleeve of one run (set :attr:`loops`)."""

    loops: Sequence[BotLoop] = ()

    def _act(self, loop: BotLoop, command: BotCommandInfo, now: datetime) -> tuple[bool, str]:
        done, result = super()._act(loop, command, now)
        for other in self.loops:  # pause and stop are the account's
            other.state.paused = loop.state.paused
            other.state.stop_requested = loop.state.stop_requested
        return done, result

    def _force_exit(
        self, loop: BotLoop, command: BotCommandInfo, now: datetime
    ) -> tuple[bool, str]:
        symbol = command.args.get("symbol")
        chosen = [other for other in self.loops if symbol in (None, _symbol(other))]
        if not chosen:
            return False, f"this bot holds no {symbol} (it trades {self._traded()})"
        sent = [_symbol(other) for other in chosen if other.force_exit(now)]
        if not sent:
            return True, "no open position" if symbol is None else f"{symbol}: no open position"
        return True, f"exit of {', '.join(sent)} sent for the next open"

    def _force_entry(
        self, loop: BotLoop, command: BotCommandInfo, now: datetime
    ) -> tuple[bool, str]:
        symbol = command.args.get("symbol")
        chosen = next((other for other in self.loops if _symbol(other) == symbol), None)
        if chosen is None:
            return False, f"this bot trades {self._traded()}, not {symbol}"
        return chosen.force_entry(now)

    def _traded(self) -> str:
        return ", ".join(_symbol(other) for other in self.loops)


def _symbol(loop: BotLoop) -> str:
    return loop.parts.plan.symbol
