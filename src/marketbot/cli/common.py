"""What the CLI command modules share: the migrated database, KEY=VALUE options."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from marketbot.store.database import Database


def open_database() -> Database:
    """The database from the settings, migrated to the current schema."""
    from marketbot.config import load_settings
    from marketbot.store.database import Database

    database = Database.from_settings(load_settings())
    database.migrate()
    return database


def parse_key_values(
    pairs: list[str] | None, *, option: str, usage: str, value_required: bool = False
) -> dict[str, str]:
    """``KEY=VALUE`` option values as a dict (later keys win), each side stripped.

    Args:
        pairs: The option's values as given.
        option: The option's name, for the message, e.g. ``--param``.
        usage: How to write one, for the message, e.g. ``use KEY=VALUE, e.g. --param fast=10``.
        value_required: Refuse an empty value too.

    Raises:
        ConfigError: ``"{option} {pair!r}: {usage}"`` for a value without ``=`` or key.
    """
    from marketbot.core.errors import ConfigError

    parsed: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or (value_required and not value.strip()):
            raise ConfigError(f"{option} {pair!r}: {usage}")
        parsed[key.strip()] = value.strip()
    return parsed


def parse_params(pairs: list[str] | None) -> dict[str, str]:
    """``--param KEY=VALUE`` options as a dict of strategy parameters (text values)."""
    return parse_key_values(pairs, option="--param", usage="use KEY=VALUE, e.g. --param fast=10")
