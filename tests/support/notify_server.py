"""A local notification endpoint: a threaded ``http.server`` on 127.0.0.1 that keeps each POST.

apprise's ``json://user:password@127.0.0.1:PORT/path`` posts ``{"version", "title",
"message", "type"}`` with HTTP basic auth; the server keeps the path, the headers and the
decoded body of each request and answers 200 (or the status set in ``answer_status``), after
``delay_seconds``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ReceivedPost:
    """One POST: where it went, its headers and its JSON body."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class NotifyServer:
    """The server's state, shared with its handler threads."""

    def __init__(self) -> None:
        self.posts: list[ReceivedPost] = []
        self.answer_status = 200
        self.delay_seconds = 0.0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook", *, user: str = "u", password: str = "PWTEST") -> str:
        """An apprise ``json://`` URL to this server, with a user and password."""
        return f"json://{user}:{password}@127.0.0.1:{self.port}{path}"

    def keep(self, post: ReceivedPost) -> None:
        """Record one POST."""
        with self._lock:
            self.posts.append(post)

    def wait_for(self, count: int, timeout_seconds: float = 10.0) -> list[ReceivedPost]:
        """The POSTs once there are ``count`` of them (or whatever came in time)."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            time.sleep(0.01)
        with self._lock:
            return list(self.posts)

    def start(self) -> None:
        """Serve on a thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


def _handler(server: NotifyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Without it each answer waits for the client's delayed ACK (about 40 ms).
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            server.keep(ReceivedPost(self.path, dict(self.headers.items()), json.loads(raw)))
            time.sleep(server.delay_seconds)  # a slow service: later notices queue meanwhile
            self.send_response(server.answer_status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads ``posts``."""

    return Handler


@contextmanager
def notify_server() -> Iterator[NotifyServer]:
    """A running server for the block."""
    server = NotifyServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def dead_url(password: str = "PWDEAD") -> str:
    """A ``json://`` URL to a port on 127.0.0.1 that nothing listens on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"json://u:{password}@127.0.0.1:{port}/hook"
