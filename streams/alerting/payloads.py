"""Notification bodies for each receiver kind.

- ``webhook``: Alertmanager-shaped JSON (``version``, ``status``, ``receiver``,
  ``groupKey``, ``alerts``) with the full Overseer alert records;
- ``slack``: an incoming-webhook message, ``{"text": ..., "blocks": [...]}``;
- ``pagerduty``: Events API v2, one event per alert, ``dedup_key`` = alert id,
  ``event_action`` from the alert's state (trigger / acknowledge / resolve).
"""

from __future__ import annotations

from typing import Any

from schemas.alerts import Alert
from streams.alerting.routing import Receiver

PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info", "info": "info"}
PD_ACTION = {"firing": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}
EMOJI = {"critical": ":rotating_light:", "high": ":red_circle:", "medium": ":large_orange_circle:",
         "low": ":large_yellow_circle:", "info": ":information_source:"}


def _status(alerts: list[Alert]) -> str:
    return "resolved" if all(a.state == "resolved" for a in alerts) else "firing"


def _line(a: Alert) -> str:
    ack = f" (acknowledged by {a.acknowledged_by})" if a.state == "acknowledged" else ""
    return f"[{str(a.state).upper()}] {a.severity} {a.title} — {a.scope.kind}={a.scope.value} ×{a.count}{ack}"


def webhook_body(receiver: Receiver, group_key: str, alerts: list[Alert], reason: str) -> dict[str, Any]:
    return {"version": "1", "receiver": receiver.name, "status": _status(alerts), "groupKey": group_key,
            "reason": reason, "alerts": [a.model_dump(mode="json") for a in alerts]}


def slack_body(receiver: Receiver, group_key: str, alerts: list[Alert], reason: str) -> dict[str, Any]:
    head = alerts[0]
    prefix = "ESCALATION: " if reason == "escalation" else ""
    text = f"{prefix}{_status(alerts).upper()} {len(alerts)} alert(s): {head.title} ({head.scope.kind}={head.scope.value})"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": text[:150]}}]
    for a in alerts[:20]:
        body = f"{EMOJI.get(str(a.severity), '')} *{_line(a)}*\n{a.summary}\n`{a.rule_id}` · alert `{a.alert_id}`"
        if a.runbook_url:
            body += f" · <{a.runbook_url}|runbook>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}})
    return {"text": text, "blocks": blocks}


def pagerduty_events(receiver: Receiver, alerts: list[Alert]) -> list[dict[str, Any]]:
    out = []
    for a in alerts:
        event: dict[str, Any] = {"routing_key": receiver.routing_key, "event_action": PD_ACTION[str(a.state)],
                                 "dedup_key": a.alert_id}
        if event["event_action"] == "trigger":
            event["payload"] = {
                "summary": f"{a.title} — {a.scope.kind}={a.scope.value}"[:1024],
                "severity": PD_SEVERITY[str(a.severity)], "source": f"{a.scope.kind}={a.scope.value}",
                "component": a.rule_id, "group": str(a.scope.kind), "class": a.rule_id,
                "custom_details": {"summary": a.summary, "count": a.count, "tags": a.tags,
                                   "first_seen": a.first_seen.isoformat(), "safety_class": a.safety_class},
            }
            if a.runbook_url:
                event["links"] = [{"href": a.runbook_url, "text": "runbook"}]
        out.append(event)
    return out


def bodies(receiver: Receiver, group_key: str, alerts: list[Alert], reason: str) -> list[dict[str, Any]]:
    """The HTTP bodies one notification sends to ``receiver`` (PagerDuty: one per alert)."""
    if receiver.kind == "pagerduty":
        return pagerduty_events(receiver, alerts)
    if receiver.kind == "slack":
        return [slack_body(receiver, group_key, alerts, reason)]
    return [webhook_body(receiver, group_key, alerts, reason)]
