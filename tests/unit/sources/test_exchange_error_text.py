"""Exchange error texts lose their URLs' query strings (signatures, some exchanges' API keys)."""

from __future__ import annotations

from marketbot.sources.exchange_client import strip_query_strings


def test_strip_query_strings_when_a_signed_url_is_quoted_keeps_only_its_path() -> None:
    text = (
        "huobi GET https://api.huobi.pro/v1/order/orders?AccessKeyId=AKSENTINEL&Signature=x%3D "
        'failed; see {"url": "http://127.0.0.1:8080/api/v3/order?timestamp=1&signature=ab"}'
    )

    assert strip_query_strings(text) == (
        "huobi GET https://api.huobi.pro/v1/order/orders?... failed; see "
        '{"url": "http://127.0.0.1:8080/api/v3/order?..."}'
    )
    assert strip_query_strings("no URL here?really") == "no URL here?really"
