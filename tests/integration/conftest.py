"""Fixtures of the integration tests that talk to a local CoinGecko."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.support.cli import isolated_data_dir
from tests.support.coingecko_server import FakeCoinGecko, point_settings_at


@pytest.fixture
def coingecko(httpserver: HTTPServer) -> FakeCoinGecko:
    """A local CoinGecko on 127.0.0.1 serving the real market_chart sample."""
    return FakeCoinGecko(httpserver)


@pytest.fixture
def coingecko_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, coingecko: FakeCoinGecko
) -> Path:
    """A data directory of the test's own, with the CLI's CoinGecko calls going to the local one."""
    data_dir = isolated_data_dir(tmp_path, monkeypatch)
    point_settings_at(coingecko, monkeypatch)
    return data_dir
