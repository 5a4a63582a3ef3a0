"""Connecting to a real exchange: a :class:`CcxtExchange` on a new, spot-only client.

The client is an :class:`~marketbot.sources.exchange_client.ExchangeClient` (paced by its
limiter, reads retried, errors translated) with the account's credentials, ccxt's sandbox
when ``testnet`` is asked for, and the API roots of ``MARKETBOT_EXCHANGE_API_URLS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from marketbot.core.clock import Clock
from marketbot.core.errors import ConfigError
from marketbot.core.redaction import SecretRedactor
from marketbot.execution.ccxt_exchange import CcxtExchange
from marketbot.net.rate_limiter import PriorityRateLimiter
from marketbot.net.retrying import DEFAULT_RETRY_POLICY, RetryPolicy
from marketbot.sources.exchange_client import ExchangeClient

if TYPE_CHECKING:
    from marketbot.store.keys import Credentials, KeyStore

__all__ = ["open_ccxt_exchange", "open_stored_exchange", "spot_options"]


def spot_options(exchange_id: str) -> dict[str, Any]:
    """Ccxt options for spot trading only, with no private currency listing."""
    options: dict[str, Any] = {
        "defaultType": "spot",
        "fetchCurrencies": False,
        "fetchMarkets": {"types": ["spot"]},
        "fetchMargins": False,
    }
    if exchange_id.startswith("binance"):
        options["warnOnFetchOpenOrdersWithoutSymbol"] = False
    return options


def open_ccxt_exchange(
    exchange_id: str,
    credentials: Credentials | None,
    *,
    api_urls: Mapping[str, str] | None = None,
    testnet: bool = False,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    limiter: PriorityRateLimiter | None = None,
    clock: Clock | None = None,
) -> CcxtExchange:
    """A :class:`CcxtExchange` on a new client for ``exchange_id``.

    Args:
        exchange_id: The ccxt id (``binance``).
        credentials: The account's keys (None for public calls only).
        api_urls: API roots to replace (``MARKETBOT_EXCHANGE_API_URLS``, a test server).
        testnet: ccxt's sandbox mode; refused for an exchange without one.
        policy: Timeouts and retries of reads.
        limiter: The limiter to pace calls on (default: the exchange's rate).
        clock: "Now" for the limiter and records without a time.

    Raises:
        ConfigError: an unknown exchange, API URL key, or a testnet the exchange lacks.
    """
    client = ExchangeClient(
        exchange_id,
        api_urls=api_urls,
        options=spot_options(exchange_id),
        limiter=limiter,
        policy=policy,
        clock=clock,
        credentials=credentials.to_ccxt() if credentials is not None else None,
        sandbox=testnet,
    )
    return CcxtExchange(client)


def open_stored_exchange(  # noqa: PLR0913 - keyword settings of one connection
    keys: KeyStore,
    exchange_id: str,
    *,
    label: str = "default",
    redactor: SecretRedactor | None = None,
    api_urls: Mapping[str, str] | None = None,
    testnet: bool = False,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    limiter: PriorityRateLimiter | None = None,
    clock: Clock | None = None,
) -> CcxtExchange:
    """A :class:`CcxtExchange` on the stored key of ``exchange_id``/``label``.

    The key's secrets are handed to ``redactor`` (the app's log filter) before anything can
    log them.

    Raises:
        ConfigError: no key is stored ("no API key for binance: run marketbot keys set
            binance"), the master key cannot open it, or as :func:`open_ccxt_exchange`.
    """
    credentials = keys.get(exchange_id, label=label)
    if credentials is None:
        suffix = "" if label == "default" else f" --label {label}"
        raise ConfigError(
            f"no API key for {exchange_id}: run marketbot keys set {exchange_id}{suffix}"
        )
    if redactor is not None:
        redactor.add(credentials.secrets())
    return open_ccxt_exchange(
        exchange_id,
        credentials,
        api_urls=api_urls,
        testnet=testnet,
        policy=policy,
        limiter=limiter,
        clock=clock,
    )
