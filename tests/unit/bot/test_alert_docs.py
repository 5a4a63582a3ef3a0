"""docs/alerts.md says what the code does: metrics, operators, categories, event columns."""

from __future__ import annotations

from pathlib import Path

from marketbot.bot.alert_expressions import METRICS, OPERATORS, parse_alert_expression
from marketbot.bot.notify import NOTIFY_CATEGORIES
from marketbot.store.models import EVENT_SEVERITIES, Event

TEXT = (Path(__file__).parents[3] / "docs" / "alerts.md").read_text(encoding="utf-8")


def test_alerts_doc_when_read_names_every_metric_operator_and_category() -> None:
    for metrics in METRICS.values():
        for metric in metrics:
            assert f"`{metric}`" in TEXT, metric
    for operator in OPERATORS:
        assert f"`{operator}`" in TEXT, operator
    for category in NOTIFY_CATEGORIES:
        assert f"`{category}`" in TEXT, category
    for severity in EVENT_SEVERITIES:
        assert f"`{severity}`" in TEXT, severity


def test_alerts_doc_when_read_describes_every_event_column() -> None:
    for column in Event.__table__.columns.keys():  # noqa: SIM118 - a ColumnCollection
        if column != "id":
            assert f"| `{column}` |" in TEXT, column


def test_alerts_doc_when_its_examples_are_parsed_they_are_valid() -> None:
    for line in TEXT.splitlines():
        if line.startswith("marketbot alerts add "):
            expression = line.split('"')[1]
            assert parse_alert_expression(expression).describe()
