"""missing_runs and split_run: which bars are missing, and request windows over them."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.core.errors import ConfigError
from marketbot.sources.missing_ranges import MissingRun, missing_runs, split_run

HOUR = 3600
T0 = pd.Timestamp("2024-01-01T00:00Z")


def hours(*offsets: int) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([T0 + pd.Timedelta(hours=h) for h in offsets])


def at(hour: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hour)


def test_missing_runs_when_head_hole_and_tail_missing_returns_three_runs() -> None:
    stored = hours(2, 3, 6, 7)

    runs = missing_runs(stored, at(0), at(9), HOUR)

    assert runs == [
        MissingRun(at(0), at(1), 2),
        MissingRun(at(4), at(5), 2),
        MissingRun(at(8), at(9), 2),
    ]


def test_missing_runs_when_nothing_missing_returns_empty() -> None:
    assert missing_runs(hours(0, 1, 2), at(0), at(2), HOUR) == []


def test_missing_runs_when_range_is_off_grid_rounds_onto_stored_grid() -> None:
    stored = pd.DatetimeIndex([at(0) + pd.Timedelta(minutes=30), at(3) + pd.Timedelta(minutes=30)])

    runs = missing_runs(stored, at(0), at(4), HOUR)

    half = pd.Timedelta(minutes=30)
    assert runs == [MissingRun(at(1) + half, at(2) + half, 2)]


def test_missing_runs_when_nothing_stored_uses_epoch_grid() -> None:
    nothing = pd.DatetimeIndex([], tz="UTC")

    runs = missing_runs(nothing, at(0) + pd.Timedelta(minutes=1), at(3), HOUR)

    assert runs == [MissingRun(at(1), at(3), 3)]


def test_missing_runs_when_bar_length_not_positive_raises() -> None:
    with pytest.raises(ConfigError, match="positive"):
        missing_runs(hours(0), at(0), at(1), 0)


@given(
    present=st.sets(st.integers(0, 200)),
    bounds=st.tuples(st.integers(0, 200), st.integers(0, 200)).map(sorted),
)
def test_missing_runs_when_any_series_runs_are_exactly_the_absent_bars(
    present: set[int], bounds: list[int]
) -> None:
    start, end = bounds

    runs = missing_runs(hours(*sorted(present)), at(start), at(end), HOUR)

    covered = [
        int((run.first - T0) / pd.Timedelta(hours=1)) + k for run in runs for k in range(run.bars)
    ]
    assert covered == [h for h in range(start, end + 1) if h not in present]
    for before, after in itertools.pairwise(runs):
        assert after.first > before.last + pd.Timedelta(hours=1)  # runs are maximal


def test_split_run_when_longer_than_window_cuts_in_order() -> None:
    pieces = split_run(MissingRun(at(0), at(9), 10), HOUR, 4)

    assert pieces == [
        MissingRun(at(0), at(3), 4),
        MissingRun(at(4), at(7), 4),
        MissingRun(at(8), at(9), 2),
    ]


def test_missing_runs_when_weekly_and_nothing_stored_uses_monday_grid() -> None:
    week = 7 * 24 * HOUR
    nothing = pd.DatetimeIndex([], tz="UTC")

    runs = missing_runs(
        nothing, pd.Timestamp("2024-01-03T00:00Z"), T0 + pd.Timedelta(days=30), week
    )

    assert runs[0].first == pd.Timestamp("2024-01-08T00:00Z")  # the first Monday after
    assert runs[0].first.day_name() == "Monday"
