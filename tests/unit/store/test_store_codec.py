"""The store's JSON and blob encodings, without a database."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marketbot.core.errors import DataError
from marketbot.store._codec import (
    decode_json_blob,
    decode_series,
    dumps,
    encode_json_blob,
    encode_series,
    from_json_value,
    to_json_value,
)


def test_to_json_value_when_floats_not_finite_writes_strings_json_accepts() -> None:
    encoded = to_json_value({"a": math.inf, "b": [-math.inf, math.nan, 1.5]}, where="m")

    assert encoded == {"a": "inf", "b": ["-inf", "nan", 1.5]}
    assert json.loads(dumps(encoded)) == encoded


def test_from_json_value_when_strings_encode_floats_restores_them() -> None:
    decoded = from_json_value({"a": "inf", "b": ["-inf", "nan", "text", 2]})

    assert decoded["a"] == math.inf
    assert decoded["b"][0] == -math.inf
    assert math.isnan(decoded["b"][1])
    assert decoded["b"][2:] == ["text", 2]


def test_to_json_value_when_numpy_and_datetimes_converts_them() -> None:
    encoded = to_json_value(
        {
            "n": np.int64(3),
            "x": np.float64(0.25),
            "flag": np.bool_(True),
            "when": datetime(2024, 1, 1, tzinfo=UTC),
            "pair": (1, 2),
            "array": np.array([1.0, 2.0]),
        },
        where="params",
    )

    assert encoded == {
        "n": 3,
        "x": 0.25,
        "flag": True,
        "when": "2024-01-01T00:00:00+00:00",
        "pair": [1, 2],
        "array": [1.0, 2.0],
    }
    assert type(encoded["n"]) is int and type(encoded["flag"]) is bool


def test_to_json_value_when_type_unsupported_raises_naming_the_path() -> None:
    with pytest.raises(DataError, match=r"trades\[1\]\.tag: cannot store a value of type set"):
        to_json_value([{}, {"tag": {1}}], where="trades")


def test_dumps_when_given_nan_raises() -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        dumps({"x": math.nan})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


@given(value=json_values)
def test_json_blob_when_round_tripped_returns_equal_value(value: object) -> None:
    # NaN != NaN, so compare the JSON text of both sides instead of the values.
    decoded = decode_json_blob(encode_json_blob(value, where="v"))

    assert dumps(to_json_value(decoded, where="v")) == dumps(to_json_value(value, where="v"))


@given(
    times=hnp.arrays(np.int64, st.integers(0, 300), elements=st.integers(-(2**62), 2**62)),
    data=st.data(),
)
def test_series_blob_when_round_tripped_returns_same_arrays(
    times: np.ndarray, data: st.DataObject
) -> None:
    values = data.draw(hnp.arrays(np.float64, len(times)))

    decoded_times, decoded_values = decode_series(encode_series(times, values))

    np.testing.assert_array_equal(decoded_times, times)
    np.testing.assert_array_equal(decoded_values, values)  # NaN equals NaN here
    assert decoded_times.dtype == np.int64 and decoded_values.dtype == np.float64


def test_encode_series_when_lengths_differ_raises() -> None:
    with pytest.raises(DataError, match="3 times but 2 values"):
        encode_series(np.arange(3), np.zeros(2))


def test_decode_series_when_format_unknown_raises() -> None:
    blob = bytearray(encode_series(np.arange(3), np.zeros(3)))
    blob[0] = 99

    with pytest.raises(DataError, match="unknown storage format 99"):
        decode_series(bytes(blob))
