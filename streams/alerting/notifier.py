"""From alert changes to notifications: suppression, grouping, timing, escalation, failures.

`observe` takes every alert change; only a new alert, a new state or a new
severity makes its group due (more detections folding in do not page again).
Silenced and inhibited changes are
counted and kept off the receivers (protected alerts ignore both, and that
is counted too). Routed changes join a notification group per
(route, group labels); `flush` sends a group ``group_wait`` after it opened,
then at most every ``group_interval`` while it changes, and again every
``repeat_interval`` while something in it still fires. An unacknowledged
critical alert escalates to each ``escalation`` receiver ``after`` its first
notification. Deliveries run as background tasks with retries; a delivery
that finally fails is counted, recorded and raised as a monitor-health alert
through ``on_failed`` — never dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from schemas.alerts import Alert
from schemas.ids import stable_id
from streams.alerting.delivery import Recorder, deliver
from streams.alerting.payloads import bodies
from streams.alerting.routing import Receiver, Route, RoutingConfig
from streams.alerting.safety import inhibited_by, is_protected
from streams.alerting.silences import SilenceSet

log = logging.getLogger(__name__)
DELIVERY_RULE = "overseer.notification_delivery_failed"
FailureHook = Callable[[Receiver, str, list[Alert]], Awaitable[None]]


@dataclass
class Group:
    route: Route
    key: str
    created: float
    alerts: dict[str, Alert] = field(default_factory=dict)
    last_sent: float | None = None
    dirty: bool = True
    notified_at: dict[str, float] = field(default_factory=dict)
    escalated: dict[str, int] = field(default_factory=dict)


class Notifier:
    def __init__(self, config: RoutingConfig | None, silences: SilenceSet, active: Callable[[], Any],
                 record: Recorder, on_failed: FailureHook) -> None:
        self.config = config
        self.silences = silences
        self.active = active
        self.record = record
        self.on_failed = on_failed
        self.groups: dict[str, Group] = {}
        self.counters: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def _add(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    # -- intake -------------------------------------------------------------------
    def observe(self, alert: Alert, now: float) -> str:
        """File one alert change; say what happened to it."""
        when = datetime.fromtimestamp(now, UTC)
        silence = self.silences.matching(alert, when)
        if silence is not None and is_protected(alert):
            self._add("silence_ignored_protected")  # a silence matched, but safety wins
            silence = None
        if silence is not None:
            self._add("suppressed_silenced")
            return "silenced"
        if inhibited_by(alert, self.active(), now) is not None:
            self._add("suppressed_inhibited")
            return "inhibited"
        if self.config is None:
            self._add("unrouted")
            return "unrouted"
        for route in self.config.routes_for(alert):
            key = f"{route.path}|{route.receiver}|{route.group_labels(alert)}"
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = Group(route=route, key=key, created=now)
            prev = group.alerts.get(alert.alert_id)
            group.alerts[alert.alert_id] = alert
            if prev is None or prev.state != alert.state or prev.severity != alert.severity:
                group.dirty = True  # a fold (count, evidence) alone does not page again
        self._add("routed")
        return "routed"

    def resume(self, alerts: list[Alert], delivered_at: dict[str, float], now: float) -> int:
        """Rebuild notification state after a restart or a rebalance, from what was delivered.

        ``delivered_at`` is the last successful delivery per alert id (from
        ``alert_deliveries``). A group whose alerts were all delivered after
        their last change of state or severity is marked sent (escalation counts from the delivery);
        any other is sent again after ``group_wait`` — at least once, never lost.
        Returns how many alerts will be notified again.
        """
        again = 0
        for alert in alerts:
            if self.observe(alert, now) != "routed":
                continue
            self._add("resumed")
            delivered = delivered_at.get(alert.alert_id)
            if delivered is None or delivered < _changed(alert):
                again += 1
        for g in self.groups.values():
            stamps = [delivered_at.get(i) for i in g.alerts]
            if g.last_sent is None and all(t is not None and t >= _changed(g.alerts[i])
                                           for i, t in zip(g.alerts, stamps, strict=True)):
                g.last_sent, g.dirty = max(t for t in stamps if t is not None), False
                g.notified_at.update({i: t for i, t in zip(g.alerts, stamps, strict=True) if t is not None})
        self._add("resumed_renotify", again)
        return again

    # -- timing -------------------------------------------------------------------
    async def flush(self, now: float) -> int:
        """Send whatever is due; return the number of notifications started."""
        sent = 0
        for key, g in list(self.groups.items()):
            reason = self._due(g, now)
            if reason:
                self._send(g.route.receiver, g.key, list(g.alerts.values()), reason, now)
                sent += 1
                g.last_sent, g.dirty = now, False
                for a in g.alerts.values():
                    g.notified_at.setdefault(a.alert_id, now)
            sent += self._escalate(g, now)
            for alert_id in [i for i, a in g.alerts.items() if a.state == "resolved" and not g.dirty]:
                del g.alerts[alert_id]
            if not g.alerts:
                del self.groups[key]
        return sent

    @staticmethod
    def _due(g: Group, now: float) -> str:
        r = g.route
        if g.dirty:
            if g.last_sent is None:
                return "new" if now - g.created >= r.group_wait_s else ""
            return "update" if now - g.last_sent >= r.group_interval_s else ""
        if g.last_sent is not None and now - g.last_sent >= r.repeat_interval_s and any(
                a.state != "resolved" for a in g.alerts.values()):
            return "repeat"
        return ""

    def _escalate(self, g: Group, now: float) -> int:
        steps = g.route.escalation
        sent = 0
        for a in g.alerts.values():
            if a.state != "firing" or a.severity != "critical" or a.alert_id not in g.notified_at:
                continue
            done = g.escalated.get(a.alert_id, 0)
            while done < len(steps) and now - g.notified_at[a.alert_id] >= steps[done].after_s:
                self._send(steps[done].receiver, g.key, [a], "escalation", now)
                self._add("escalations")
                done += 1
                sent += 1
            g.escalated[a.alert_id] = done
        return sent

    # -- delivery -----------------------------------------------------------------
    def _send(self, receiver_name: str, group_key: str, alerts: list[Alert], reason: str, now: float) -> None:
        assert self.config is not None
        receiver = self.config.receivers[receiver_name]
        self._add(f"notifications_{reason}")
        task = asyncio.ensure_future(self._deliver_all(receiver, group_key, alerts, reason, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_all(self, receiver: Receiver, group_key: str, alerts: list[Alert], reason: str,
                           now: float) -> None:
        assert self.config is not None
        if self._session is None:
            self._session = aiohttp.ClientSession()
        ids = [a.alert_id for a in alerts]
        for i, body in enumerate(bodies(receiver, group_key, alerts, reason)):
            delivery_id = stable_id("delivery", receiver.name, group_key, reason, repr(now), str(i))
            try:
                ok = await deliver(self._session, receiver, body, self.config.delivery, delivery_id=delivery_id,
                                   group_key=group_key, alert_ids=ids, record=self._record)
            except Exception:
                log.exception("delivery to %s crashed", receiver.name)
                ok = False
            self._add("deliveries_ok" if ok else "deliveries_failed")
            if not ok and not any(a.rule_id == DELIVERY_RULE for a in alerts):
                await self.on_failed(receiver, group_key, alerts)

    async def _record(self, attempt: Any) -> None:
        if attempt.status == "retry":
            self._add("delivery_retries")
        try:
            await self.record(attempt)
        except Exception:
            self._add("delivery_records_failed")
            log.exception("could not record a delivery attempt")

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for in-flight deliveries (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def close(self) -> None:
        await self.drain(timeout=5.0)
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _changed(alert: Alert) -> float:
    """When the alert last changed in a way a notification reports (older records: any change)."""
    return (alert.changed_at or alert.updated_at).timestamp()
