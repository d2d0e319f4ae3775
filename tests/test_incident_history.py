"""Incident history on a fake clock: fired, acknowledged (by whom), resolved; the report's
MTTA/MTTR per severity, longest and noisiest; /api/v1/incidents and its text form."""

from __future__ import annotations

from daemon.clock import FakeClock
from daemon.notify.escalation import Ack, EscalationState
from daemon.notify.history import IncidentHistory, format_report
from daemon.store import MemoryStateStore
from daemon.testing.alerts import make_alert

T0 = 1_700_000_000.0


def test_fired_acknowledged_resolved_and_the_report() -> None:
    clock, store = FakeClock(T0), MemoryStateStore()
    history = IncidentHistory(store, clock)
    down = make_alert({"alertname": "SiteDown", "priority": "P0"}, starts_at=T0, ends_at=T0 + 600)
    disk = make_alert({"alertname": "Disk", "severity": "warning"}, starts_at=T0, ends_at=T0 + 600)
    history.observe_alert(down)
    history.observe_alert(disk)
    history.observe_alert(down)  # the same firing again: still one incident
    state = EscalationState("{}:{alertname=\"SiteDown\"}", "oncall", "slack", T0)
    history.escalation_started(state, [down])
    history.level_sent(state, 0, 0, ("primary",), True)
    clock._now = T0 + 120
    history.acknowledged(Ack("a1", state.group_key, "slack", "alice", "", T0 + 120, "cli", (down.fingerprint,), ("SiteDown",)))
    clock._now = T0 + 900
    history.observe_alert(make_alert({"alertname": "SiteDown", "priority": "P0"}, starts_at=T0, ends_at=T0 + 900))
    history.group_resolved(state.group_key, T0 + 900)
    history.observe_alert(make_alert({"alertname": "SiteDown", "priority": "P0"}, starts_at=T0 + 1000, ends_at=T0 + 2000))

    clock._now = T0 + 1100
    # A restart reads the same history back.
    report = IncidentHistory(store, clock).report(7 * 86400, uptime={"api": 99.5})
    assert report["severities"]["P0"] == {
        "count": 2, "acknowledged": 1, "resolved": 1, "mtta_seconds": 120.0, "mttr_seconds": 900.0, "mtbf_seconds": 7 * 86400 / 2,
    }
    assert report["severities"]["warning"]["count"] == 1 and report["severities"]["warning"]["mttr_seconds"] is None
    assert report["longest"][0]["alertname"] in ("SiteDown", "Disk") and report["longest"][0]["duration"] == 1100
    assert report["noisiest"][0] == {"alertname": "SiteDown", "severity": "P0", "count": 2}
    (group,) = report["escalations"]
    assert group["acknowledged_by"] == "alice" and group["resolved_at"] == T0 + 900 and group["levels"][0]["receivers"] == ["primary"]
    text = format_report(report)
    assert "P0" in text and "2m00s" in text and "15m00s" in text and "api" in text and "99.500 %" in text
    assert "SiteDown [P0]" in text


def test_gc_drops_old_resolved_records() -> None:
    clock, store = FakeClock(T0), MemoryStateStore()
    history = IncidentHistory(store, clock, retention=3600)
    history.observe_alert(make_alert({"alertname": "A"}, starts_at=T0, ends_at=T0 + 60))
    clock._now = T0 + 61
    history.observe_alert(make_alert({"alertname": "A"}, starts_at=T0, ends_at=T0 + 61))
    clock._now = T0 + 7200
    assert history.gc() == 1 and store.load("incident") == {}



async def test_the_notifier_drops_incidents_past_the_retention_on_its_own() -> None:
    """The history's gc runs on the notifier's clock, like its other maintenance loops: a
    resolved incident is gone once the retention has passed, a newer one stays."""
    from prometheus_client import CollectorRegistry

    from daemon.config.load import parse_config
    from daemon.notify.history import DEFAULT_RETENTION, GC_INTERVAL
    from daemon.notify.pipeline import Notifier
    from daemon.rules.sink import OutgoingAlert
    from daemon.testing.alerts import RecordingIntegration

    clock, store = FakeClock(T0), MemoryStateStore()
    config = parse_config("route: {receiver: team, group_by: [alertname], group_wait: 0s}\nreceivers: [{name: team}]\n")
    notifier = Notifier(config, store, clock, CollectorRegistry(), {"team": [RecordingIntegration()]})
    history = notifier.escalator.listener  # type: ignore[union-attr]
    assert isinstance(history, IncidentHistory) and history.retention == DEFAULT_RETENTION == 90 * 86400
    history.retention = 3 * GC_INTERVAL  # 90 days of 15-minute loops would be slow to step through

    def fire_and_resolve(name: str) -> None:
        now = clock.time()
        notifier.receive([OutgoingAlert({"alertname": name, "priority": "P0"}, {}, now, now + 240, "")])
        notifier.receive([OutgoingAlert({"alertname": name, "priority": "P0"}, {}, now, now, "", resolved=True)])

    def kept() -> list[str]:
        return sorted(d["alertname"] for d in store.load("incident").values())

    await notifier.start()
    try:
        fire_and_resolve("Old")
        await clock.advance(GC_INTERVAL + 1)
        fire_and_resolve("Newer")
        await clock.advance(2 * GC_INTERVAL - 2)  # the gc at 3 intervals has not run yet
        assert kept() == ["Newer", "Old"] and all(d["resolved_at"] is not None for d in store.load("incident").values())
        await clock.advance(GC_INTERVAL + 2)  # ran at 3 (Old resolved exactly 3 intervals ago: kept) and at 4
        assert kept() == ["Newer"]
        await clock.advance(GC_INTERVAL)
        assert kept() == []
    finally:
        await notifier.stop()


def test_an_alert_that_stops_being_sent_closes_its_incident_at_its_end() -> None:
    """No resolved update ever comes (its rule was removed, say): the incident ends when the
    alert expired, not never, and is dropped with the others after the retention."""
    clock, store = FakeClock(T0), MemoryStateStore()
    history = IncidentHistory(store, clock, retention=3600)
    history.observe_alert(make_alert({"alertname": "Gone", "priority": "P0"}, starts_at=T0, ends_at=T0 + 60))
    clock._now = T0 + 30
    history.observe_alert(make_alert({"alertname": "Gone", "priority": "P0"}, starts_at=T0, ends_at=T0 + 90))  # sent again
    clock._now = T0 + 100
    assert history.gc() == 0
    ((doc),) = store.load("incident").values()
    assert doc["resolved_at"] == T0 + 90
    assert history.report(86400)["severities"]["P0"]["mttr_seconds"] == 90
    # Firing again later is a new incident.
    history.observe_alert(make_alert({"alertname": "Gone", "priority": "P0"}, starts_at=T0 + 200, ends_at=T0 + 400))
    assert sorted((d["fired_at"], d["resolved_at"]) for d in store.load("incident").values()) == [(T0, T0 + 90), (T0 + 200, None)]
    clock._now = T0 + 90 + 3601
    assert history.gc() == 1
