"""Operator commands, acted on at the start of an iteration, settled once it is saved.

Each pending ``bot_commands`` row is acted on in id order: pause and resume new entries, halt,
override or reset the circuit breaker (a reset re-bases the high-water mark), force an exit
or an entry at the next open (the entry sized as a signal's, under the hard risk limits and
the breaker, but needing no signal and not stopped by a pause), stop after this bar, reload
(nothing to reload: rejected, saying so). A command is marked acknowledged with what was
done, or rejected with why not, only after the iteration's progress is committed: a kill
before that loses the command's effect (the breaker, the pause live in the progress), so the
command must stay pending and be acted on again at the restart, which redoes the bar (an
exit is resent under its id).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from marketbot.bot.risk_book import RiskBook
from marketbot.store.bot_commands import BotCommandInfo, BotCommandRepository

if TYPE_CHECKING:
    from marketbot.bot.loop import BotLoop


class CommandHandler:
    """Acts on the pending commands for one bot."""

    def __init__(self, commands: BotCommandRepository, risk: RiskBook, symbol: str) -> None:
        self.commands = commands
        self.risk = risk
        self.symbol = symbol
        self._outcomes: list[tuple[int, bool, str]] = []

    def apply_pending(self, loop: BotLoop, now: datetime) -> None:
        """Act on every pending command, oldest first (settled by :meth:`settle`)."""
        for command in self.commands.pending():
            done, result = self._act(loop, command, now)
            self._outcomes.append((command.id, done, result))

    def settle(self) -> None:
        """Mark the commands acted on acknowledged or rejected, once the bar is saved."""
        for command_id, done, result in self._outcomes:
            if done:
                self.commands.acknowledge(command_id, result)
            else:
                self.commands.reject(command_id, result)
        self._outcomes.clear()

    def _act(self, loop: BotLoop, command: BotCommandInfo, now: datetime) -> tuple[bool, str]:
        who, why = command.by, command.reason
        kind = command.kind
        if kind == "pause":
            loop.state.paused = True
            return True, "new entries paused"
        if kind == "resume":
            loop.state.paused = False
            self.risk.resume(who, why, now)
            return True, "new entries resumed (a breaker trip still applies)"
        if kind == "halt":
            self.risk.halt(who, why, now)
            return True, "new entries halted"
        if kind == "override":
            self.risk.allow(who, why, now)
            return True, "entries allowed despite the breaker"
        if kind == "reset_breaker":
            self.risk.reset(who, why, now)
            return True, f"breaker reset; high-water mark re-based at {self.risk.peak_equity:,.2f}"
        if kind == "force_exit":
            return self._force_exit(loop, command, now)
        if kind == "force_entry":
            return self._force_entry(loop, command, now)
        if kind == "stop":
            loop.state.stop_requested = True
            return True, "stopping after this bar"
        return False, f"{kind}: nothing to do in a replay"

    def _force_exit(
        self, loop: BotLoop, command: BotCommandInfo, now: datetime
    ) -> tuple[bool, str]:
        symbol = command.args.get("symbol")
        if symbol is not None and symbol != self.symbol:
            return False, f"this bot holds no {symbol} (it trades {self.symbol})"
        if loop.force_exit(now):
            return True, f"exit of {self.symbol} sent for the next open"
        return True, f"{self.symbol}: no open position"

    def _force_entry(
        self, loop: BotLoop, command: BotCommandInfo, now: datetime
    ) -> tuple[bool, str]:
        symbol = command.args.get("symbol")
        if symbol is not None and symbol != self.symbol:
            return False, f"this bot trades {self.symbol}, not {symbol}"
        done, result = loop.force_entry(now)
        return done, result
