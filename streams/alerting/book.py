"""The alert book: folds detections into alerts, one per (rule, scope) group.

Every detection lands in exactly one alert — repeats raise the alert's
``count`` and extend its evidence instead of paging again, and nothing is
dropped. Shadow-mode detections are recorded but never open an alert.
State is a plain mapping (a Faust table in the worker), so it survives
restarts through the table's changelog.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from schemas.alerts import Alert, AlertState
from schemas.detections import SEVERITY_RANK, Detection
from schemas.ids import stable_id

MAX_DETECTION_IDS = 200


def is_safety_class(severity: str, tags: list[str]) -> bool:
    """Critical, or tagged ``frontier.*``: never silenced or inhibited."""
    return severity == "critical" or any(t.startswith("frontier.") for t in tags)


class AlertBook:
    def __init__(self, state: MutableMapping[str, Any], *, min_severity: str = "low") -> None:
        self.state = state
        self.min_rank = SEVERITY_RANK[min_severity]
        self.stats = {"opened": 0, "folded": 0, "shadow_skipped": 0, "below_min_severity": 0}

    def on_detection(self, det: Detection, now: datetime | None = None) -> Alert | None:
        now = now or datetime.now(UTC)
        if det.mode == "shadow":
            self.stats["shadow_skipped"] += 1
            return None
        if SEVERITY_RANK[det.severity] < self.min_rank:
            self.stats["below_min_severity"] += 1
            return None
        group_key = f"{det.rule_id}|{det.scope.kind}={det.scope.value}"
        current = self.state.get(group_key)
        if current is not None and current.get("state") != AlertState.resolved:
            alert = Alert.model_validate(current)
            if det.detection_id in alert.detection_ids:
                return None  # replay of a detection already folded in
            alert.count += 1
            alert.last_seen = max(alert.last_seen, det.ts)
            alert.updated_at = now
            alert.detection_ids = (alert.detection_ids + [det.detection_id])[-MAX_DETECTION_IDS:]
            if SEVERITY_RANK[det.severity] > SEVERITY_RANK[alert.severity]:
                alert.severity = det.severity
            alert.summary = det.output
            self.stats["folded"] += 1
        else:
            alert = Alert(
                alert_id=stable_id("alert", group_key, det.detection_id), group_key=group_key,
                state=AlertState.firing, severity=det.severity, rule_id=det.rule_id, title=det.title,
                scope=det.scope, tags=det.tags, summary=det.output, detection_ids=[det.detection_id], count=1,
                first_seen=det.ts, last_seen=det.ts, updated_at=now,
                safety_class=is_safety_class(det.severity, det.tags), runbook_url=det.runbook_url,
            )
            self.stats["opened"] += 1
        self.state[group_key] = alert.model_dump(mode="json")
        return alert

    def raise_system_alert(self, *, rule_id: str, title: str, severity: str, scope: Any, summary: str,
                           tags: list[str], now: datetime | None = None) -> Alert:
        """An alert not backed by a detection (e.g. a policy needs a human's confirmation)."""
        now = now or datetime.now(UTC)
        group_key = f"{rule_id}|{scope.kind}={scope.value}"
        alert = Alert(alert_id=stable_id("alert", group_key, now.isoformat()), group_key=group_key,
                      state=AlertState.firing, severity=severity, rule_id=rule_id, title=title, scope=scope,
                      tags=tags, summary=summary, count=1, first_seen=now, last_seen=now, updated_at=now,
                      safety_class=is_safety_class(severity, tags))
        self.state[group_key] = alert.model_dump(mode="json")
        self.stats["opened"] += 1
        return alert
