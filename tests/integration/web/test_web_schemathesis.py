"""Schemathesis over the dashboard's /api routes, in-process over ASGI, signed in.

Twenty generated requests per operation (derandomised: the same ones every run) with the
session cookie and the CSRF header; no answer may be a server error. Outbound calls (a key
test) go to the local fake Binance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from marketbot.config import Settings
from marketbot.web import WebSettings, create_app
from tests.integration.web.conftest import PASSWORD, USERNAME, sign_in, store_sample_bars
from tests.support.fake_binance import FakeBinanceSpot


@pytest.fixture
def signed_in(web_settings: WebSettings) -> Iterator[tuple[Any, dict[str, str]]]:
    """The app with its lifespan running, and the headers of a signed-in session."""
    with FakeBinanceSpot(api_key="fuzzkey", secret="fuzzsecret") as binance:
        assert web_settings.settings is not None
        marketbot_settings = Settings(
            data_dir=web_settings.settings.data_dir,
            exchange_api_urls={"binance": binance.api_urls},
        )
        app = create_app(replace(web_settings, settings=marketbot_settings))
        with TestClient(app, follow_redirects=False) as client:
            context = client.app.state.web_context  # type: ignore[attr-defined]
            context.auth.set_admin(USERNAME, web_settings.password_hasher.hash(PASSWORD))
            token = sign_in(client)
            store_sample_bars(client)
            yield (
                app,
                {
                    "Cookie": f"mb_session={client.cookies['mb_session']}",
                    "X-CSRF-Token": token,
                },
            )


def test_api_when_fuzzed_signed_in_never_answers_a_server_error(
    signed_in: tuple[Any, dict[str, str]],
) -> None:
    app, headers = signed_in
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: list[str] = []
    statuses: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call(headers=headers)
            statuses.append(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            fuzz()
        except Exception as exc:  # every operation is tried, the failures listed
            failures.append(f"{operation.label}: {str(exc)[:500]}")
    assert failures == []
    # Signed in for real: the session and its CSRF token were accepted throughout.
    assert 401 not in statuses
    assert 403 not in statuses
    assert sum(200 <= status < 300 for status in statuses) >= 50
