"""Reading a small form body (urlencoded or JSON) without python-multipart."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from fastapi import Request

from marketbot.web.errors import FieldError

MAX_FORM_BYTES = 16_384


async def form_fields(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The named text fields of a urlencoded or JSON body; 400 when one is missing."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FieldError("body", "the form is too large")
    values: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            decoded = json.loads(body or b"{}")
        except ValueError:
            raise FieldError("body", "the body is not JSON") from None
        if isinstance(decoded, dict):
            values = {k: v for k, v in decoded.items() if isinstance(v, str)}
    else:
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise FieldError("body", "the form is not UTF-8") from None
        values = {k: v[0] for k, v in parsed.items() if v}
    missing = [name for name in names if name not in values]
    if missing:
        raise FieldError(f"body.{missing[0]}", "Field required")
    return {name: values[name] for name in names}
