"""Exchange API keys: cards with the masked key, save, test connection, delete.

Only the mask (``****`` and the API key's last 4 characters) ever leaves the key store; a test
is ``marketbot keys test``'s authenticated balance request, its message scrubbed of every
stored credential before it is stored or shown.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request

from marketbot.core.errors import ConfigError, MarketbotError
from marketbot.store.keys import CREDENTIAL_NAMES, Credentials, KeyStore, KeySummary, MasterKey
from marketbot.web.context import Context, WebContext, page, wants_fragment
from marketbot.web.errors import FieldError, NotFoundError
from marketbot.web.schemas import KeySaveRequest, KeyTestRequest

router = APIRouter(tags=["keys"])
pages = APIRouter(include_in_schema=False)

CARD_EXCHANGES: Final = ("binance", "coinbase", "kraken", "polymarket")
# A wallet key (Polymarket) has no authenticated balance through ccxt here: stored only.
STORED_ONLY: Final = frozenset({"polymarket"})
TEST_TIMEOUT_SECONDS: Final = 15.0
ExchangePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
LabelQuery = Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]


def key_store(context: WebContext) -> KeyStore:
    """The key store of the dashboard's database and master key."""
    return KeyStore(context.database, MasterKey.from_environment(context.data_dir))


def known_exchange(exchange: str) -> bool:
    """Whether ccxt knows the exchange id (or it is a stored-only venue)."""
    import ccxt

    return exchange in STORED_ONLY or exchange in ccxt.exchanges


def credential_fields(exchange: str) -> list[dict[str, Any]]:
    """The form fields of an exchange's card: ccxt's ``requiredCredentials`` it names."""
    import ccxt

    required: dict[str, bool] = {"apiKey": True, "secret": True}
    if exchange in ccxt.exchanges:
        needed = getattr(ccxt, exchange)().requiredCredentials
        required = {name: True for name, on in needed.items() if on and name in CREDENTIAL_NAMES}
    if exchange == "polymarket":
        required["walletAddress"] = False  # the funder address, shown masked
    labels = {name: label for name, (_, _, label) in CREDENTIAL_NAMES.items()}
    if exchange == "polymarket":
        labels.update(privateKey="wallet private key", walletAddress="funder address")
    return [
        {"name": CREDENTIAL_NAMES[name][0], "label": labels[name], "required": on,
         "secret": name not in ("apiKey", "walletAddress", "uid")}
        for name, on in required.items()
    ]  # fmt: skip


def _card(summary: KeySummary | None, exchange: str) -> dict[str, Any]:
    data: dict[str, Any] = {"exchange": exchange, "label": "default", "stored": False}
    if summary is not None:
        data = {**summary.to_dict(), "stored": True}
    return {
        **data,
        "testable": exchange not in STORED_ONLY,
        "fields": credential_fields(exchange),
    }


def cards(context: WebContext) -> list[dict[str, Any]]:
    """A card per well-known exchange, then one per other stored key."""
    stored = key_store(context).list()
    by_exchange = {(item.exchange, item.label): item for item in stored}
    shown = [_card(by_exchange.pop((name, "default"), None), name) for name in CARD_EXCHANGES]
    return shown + [_card(item, item.exchange) for item in by_exchange.values()]


@router.get("/api/keys/list")
def list_keys(request: Request, context: Context) -> Any:
    """Stored keys, masked: ``{"items": [...], "total": n}``."""
    items = [
        {**s.to_dict(), "testable": s.exchange not in STORED_ONLY}
        for s in key_store(context).list()
    ]
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/key_cards.html", {"cards": cards(context)}
        )
    return {"items": items, "total": len(items)}


@router.post("/api/keys/save")
def save_key(request: Request, body: KeySaveRequest, context: Context) -> Any:
    """Encrypt and store an exchange's credentials; answers with the mask only."""
    if not known_exchange(body.exchange):
        raise FieldError("body.exchange", "unknown exchange: use a ccxt exchange id")
    try:
        credentials = Credentials(
            api_key=body.api_key, secret=body.secret, password=body.password, uid=body.uid,
            private_key=body.private_key, wallet_address=body.wallet_address,
        )  # fmt: skip
        summary = key_store(context).save(body.exchange, credentials, label=body.label)
    except ConfigError as exc:
        # The store's messages name fields, never values; say which field when it is clear.
        field = "body.api_key" if "API key" in str(exc) else "body"
        raise FieldError(field, str(exc)) from None
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/key_cards.html", {"cards": cards(context), "saved": summary}
        )
    return summary.to_dict()


def _test(context: WebContext, exchange: str, label: str) -> tuple[bool, str]:
    from marketbot.core.redaction import SecretRedactor
    from marketbot.execution.ccxt_connect import open_stored_exchange
    from marketbot.net.retrying import RetryPolicy

    store = key_store(context)
    redactor = SecretRedactor()
    redactor.install()
    try:
        venue = open_stored_exchange(
            store, exchange, label=label, redactor=redactor,
            api_urls=context.settings.exchange_api_urls.get(exchange, {}),
            policy=RetryPolicy(timeout_seconds=TEST_TIMEOUT_SECONDS, max_attempts=1),
        )  # fmt: skip
        try:
            with venue:
                venue.fetch_balance()
            return True, "ok"
        except MarketbotError as exc:
            return False, redactor.redact(str(exc))
    finally:
        redactor.uninstall()


@router.post("/api/keys/test")
def test_key(request: Request, body: KeyTestRequest, context: Context) -> Any:
    """``marketbot keys test``: an authenticated balance request; the result is stored."""
    store = key_store(context)
    if store.summary(body.exchange, label=body.label) is None:
        raise NotFoundError(f"no stored key for {body.exchange}/{body.label}")
    if body.exchange in STORED_ONLY:
        raise FieldError("body.exchange", "this key is stored only: there is no connection test")
    try:
        ok, message = _test(context, body.exchange, body.label)
    except ConfigError as exc:
        ok, message = False, str(exc)
    summary = store.record_test(body.exchange, ok=ok, message=message, label=body.label)
    tested_at = summary.last_tested_at.isoformat() if summary.last_tested_at else None
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/key_cards.html", {"cards": cards(context)}
        )
    return {"ok": ok, "message": message, "tested_at": tested_at}


@router.post("/api/keys/{exchange}/delete")
def delete_key(
    request: Request, exchange: ExchangePath, context: Context, label: LabelQuery = "default"
) -> Any:
    """Forget an exchange's stored key."""
    if not key_store(context).delete(exchange, label=label):
        raise NotFoundError(f"no stored key for {exchange}/{label}")
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/key_cards.html", {"cards": cards(context)}
        )
    return {"deleted": f"{exchange}/{label}"}


@pages.get("/api_keys")
def keys_page(request: Request, context: Context) -> Any:
    """A card per exchange: masked key, last test, save and test forms, a security notice."""
    return page(request, "api_keys.html", {"cards": cards(context)})
