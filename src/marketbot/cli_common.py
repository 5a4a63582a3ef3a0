"""What every CLI command module shares: opening the configured, migrated database."""

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
