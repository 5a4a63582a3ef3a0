"""``marketbot events``: what the bot and the alerts reported, newest first, and its delivery."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from marketbot.cli.common import open_database

if TYPE_CHECKING:
    from marketbot.store.events import EventInfo


def events(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON array.")] = False,
    limit: Annotated[int, typer.Option(help="How many of the newest events.")] = 50,
    kind: Annotated[
        str | None, typer.Option(help="Only this kind, e.g. alert_fired, heartbeat_stale.")
    ] = None,
) -> None:
    """Events (alert firings, breaker trips, slippage, rejections...), newest first."""
    from marketbot.core.errors import ConfigError
    from marketbot.store.events import EventRepository

    if limit < 1:
        raise ConfigError(f"--limit {limit}: must be 1 or more")
    rows = [event_json(e) for e in EventRepository(open_database()).newest(limit, kind=kind)]
    if as_json:
        sys.stdout.write(json.dumps(rows, allow_nan=False, default=str) + "\n")
        return
    if not rows:
        typer.echo("no events yet")
        return
    for row in rows:
        delivery = "sent" if row["delivered"] else (row["delivery_error"] or "not sent")
        typer.echo(
            f"{row['at']}  {row['severity']:<9} {row['kind']}: {row['message']}  [{delivery}]"
        )


def event_json(event: EventInfo) -> dict[str, Any]:
    """One event as ``events --json`` prints it."""
    return {
        "id": event.id,
        "at": f"{event.at:%Y-%m-%dT%H:%M:%SZ}",
        "kind": event.kind,
        "severity": event.severity,
        "message": event.message,
        "details": event.details,
        "alert_id": event.alert_id,
        "delivered": event.delivered,
        "delivery_error": event.delivery_error,
    }
