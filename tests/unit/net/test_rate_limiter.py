"""PriorityRateLimiter: priority order, the sliding window, 429 handling and the worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.core.clock import ManualClock, SystemClock
from marketbot.core.errors import ConfigError, TemporaryError
from marketbot.net import (
    PRIORITY_EMERGENCY,
    PRIORITY_LOW,
    PRIORITY_NORMAL,
    PriorityRateLimiter,
    RateLimited,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


def make_limiter(
    calls_per_minute: int, **options: object
) -> tuple[PriorityRateLimiter, ManualClock]:
    clock = ManualClock(START)

    def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    return PriorityRateLimiter(calls_per_minute, clock=clock, sleep=sleep, **options), clock  # type: ignore[arg-type]


class Recorder:
    """A fake call that records when and with what it ran, and can fail on chosen calls."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, datetime]] = []
        self.failures: dict[str, list[BaseException]] = {}

    def __call__(self, name: str) -> str:
        self.calls.append((name, self.clock.now()))
        pending = self.failures.get(name)
        if pending:
            raise pending.pop(0)
        return f"result-{name}"

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    @property
    def times(self) -> list[datetime]:
        return [moment for _, moment in self.calls]


def drain(limiter: PriorityRateLimiter) -> None:
    while limiter.pending_count():
        limiter.process_queue()


def max_calls_in_any_window(times: list[datetime], window: timedelta) -> int:
    # The busiest half-open window [t, t + window) starts at some call time.
    return max(
        (sum(1 for other in times if start <= other < start + window) for start in times), default=0
    )


def test_process_queue_when_emergency_queued_after_low_ones_emergency_runs_first() -> None:
    limiter, clock = make_limiter(60)
    recorder = Recorder(clock)
    limiter.queue_request(recorder, args=("low-1",), priority=PRIORITY_LOW)
    limiter.queue_request(recorder, args=("low-2",), priority=PRIORITY_LOW)
    limiter.queue_request(recorder, args=("normal",), priority=PRIORITY_NORMAL)
    limiter.queue_request(recorder, args=("emergency",), priority=PRIORITY_EMERGENCY)
    drain(limiter)
    assert recorder.names == ["emergency", "normal", "low-1", "low-2"]


def test_process_queue_when_emergency_arrives_while_waiting_for_a_slot_it_overtakes() -> None:
    limiter, clock = make_limiter(1)
    recorder = Recorder(clock)
    limiter.queue_request(recorder, args=("first",), priority=PRIORITY_LOW)
    limiter.queue_request(recorder, args=("low",), priority=PRIORITY_LOW)
    limiter.process_queue()
    limiter.queue_request(recorder, args=("emergency",), priority=PRIORITY_EMERGENCY)
    drain(limiter)
    assert recorder.names == ["first", "emergency", "low"]
    assert recorder.times == [START, START + timedelta(seconds=60), START + timedelta(seconds=120)]


def test_process_queue_when_equal_priorities_runs_them_first_in_first_out() -> None:
    limiter, clock = make_limiter(100)
    recorder = Recorder(clock)
    names = [f"request-{index}" for index in range(20)]
    for name in names:
        limiter.queue_request(recorder, args=(name,), priority=PRIORITY_NORMAL)
    drain(limiter)
    assert recorder.names == names


def test_process_queue_when_rate_reached_waits_for_the_oldest_call_to_leave_the_window() -> None:
    limiter, clock = make_limiter(2)
    recorder = Recorder(clock)
    for name in "abc":
        limiter.queue_request(recorder, args=(name,))
    drain(limiter)
    assert recorder.times == [START, START, START + timedelta(seconds=60)]


def test_process_queue_when_queue_empty_returns_none_without_waiting() -> None:
    limiter, clock = make_limiter(1)
    assert limiter.process_queue() is None
    assert clock.now() == START


def test_queue_request_when_call_succeeds_future_and_process_queue_give_the_result() -> None:
    limiter, _ = make_limiter(10)
    future = limiter.queue_request(lambda a, b=0: a + b, args=(2,), kwargs={"b": 3})
    assert not future.done()
    assert limiter.process_queue() == 5
    assert future.result(timeout=0) == 5


def test_queue_request_when_call_raises_future_fails_and_process_queue_reraises() -> None:
    limiter, clock = make_limiter(10)
    recorder = Recorder(clock)
    recorder.failures["bad"] = [ValueError("boom")]
    bad = limiter.queue_request(recorder, args=("bad",))
    good = limiter.queue_request(recorder, args=("good",))
    with pytest.raises(ValueError, match="boom"):
        limiter.process_queue()
    assert isinstance(bad.exception(timeout=0), ValueError)
    assert limiter.process_queue() == "result-good"
    assert good.result(timeout=0) == "result-good"


def test_queue_request_when_future_cancelled_before_running_it_is_skipped_and_uses_no_slot() -> (
    None
):
    limiter, clock = make_limiter(1)
    recorder = Recorder(clock)
    cancelled = limiter.queue_request(recorder, args=("cancelled",))
    limiter.queue_request(recorder, args=("kept",))
    assert cancelled.cancel()
    assert limiter.process_queue() == "result-kept"
    assert recorder.calls == [("kept", START)]


def test_process_queue_when_429_with_retry_after_waits_and_retries_ahead_of_newer_equal_ones() -> (
    None
):
    limiter, clock = make_limiter(60)
    recorder = Recorder(clock)
    recorder.failures["old"] = [RateLimited(retry_after_seconds=30)]
    old = limiter.queue_request(recorder, args=("old",))
    limiter.queue_request(recorder, args=("newer",))
    assert limiter.process_queue() == "result-old"
    assert old.result(timeout=0) == "result-old"
    limiter.process_queue()
    assert recorder.calls == [
        ("old", START),
        ("old", START + timedelta(seconds=30)),
        ("newer", START + timedelta(seconds=30)),
    ]


def test_process_queue_when_429_without_retry_after_backs_off_exponentially() -> None:
    limiter, clock = make_limiter(60, backoff_base_seconds=2.0)
    recorder = Recorder(clock)
    recorder.failures["flaky"] = [RateLimited(None), RateLimited(None), RateLimited(None)]
    limiter.queue_request(recorder, args=("flaky",))
    limiter.process_queue()
    offsets = [(moment - START).total_seconds() for moment in recorder.times]
    assert offsets == [0, 2, 6, 14]


def test_process_queue_when_retries_exhausted_fails_the_future_with_a_clear_error() -> None:
    limiter, clock = make_limiter(60, max_retries=2)
    recorder = Recorder(clock)
    recorder.failures["hopeless"] = [RateLimited(1.0) for _ in range(5)]
    future = limiter.queue_request(recorder, args=("hopeless",))
    with pytest.raises(TemporaryError, match="after 2 retries"):
        limiter.process_queue()
    assert isinstance(future.exception(timeout=0), TemporaryError)
    assert len(recorder.calls) == 3


def test_process_queue_when_retrying_after_429_retries_count_towards_the_rate() -> None:
    limiter, clock = make_limiter(2)
    recorder = Recorder(clock)
    recorder.failures["a"] = [RateLimited(retry_after_seconds=1)]
    limiter.queue_request(recorder, args=("a",))
    limiter.queue_request(recorder, args=("b",))
    drain(limiter)
    # a (429), a retried at +1 s, then the window is full until the first call leaves it.
    assert recorder.calls == [
        ("a", START),
        ("a", START + timedelta(seconds=1)),
        ("b", START + timedelta(seconds=60)),
    ]


request_plans = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=90),  # seconds to wait before queueing
        st.integers(min_value=1, max_value=10),  # priority
        st.lists(st.one_of(st.none(), st.floats(0, 20)), max_size=2),  # 429s it meets
    ),
    min_size=1,
    max_size=40,
)


@given(calls_per_minute=st.integers(min_value=1, max_value=6), plan=request_plans)
def test_process_queue_when_random_bursts_never_exceeds_the_rate_in_any_window(
    calls_per_minute: int, plan: list[tuple[int, int, list[float | None]]]
) -> None:
    limiter, clock = make_limiter(calls_per_minute, max_retries=2)
    recorder = Recorder(clock)
    futures = []
    for index, (gap_seconds, priority, retry_afters) in enumerate(plan):
        clock.advance(timedelta(seconds=gap_seconds))
        name = str(index)
        recorder.failures[name] = [RateLimited(seconds) for seconds in retry_afters]
        futures.append(limiter.queue_request(recorder, args=(name,), priority=priority))
        if gap_seconds % 3 == 0:  # process some requests as they come, let others pile up
            limiter.process_queue()
    drain(limiter)
    assert all(
        future.result(timeout=0) == f"result-{index}" for index, future in enumerate(futures)
    )
    assert len(recorder.calls) == sum(1 + len(retry_afters) for _, _, retry_afters in plan)
    assert max_calls_in_any_window(recorder.times, timedelta(seconds=60)) <= calls_per_minute


@given(priorities=st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=30))
def test_process_queue_when_all_queued_up_front_runs_by_priority_then_arrival(
    priorities: list[int],
) -> None:
    limiter, clock = make_limiter(3)
    recorder = Recorder(clock)
    for index, priority in enumerate(priorities):
        limiter.queue_request(recorder, args=(str(index),), priority=priority)
    drain(limiter)
    expected = sorted(range(len(priorities)), key=lambda index: (priorities[index], index))
    assert recorder.names == [str(index) for index in expected]


@pytest.mark.parametrize("calls_per_minute", [0, -1, 1.5, True, "10"])
def test_constructor_when_calls_per_minute_not_a_positive_int_raises_config_error(
    calls_per_minute: object,
) -> None:
    with pytest.raises(ConfigError, match="calls_per_minute"):
        PriorityRateLimiter(calls_per_minute)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_retries", -1), ("backoff_base_seconds", 0.0), ("window_seconds", -5.0)],
)
def test_constructor_when_option_out_of_range_raises_config_error(
    option: str, value: object
) -> None:
    with pytest.raises(ConfigError, match=option):
        PriorityRateLimiter(10, **{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("priority", [0, 11, -3, 2.0, None, True])
def test_queue_request_when_priority_outside_1_to_10_raises_config_error(priority: object) -> None:
    limiter, _ = make_limiter(10)
    with pytest.raises(ConfigError, match="priority"):
        limiter.queue_request(lambda: None, priority=priority)  # type: ignore[arg-type]
    assert limiter.pending_count() == 0


def test_rate_limited_when_created_keeps_retry_after_and_is_a_temporary_error() -> None:
    assert RateLimited(12.5).retry_after_seconds == 12.5
    assert RateLimited().retry_after_seconds is None
    assert isinstance(RateLimited(), TemporaryError)


def wait_until(condition: Callable[[], bool], timeout_seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_worker_when_started_processes_the_queue_at_the_rate_and_stops_cleanly() -> None:
    # Real clock, tiny window: 3 calls per 0.1 s, so 7 calls need at least 0.2 s.
    limiter = PriorityRateLimiter(3, clock=SystemClock(), window_seconds=0.1)
    times: list[float] = []
    lock = threading.Lock()

    def call(value: int) -> int:
        with lock:
            times.append(time.monotonic())
        return value * 2

    limiter.start()
    try:
        assert limiter.is_running
        with pytest.raises(ConfigError, match="already running"):
            limiter.start()
        futures = [limiter.queue_request(call, args=(value,)) for value in range(7)]
        failing = limiter.queue_request(lambda: 1 / 0, priority=PRIORITY_LOW)
        assert [future.result(timeout=2) for future in futures] == [value * 2 for value in range(7)]
        assert isinstance(failing.exception(timeout=2), ZeroDivisionError)
    finally:
        started = time.monotonic()
        limiter.stop(timeout_seconds=2)
    assert time.monotonic() - started < 1.0
    assert not limiter.is_running
    assert times[-1] - times[0] >= 0.19


def test_worker_when_stopped_while_waiting_for_a_slot_stops_and_leaves_the_rest_queued() -> None:
    limiter = PriorityRateLimiter(1, clock=SystemClock(), window_seconds=30)
    first = limiter.queue_request(lambda: "first")
    limiter.queue_request(lambda: "second")
    limiter.start()
    assert first.result(timeout=2) == "first"
    assert wait_until(lambda: limiter.pending_count() == 1)
    started = time.monotonic()
    limiter.stop(timeout_seconds=2)
    assert time.monotonic() - started < 1.0
    assert not limiter.is_running
    assert limiter.pending_count() == 1


class CountingClock(SystemClock):
    """The system clock, counting how often it is asked."""

    def __init__(self) -> None:
        self.reads = 0

    def now(self) -> datetime:
        self.reads += 1
        return super().now()


def test_process_queue_after_worker_stopped_waits_instead_of_spinning() -> None:
    clock = CountingClock()
    limiter = PriorityRateLimiter(1, clock=clock, window_seconds=0.2)
    limiter.start()
    limiter.stop()
    limiter.queue_request(lambda: "first")
    limiter.queue_request(lambda: "second")

    assert limiter.process_queue() == "first"
    assert limiter.process_queue() == "second"  # waits about 0.2 s for the window
    # A real wait reads the clock a handful of times; a busy loop would read it thousands.
    assert clock.reads < 50


def test_process_queue_when_calls_overlap_on_threads_counts_running_ones_against_the_rate() -> None:
    limiter = PriorityRateLimiter(2, window_seconds=0.3)
    release = threading.Event()
    running: list[int] = []
    most_at_once = 0

    def slow(n: int) -> int:
        nonlocal most_at_once
        running.append(n)
        most_at_once = max(most_at_once, len(running))
        release.wait(2)
        running.remove(n)
        return n

    for n in range(3):
        limiter.queue_request(slow, args=(n,))
    threads = [threading.Thread(target=limiter.process_queue) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    assert most_at_once == 2  # the third waits: two slots are held by calls in flight
    release.set()
    for thread in threads:
        thread.join(5)
    assert limiter.pending_count() == 0
