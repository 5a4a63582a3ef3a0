"""Bar normalisation: canonical output from any shape, the caller's frame never touched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketbot.core.bars import normalize_ohlcv
from marketbot.core.errors import DataError
from tests.support.frames import sample_daily_btc


def test_normalize_when_already_canonical_returns_an_equal_independent_frame() -> None:
    first = normalize_ohlcv(sample_daily_btc())
    again = normalize_ohlcv(first)
    pd.testing.assert_frame_equal(first, again)
    first.iloc[0, 0] = 1e9  # changing the input afterwards leaves the output as it was
    assert again.iloc[0, 0] != 1e9


def test_normalize_when_shapes_differ_gives_the_same_canonical_frame() -> None:
    raw = sample_daily_btc()
    canonical = normalize_ohlcv(raw)
    upper = normalize_ohlcv(raw.rename(columns=str.upper))
    textual = raw.astype({"close": str})
    reordered = raw[["volume", "close", "low", "high", "open", "timestamp"]]
    for variant in (upper, normalize_ohlcv(textual), normalize_ohlcv(reordered)):
        pd.testing.assert_frame_equal(canonical, variant)
    assert not pd.api.types.is_numeric_dtype(textual["close"])  # the caller's frame is untouched
    assert str(canonical.index.tz) == "UTC" and (canonical.dtypes == np.float64).all()


def test_normalize_when_epoch_milliseconds_converts_exactly() -> None:
    frame = pd.DataFrame(
        {"timestamp": [1_700_000_000_000, 1_700_003_600_000], "open": [1.0, 2.0],
         "high": [2.0, 3.0], "low": [0.5, 1.5], "close": [1.5, 2.5], "volume": [0, 0]}
    )  # fmt: skip
    index = normalize_ohlcv(frame).index
    assert index[0] == pd.Timestamp("2023-11-14T22:13:20", tz="UTC")
    assert index[1] - index[0] == pd.Timedelta(hours=1)


def test_normalize_when_text_prices_are_not_numbers_names_the_column() -> None:
    frame = sample_daily_btc().astype({"open": str})
    frame.loc[3, "open"] = "n/a"
    with pytest.raises(DataError, match="column 'open' is not numeric"):
        normalize_ohlcv(frame, where="prices.csv")


def test_normalize_when_two_columns_have_one_name_in_lower_case_names_it() -> None:
    frame = sample_daily_btc()
    frame["Close"] = frame["close"]
    with pytest.raises(DataError, match="more than one column named 'close'"):
        normalize_ohlcv(frame, where="prices.csv")
