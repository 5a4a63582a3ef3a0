"""Alerts: create (the alerts module's condition), list with state, toggle, delete, test."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from marketbot.bot.alert_expressions import METRICS
from marketbot.core.errors import ConfigError, DataError
from marketbot.store.alerts import AlertInfo, AlertRepository, AlertSpec
from marketbot.web.alerts_view import alert_json, condition_of_request, test_alert
from marketbot.web.context import Context, WebContext, page, wants_fragment
from marketbot.web.errors import FieldError, NotFoundError
from marketbot.web.schemas import AlertCreateRequest, AlertTestRequest

router = APIRouter(tags=["alerts"])
pages = APIRouter(include_in_schema=False)

AlertId = Annotated[int, Path(ge=1, le=2**62)]


def _alert(context: WebContext, alert_id: int) -> AlertInfo:
    try:
        return AlertRepository(context.database).get(alert_id)
    except (DataError, ConfigError) as exc:
        raise NotFoundError(str(exc)) from None


def _list(request: Request, context: WebContext) -> Any:
    alerts = [alert_json(a) for a in AlertRepository(context.database).all()]
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/alert_rows.html", {"alerts": alerts}
        )
    return {"items": alerts, "total": len(alerts)}


@router.get("/api/alerts/list")
def list_alerts(request: Request, context: Context) -> Any:
    """Every alert with its state, trigger count and last firing: ``{"items", "total"}``."""
    return _list(request, context)


@router.post("/api/alerts/create", status_code=201)
def create_alert(request: Request, body: AlertCreateRequest, context: Context) -> Any:
    """Add an alert; it starts armed and fires when its condition becomes true."""
    from marketbot.bot.alert_sources import check_alert_subject

    condition = condition_of_request(body)
    try:
        timeframe = check_alert_subject(context.database, condition, body.timeframe)
    except (DataError, ConfigError) as exc:
        field = "body.timeframe" if "timeframe" in str(exc) else "body.subject"
        raise FieldError(field, str(exc)) from None
    alert = AlertRepository(context.database).add(
        AlertSpec(
            name=body.name.strip(), kind=condition.kind, subject=condition.subject,
            metric=condition.metric, operator=condition.operator, threshold=condition.threshold,
            unit=condition.unit, cooldown_seconds=body.cooldown_seconds, timeframe=timeframe,
        )
    )  # fmt: skip
    if wants_fragment(request):
        response = _list(request, context)
        response.status_code = 201
        return response
    return alert_json(alert)


@router.post("/api/alerts/{alert_id}/toggle")
def toggle_alert(request: Request, alert_id: AlertId, context: Context) -> Any:
    """Enable a disabled alert, disable an enabled one."""
    alert = _alert(context, alert_id)
    changed = AlertRepository(context.database).set_enabled(alert_id, not alert.enabled)
    if wants_fragment(request):
        return _list(request, context)
    return alert_json(changed)


@router.post("/api/alerts/{alert_id}/delete")
def delete_alert(request: Request, alert_id: AlertId, context: Context) -> Any:
    """Delete an alert (its past events stay)."""
    _alert(context, alert_id)
    AlertRepository(context.database).delete(alert_id)
    if wants_fragment(request):
        return HTMLResponse("")
    return {"deleted": alert_id}


@router.post("/api/alerts/{alert_id}/test")
def test_alert_route(
    request: Request, alert_id: AlertId, body: AlertTestRequest, context: Context
) -> Any:
    """Would it fire, and on what value: a typed value or the latest data; TEST notice."""
    alert = _alert(context, alert_id)
    result = test_alert(alert, body.value, context.database, context.settings)
    if body.send:
        result["sent"] = _send_test(alert, result, context)
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/alert_test.html", {"t": result}
        )
    return result


def _send_test(alert: AlertInfo, result: dict[str, Any], context: WebContext) -> str:
    from marketbot.bot.notify import AppriseNotifier

    notifier = AppriseNotifier.from_settings(context.settings, None)
    if not notifier.targets:
        raise FieldError("body.send", "MARKETBOT_NOTIFY_URLS is empty: set it to send a TEST")
    verdict = "would fire" if result["would_fire"] else "would not fire"
    message = (
        f"TEST of alert {alert.name} ({result['condition']}): {verdict} on {result['value']:,.4g}"
    )
    with notifier:
        failures = notifier.send_test(f"marketbot TEST alert {alert.name}", message)
    return "not delivered: " + "; ".join(failures) if failures else "delivered"


@pages.get("/alerts")
def alerts_page(request: Request, context: Context) -> Any:
    """The alert form (fields follow the kind) and the alerts with their state."""
    alerts = [alert_json(a) for a in AlertRepository(context.database).all()]
    return page(request, "alerts.html", {"alerts": alerts, "metrics": METRICS})
