"""Incident history: when each alert fired, was acknowledged (by whom) and resolved, and the same
per aggregation group with its escalation; and the report made from it.

Kept in the state store (kinds ``incident`` per alert firing, ``incident_group`` per group
escalation), so reports cover restarts; records older than ``retention`` are dropped. The
history listens to the alert store (fired, resolved) and to the escalator (started, levels,
acknowledged, resolved). The notifier runs ``run_gc`` next to its other maintenance loops.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from daemon.clock import Clock, every
from daemon.dispatch.alert import Alert
from daemon.notify.escalation import Ack, EscalationState
from daemon.store import StateStore

KIND = "incident"
GROUP_KIND = "incident_group"
DEFAULT_RETENTION = 90 * 86400.0
GC_INTERVAL = 3600.0
TOP = 5


def severity_of(labels: Mapping[str, str]) -> str:
    """The alert's priority (P0..P3) if it has one, else its severity label, else "none"."""
    return labels.get("priority") or labels.get("severity") or "none"


class IncidentHistory:
    """Alert and group incidents, written through to the store."""

    def __init__(self, store: StateStore, clock: Clock, *, retention: float = DEFAULT_RETENTION) -> None:
        self._store = store
        self._clock = clock
        self.retention = retention
        self.incidents: dict[str, dict[str, Any]] = store.load(KIND)
        self.groups: dict[str, dict[str, Any]] = store.load(GROUP_KIND)
        self._open = {doc["fingerprint"]: key for key, doc in self.incidents.items() if doc.get("resolved_at") is None}
        self._open_groups = {doc["group_key"]: key for key, doc in self.groups.items() if doc.get("resolved_at") is None}
        # When each open incident's alert expires unless it is sent again (its ends_at).
        self._expiry: dict[str, float] = {}

    # -- alerts -------------------------------------------------------------------------------

    def observe_alert(self, alert: Alert) -> None:
        """An alert stored by the notifier (an ``AlertStore`` listener)."""
        now = self._clock.time()
        fp = alert.fingerprint
        if alert.resolved_at(now):
            self._expiry.pop(fp, None)
            if fp in self._open:
                self._close(fp, alert.ends_at)
            return
        self._close_expired(fp, now)
        key = self._open.get(fp)
        if alert.ends_at > 0:
            self._expiry[fp] = alert.ends_at
        if key is not None:
            return
        key = f"{fp}@{alert.starts_at:.3f}"
        labels = dict(alert.labels.items())
        doc = {
            "fingerprint": fp,
            "alertname": alert.name,
            "severity": severity_of(labels),
            "labels": labels,
            "fired_at": alert.starts_at,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "resolved_at": None,
        }
        self.incidents[key] = doc
        self._open[fp] = key
        self._store.put(KIND, key, doc)

    def _close(self, fp: str, at: float) -> None:
        key = self._open.pop(fp)
        doc = self.incidents[key]
        doc["resolved_at"] = max(at, doc["fired_at"])
        self._store.put(KIND, key, doc)

    def _close_expired(self, fp: str, now: float) -> None:
        # An alert that stops being sent (its rule removed, say) resolves at its ends_at without
        # a resolved update reaching the alert store: close its incident then.
        ends = self._expiry.get(fp)
        if ends is not None and ends <= now:
            del self._expiry[fp]
            if fp in self._open:
                self._close(fp, ends)

    # -- the escalator's listener -------------------------------------------------------------

    def escalation_started(self, state: EscalationState, alerts: Iterable[Alert]) -> None:
        key = f"{state.group_key}@{state.started_at:.3f}"
        doc = {
            "group_key": state.group_key,
            "receiver": state.receiver,
            "policy": state.policy,
            "started_at": state.started_at,
            "alertnames": sorted({a.name for a in alerts}),
            "levels": [],
            "acknowledged_at": None,
            "acknowledged_by": None,
            "resolved_at": None,
        }
        self.groups[key] = doc
        self._open_groups[state.group_key] = key
        self._store.put(GROUP_KIND, key, doc)

    def level_sent(self, state: EscalationState, cycle: int, level: int, receivers: tuple[str, ...], ok: bool) -> None:
        key = self._open_groups.get(state.group_key)
        if key is None:
            return
        doc = self.groups[key]
        doc["levels"].append({"cycle": cycle + 1, "level": level + 1, "at": self._clock.time(), "receivers": list(receivers), "ok": ok})
        self._store.put(GROUP_KIND, key, doc)

    def acknowledged(self, ack: Ack) -> None:
        with self._store.transaction():
            key = self._open_groups.get(ack.group_key)
            if key is not None and self.groups[key]["acknowledged_at"] is None:
                self.groups[key].update(acknowledged_at=ack.at, acknowledged_by=ack.by, acknowledged_via=ack.via)
                self._store.put(GROUP_KIND, key, self.groups[key])
            for fp in ack.fingerprints:
                incident = self._open.get(fp)
                if incident is not None and self.incidents[incident]["acknowledged_at"] is None:
                    self.incidents[incident].update(acknowledged_at=ack.at, acknowledged_by=ack.by)
                    self._store.put(KIND, incident, self.incidents[incident])

    def group_resolved(self, group_key: str, at: float) -> None:
        key = self._open_groups.pop(group_key, None)
        if key is not None:
            self.groups[key]["resolved_at"] = at
            self._store.put(GROUP_KIND, key, self.groups[key])

    # -- upkeep and report --------------------------------------------------------------------

    async def run_gc(self, interval: float = GC_INTERVAL) -> None:
        """Run ``gc`` every ``interval`` on the clock, forever."""
        await every(self._clock, interval, self.gc)

    def gc(self) -> int:
        """Close the incidents of expired alerts, then drop resolved records older than the
        retention; returns how many were dropped."""
        now = self._clock.time()
        for fp in list(self._expiry):
            self._close_expired(fp, now)
        cutoff = now - self.retention
        old = [(KIND, k) for k, d in self.incidents.items() if d.get("resolved_at") is not None and d["resolved_at"] < cutoff]
        old += [(GROUP_KIND, k) for k, d in self.groups.items() if d.get("resolved_at") is not None and d["resolved_at"] < cutoff]
        with self._store.transaction():
            for kind, key in old:
                self._store.delete(kind, key)
                (self.incidents if kind == KIND else self.groups).pop(key, None)
        return len(old)

    def report(self, since: float, uptime: Mapping[str, float] | None = None) -> dict[str, Any]:
        """Per severity the count, MTTA, MTTR and MTBF of the alerts that fired in the last
        ``since`` seconds, the longest incidents, the noisiest alerts, group escalations, and
        ``uptime`` (percent per job) as given."""
        now = self._clock.time()
        start = now - since
        chosen = [dict(d) for d in self.incidents.values() if d["fired_at"] >= start]
        for doc in chosen:
            doc["duration"] = (doc["resolved_at"] if doc["resolved_at"] is not None else now) - doc["fired_at"]
        severities: dict[str, Any] = {}
        for severity in sorted({d["severity"] for d in chosen}):
            docs = [d for d in chosen if d["severity"] == severity]
            acked = [d["acknowledged_at"] - d["fired_at"] for d in docs if d["acknowledged_at"] is not None]
            resolved = [d["resolved_at"] - d["fired_at"] for d in docs if d["resolved_at"] is not None]
            severities[severity] = {
                "count": len(docs),
                "acknowledged": len(acked),
                "resolved": len(resolved),
                "mtta_seconds": _mean(acked),
                "mttr_seconds": _mean(resolved),
                "mtbf_seconds": since / len(docs) if docs else None,
            }
        longest = sorted(chosen, key=lambda d: -d["duration"])[:TOP]
        noisy = Counter((d["alertname"], d["severity"]) for d in chosen).most_common(TOP)
        groups = [d for d in self.groups.values() if d["started_at"] >= start]
        return {
            "since_seconds": since,
            "from": start,
            "to": now,
            "severities": severities,
            "longest": [_brief(d) for d in longest],
            "noisiest": [{"alertname": name, "severity": sev, "count": n} for (name, sev), n in noisy],
            "escalations": sorted(groups, key=lambda d: d["started_at"]),
            "uptime_percent": dict(sorted((uptime or {}).items())),
            "incidents": sorted((_brief(d) for d in chosen), key=lambda d: d["fired_at"]),
        }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _brief(doc: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("alertname", "severity", "labels", "fired_at", "acknowledged_at", "acknowledged_by", "resolved_at", "duration")
    return {k: doc.get(k) for k in keys}


def format_duration_short(seconds: float | None) -> str:
    """``1h02m``, ``4m05s``, ``12s``; ``-`` for none."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def format_report(data: Mapping[str, Any]) -> str:
    """The report as text (what ``alertd report`` prints)."""
    import datetime

    def when(t: float | None) -> str:
        return "-" if t is None else datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    lines = [f"Incidents from {when(data['from'])} to {when(data['to'])}", ""]
    lines.append(f"{'severity':<10} {'count':>6} {'acked':>6} {'MTTA':>8} {'MTTR':>8} {'MTBF':>8}")
    for severity, s in data["severities"].items():
        lines.append(
            f"{severity:<10} {s['count']:>6} {s['acknowledged']:>6} {format_duration_short(s['mtta_seconds']):>8} "
            f"{format_duration_short(s['mttr_seconds']):>8} {format_duration_short(s['mtbf_seconds']):>8}"
        )
    if not data["severities"]:
        lines.append("(no incidents)")
    lines += ["", "Longest incidents:"]
    for d in data["longest"]:
        state = "open" if d["resolved_at"] is None else "resolved"
        by = f", acknowledged by {d['acknowledged_by']}" if d["acknowledged_by"] else ""
        lines.append(f"  {format_duration_short(d['duration']):>8}  {d['alertname']} [{d['severity']}] since {when(d['fired_at'])} ({state}{by})")
    lines += ["", "Noisiest alerts:"]
    for d in data["noisiest"]:
        lines.append(f"  {d['count']:>4}  {d['alertname']} [{d['severity']}]")
    lines += ["", "Uptime per job (avg_over_time(up)):"]
    for job, percent in data["uptime_percent"].items():
        lines.append(f"  {job:<30} {percent:7.3f} %")
    if not data["uptime_percent"]:
        lines.append("  (no up series in the window)")
    return "\n".join(lines) + "\n"
