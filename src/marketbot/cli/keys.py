"""``marketbot keys``: exchange API keys, encrypted at rest (docs/live.md).

``set EXCHANGE`` asks at hidden prompts for what ccxt's ``requiredCredentials`` names (or
reads them one per line from stdin when it is not a terminal; never from options), ``list``
shows only masks, ``test EXCHANGE`` makes an authenticated ``fetch_balance`` and records the
outcome, ``delete EXCHANGE`` forgets a key. An empty field, an unknown exchange, a wrong
master key or a loose key file is one line and exit 1, with nothing stored.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from marketbot.cli.common import open_database

if TYPE_CHECKING:
    from marketbot.config import Settings
    from marketbot.store.keys import KeyStore

keys_app = typer.Typer(
    help="Exchange API keys, encrypted at rest (see docs/live.md).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ExchangeArgument = Annotated[str, typer.Argument(help="The ccxt exchange id, e.g. binance.")]
LabelOption = Annotated[
    str, typer.Option(help="Which of the exchange's keys, e.g. default or testnet.")
]
# `keys test` waits this long for the exchange's answer, once.
TEST_TIMEOUT_SECONDS = 15.0


def open_key_store() -> tuple[KeyStore, Settings]:
    """The key store of the configured database and master key, and the settings."""
    from marketbot.config import load_settings
    from marketbot.store.keys import KeyStore, MasterKey

    settings = load_settings()
    store = KeyStore(open_database(), MasterKey.from_environment(settings.data_dir))
    return store, settings


def required_credentials(exchange: str) -> dict[str, bool]:
    """Ccxt's ``requiredCredentials`` of ``exchange``.

    Raises:
        ConfigError: ccxt knows no such exchange (close matches named).
    """
    import difflib

    import ccxt

    from marketbot.core.errors import ConfigError

    if exchange not in ccxt.exchanges:
        matches = difflib.get_close_matches(exchange.lower(), list(ccxt.exchanges), n=5)
        raise ConfigError(
            f"unknown exchange {exchange!r}; close matches: {', '.join(matches) or 'none'}"
        )
    required = dict(getattr(ccxt, exchange)().requiredCredentials)
    return {name: bool(value) for name, value in required.items()}


def read_credentials(required: dict[str, bool]) -> dict[str, str]:
    """Each required credential from a hidden prompt, or one per line from piped stdin.

    Raises:
        ConfigError: a field is empty (named); nothing has been stored.
    """
    import getpass

    from marketbot.core.errors import ConfigError
    from marketbot.store.keys import iter_credential_prompts

    prompts = list(iter_credential_prompts(required)) or [
        ("apiKey", "API key"),
        ("secret", "secret"),
    ]
    interactive = sys.stdin.isatty()
    values: dict[str, str] = {}
    for name, prompt in prompts:
        text = getpass.getpass(f"{prompt}: ") if interactive else sys.stdin.readline()
        text = text.strip()
        if not text:
            raise ConfigError(f"empty {prompt}: nothing stored")
        values[name] = text
    return values


@keys_app.command("set")
def keys_set(exchange: ExchangeArgument, label: LabelOption = "default") -> None:
    """Store an exchange's credentials (asked at hidden prompts, or one per line on stdin)."""
    from marketbot.store.keys import Credentials

    required = required_credentials(exchange)
    store, _ = open_key_store()
    # A loose key file or a bad variable is refused before anything is asked for.
    store.master_key.fernet(create=False)
    credentials = Credentials.from_ccxt(read_credentials(required))
    summary = store.save(exchange, credentials, label=label)
    typer.echo(f"saved {exchange}/{label} ({summary.masked_key})")


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List stored keys: exchange, label, the masked key, when saved and last tested."""
    store, _ = open_key_store()
    summaries = store.list()
    if as_json:
        sys.stdout.write(json.dumps([item.to_dict() for item in summaries]) + "\n")
        return
    from rich.table import Table

    from marketbot.cli.tables import make_console

    table = Table("exchange", "label", "masked_key", "created_at", "last_tested_at", "last_test")
    for item in summaries:
        tested = "-" if item.last_test_ok is None else ("ok" if item.last_test_ok else "failed")
        table.add_row(
            item.exchange,
            item.label,
            item.masked_key,
            item.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            item.last_tested_at.strftime("%Y-%m-%d %H:%M:%S") if item.last_tested_at else "-",
            tested,
        )
    make_console().print(table)


@keys_app.command("test")
def keys_test(
    exchange: ExchangeArgument,
    label: LabelOption = "default",
    testnet: Annotated[
        bool, typer.Option("--testnet", help="Test against the exchange's testnet.")
    ] = False,
) -> None:
    """An authenticated balance request (15 s): print ok, or the reason and exit 1."""
    from marketbot.core.errors import ExchangeError, MarketbotError
    from marketbot.core.redaction import SecretRedactor
    from marketbot.execution.ccxt_connect import open_stored_exchange
    from marketbot.net.retrying import RetryPolicy

    store, settings = open_key_store()
    redactor = SecretRedactor()
    redactor.install()
    try:
        venue = open_stored_exchange(
            store,
            exchange,
            label=label,
            redactor=redactor,
            api_urls=settings.exchange_api_urls.get(exchange, {}),
            testnet=testnet,
            policy=RetryPolicy(timeout_seconds=TEST_TIMEOUT_SECONDS, max_attempts=1),
        )
        try:
            with venue:
                venue.fetch_balance()
            ok, message = True, "ok"
        except MarketbotError as exc:
            ok, message = False, redactor.redact(str(exc))
    finally:
        redactor.uninstall()
    store.record_test(exchange, ok=ok, message=message, label=label)
    if not ok:
        raise ExchangeError(f"{exchange}/{label}: {message}")
    typer.echo("ok")


@keys_app.command("delete")
def keys_delete(exchange: ExchangeArgument, label: LabelOption = "default") -> None:
    """Forget an exchange's stored key."""
    from marketbot.core.errors import ConfigError

    store, _ = open_key_store()
    if not store.delete(exchange, label=label):
        raise ConfigError(f"no API key for {exchange}/{label}")
    typer.echo(f"deleted {exchange}/{label}")
