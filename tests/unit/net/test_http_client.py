"""HttpClient against a real local HTTP server: retries, 429, errors, rate and priority."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from marketbot.core.clock import ManualClock
from marketbot.core.errors import TemporaryError
from marketbot.net import (
    PRIORITY_EMERGENCY,
    PRIORITY_LOW,
    ApiError,
    HttpClient,
    PriorityRateLimiter,
    RetryPolicy,
    ServerUnavailableError,
)
from marketbot.net.http_client import parse_retry_after
from tests.support.fake_time import FakeTime

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(START)


@pytest.fixture
def client(httpserver: HTTPServer, fake_time: FakeTime) -> Iterator[HttpClient]:
    limiter = PriorityRateLimiter(600, clock=fake_time.clock, sleep=fake_time.sleep)
    with HttpClient(
        httpserver.url_for("/api"),
        service="TestAPI",
        limiter=limiter,
        headers={"x-api-key": "secret"},
        policy=RetryPolicy(max_attempts=3, timeout_seconds=2.0, sleep=fake_time.sleep),
        clock=fake_time.clock,
    ) as http_client:
        yield http_client


def test_get_json_when_server_answers_returns_body_with_params_and_headers(
    httpserver: HTTPServer, client: HttpClient
) -> None:
    httpserver.expect_request(
        "/api/coins/bitcoin", query_string="days=30", headers={"x-api-key": "secret"}
    ).respond_with_json({"prices": [[1, 2.0]]})

    assert client.get_json("coins/bitcoin", {"days": 30}) == {"prices": [[1, 2.0]]}


def test_get_json_when_5xx_then_success_retries_with_backoff(
    httpserver: HTTPServer, client: HttpClient, fake_time: FakeTime
) -> None:
    httpserver.expect_ordered_request("/api/x").respond_with_data("down", status=503)
    httpserver.expect_ordered_request("/api/x").respond_with_data("oops", status=500)
    httpserver.expect_ordered_request("/api/x").respond_with_json([1, 2])

    assert client.get_json("x") == [1, 2]
    assert len(httpserver.log) == 3
    assert fake_time.sleeps == [1.0, 2.0]  # exponential backoff between attempts


def test_get_json_when_5xx_on_every_attempt_raises_naming_endpoint_and_status(
    httpserver: HTTPServer, client: HttpClient
) -> None:
    httpserver.expect_request("/api/x").respond_with_data("bad gateway", status=502)

    with pytest.raises(ServerUnavailableError, match=r"TestAPI GET /x: HTTP 502.*3 attempts"):
        client.get_json("x")
    assert len(httpserver.log) == 3


def test_get_json_when_404_raises_api_error_without_retrying(
    httpserver: HTTPServer, client: HttpClient
) -> None:
    httpserver.expect_request("/api/coins/nocoin").respond_with_json(
        {"error": "coin not found"}, status=404
    )

    with pytest.raises(ApiError, match=r"GET /coins/nocoin: HTTP 404.*coin not found") as info:
        client.get_json("coins/nocoin")
    assert info.value.status_code == 404
    assert len(httpserver.log) == 1


@pytest.mark.parametrize("body", ['{"prices": [[1, 2', "<html>maintenance</html>", ""])
def test_get_json_when_body_is_malformed_raises_api_error_quoting_it(
    httpserver: HTTPServer, client: HttpClient, body: str
) -> None:
    httpserver.expect_request("/api/x").respond_with_data(body, content_type="application/json")

    with pytest.raises(ApiError, match=r"GET /x: the answer is not valid JSON"):
        client.get_json("x")


def test_get_json_when_429_with_retry_after_waits_then_data_arrives(
    httpserver: HTTPServer, client: HttpClient, fake_time: FakeTime
) -> None:
    httpserver.expect_ordered_request("/api/x").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "7"}
    )
    httpserver.expect_ordered_request("/api/x").respond_with_json({"ok": True})

    assert client.get_json("x") == {"ok": True}
    assert fake_time.sleeps == [7.0]
    assert len(httpserver.log) == 2


def test_get_json_when_retry_after_exceeds_policy_cap_waits_only_the_cap(
    httpserver: HTTPServer, fake_time: FakeTime
) -> None:
    httpserver.expect_ordered_request("/x").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "500"}
    )
    httpserver.expect_ordered_request("/x").respond_with_json({"ok": True})
    limiter = PriorityRateLimiter(600, clock=fake_time.clock, sleep=fake_time.sleep)
    policy = RetryPolicy(max_retry_after_seconds=10, sleep=fake_time.sleep)

    with HttpClient(
        httpserver.url_for("/"), service="TestAPI", limiter=limiter, policy=policy
    ) as http_client:
        assert http_client.get_json("x") == {"ok": True}
    assert fake_time.sleeps == [10.0]


def test_get_json_when_429_storm_never_ends_raises_temporary_error_naming_endpoint(
    httpserver: HTTPServer, client: HttpClient
) -> None:
    httpserver.expect_request("/api/x").respond_with_data(
        "", status=429, headers={"Retry-After": "1"}
    )

    with pytest.raises(TemporaryError, match=r"TestAPI GET /x: .*429"):
        client.get_json("x")
    assert len(httpserver.log) == client.limiter.max_retries + 1


def test_get_json_when_server_is_slower_than_timeout_retries_then_succeeds(
    httpserver: HTTPServer, fake_time: FakeTime
) -> None:
    calls = []

    def slow_first(request: Request) -> Response:
        calls.append(request.path)
        if len(calls) == 1:
            time.sleep(0.5)
        return Response(json.dumps({"n": len(calls)}), content_type="application/json")

    httpserver.expect_request("/x").respond_with_handler(slow_first)
    limiter = PriorityRateLimiter(600, clock=fake_time.clock, sleep=fake_time.sleep)
    with HttpClient(
        httpserver.url_for("/"),
        service="TestAPI",
        limiter=limiter,
        policy=RetryPolicy(timeout_seconds=0.2, sleep=fake_time.sleep),
    ) as http_client:
        answer = http_client.get_json("x")
    # The local server answers one request at a time, so an attempt queued behind the slow
    # one may time out as well; what matters is that a retry gets the data.
    assert len(calls) >= 2
    assert answer == {"n": len(calls)}


def test_get_json_when_nothing_listens_raises_server_unavailable(fake_time: FakeTime) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limiter = PriorityRateLimiter(600, clock=fake_time.clock, sleep=fake_time.sleep)
    with (
        HttpClient(
            f"http://127.0.0.1:{port}",
            service="TestAPI",
            limiter=limiter,
            policy=RetryPolicy(max_attempts=2, sleep=fake_time.sleep),
        ) as http_client,
        pytest.raises(ServerUnavailableError, match=r"connection failed.*2 attempts"),
    ):
        http_client.get_json("x")


def test_parse_retry_after_when_http_date_returns_seconds_from_clock() -> None:
    clock = ManualClock(START)
    header = format_datetime(START + timedelta(seconds=30), usegmt=True)

    assert parse_retry_after(header, clock) == 30.0
    assert parse_retry_after("12", clock) == 12.0
    assert parse_retry_after("soon", clock) is None
    assert parse_retry_after(None, clock) is None


def _log_arrival(arrivals: list[tuple[float, str]]) -> object:
    def handler(request: Request) -> Response:
        arrivals.append((time.monotonic(), request.args.get("name", "")))
        return Response("{}", content_type="application/json")

    return handler


def test_get_json_when_burst_exceeds_rate_server_never_sees_more_than_the_limit(
    httpserver: HTTPServer,
) -> None:
    arrivals: list[tuple[float, str]] = []
    httpserver.expect_request("/x").respond_with_handler(_log_arrival(arrivals))  # type: ignore[arg-type]
    window_seconds, limit = 1.0, 4
    limiter = PriorityRateLimiter(limit, window_seconds=window_seconds)
    with HttpClient(httpserver.url_for("/"), service="TestAPI", limiter=limiter) as http_client:
        threads = [
            threading.Thread(target=http_client.get_json, args=("x", {"name": str(i)}))
            for i in range(10)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    times = sorted(moment for moment, _ in arrivals)
    assert len(times) == 10
    # The limiter counts a call until a window after it ended, so arrivals obey the full window.
    busiest = max(sum(1 for t in times if start <= t < start + window_seconds) for start in times)
    assert busiest == limit
    assert times[-1] - times[0] >= 2 * window_seconds  # 10 calls at 4 per window: 3 windows


def test_get_json_when_emergency_queued_after_low_ones_it_reaches_server_first(
    httpserver: HTTPServer,
) -> None:
    arrivals: list[tuple[float, str]] = []
    httpserver.expect_request("/x").respond_with_handler(_log_arrival(arrivals))  # type: ignore[arg-type]
    limiter = PriorityRateLimiter(1, window_seconds=0.5)
    limiter.start()
    try:
        with HttpClient(httpserver.url_for("/"), service="TestAPI", limiter=limiter) as client:
            client.get_json("x", {"name": "first"})  # uses the window's only slot
            low = [
                threading.Thread(
                    target=client.get_json,
                    args=("x", {"name": f"low-{i}"}),
                    kwargs={"priority": PRIORITY_LOW},
                )
                for i in range(3)
            ]
            for thread in low:
                thread.start()
            deadline = time.monotonic() + 5
            while limiter.pending_count() < 3 and time.monotonic() < deadline:
                time.sleep(0.005)
            client.get_json("x", {"name": "emergency"}, priority=PRIORITY_EMERGENCY)
            for thread in low:
                thread.join(timeout=10)
    finally:
        limiter.stop()

    names = [name for _, name in arrivals]
    assert names[:2] == ["first", "emergency"]
    assert sorted(names[2:]) == ["low-0", "low-1", "low-2"]


class ResettingServer:
    """A raw TCP server on 127.0.0.1: resets the first ``resets`` connections, then answers."""

    def __init__(self, resets: int, body: bytes) -> None:
        self.resets = resets
        self.body = body
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed by the test
            with connection:
                self.connections += 1
                connection.recv(65536)
                if self.connections <= self.resets:
                    # Linger 0: close() sends RST, as a crashed proxy or a dropped link does.
                    connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    continue
                head = (
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
                )
                connection.sendall(head.encode() + self.body)

    def close(self) -> None:
        self.listener.close()


def test_get_json_when_connection_is_reset_retries_then_succeeds(fake_time: FakeTime) -> None:
    server = ResettingServer(resets=2, body=b'{"ok": true}')
    limiter = PriorityRateLimiter(600, clock=fake_time.clock, sleep=fake_time.sleep)
    try:
        with HttpClient(
            f"http://127.0.0.1:{server.port}",
            service="TestAPI",
            limiter=limiter,
            policy=RetryPolicy(sleep=fake_time.sleep),
        ) as http_client:
            assert http_client.get_json("x") == {"ok": True}
    finally:
        server.close()
    assert server.connections == 3
    assert fake_time.sleeps == [1.0, 2.0]


def test_get_json_when_connection_keeps_resetting_raises_naming_the_endpoint(
    fake_time: FakeTime,
) -> None:
    server = ResettingServer(resets=99, body=b"{}")
    limiter = PriorityRateLimiter(600, clock=fake_time.clock, sleep=fake_time.sleep)
    try:
        with (
            HttpClient(
                f"http://127.0.0.1:{server.port}",
                service="TestAPI",
                limiter=limiter,
                policy=RetryPolicy(max_attempts=3, sleep=fake_time.sleep),
            ) as http_client,
            pytest.raises(ServerUnavailableError, match=r"TestAPI GET /x: connection failed"),
        ):
            http_client.get_json("x")
    finally:
        server.close()
    assert server.connections == 3


def test_get_json_when_redirects_loop_raises_api_error_naming_endpoint(
    httpserver: HTTPServer, client: HttpClient
) -> None:
    httpserver.expect_request("/api/x").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/api/x")}
    )

    with pytest.raises(ApiError, match=r"TestAPI GET /x: TooManyRedirects"):
        client.get_json("x")


def test_get_json_when_gzip_body_is_corrupt_retries_then_names_endpoint(
    httpserver: HTTPServer, client: HttpClient
) -> None:
    httpserver.expect_request("/api/x").respond_with_data(
        b"not gzip at all", headers={"Content-Encoding": "gzip"}, content_type="application/json"
    )

    with pytest.raises(ServerUnavailableError, match=r"GET /x: the answer could not be decoded"):
        client.get_json("x")
    assert len(httpserver.log) == 3
