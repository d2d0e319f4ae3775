"""PagerDuty Events API v2 against the fake PagerDuty on 127.0.0.1."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from daemon.clock import FakeClock
from daemon.config.receivers import ReceiverConfig
from daemon.dispatch.alert import Alert
from daemon.notify.notification import DeliveryError, Notification, build_integrations
from daemon.notify.pagerduty import MAX_EVENT_BYTES, TRUNCATED_DETAILS, PagerDutyIntegration, dedup_key
from daemon.testing.pagerduty import FakePagerDuty
from daemon.tsdb.labels import Labels

NOW = 1_700_000_000.0
GROUP = '{}/{severity="P0"}:{alertname="SiteDown"}'


def alert(resolved: bool = False, **labels: str) -> Alert:
    return Alert(
        labels=Labels.of({"alertname": "SiteDown", "severity": "P0", **labels}),
        annotations={"current_value": "0"},
        starts_at=NOW - 60,
        ends_at=NOW - 1 if resolved else NOW + 300,
        generator_url="http://p/graph?g0.expr=up+%3D%3D+0",
    )


def notification(*alerts: Alert) -> Notification:
    return Notification("oncall", GROUP, {"alertname": "SiteDown"}, alerts, "http://alertd:9095", NOW)


@pytest.fixture
async def pd() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def integration(pd: FakePagerDuty, http: httpx.AsyncClient, **extra: Any) -> PagerDutyIntegration:
    config = {"routing_key": "R0UTING", "url": pd.url, "severity": "critical", **extra}
    receiver = ReceiverConfig.model_validate({"name": "oncall", "pagerduty_configs": [config]})
    (built,) = build_integrations(receiver, http=http, aiohttp_session=None, clock=FakeClock(NOW))
    assert isinstance(built, PagerDutyIntegration)
    return built


async def test_trigger_then_resolve_one_incident(pd: FakePagerDuty, http: httpx.AsyncClient) -> None:
    pager = integration(pd, http, component="{job}", group="{severity}", **{"class": "availability"}, links=[{"href": "{dashboard_url}", "text": "graph"}])
    await pager.notify(notification(alert(job="web")))
    await pager.notify(notification(alert(resolved=True, job="web")))
    key = hashlib.sha256(GROUP.encode()).hexdigest()
    assert dedup_key(GROUP) == key and list(pd.incidents) == [key] and pd.incidents[key].status == "resolved"
    trigger, resolve = pd.events
    assert trigger["event_action"] == "trigger" and resolve == {"routing_key": "R0UTING", "event_action": "resolve", "dedup_key": key}
    payload = trigger["payload"]
    assert payload["summary"] == "[P0] SiteDown: up = 0 (threshold 0)"
    assert (payload["severity"], payload["source"], payload["component"], payload["group"], payload["class"]) == ("critical", "alertd", "web", "P0", "availability")
    assert payload["custom_details"]["num_firing"] == "1" and "alertname = SiteDown" in payload["custom_details"]["firing"]
    assert trigger["links"] == [{"href": "http://p/graph?g0.expr=up+%3D%3D+0", "text": "graph"}]
    assert trigger["client_url"] == "http://alertd:9095"


async def test_400_is_permanent_and_says_why(pd: FakePagerDuty, http: httpx.AsyncClient) -> None:
    pager = integration(pd, http, severity="{severity}")  # "P0" is not a PagerDuty severity
    with pytest.raises(DeliveryError) as info:
        await pager.notify(notification(alert()))
    assert not info.value.retryable and info.value.retry_after is None
    assert "HTTP 400" in str(info.value) and "payload.severity" in str(info.value)


@pytest.mark.parametrize(("status", "retry_after"), [(429, 5.0), (500, None), (503, 2.0)])
async def test_429_and_5xx_are_retryable_with_retry_after(pd: FakePagerDuty, http: httpx.AsyncClient, status: int, retry_after: float | None) -> None:
    pager = integration(pd, http)
    pd.fail_next(status, retry_after=retry_after)
    with pytest.raises(DeliveryError) as info:
        await pager.notify(notification(alert()))
    assert info.value.retryable and info.value.retry_after == retry_after
    await pager.notify(notification(alert()))
    assert len(pd.events) == 1


async def test_unreachable_is_retryable(http: httpx.AsyncClient) -> None:
    receiver = ReceiverConfig.model_validate({"name": "x", "pagerduty_configs": [{"routing_key": "k", "url": "http://127.0.0.1:9/v2/enqueue"}]})
    (pager,) = build_integrations(receiver, http=http, aiohttp_session=None, clock=FakeClock(NOW))
    with pytest.raises(DeliveryError) as info:
        await pager.notify(notification(alert()))
    assert info.value.retryable


async def test_summary_and_event_size_limits(pd: FakePagerDuty, http: httpx.AsyncClient) -> None:
    pager = integration(pd, http, description="{alert_name} {big}")
    many = [alert(instance=f"i{i}", big="é<>&\r\n" * 20_000) for i in range(10)]
    await pager.notify(notification(*many))
    (event,) = pd.events
    assert len(event["payload"]["summary"]) == 1024 and event["payload"]["summary"].endswith("…")
    assert event["payload"]["custom_details"] == TRUNCATED_DETAILS
    assert len(pd.requests[0]) <= MAX_EVENT_BYTES


async def test_details_are_rendered(pd: FakePagerDuty, http: httpx.AsyncClient) -> None:
    pager = integration(pd, http, details={"runbook": "https://runbooks/{alert_name}", "value": "{current_value}"})
    await pager.notify(notification(alert()))
    assert pd.events[0]["payload"]["custom_details"] == {"runbook": "https://runbooks/SiteDown", "value": "0"}
