"""Encodings for what the store keeps in JSON columns and compressed blobs.

JSON cannot hold infinity or NaN (PostgreSQL's ``json`` rejects Python's ``Infinity``), but
metrics legitimately are infinite (profit factor with no losing trade). Non-finite floats are
therefore written as the strings ``"inf"``, ``"-inf"`` and ``"nan"`` and turned back into
floats on reading; the cost is that those three exact strings cannot be stored as strings.

Equity curves are two numeric arrays, so they are stored as a compressed binary blob instead
of JSON: a 33k-bar curve is a few hundred kB as JSON and much less this way.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final

import numpy as np

from marketbot.core.errors import DataError

_NON_FINITE: Final = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_SERIES_FORMAT: Final = 1
_SERIES_HEADER: Final = struct.Struct("<BQ")  # format version, number of points


def _float_to_json(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def to_json_value(value: Any, *, where: str) -> Any:
    """A JSON-safe copy of ``value``: non-finite floats become strings, datetimes ISO text.

    numpy scalars and arrays become Python numbers and lists; tuples become lists.

    Raises:
        DataError: a value of a type JSON cannot hold (``where`` names the field).
    """
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return _float_to_json(value)
    if isinstance(value, np.generic):
        return to_json_value(value.item(), where=where)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json_value(item, where=f"{where}.{k}") for k, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_json_value(item, where=f"{where}[{i}]") for i, item in enumerate(value)]
    raise DataError(f"{where}: cannot store a value of type {type(value).__name__} as JSON")


def from_json_value(value: Any) -> Any:
    """Undo :func:`to_json_value`'s float encoding (datetimes stay ISO strings)."""
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {key: from_json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json_value(item) for item in value]
    return value


def dumps(value: Any) -> str:
    """Serialise JSON strictly: NaN or infinity here is a bug, so it raises ValueError."""
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def encode_json_blob(value: Any, *, where: str) -> bytes:
    """Compressed JSON of ``value`` (after :func:`to_json_value`)."""
    return zlib.compress(dumps(to_json_value(value, where=where)).encode("utf-8"))


def decode_json_blob(blob: bytes) -> Any:
    """Inverse of :func:`encode_json_blob`."""
    return from_json_value(json.loads(zlib.decompress(blob).decode("utf-8")))


def encode_series(times_ns: np.ndarray, values: np.ndarray) -> bytes:
    """Compress a time series (int64 ns times, float64 values) into a blob.

    Times are stored as differences, which are nearly constant for bars and so compress to
    almost nothing.
    """
    times = np.asarray(times_ns, dtype="<i8")
    numbers = np.asarray(values, dtype="<f8")
    if times.shape != numbers.shape or times.ndim != 1:
        raise DataError(
            f"equity curve: {times.shape[0]} times but {numbers.shape[0]} values"
            if times.ndim == 1 and numbers.ndim == 1
            else "equity curve: times and values must be one-dimensional"
        )
    deltas = np.diff(times, prepend=np.int64(0)).astype("<i8")
    payload = zlib.compress(deltas.tobytes() + numbers.tobytes())
    return _SERIES_HEADER.pack(_SERIES_FORMAT, times.shape[0]) + payload


def decode_series(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_series`: (int64 ns times, float64 values)."""
    version, count = _SERIES_HEADER.unpack_from(blob)
    if version != _SERIES_FORMAT:
        raise DataError(f"equity curve: unknown storage format {version}")
    raw = zlib.decompress(blob[_SERIES_HEADER.size :])
    if len(raw) != 16 * count:
        raise DataError(f"equity curve: blob holds {len(raw)} bytes, expected {16 * count}")
    deltas = np.frombuffer(raw, dtype="<i8", count=count)
    values = np.frombuffer(raw, dtype="<f8", count=count, offset=8 * count)
    return np.cumsum(deltas).astype(np.int64), values.astype(np.float64)
