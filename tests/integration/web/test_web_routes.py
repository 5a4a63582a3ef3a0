"""Every route, signed out and signed in: the gate answers before the route; no 500."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.integration.web.conftest import sign_in

PUBLIC = {"/login", "/setup", "/health"}


def api_routes(items: list[object]) -> list[APIRoute]:
    """Every APIRoute, inside included routers too."""
    found: list[APIRoute] = []
    for item in items:
        if isinstance(item, APIRoute):
            found.append(item)
        inner = getattr(item, "original_router", None) or getattr(item, "router", None)
        if inner is not None and inner is not item:
            found.extend(api_routes(list(getattr(inner, "routes", []))))
    return found


def routes(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for route in api_routes(list(client.app.routes)):  # type: ignore[attr-defined]
        path = re.sub(
            r"\{(\w+)\}", lambda m: "binance" if m.group(1) == "exchange" else "1", route.path
        )
        found.extend((method, path) for method in sorted(route.methods or ()))
    return found


def test_every_route_when_signed_out_is_401_for_api_and_303_for_pages(client: TestClient) -> None:
    checked = 0
    for method, path in routes(client):
        if path in PUBLIC:
            continue
        response = client.request(method, path, json={})
        checked += 1
        if path.startswith("/api/") or path == "/openapi.json" or method == "POST":
            assert response.status_code == 401, (method, path)
        else:
            assert response.status_code == 303, (method, path)
            assert response.headers["location"] == "/login"
    assert checked >= 40


def test_every_route_when_signed_in_answers_without_a_server_error(client: TestClient) -> None:
    token = sign_in(client)
    for method, path in routes(client):
        if path == "/logout":
            continue
        headers = {"X-CSRF-Token": token}
        response = client.request(method, path, json={}, headers=headers)
        assert response.status_code < 500, (method, path, response.text)
        if method == "POST" and path not in PUBLIC:
            bare = client.request(method, path, json={})
            assert bare.status_code == 403, (method, path)


def test_every_page_when_signed_in_renders_without_inline_script_or_style(
    client: TestClient, csrf: str
) -> None:
    pages = [
        "/", "/bot", "/backtests", "/optimizations", "/strategy_comparison", "/trade_journal",
        "/data", "/api_keys", "/alerts", "/jobs", "/login",
    ]  # fmt: skip
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.text
        assert '<meta name="csrf-token" content="' in html or path == "/login"
        assert re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html) is None, path
        assert "<style" not in html, path
        assert " style=" not in html, path
        assert "hx-on" not in html, path
        assert "javascript:" not in html, path


def test_htmx_error_when_form_wrong_is_an_html_fragment_naming_the_field(
    client: TestClient, csrf: str
) -> None:
    response = client.post(
        "/api/trade_journal/save", json={"symbol": "x", "rating": 9}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "rating" in response.text
