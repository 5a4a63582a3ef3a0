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


def parse_column_map(values: list[str] | None) -> dict[str, str] | None:
    """``--columns`` values as ``{field: CSV column name}``, or None when none were given.

    Each value holds one or more comma-separated ``FIELD=COLUMN`` pairs, and the option may
    be repeated: ``--columns timestamp=Date,close=Price --columns volume=Vol``. Later pairs
    win. Field names are case-insensitive; column names are kept as written.

    Raises:
        ConfigError: a pair without ``=``, a key or a column name, or a key that is not one of
            timestamp, open, high, low, close, volume (the message names it and them).
    """
    from marketbot.core.errors import ConfigError
    from marketbot.sources.csv_file import CSV_FIELDS

    if not values:
        return None
    pairs = [pair for value in values for pair in value.split(",") if pair.strip()]
    parsed = parse_key_values(
        pairs,
        option="--columns",
        usage="use FIELD=COLUMN, e.g. --columns timestamp=Date,close=Price",
        value_required=True,
    )
    mapping: dict[str, str] = {}
    for key, column in parsed.items():
        if key.lower() not in CSV_FIELDS:
            raise ConfigError(
                f"--columns {key}={column}: {key!r} is not a field; use one of "
                f"{', '.join(CSV_FIELDS)}"
            )
        mapping[key.lower()] = column
    return mapping or None
