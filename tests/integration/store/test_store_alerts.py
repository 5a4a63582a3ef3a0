"""Alerts and events in the store: a firing's count, time and event in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketbot.core.errors import ConfigError, DataError
from marketbot.store import Database
from marketbot.store.alerts import AlertEvaluation, AlertFiringRecord, AlertRepository, AlertSpec
from marketbot.store.events import EventRecord, EventRepository

AT = datetime(2020, 12, 16, tzinfo=UTC)
SPEC = AlertSpec(
    name="btc20k", kind="price", subject="bitcoin", metric="close", operator=">",
    threshold=20000.0, unit="price",
)  # fmt: skip


def firing(alert_id: int, value: float = 21365.7) -> AlertFiringRecord:
    event = EventRecord(AT, "alert_fired", "info", "alert btc20k fired", {"v": value}, alert_id)
    return AlertFiringRecord(alert_id, AT, value, event)


def test_add_when_new_starts_enabled_armed_with_one_hour_cooldown(database: Database) -> None:
    alert = AlertRepository(database).add(SPEC)

    assert (alert.enabled, alert.armed, alert.trigger_count, alert.cooldown_seconds) == (
        True, True, 0, 3600,
    )  # fmt: skip
    assert AlertRepository(database).all() == [alert]


def test_save_evaluations_when_firing_counts_stamps_disarms_and_stores_its_event(
    database: Database,
) -> None:
    alerts = AlertRepository(database)
    alert = alerts.add(SPEC)

    event_ids = alerts.save_evaluations([], [firing(alert.id)])

    stored = alerts.get(alert.id)
    assert (stored.trigger_count, stored.last_triggered, stored.armed) == (1, AT, False)
    assert stored.last_value == 21365.7
    event = EventRepository(database).get(event_ids[alert.id])
    assert (event.kind, event.alert_id, event.at, event.delivered) == (
        "alert_fired", alert.id, AT, False,
    )  # fmt: skip


def test_save_evaluations_when_an_event_is_refused_stores_nothing(database: Database) -> None:
    alerts = AlertRepository(database)
    alert, other = alerts.add(SPEC), alerts.add(SPEC)
    bad = AlertFiringRecord(alert.id, AT, 1.0, EventRecord(AT, "alert_fired", "loud", "x"))

    with pytest.raises(DataError, match="event severity 'loud'"):
        alerts.save_evaluations([AlertEvaluation(other.id, False, 5.0)], [bad])

    assert alerts.all() == [alert, other]
    assert EventRepository(database).newest() == []


def test_save_evaluations_when_alert_fired_since_it_was_read_keeps_the_firing(
    database: Database,
) -> None:
    alerts = AlertRepository(database)
    alert = alerts.add(SPEC)
    alerts.save_evaluations([], [firing(alert.id)])

    # Another process read the alert before that firing: its firing and its re-arming lose.
    assert alerts.save_evaluations([], [firing(alert.id, 22000.0)]) == {}
    alerts.save_evaluations([AlertEvaluation(alert.id, True, 19000.0, None)], [])

    stored = alerts.get(alert.id)
    assert (stored.trigger_count, stored.armed, stored.last_value) == (1, False, 21365.7)
    assert len(EventRepository(database).newest()) == 1


def test_save_evaluations_when_alert_deleted_meanwhile_skips_it(database: Database) -> None:
    alerts = AlertRepository(database)
    alert = alerts.add(SPEC)
    alerts.delete(alert.id)

    assert alerts.save_evaluations([AlertEvaluation(alert.id, True, 1.0)], [firing(alert.id)]) == {}
    assert EventRepository(database).newest() == []


def test_delete_when_alert_has_events_keeps_them_unlinked(database: Database) -> None:
    alerts = AlertRepository(database)
    alert = alerts.add(SPEC)
    event_id = alerts.save_evaluations([], [firing(alert.id)])[alert.id]

    alerts.delete(alert.id)

    assert EventRepository(database).get(event_id).alert_id is None


def test_set_enabled_when_re_enabled_re_arms(database: Database) -> None:
    alerts = AlertRepository(database)
    alert = alerts.add(SPEC)
    alerts.save_evaluations([], [firing(alert.id)])

    alerts.set_enabled(alert.id, False)
    assert alerts.enabled() == []
    assert alerts.set_enabled(alert.id, True).armed is True


def test_get_when_id_unknown_lists_the_stored_ids(database: Database) -> None:
    alerts = AlertRepository(database)
    first = alerts.add(SPEC)

    with pytest.raises(ConfigError, match=rf"no alert with id 99; stored alert ids: {first.id}$"):
        alerts.get(99)


def test_add_when_cooldown_negative_is_refused_and_nothing_stored(database: Database) -> None:
    alerts = AlertRepository(database)
    bad = AlertSpec("x", "price", "bitcoin", "close", ">", 1.0, cooldown_seconds=-1)

    with pytest.raises(ConfigError, match="cooldown -1 s"):
        alerts.add(bad)
    assert alerts.all() == []


def test_events_when_marked_keep_the_delivery_outcome_newest_first(database: Database) -> None:
    events = EventRepository(database)
    older = events.record(EventRecord(AT, "slippage_high", "emergency", "slipped"))
    newer = events.record(EventRecord(datetime(2021, 1, 1, tzinfo=UTC), "fill", "info", "x"))

    events.mark_delivery(older, delivered=False, error="json://127.0.0.1: not delivered")
    events.mark_delivery(newer, delivered=True, error=None)

    listed = events.newest()
    assert [e.id for e in listed] == [newer, older]
    assert (listed[1].delivered, listed[1].delivery_error) == (
        False, "json://127.0.0.1: not delivered",
    )  # fmt: skip
    assert [e.id for e in events.newest(kind="fill")] == [newer]
