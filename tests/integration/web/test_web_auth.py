"""Sign-in, sessions, CSRF, the login limit and the security headers, through the real app."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from marketbot.web import WebSettings, create_app
from tests.integration.web.conftest import PASSWORD, SETUP_TOKEN, USERNAME, FakeClock, sign_in

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; object-src 'none'"
)


def test_health_when_signed_out_answers_exactly_ok(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_every_response_when_served_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/health", "/login", "/bot", "/api/jobs/list", "/static/app.css"):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in response.headers
    assert client.get("/login").headers["cache-control"] == "no-store"
    assert client.get("/static/app.css").headers.get("cache-control") != "no-store"


def test_signed_out_when_asking_api_gets_401_and_pages_303(client: TestClient) -> None:
    assert client.get("/api/jobs/list").status_code == 401
    assert client.post("/api/jobs/1/cancel").status_code == 401
    assert client.get("/openapi.json").status_code == 401
    page = client.get("/bot")
    assert page.status_code == 303
    assert page.headers["location"] == "/login"


def test_docs_when_asked_do_not_exist(client: TestClient, csrf: str) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404


def test_openapi_when_signed_in_lists_api_routes_only(client: TestClient, csrf: str) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert paths
    assert all(path.startswith("/api/") for path in paths)
    assert "/api/jobs/list" in paths


def test_login_when_password_right_sets_a_strict_httponly_cookie(client: TestClient) -> None:
    response = client.post("/login", data={"username": USERNAME, "password": PASSWORD})

    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("mb_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie
    assert client.get("/api/jobs/list").json() == {"items": [], "total": 0}


def test_login_when_password_wrong_answers_401_and_no_cookie(client: TestClient) -> None:
    response = client.post("/login", data={"username": USERNAME, "password": "wrong password"})

    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert client.get("/api/jobs/list").status_code == 401


def test_login_when_five_failures_refuses_even_the_right_password(
    client: TestClient, clock: FakeClock
) -> None:
    for _ in range(5):
        assert (
            client.post("/login", data={"username": USERNAME, "password": "nope-nope"}).status_code
            == 401
        )

    refused = client.post("/login", data={"username": USERNAME, "password": PASSWORD})

    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 900
    clock.advance(timedelta(minutes=15, seconds=1))
    assert (
        client.post("/login", data={"username": USERNAME, "password": PASSWORD}).status_code == 303
    )


def test_login_when_five_failures_from_one_address_locks_other_usernames(
    client: TestClient,
) -> None:
    for number in range(5):
        client.post("/login", data={"username": f"guess{number}", "password": "nope-nope"})

    assert (
        client.post("/login", data={"username": USERNAME, "password": PASSWORD}).status_code == 429
    )


def test_login_when_cross_site_origin_is_refused(client: TestClient) -> None:
    response = client.post(
        "/login",
        data={"username": USERNAME, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )

    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_post_when_csrf_missing_wrong_or_another_sessions_is_403_and_changes_nothing(
    client: TestClient, web_settings: WebSettings
) -> None:
    token = sign_in(client)
    with TestClient(create_app(web_settings), follow_redirects=False) as other:
        other_token = sign_in(other)
    context = client.app.state.web_context  # type: ignore[attr-defined]
    job = context.jobs.queue("backtest", {"strategy": "sma_crossover"}, by=USERNAME)

    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": other_token}):
        assert client.post(f"/api/jobs/{job.id}/cancel", headers=headers).status_code == 403
        assert context.jobs.get(job.id).status == "queued"
    assert (
        client.post(f"/api/jobs/{job.id}/cancel", headers={"X-CSRF-Token": token}).status_code
        == 200
    )
    assert context.jobs.get(job.id).status == "cancelled"


def test_logout_when_posted_revokes_the_session(client: TestClient) -> None:
    token = sign_in(client)
    cookie = client.cookies["mb_session"]

    assert client.post("/logout", headers={"X-CSRF-Token": token}).status_code == 303

    client.cookies.set("mb_session", cookie)
    assert client.get("/api/jobs/list").status_code == 401


def test_session_when_idle_twelve_hours_expires(client: TestClient, clock: FakeClock) -> None:
    sign_in(client)
    clock.advance(timedelta(hours=11, minutes=59))
    assert client.get("/api/jobs/list").status_code == 200
    clock.advance(timedelta(hours=12, seconds=1))

    assert client.get("/api/jobs/list").status_code == 401


def test_set_admin_when_password_changes_revokes_every_session(
    client: TestClient, web_settings: WebSettings
) -> None:
    sign_in(client)
    context = client.app.state.web_context  # type: ignore[attr-defined]

    context.auth.set_admin(USERNAME, web_settings.password_hasher.hash("another password"))

    assert client.get("/api/jobs/list").status_code == 401
    assert context.auth.session_count() == 0


def test_session_when_stored_keeps_only_the_sha256_of_the_cookie(client: TestClient) -> None:
    sign_in(client)
    cookie = client.cookies["mb_session"]
    database_file = client.app.state.web_context.settings.data_dir / "marketbot.db"  # type: ignore[attr-defined]

    stored = b"".join(path.read_bytes() for path in database_file.parent.glob("marketbot.db*"))

    assert len(cookie) >= 43  # 256 bits, base64
    assert cookie.encode() not in stored


def test_setup_when_user_exists_is_404(client: TestClient) -> None:
    assert client.get("/setup").status_code == 404
    assert (
        client.post(
            "/setup", data={"token": SETUP_TOKEN, "username": "x", "password": "y" * 9}
        ).status_code
        == 404
    )


def test_setup_when_no_user_needs_the_printed_token(
    web_settings: WebSettings, clock: FakeClock
) -> None:
    with TestClient(create_app(web_settings), follow_redirects=False) as fresh:
        assert fresh.get("/setup").status_code == 200
        wrong = fresh.post(
            "/setup", data={"token": "guess", "username": "me", "password": "p" * 10}
        )
        assert wrong.status_code == 403
        clock.advance(timedelta(minutes=16))
        late = fresh.post(
            "/setup", data={"token": SETUP_TOKEN, "username": "me", "password": "p" * 10}
        )
        assert late.status_code == 403
        clock.advance(timedelta(minutes=-16))
        made = fresh.post(
            "/setup", data={"token": SETUP_TOKEN, "username": "me", "password": "p" * 10}
        )
        assert made.status_code == 303
        assert fresh.get("/api/jobs/list").status_code == 200
        assert fresh.get("/setup").status_code == 404


def test_tls_when_on_marks_the_cookie_secure_and_sends_hsts(web_settings: WebSettings) -> None:
    from dataclasses import replace

    with TestClient(
        create_app(replace(web_settings, tls=True)),
        base_url="https://testserver",
        follow_redirects=False,
    ) as secure:
        context = secure.app.state.web_context  # type: ignore[attr-defined]
        context.auth.set_admin(USERNAME, web_settings.password_hasher.hash(PASSWORD))
        response = secure.post("/login", data={"username": USERNAME, "password": PASSWORD})

    assert "Secure" in response.headers["set-cookie"]
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_login_when_sec_fetch_site_is_cross_or_same_site_is_refused(client: TestClient) -> None:
    for site in ("cross-site", "same-site"):
        response = client.post(
            "/login",
            data={"username": USERNAME, "password": PASSWORD},
            headers={"Sec-Fetch-Site": site, "Origin": "null"},
        )
        assert response.status_code == 403


def test_login_when_same_origin_form_sends_a_null_origin_is_accepted(client: TestClient) -> None:
    # Chromium's form POST under Referrer-Policy: no-referrer.
    response = client.post(
        "/login",
        data={"username": USERNAME, "password": PASSWORD},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"},
    )

    assert response.status_code == 303


def test_login_when_hash_has_older_parameters_rehashes_it(
    client: TestClient, web_settings: WebSettings
) -> None:
    from argon2 import PasswordHasher

    context = client.app.state.web_context  # type: ignore[attr-defined]
    old = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    context.auth.set_admin(USERNAME, old)

    assert (
        client.post("/login", data={"username": USERNAME, "password": PASSWORD}).status_code == 303
    )

    new = context.auth.user(USERNAME).password_hash
    assert new != old
    assert not web_settings.password_hasher.check_needs_rehash(new)
    assert web_settings.password_hasher.verify(new, PASSWORD)


def test_htmx_request_when_signed_out_is_401_with_a_redirect_to_login(client: TestClient) -> None:
    for path in ("/api/bot/status", "/bot"):
        response = client.get(path, headers={"HX-Request": "true"})
        assert response.status_code == 401
        assert response.headers["hx-redirect"] == "/login"
