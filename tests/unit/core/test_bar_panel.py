"""Bars of several symbols: normalize_frames is normalize_ohlcv per frame; PanelBars' grids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketbot.core.bar_panel import PanelBars, normalize_frames
from marketbot.core.bars import normalize_ohlcv
from marketbot.core.errors import ConfigError, DataError
from tests.support.frames import random_walk_frame, sample_daily_btc


def variants() -> dict[str, pd.DataFrame]:
    """Canonical frames and frames that need normalize_ohlcv's pandas work."""
    canonical = random_walk_frame(50, seed=1)
    return {
        "canonical": canonical,
        "normalised": normalize_ohlcv(sample_daily_btc()),
        "raw csv": sample_daily_btc(),
        "upper case": canonical.rename(columns=str.upper),
        "int volume": canonical.astype({"volume": "int64"}),
        "reordered": canonical[["close", "open", "high", "low", "volume"]],
        "naive index": canonical.tz_localize(None),
        "other name": canonical.rename_axis("time"),
        "other unit": canonical.set_axis(canonical.index.as_unit("us")),
    }


def test_normalize_frames_when_shapes_vary_equals_normalize_ohlcv_per_frame() -> None:
    frames = variants()
    normalized = normalize_frames(frames)
    assert list(normalized) == list(frames)
    for symbol, frame in frames.items():
        expected = normalize_ohlcv(frame, where=symbol)
        pd.testing.assert_frame_equal(normalized[symbol], expected, check_exact=True)
        assert normalized[symbol].index.freq == expected.index.freq
        assert normalized[symbol] is not frame


@pytest.mark.parametrize(
    ("column", "row", "value"),
    [("close", 7, np.nan), ("low", 0, -1.0), ("high", 12, 1.0), ("volume", 49, -5.0)],
)
def test_normalize_frames_when_a_canonical_frame_is_bad_raises_normalize_ohlcvs_error(
    column: str, row: int, value: float
) -> None:
    bad = random_walk_frame(50, seed=2)
    bad.iloc[row, bad.columns.get_loc(column)] = value
    with pytest.raises(DataError) as expected:
        normalize_ohlcv(bad, where="bbb")
    with pytest.raises(DataError) as raised:
        normalize_frames({"aaa": random_walk_frame(50), "bbb": bad})
    assert str(raised.value) == str(expected.value)
    assert str(raised.value).startswith("bbb: ")


def test_normalize_frames_when_times_repeat_raises_normalize_ohlcvs_error() -> None:
    frame = random_walk_frame(10)
    repeated = frame.set_axis(frame.index[[0, 1, 2, 2, 4, 5, 6, 7, 8, 9]])
    with pytest.raises(DataError, match=r"^x: duplicate timestamp 2020-01-01T02:00:00Z \(row 4\)"):
        normalize_frames({"x": repeated})


def test_normalize_frames_when_input_changes_afterwards_keeps_its_output() -> None:
    frame = random_walk_frame(20)
    normalized = normalize_frames({"a": frame})["a"]
    frame.iloc[0, 0] = 1e9
    assert normalized.iloc[0, 0] != 1e9


def test_panel_bars_when_symbols_differ_in_length_pads_each_column_below_its_bars() -> None:
    long, short = random_walk_frame(5, seed=1), random_walk_frame(3, seed=2, start="2021-01-01")
    bars = PanelBars.of({"long": long, "short": short})
    assert bars.rows == 5 and bars.lengths.tolist() == [5, 3] and not bars.shared_calendar
    np.testing.assert_array_equal(bars.close[:, 0], long["close"].to_numpy())
    np.testing.assert_array_equal(bars.close[:3, 1], short["close"].to_numpy())
    assert np.isnan(bars.volume[3:, 1]).all()
    assert bars.valid[:, 1].tolist() == [True, True, True, False, False]
    with pytest.raises(ValueError, match="read-only"):
        bars.close[0, 0] = 1.0
    assert bars.grid("close") is bars.grid("close")  # built once


def test_panel_bars_when_calendars_are_equal_has_no_padding() -> None:
    frames = {name: random_walk_frame(4, seed=seed) for seed, name in enumerate("abc")}
    bars = PanelBars.of(frames)
    assert bars.shared_calendar and bars.valid.all()
    assert bars.open.shape == (4, 3)


def test_panel_bars_when_no_frames_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="at least one symbol"):
        PanelBars.of({})
