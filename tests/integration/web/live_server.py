"""The dashboard served by a real uvicorn on 127.0.0.1 in a thread, with its job worker.

For the browser tests and ``make screenshots``: a data directory with the bundled sample
bars and an admin, a cheap password hasher, and the worker as the app starts it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import uvicorn

from marketbot.config import Settings
from marketbot.store.database import Database
from marketbot.store.prices import PriceRepository
from marketbot.store.web_auth import WebAuthRepository
from marketbot.web import WebSettings, create_app
from tests.integration.web.conftest import PASSWORD, USERNAME, cheap_hasher
from tests.support.frames import sample_daily_btc


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare_data_dir(settings: Settings) -> None:
    """The admin and the daily BTC sample (bitstamp/bitcoin/1d) in a fresh data dir."""
    database = Database.from_settings(settings)
    try:
        database.migrate()
        WebAuthRepository(database).set_admin(USERNAME, cheap_hasher().hash(PASSWORD))
        PriceRepository(database).upsert_bars("bitstamp", "bitcoin", "1d", sample_daily_btc())
    finally:
        database.dispose()


@contextmanager
def live_dashboard(data_dir: Path, **settings: object) -> Iterator[str]:
    """Serve the dashboard on 127.0.0.1; yields its base URL; stops server and worker."""
    marketbot_settings = Settings(data_dir=data_dir, **settings)  # type: ignore[arg-type]
    prepare_data_dir(marketbot_settings)
    web = replace(WebSettings(settings=marketbot_settings), password_hasher=cheap_hasher())
    port = free_port()
    config = uvicorn.Config(
        create_app(web), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the dashboard did not start within 60 s")
        time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)
