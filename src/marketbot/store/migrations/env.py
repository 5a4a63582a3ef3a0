"""Alembic environment: runs the migrations on a connection the caller passes in.

``Database.migrate()`` hands over its connection through ``config.attributes``. Run without
one (e.g. ``alembic -c <config>``), it connects to ``sqlalchemy.url`` if the config sets it,
else to the database the ``MARKETBOT_*`` settings name.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from marketbot.store.database import Database
from marketbot.store.models import Base, UTCDateTime


def _render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations must not import model code that may change later: write the plain type.
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_item=_render_item,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from marketbot.config import load_settings

    return load_settings().resolved_database_url


def _run_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=Base.metadata,
        render_item=_render_item,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # Through Database, so that SQLite gets the same connection settings as the app uses.
    with Database(_url()) as database, database.engine.begin() as new_connection:
        _run(new_connection)


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
