"""The top of a CLOB book: best bid the highest, best ask the lowest, whatever the order."""

from __future__ import annotations

from typing import Any

import pytest

from marketbot.net import ApiError
from marketbot.sources.polymarket_clob_book import TopOfBook, parse_book

WHERE = "Polymarket CLOB GET /book?token_id=7"


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> dict[str, Any]:
    return {"asset_id": "7", "bids": [{"price": p, "size": q} for p, q in bids],
            "asks": [{"price": p, "size": q} for p, q in asks]}  # fmt: skip


def test_parse_book_when_levels_are_in_the_clobs_order_takes_the_best_of_each_side() -> None:
    payload = book([("0.01", "10"), ("0.38", "900"), ("0.39", "5000")],
                   [("0.99", "10"), ("0.45", "7"), ("0.40", "4800")])  # fmt: skip
    assert parse_book(payload, "7", where=WHERE) == TopOfBook("7", 0.39, 5000.0, 0.40, 4800.0)


def test_parse_book_when_a_side_is_empty_gives_none_for_it() -> None:
    payload = book([], [("0", "12.5")])  # a price of 0 is a price
    assert parse_book(payload, "7", where=WHERE) == TopOfBook("7", None, None, 0.0, 12.5)


@pytest.mark.parametrize(("payload", "message"), [
    (book([("1.2", "5")], []), "bids price '1.2' is outside \\[0, 1\\]"),
    (book([], [("0.5", "-1")]), "asks size '-1' is not a size >= 0"),
    (book([], [("x", "1")]), "asks price 'x' is outside"),
    ([], "expected a JSON object, got list"),
])  # fmt: skip
def test_parse_book_when_a_level_is_bad_names_the_request_side_and_value(
    payload: Any, message: str
) -> None:
    with pytest.raises(ApiError, match=f"^{WHERE.replace('?', '[?]')}: {message}"):
        parse_book(payload, "7", where=WHERE)
