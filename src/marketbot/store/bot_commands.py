"""Operator commands to the bot: queued as rows, acknowledged by the bot's loop.

The CLI (``marketbot risk ...``, ``marketbot bot ...``) and the dashboard queue commands;
the loop reads :meth:`BotCommandRepository.pending` in id order at its next iteration (or at
its start) and marks each acknowledged or rejected. See docs/bot_commands.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from marketbot.core.clock import as_utc
from marketbot.core.errors import ConfigError, DataError
from marketbot.store._bot_common import Clock, info_from_row, json_object
from marketbot.store.database import Database
from marketbot.store.models import BOT_COMMAND_KINDS, BotCommand, utc_now


@dataclass(frozen=True, slots=True)
class BotCommandInfo:
    """A stored operator command and what became of it."""

    id: int
    kind: str
    args: dict[str, Any]
    by: str
    reason: str
    created_at: datetime
    status: str
    acknowledged_at: datetime | None
    result: str | None


# What each command kind takes in ``args``; every other key is refused.
_COMMAND_ARGS: Final[dict[str, frozenset[str]]] = {
    "force_exit": frozenset({"symbol", "all"}),
    "force_entry": frozenset({"symbol"}),
}


def check_command(
    kind: str,
    *,
    by: str | None,
    reason: str | None,
    args: Mapping[str, Any],
    label: str | None = None,
) -> None:
    """Refuse a command the bot could not act on, before anything is stored.

    ``force_exit`` takes ``{"symbol": S}`` or ``{"all": true}``, ``force_entry`` takes
    ``{"symbol": S}``; the other kinds take no arguments. Every command needs who asks
    (``by``) and why (``reason``).

    Args:
        kind: One of ``BOT_COMMAND_KINDS``.
        by: Who asks.
        reason: Why.
        args: The command's arguments.
        label: How messages name the command (the CLI passes ``risk reset``); default
            ``kind``.

    Raises:
        ConfigError: an unknown kind, a missing ``by`` or ``reason``, or wrong arguments.
    """
    if kind not in BOT_COMMAND_KINDS:
        raise ConfigError(
            f"unknown bot command {kind!r}: use one of {', '.join(BOT_COMMAND_KINDS)}"
        )
    name = label or kind
    if by is None or not by.strip():
        raise ConfigError(f"{name}: say who asks (--by NAME)")
    if len(by) > 100:
        raise ConfigError(f"{name}: --by is {len(by)} characters long, at most 100 fit")
    if reason is None or not reason.strip():
        raise ConfigError(f"{name}: give a reason (--reason TEXT); nothing was queued")
    unknown = sorted(set(args) - _COMMAND_ARGS.get(kind, frozenset()))
    if unknown:
        raise ConfigError(f"{name}: unexpected argument(s) {', '.join(unknown)}")
    symbol, every = args.get("symbol"), bool(args.get("all"))
    if symbol is not None and (not isinstance(symbol, str) or not symbol.strip()):
        raise ConfigError(f"{name}: the symbol must be a non-empty name")
    if kind == "force_exit" and (symbol is None) == (not every):
        raise ConfigError(f"{name}: name one SYMBOL or give --all (not both)")
    if kind == "force_entry" and symbol is None:
        raise ConfigError(f"{name}: name the SYMBOL to enter")


class BotCommandRepository:
    """Operator commands: queued by the CLI or the dashboard, acknowledged by the loop.

    Args:
        database: The database to use (migrated to the current schema).
        clock: Returns the current time; tests pass a fixed clock.
    """

    def __init__(self, database: Database, *, clock: Clock = utc_now) -> None:
        self._database = database
        self._clock = clock

    def queue(
        self, kind: str, *, by: str, reason: str, args: Mapping[str, Any] | None = None
    ) -> BotCommandInfo:
        """Store a pending command and return it.

        Raises:
            ConfigError: as :func:`check_command` says; nothing is stored then.
        """
        arguments = dict(args or {})
        check_command(kind, by=by, reason=reason, args=arguments)
        row = BotCommand(
            kind=kind,
            args=json_object(arguments, "args"),
            by=by.strip(),
            reason=reason.strip(),
            created_at=as_utc(self._clock()),
            status="pending",
        )
        with self._database.session() as session, session.begin():
            session.add(row)
            session.flush()
            return info_from_row(BotCommandInfo, row)

    def pending(self) -> list[BotCommandInfo]:
        """The commands not yet acknowledged or rejected, in the order they were queued."""
        query = sa.select(BotCommand).where(BotCommand.status == "pending").order_by(BotCommand.id)
        with self._database.session() as session:
            return [info_from_row(BotCommandInfo, row) for row in session.scalars(query)]

    def get(self, command_id: int) -> BotCommandInfo:
        """One command by id.

        Raises:
            DataError: there is no such command.
        """
        with self._database.session() as session:
            row = session.get(BotCommand, command_id)
            if row is None:
                raise DataError(f"no bot command with id {command_id}")
            return info_from_row(BotCommandInfo, row)

    def acknowledge(self, command_id: int, result: str) -> BotCommandInfo:
        """Mark a pending command done; ``result`` says what the bot did.

        Raises:
            DataError: no such command, or it is not pending any more.
        """
        return self._settle(command_id, "acknowledged", result)

    def reject(self, command_id: int, result: str) -> BotCommandInfo:
        """Mark a pending command refused; ``result`` says why.

        Raises:
            DataError: no such command, or it is not pending any more.
        """
        return self._settle(command_id, "rejected", result)

    def _settle(self, command_id: int, status: str, result: str) -> BotCommandInfo:
        now = as_utc(self._clock())
        with self._database.session() as session, session.begin():
            # A conditional update: of two loops settling one command, only one wins.
            settled = session.execute(
                sa.update(BotCommand)
                .where(BotCommand.id == command_id, BotCommand.status == "pending")
                .values(status=status, acknowledged_at=now, result=result)
            )
            if int(getattr(settled, "rowcount", 0)) != 1:
                row = session.get(BotCommand, command_id)
                if row is None:
                    raise DataError(f"no bot command with id {command_id}")
                raise DataError(f"bot command {command_id} is {row.status} already, not pending")
            return info_from_row(
                BotCommandInfo, session.get(BotCommand, command_id, populate_existing=True)
            )
