"""The alert book: folds detections into alerts, one per (rule, scope) group, with a lifecycle.

Every detection lands in exactly one alert — repeats raise the alert's
``count`` and extend its evidence instead of paging again, and nothing is
dropped. Shadow-mode detections are recorded but never open an alert.
State is a plain mapping (a Faust table in the worker), so it survives
restarts through the table's changelog. Faust only lets a table change
inside stream iteration, which is why operator actions and the quiet-period
sweep reach the book as messages (see `streams.alerting.ops`).

Lifecycle: firing → acknowledged → resolved.

- a group quiet for ``resolve_after_s`` starts *clearing*; a detection
  returning within ``keep_firing_for_s`` keeps the alert firing without a
  new page (hysteresis, like Prometheus ``keep_firing_for``, counted as a
  flap); otherwise the alert resolves (``resolution="auto"``);
- an acknowledged alert stays acknowledged while detections fold in, unless
  it escalates to critical — then it fires again;
- a resolved group opens a fresh alert on its next detection.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.alerts import Alert, AlertState
from schemas.detections import SEVERITY_RANK, Detection
from schemas.ids import stable_id

MAX_DETECTION_IDS = 200


def is_safety_class(severity: str, tags: list[str]) -> bool:
    """Critical, or tagged ``frontier.*``: never silenced or inhibited."""
    return severity == "critical" or any(t.startswith("frontier.") for t in tags)


def group_key_of(rule_id: str, scope: Any) -> str:
    return f"{rule_id}|{scope.kind}={scope.value}"


@dataclass(frozen=True)
class Lifecycle:
    """Timings of the lifecycle, in seconds of wall-clock time."""

    resolve_after_s: float = 300.0
    keep_firing_for_s: float = 120.0


class TransitionError(ValueError):
    """An operator asked for a transition the alert's state does not allow."""


class AlertBook:
    def __init__(self, state: MutableMapping[str, Any], *, min_severity: str = "low",
                 lifecycle: Lifecycle | None = None) -> None:
        self.state = state
        self.min_rank = SEVERITY_RANK[min_severity]
        self.lifecycle = lifecycle or Lifecycle()
        self.stats = {"opened": 0, "folded": 0, "shadow_skipped": 0, "below_min_severity": 0}
        self.transitions = {"acknowledged": 0, "resolved_manual": 0, "resolved_auto": 0, "clearing": 0,
                            "flaps_held": 0, "refired": 0}

    def get(self, group_key: str) -> Alert | None:
        raw = self.state.get(group_key)
        return None if raw is None else Alert.model_validate(raw)

    def find(self, alert_id: str) -> Alert | None:
        """The current alert with this id (a linear scan: the book holds open groups only)."""
        for raw in list(self.state.values()):
            if raw.get("alert_id") == alert_id:
                return Alert.model_validate(raw)
        return None

    def open_alerts(self) -> list[Alert]:
        return [Alert.model_validate(v) for v in list(self.state.values()) if v.get("state") != AlertState.resolved]

    def _save(self, alert: Alert) -> Alert:
        self.state[alert.group_key] = alert.model_dump(mode="json")
        return alert

    # -- detections -------------------------------------------------------------
    def on_detection(self, det: Detection, now: datetime | None = None, *,
                     partition: int | None = None) -> Alert | None:
        now = now or datetime.now(UTC)
        if det.mode == "shadow":
            self.stats["shadow_skipped"] += 1
            return None
        if SEVERITY_RANK[det.severity] < self.min_rank:
            self.stats["below_min_severity"] += 1
            return None
        group_key = group_key_of(det.rule_id, det.scope)
        current = self.get(group_key)
        if current is not None and current.state != AlertState.resolved:
            if det.detection_id in current.detection_ids:
                return None  # replay of a detection already folded in
            alert = self._fold(current, det, now)
            self.stats["folded"] += 1
        else:
            alert = Alert(
                alert_id=stable_id("alert", group_key, det.detection_id), group_key=group_key,
                state=AlertState.firing, severity=det.severity, rule_id=det.rule_id, title=det.title,
                scope=det.scope, tags=det.tags, summary=det.output, detection_ids=[det.detection_id], count=1,
                first_seen=det.ts, last_seen=det.ts, updated_at=now, last_detection_at=now, changed_at=now,
                safety_class=is_safety_class(det.severity, det.tags), runbook_url=det.runbook_url,
                partition=partition,
            )
            self.stats["opened"] += 1
        return self._save(alert)

    def _fold(self, alert: Alert, det: Detection, now: datetime) -> Alert:
        alert.count += 1
        alert.last_seen = max(alert.last_seen, det.ts)
        alert.updated_at = now
        alert.last_detection_at = now
        alert.detection_ids = (alert.detection_ids + [det.detection_id])[-MAX_DETECTION_IDS:]
        if alert.clearing_since is not None:
            alert.clearing_since = None
            alert.flaps += 1
            self.transitions["flaps_held"] += 1
        if SEVERITY_RANK[det.severity] > SEVERITY_RANK[alert.severity]:
            alert.severity = det.severity
            alert.changed_at = now
            if alert.state == AlertState.acknowledged and det.severity == "critical":
                alert.state = AlertState.firing  # escalated past the ack: page again
                self.transitions["refired"] += 1
        for tag in det.tags:
            if tag not in alert.tags:
                alert.tags.append(tag)
        alert.safety_class = alert.safety_class or is_safety_class(alert.severity, alert.tags)
        alert.summary = det.output
        return alert

    # -- operators --------------------------------------------------------------
    def acknowledge(self, group_key: str, actor: str, now: datetime) -> Alert:
        alert = self._current(group_key)
        if alert.state == AlertState.resolved:
            raise TransitionError(f"alert {alert.alert_id} is resolved; nothing to acknowledge")
        if alert.state == AlertState.acknowledged:
            return alert
        alert.state = AlertState.acknowledged
        alert.acknowledged_by, alert.acknowledged_at, alert.actor, alert.updated_at = actor, now, actor, now
        alert.changed_at = now
        self.transitions["acknowledged"] += 1
        return self._save(alert)

    def resolve(self, group_key: str, actor: str | None, now: datetime) -> Alert:
        alert = self._current(group_key)
        if alert.state == AlertState.resolved:
            return alert
        alert.state = AlertState.resolved
        alert.resolved_at, alert.updated_at, alert.actor, alert.changed_at = now, now, actor, now
        alert.resolution = "manual" if actor else "auto"
        alert.clearing_since = None
        self.transitions["resolved_manual" if actor else "resolved_auto"] += 1
        return self._save(alert)

    def _current(self, group_key: str) -> Alert:
        alert = self.get(group_key)
        if alert is None:
            raise TransitionError(f"no alert in group {group_key!r}")
        return alert

    # -- time -------------------------------------------------------------------
    def sweep(self, now: datetime, *, partition: int | None = None) -> list[Alert]:
        """Quiet groups start clearing; clearing groups past ``keep_firing_for`` resolve.

        Only groups owned by ``partition`` are touched (None = all), so a table
        entry is only ever written from its own changelog partition.
        """
        quiet = timedelta(seconds=self.lifecycle.resolve_after_s)
        keep = timedelta(seconds=self.lifecycle.keep_firing_for_s)
        changed: list[Alert] = []
        for key, raw in list(self.state.items()):
            if raw.get("state") == AlertState.resolved:
                continue
            if partition is not None and (raw.get("partition") or 0) != partition:
                continue
            alert = Alert.model_validate(raw)
            last = alert.last_detection_at or alert.updated_at
            if alert.clearing_since is None and now - last >= quiet:
                alert.clearing_since = now
                alert.updated_at = now
                self.transitions["clearing"] += 1
                changed.append(self._save(alert))
            elif alert.clearing_since is not None and now - alert.clearing_since >= keep:
                changed.append(self.resolve(key, None, now))
        return changed

    def raise_system_alert(self, *, rule_id: str, title: str, severity: str, scope: Any, summary: str,
                           tags: list[str], now: datetime | None = None, save: bool = True) -> Alert:
        """An alert not backed by a detection (a policy needs a human, deliveries fail).

        ``save=False`` builds the alert without touching the table, for callers
        outside stream iteration (the notifier); it is still stored in ClickHouse
        and routed like any other.
        """
        now = now or datetime.now(UTC)
        group_key = group_key_of(rule_id, scope)
        alert = Alert(alert_id=stable_id("alert", group_key, now.isoformat()), group_key=group_key,
                      state=AlertState.firing, severity=severity, rule_id=rule_id, title=title, scope=scope,
                      tags=tags, summary=summary, count=1, first_seen=now, last_seen=now, updated_at=now,
                      last_detection_at=now, changed_at=now, safety_class=is_safety_class(severity, tags))
        if save:
            self.state[group_key] = alert.model_dump(mode="json")
        self.stats["opened"] += 1
        return alert
