"""Request bodies: pydantic models that refuse unknown fields and name what is wrong.

htmx's json-enc sends every form value as a string, and an empty input as ``""``: numbers
are parsed from strings (pydantic's lax mode) and an empty optional field means "not given".
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


def blank_is_none(value: Any) -> Any:
    """An empty or blank string means "not given"."""
    return None if isinstance(value, str) and not value.strip() else value


def _checkbox(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().lower() in {"on", "true", "1", "yes"}
    return value


def _param_pairs(value: Any) -> Any:
    # The form's one text field: "fast=10, slow=30" (commas or spaces between pairs).
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for item in value.replace(",", " ").split():
        key, sep, text = item.partition("=")
        if not sep or not key or not text:
            raise ValueError("write parameters as KEY=VALUE pairs, e.g. fast=10, slow=30")
        pairs[key] = text
    return pairs


def _name_list(value: Any) -> Any:
    # The form's text field: "ethereum, solana"; a JSON list is taken as it is.
    if isinstance(value, str):
        return [name for name in value.replace(",", " ").split() if name]
    return value


Name = Annotated[str, Field(min_length=1, max_length=100)]
OptionalName = Annotated[
    Annotated[str, Field(max_length=100)] | None, BeforeValidator(blank_is_none)
]
OptionalDate = Annotated[date | None, BeforeValidator(blank_is_none)]
Fraction = Annotated[Annotated[float, Field(ge=0, lt=1)] | None, BeforeValidator(blank_is_none)]
PositiveFraction = Annotated[
    Annotated[float, Field(gt=0, lt=1)] | None, BeforeValidator(blank_is_none)
]
Checkbox = Annotated[bool, BeforeValidator(_checkbox)]
Text = Annotated[Annotated[str, Field(max_length=4000)] | None, BeforeValidator(blank_is_none)]
ParamValue = Annotated[str | float | int | bool, Field(union_mode="left_to_right")]


class Request(BaseModel):
    """Base of every request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BacktestRequest(Request):
    """``marketbot backtest``'s options for one stored symbol."""

    strategy: Name
    symbol: Name
    start: OptionalDate = None
    end: OptionalDate = None
    timeframe: OptionalName = None
    source: OptionalName = None
    params: Annotated[
        dict[Annotated[str, Field(max_length=64)], ParamValue], BeforeValidator(_param_pairs)
    ] = Field(default_factory=dict, max_length=32)
    fee: Fraction = None
    slippage: Fraction = None
    cash: Annotated[
        Annotated[float, Field(gt=0, le=1e12)] | None, BeforeValidator(blank_is_none)
    ] = None
    stop_loss: PositiveFraction = None
    take_profit: Annotated[
        Annotated[float, Field(gt=0, le=100)] | None, BeforeValidator(blank_is_none)
    ] = None
    trailing_stop: PositiveFraction = None
    max_hold: Annotated[
        Annotated[str, Field(max_length=16, pattern=r"^\d+[mhdw]$")] | None,
        BeforeValidator(blank_is_none),
    ] = None
    risk: Checkbox = False
    bot_defaults: Checkbox = False
    # A portfolio run: more stored symbols traded with ``symbol`` from one account.
    symbols: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100)]],
        BeforeValidator(_name_list),
        Field(max_length=50),
    ] = Field(default_factory=list)
    max_positions: Annotated[
        Annotated[int, Field(ge=1, le=1000)] | None, BeforeValidator(blank_is_none)
    ] = None
    max_exposure: Annotated[
        Annotated[float, Field(gt=0, le=100)] | None, BeforeValidator(blank_is_none)
    ] = None
    portfolio_stop: PositiveFraction = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> BacktestRequest:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError("start must not be after end")
        return self


def _item_list(value: Any) -> Any:
    # One checked box arrives as a string, several as a list; blank inputs mean nothing.
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list):
        return [item for item in items if not (isinstance(item, str) and not item.strip())]
    return value


CompareItem = Annotated[str, Field(min_length=1, max_length=100)]


class CompareRequest(Request):
    """2-4 strategy names or run ids, compared on one symbol and period."""

    items: Annotated[
        list[CompareItem], BeforeValidator(_item_list), Field(min_length=2, max_length=4)
    ]
    symbol: OptionalName = None
    start: OptionalDate = None
    end: OptionalDate = None
    timeframe: OptionalName = None
    source: OptionalName = None
    fee: Fraction = None
    slippage: Fraction = None


GridSpec = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[0-9eE.,:+\- ]+$|^[A-Za-z0-9_,. -]+$")
]
WindowLength = Annotated[
    Annotated[str, Field(max_length=16, pattern=r"^\d{1,6}[hdw]?$")] | None,
    BeforeValidator(blank_is_none),
]


class OptimizeRequest(Request):
    """A grid search of one strategy on one stored symbol, optionally walk-forward validated.

    ``grid`` maps each parameter to ``V1,V2,...`` or ``LOW:HIGH[:STEP]``; the heatmap shows
    two of them. ``in_sample`` and ``out_of_sample`` (``365d``, ``90d`` or bar counts) turn on
    the walk-forward run.
    """

    strategy: Name
    symbol: Name
    grid: Annotated[
        dict[Annotated[str, Field(max_length=64)], GridSpec], Field(min_length=1, max_length=6)
    ]
    start: OptionalDate = None
    end: OptionalDate = None
    timeframe: OptionalName = None
    source: OptionalName = None
    metric: Literal[
        "sharpe", "sortino", "calmar", "return_pct", "profit_factor", "win_rate", "max_drawdown_pct"
    ] = "sharpe"
    min_trades: Annotated[int, Field(ge=0, le=10_000)] = 0
    in_sample: WindowLength = None
    out_of_sample: WindowLength = None

    @model_validator(mode="before")
    @classmethod
    def _form_grid(cls, data: Any) -> Any:
        # The page's form sends two parameter rows (p1/v1, p2/v2); fold them into ``grid``.
        if not isinstance(data, dict) or not any(k in data for k in ("p1", "p2", "v1", "v2")):
            return data
        data = dict(data)
        grid = dict(data.get("grid") or {})
        for number in ("1", "2"):
            name, values = data.pop(f"p{number}", None), data.pop(f"v{number}", None)
            if isinstance(name, str) and name.strip() and isinstance(values, str):
                grid[name.strip()] = values
        data["grid"] = grid
        return data

    @model_validator(mode="after")
    def _windows_together(self) -> OptimizeRequest:
        if (self.in_sample is None) != (self.out_of_sample is None):
            raise ValueError("give in_sample and out_of_sample together (walk-forward), or neither")
        return self


class CollectRequest(Request):
    """Collect CoinGecko history of one coin (``bitcoin``) for the last ``days``."""

    symbol: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    days: Annotated[int, Field(ge=1, le=3650)] = 365


class FillGapsRequest(Request):
    """Fill the gaps of one stored CoinGecko series."""

    symbol: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    timeframe: OptionalName = None


BotCommandKind = Literal[
    "pause", "resume", "reset_breaker", "override", "force_exit", "force_entry", "stop",
    "reload", "halt",
]  # fmt: skip


class BotCommandRequest(Request):
    """An operator command: confirmed, with a reason; written as a ``bot_commands`` row."""

    kind: BotCommandKind
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    symbol: OptionalName = None
    all: Checkbox = False
    confirm: Checkbox = False


class JournalSaveRequest(Request):
    """A journal entry to create (no ``id``) or update."""

    id: Annotated[Annotated[int, Field(ge=1, le=2**62)] | None, BeforeValidator(blank_is_none)] = (
        None
    )
    trade_ref: Annotated[
        Annotated[str, Field(max_length=128, pattern=r"^(trade:\d{1,18}|run:\d{1,18}:\d{1,9})$")]
        | None,
        BeforeValidator(blank_is_none),
    ] = None
    symbol: Name
    strategy: OptionalName = None
    entry_reason: Text = None
    confidence: Annotated[
        Annotated[int, Field(ge=1, le=10)] | None, BeforeValidator(blank_is_none)
    ] = None
    exit_reason: Text = None
    lessons: Text = None
    rating: Annotated[Annotated[int, Field(ge=1, le=5)] | None, BeforeValidator(blank_is_none)] = (
        None
    )


Secret = Annotated[Annotated[str, Field(max_length=4096)] | None, BeforeValidator(blank_is_none)]
ExchangeId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
Label = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]


class KeySaveRequest(Request):
    """An exchange's credentials under ccxt's ``requiredCredentials`` names (snake case)."""

    exchange: ExchangeId
    label: Label = "default"
    api_key: Secret = None
    secret: Secret = None
    password: Secret = None
    uid: Secret = None
    private_key: Secret = None
    wallet_address: Secret = None


class KeyTestRequest(Request):
    """Which stored key to test."""

    exchange: ExchangeId
    label: Label = "default"


AlertKind = Literal["price", "strategy", "portfolio"]
AlertOperator = Literal[">", ">=", "<", "<="]


class AlertCreateRequest(Request):
    """An alert's condition, as the alerts module defines it."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: AlertKind
    subject: OptionalName = None
    metric: Annotated[str, Field(min_length=1, max_length=64)]
    op: AlertOperator
    threshold: Annotated[float, Field(allow_inf_nan=False)]
    unit: OptionalName = None
    cooldown_seconds: Annotated[int, Field(ge=0, le=30 * 86_400)] = 3600
    timeframe: OptionalName = None


class AlertTestRequest(Request):
    """Evaluate an alert on a typed value, or on the latest data; optionally send a TEST."""

    value: Annotated[
        Annotated[float, Field(allow_inf_nan=False)] | None, BeforeValidator(blank_is_none)
    ] = None
    send: Checkbox = False
