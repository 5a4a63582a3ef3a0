"""The pinned firing rule: armed, re-arm on false, cooldown, a firing at its reading's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from marketbot.bot.alert_snapshot import AlertSnapshot, PriceReading
from marketbot.bot.alerts import AlertManager, MemoryAlertBook, step_alert
from marketbot.store.alerts import AlertInfo

T0 = datetime(2021, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def alert(cooldown_seconds: int = 3600, threshold: float = 100.0) -> AlertInfo:
    return AlertInfo(
        id=1, name="a", kind="price", subject="bitcoin", metric="close", operator=">",
        threshold=threshold, unit="price", cooldown_seconds=cooldown_seconds, timeframe=None,
        enabled=True, armed=True, trigger_count=0, last_triggered=None, last_value=None,
        created_at=T0,
    )  # fmt: skip


def run(values: list[float], times: list[datetime], cooldown_seconds: int = 3600) -> list[int]:
    """The indexes of the evaluations that fired."""
    manager = AlertManager(MemoryAlertBook([alert(cooldown_seconds)]))
    fired = []
    for index, (value, time) in enumerate(zip(values, times, strict=True)):
        reading = PriceReading("bitcoin", time, close=value)
        if manager.evaluate(AlertSnapshot(at=time, prices=(reading,))):
            fired.append(index)
    return fired


def hourly(count: int) -> list[datetime]:
    return [T0 + i * HOUR for i in range(count)]


def test_evaluate_when_condition_crosses_fires_once_and_stays_disarmed_while_true() -> None:
    assert run([90, 95, 101, 120, 130, 150], hourly(6)) == [2]


def test_evaluate_when_true_at_the_first_evaluation_fires_at_once() -> None:
    assert run([150, 160], hourly(2)) == [0]


def test_evaluate_when_false_between_two_crossings_re_arms_it() -> None:
    assert run([101, 99, 101, 99, 101], hourly(5), cooldown_seconds=0) == [0, 2, 4]


def test_evaluate_when_crossing_inside_the_cooldown_fires_at_the_first_true_after_it() -> None:
    # Fired at 0, false at 1 h, true again at 2 h inside a 3 h cooldown: fires at 3 h.
    assert run([101, 99, 101, 101, 101], hourly(5), cooldown_seconds=3 * 3600) == [0, 3]


def test_evaluate_when_crossing_inside_the_cooldown_and_false_again_does_not_fire() -> None:
    assert run([101, 99, 101, 99, 99, 99], hourly(6), cooldown_seconds=3 * 3600) == [0]


def test_evaluate_when_cooldown_elapsed_exactly_fires() -> None:
    assert run([101, 99, 101], hourly(3), cooldown_seconds=2 * 3600) == [0, 2]


def test_evaluate_when_value_unknown_neither_fires_nor_re_arms() -> None:
    manager = AlertManager(MemoryAlertBook([alert(0)]))
    manager.evaluate(AlertSnapshot(at=T0, prices=(PriceReading("bitcoin", T0, close=150),)))
    unknown = AlertSnapshot(at=T0 + HOUR, prices=(PriceReading("bitcoin", T0 + HOUR),))
    other = AlertSnapshot(at=T0 + HOUR, prices=(PriceReading("ethereum", T0 + HOUR, close=1),))

    assert manager.evaluate(unknown) == [] and manager.evaluate(other) == []
    again = T0 + 2 * HOUR
    assert (
        manager.evaluate(AlertSnapshot(again, (PriceReading("bitcoin", again, close=150),))) == []
    )


def test_firing_when_price_reading_has_a_bar_time_is_stamped_with_it() -> None:
    bar = datetime(2020, 12, 16, tzinfo=UTC)
    manager = AlertManager(MemoryAlertBook([alert()]))
    snapshot = AlertSnapshot(at=bar + 23 * HOUR, prices=(PriceReading("bitcoin", bar, close=101),))

    (firing,) = manager.evaluate(snapshot)

    assert (firing.at, firing.value, firing.condition) == (bar, 101, "bitcoin close > 100")


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(min_value=0, max_value=5 * 3600)),
        min_size=1,
        max_size=60,
    ),
    st.integers(min_value=0, max_value=4 * 3600),
)
def test_step_when_any_sequence_never_fires_twice_without_a_false_and_an_elapsed_cooldown(
    evaluations: list[tuple[bool, int]], cooldown_seconds: int
) -> None:
    armed, last = True, None
    time = T0
    fired_at: list[int] = []
    false_since_fire = True
    for index, (condition_true, gap_seconds) in enumerate(evaluations):
        time += timedelta(seconds=gap_seconds)
        step = step_alert(
            condition_true=condition_true, armed=armed, last_triggered=last,
            cooldown_seconds=cooldown_seconds, at=time,
        )  # fmt: skip
        cooled = last is None or time - last >= timedelta(seconds=cooldown_seconds)
        if step.fires:
            # Never two firings without a false evaluation and the cooldown between them.
            assert condition_true and false_since_fire and cooled
            fired_at.append(index)
            last, false_since_fire = time, False
        else:
            # Nothing is missed: a true evaluation after a false one, cooled down, fires.
            assert not (condition_true and false_since_fire and cooled)
        false_since_fire = false_since_fire or not condition_true
        armed = step.armed
    first_true = next((i for i, (value, _) in enumerate(evaluations) if value), None)
    assert (fired_at[:1] == [first_true]) if first_true is not None else fired_at == []
