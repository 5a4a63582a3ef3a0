"""client_order_id: 32 characters, deterministic, the documented encoding, distinct per field."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from marketbot.core.errors import ConfigError
from marketbot.execution import CLIENT_ORDER_ID_LENGTH, Intent, client_order_id

BAR = datetime(2024, 1, 1, tzinfo=UTC)
FIELDS: dict[str, Any] = {
    "run_id": "run-1",
    "strategy": "sma_crossover",
    "symbol": "BTC/USDT",
    "bar_time": BAR,
    "intent": "entry",
    "attempt": 0,
}
ID_PATTERN = re.compile(r"^mb-[0-9a-f]{29}$")


def test_client_order_id_when_known_fields_is_the_pinned_value() -> None:
    # Pinned: changing the encoding would orphan every order placed before the change.
    assert client_order_id(**FIELDS) == "mb-4636cf5ca20813dbc800860d5e923"


def test_client_order_id_when_recomputed_from_the_documented_encoding_matches() -> None:
    payload = "\x1f".join(
        ["run-1", "sma_crossover", "BTC/USDT", "2024-01-01T00:00:00.000000Z", "entry", "0"]
    ).encode("utf-8")
    expected = "mb-" + hashlib.sha256(payload).hexdigest()[:29]

    assert client_order_id(**FIELDS) == expected


def test_client_order_id_when_called_twice_is_deterministic_and_32_characters() -> None:
    first = client_order_id(**FIELDS)

    assert first == client_order_id(**FIELDS)
    assert len(first) == CLIENT_ORDER_ID_LENGTH == 32
    assert ID_PATTERN.match(first)


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("run_id", "run-2"),
        ("strategy", "momentum"),
        ("symbol", "ETH/USDT"),
        ("bar_time", BAR + timedelta(hours=1)),
        ("bar_time", BAR + timedelta(microseconds=1)),
        ("intent", "exit"),
        ("attempt", 1),
    ],
)
def test_client_order_id_when_one_field_changes_is_different(name: str, other: object) -> None:
    assert client_order_id(**{**FIELDS, name: other}) != client_order_id(**FIELDS)


def test_client_order_id_when_each_intent_gives_five_distinct_ids() -> None:
    ids = {client_order_id(**{**FIELDS, "intent": intent}) for intent in Intent}

    assert len(ids) == 5
    assert {intent.value for intent in Intent} == {
        "entry",
        "exit",
        "protect",
        "force_entry",
        "force_exit",
    }


def test_client_order_id_when_bar_time_is_naive_or_another_zone_uses_the_utc_instant() -> None:
    naive = datetime(2024, 1, 1)
    in_new_york = datetime(2023, 12, 31, 19, tzinfo=timezone(timedelta(hours=-5)))

    assert client_order_id(**{**FIELDS, "bar_time": naive}) == client_order_id(**FIELDS)
    assert client_order_id(**{**FIELDS, "bar_time": in_new_york}) == client_order_id(**FIELDS)


def test_client_order_id_when_intent_is_the_enum_equals_the_string() -> None:
    assert client_order_id(**{**FIELDS, "intent": Intent.ENTRY}) == client_order_id(**FIELDS)


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("intent", "buy", "`intent` must be one of entry, exit, protect"),
        ("attempt", -1, "`attempt` must be an int >= 0"),
        ("attempt", True, "`attempt` must be an int >= 0"),
        ("run_id", "", "`run_id` must be a non-empty string"),
        ("symbol", "BTC\x1fUSDT", "`symbol` must not contain the unit separator"),
        ("strategy", "sma\ud800", "`strategy` must be text UTF-8 can encode"),
        ("bar_time", "2024-01-01", "`bar_time` must be a datetime"),
    ],
)
def test_client_order_id_when_a_field_is_invalid_raises_config_error(
    name: str, bad: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        client_order_id(**{**FIELDS, name: bad})


texts = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x1f"),
    min_size=1,
    max_size=20,
)
decisions = st.tuples(
    texts,
    texts,
    texts,
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from(list(Intent)),
    st.integers(min_value=0, max_value=1000),
)


@given(decisions, decisions)
def test_client_order_id_when_decisions_differ_the_ids_differ_and_keep_the_shape(
    first: tuple[Any, ...], second: tuple[Any, ...]
) -> None:
    assume(first != second)

    first_id, second_id = client_order_id(*first), client_order_id(*second)

    assert ID_PATTERN.match(first_id)
    assert ID_PATTERN.match(second_id)
    assert first_id != second_id
