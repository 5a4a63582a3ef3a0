"""Per-position exit settings (``PositionConfig``): read and write them by position key.

The rows come back as plain dicts whose keys are the exit manager's override fields, so the
app layer can hand them to ``PositionExitOverrides(**row)`` without the store knowing it.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from marketbot.core.errors import ConfigError
from marketbot.store.database import Database
from marketbot.store.models import PositionConfig

OVERRIDE_FIELDS: Final = (
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "trailing_activation",
    "max_hold_seconds",
)
ExitOverrides = dict[str, float | int | None]


class PositionConfigRepository:
    """Stores exit overrides per position (or per symbol, as the caller's key says)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def save(self, position_key: str, overrides: ExitOverrides) -> None:
        """Create or replace the overrides of ``position_key`` (None fields: use defaults).

        Raises:
            ConfigError: an unknown field, or a value the table's checks refuse (e.g. a
                stop-loss of 1.5); nothing is written then.
        """
        unknown = sorted(set(overrides) - set(OVERRIDE_FIELDS))
        if unknown:
            raise ConfigError(
                f"position {position_key!r}: unknown exit setting(s) {', '.join(unknown)} "
                f"(known: {', '.join(OVERRIDE_FIELDS)})"
            )
        values = {name: overrides.get(name) for name in OVERRIDE_FIELDS}
        try:
            with self._database.session() as session, session.begin():
                row = session.scalar(
                    sa.select(PositionConfig).where(PositionConfig.position_key == position_key)
                )
                if row is None:
                    session.add(PositionConfig(position_key=position_key, **values))
                else:
                    for name, value in values.items():
                        setattr(row, name, value)
        except IntegrityError as exc:
            raise ConfigError(
                f"position {position_key!r}: exit settings refused by the store: {exc.orig}"
            ) from exc

    def get(self, position_key: str) -> ExitOverrides | None:
        """The overrides of ``position_key``, or None when it has none."""
        with self._database.session() as session:
            row = session.scalar(
                sa.select(PositionConfig).where(PositionConfig.position_key == position_key)
            )
            if row is None:
                return None
            return {name: getattr(row, name) for name in OVERRIDE_FIELDS}

    def delete(self, position_key: str) -> bool:
        """Remove the overrides of ``position_key``; True when there were some."""
        with self._database.session() as session, session.begin():
            row = session.scalar(
                sa.select(PositionConfig).where(PositionConfig.position_key == position_key)
            )
            if row is None:
                return False
            session.delete(row)
            return True
