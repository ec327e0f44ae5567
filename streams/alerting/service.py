"""The worker's on-call service: the book, silences, routing and operator requests, wired together.

`WorkerRuntime` owns one :class:`OnCall`. The runtime calls `observe` for
every alert change it emits, `handle_op` for alert-op messages from the
detections topic, and `tick` from its timer. The HTTP API calls `request`,
`create_silence`, `expire_silence` and `audit`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from schemas.alerts import Alert
from schemas.detections import Scope
from schemas.ids import stable_id
from streams.alerting.book import AlertBook, TransitionError
from streams.alerting.delivery import ATTEMPT_COLUMNS, Attempt
from streams.alerting.matchers import Matcher
from streams.alerting.notifier import DELIVERY_RULE, Notifier
from streams.alerting.ops import AlertOp, op_headers
from streams.alerting.routing import Receiver, RoutingConfig, load_routing
from streams.alerting.silences import Silence, SilenceSet, new_silence
from streams.alerting.store import (
    ACTION_COLUMNS,
    SILENCE_COLUMNS,
    action_row,
    last_deliveries,
    load_silences,
    query_alerts,
    silence_row,
)

log = logging.getLogger(__name__)
SILENCE_RELOAD_S = 10.0


class OnCall:
    def __init__(self, runtime: Any) -> None:
        self.rt = runtime
        s = runtime.settings
        self.book: AlertBook = runtime.alerts
        self.routing: RoutingConfig | None = load_routing(s.alert_routing_file) if s.alert_routing_file else None
        self.silences = SilenceSet()
        self.notifier = Notifier(self.routing, self.silences, lambda: runtime.active, self._record_attempt,
                                 self._delivery_failed)
        self.counters: dict[str, int] = {}
        self._waiting: dict[str, asyncio.Future[Alert]] = {}
        self._delivery_alerts: dict[str, Alert] = {}
        self._last_sweep = 0.0
        self._last_reload = 0.0
        self._resumed: set[int] = set()

    def _add(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    async def start(self) -> None:
        await self.reload_silences()

    async def close(self) -> None:
        await self.notifier.close()

    # -- alert changes -------------------------------------------------------------
    async def observe(self, alerts: list[Alert]) -> None:
        """Route alert changes; a partition's notification state is resumed before its first change."""
        for p in {a.partition for a in alerts if a.partition is not None} - self._resumed:
            await self._resume(p)
        now = time.time()
        for a in alerts:
            self._add(f"changes_{self.notifier.observe(a, now)}")

    async def handle_op(self, value: bytes, partition: int | None) -> None:
        """Apply one alert-op message (in stream iteration: the table may change)."""
        op = AlertOp.model_validate_json(value)
        now = datetime.now(UTC)
        if op.op == "sweep":
            if partition is not None and partition not in self._resumed:  # the table is recovered by now
                await self._resume(partition)
            changed = self.book.sweep(now, partition=partition)
            if changed:
                await self.rt.emit_alerts(changed)
            return
        waiter = self._waiting.pop(op.op_id, None)
        try:
            if op.op == "ack":
                alert = self.book.acknowledge(op.group_key, op.actor, now)
            else:
                alert = self.book.resolve(op.group_key, op.actor, now)
        except TransitionError as exc:
            self._add("ops_refused")
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            return
        self._add(f"ops_{op.op}")
        await self.rt.emit_alerts([alert])
        if waiter is not None and not waiter.done():
            waiter.set_result(alert)

    async def _resume(self, partition: int) -> None:
        """Pick up the notification state of this partition's open alerts (see `Notifier.resume`).

        Runs once per partition after start (or assignment), before the
        partition's first alert change is routed, so a restart neither loses
        an undelivered notification nor repeats a delivered one.
        """
        self._resumed.add(partition)
        alerts = [a for a in self.book.open_alerts() if a.partition == partition]
        if not alerts or self.routing is None:
            return
        delivered = await self.rt.sink.run(lambda c: last_deliveries(c, [a.alert_id for a in alerts]))
        self.notifier.resume(alerts, delivered, time.time())

    # -- operator requests (HTTP API) ------------------------------------------------
    async def request(self, op: str, alert: Alert, actor: str, role: str, reason: str,
                      timeout: float = 10.0) -> Alert | None:
        """Publish an ack/resolve for ``alert``; the applied alert, or None if another worker owns it.

        The request is audited before it is published: an action that was asked
        for is on record even if the worker dies before applying it.
        """
        now = datetime.now(UTC)
        msg = AlertOp(op_id=stable_id("alert-op", op, alert.alert_id, actor, now.isoformat()), op=op,  # type: ignore[arg-type]
                      group_key=alert.group_key, alert_id=alert.alert_id, actor=actor, role=role, reason=reason, ts=now)
        await self.audit(msg.op_id, actor, role, f"alert.{op}", alert.alert_id, reason,
                         {"group_key": alert.group_key, "rule_id": alert.rule_id, "scope": str(alert.scope)})
        waiter: asyncio.Future[Alert] = asyncio.get_running_loop().create_future()
        self._waiting[msg.op_id] = waiter
        producer = await self.rt.producer()
        sent = await producer.send(self.rt.topics["detections"], key=str(alert.scope).encode(),
                                   value=msg.model_dump_json().encode(), headers=op_headers())
        await sent
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(msg.op_id, None)

    async def audit(self, action_id: str, operator: str, role: str, action: str, target: str, reason: str,
                    details: dict[str, Any]) -> None:
        row = [action_row(action_id, operator, role, action, target, reason, details)]
        chain = getattr(self.rt, "chain", None)  # operator_actions is hash-chained where the runtime has a chain
        if chain is not None:
            await chain.write(self.rt.sink, "operator_actions", row, ACTION_COLUMNS)
        else:
            await self.rt.sink.write("operator_actions", row, ACTION_COLUMNS)
        self._add("audited")

    async def create_silence(self, matchers: list[Matcher], owner: str, reason: str, ends_at: datetime,
                             actor: str, role: str) -> Silence:
        now = datetime.now(UTC)
        open_alerts = self.book.open_alerts() + await self.rt.sink.run(
            lambda c: query_alerts(c, state=["firing", "acknowledged"], limit=5000))
        silence = new_silence(matchers, owner, reason, actor, ends_at, now, open_alerts)
        await self.rt.sink.write("alert_silences", [silence_row(silence)], SILENCE_COLUMNS)
        self.silences.put(silence)
        await self.audit(silence.silence_id, actor, role, "silence.create", silence.silence_id, reason,
                         {"matchers": [str(m) for m in matchers], "owner": owner, "ends_at": ends_at.isoformat()})
        return silence

    async def expire_silence(self, silence_id: str, actor: str, role: str, reason: str) -> Silence:
        silence = self.silences.expire(silence_id, actor, datetime.now(UTC))
        await self.rt.sink.write("alert_silences", [silence_row(silence)], SILENCE_COLUMNS)
        await self.audit(stable_id("silence-expire", silence_id, actor, silence.updated_at.isoformat()), actor, role,
                         "silence.expire", silence_id, reason, {"owner": silence.owner})
        return silence

    async def reload_silences(self) -> None:
        """Silences are global: every worker picks up the others' from ClickHouse."""
        for s in await self.rt.sink.run(load_silences):
            self.silences.put(s)
        self._last_reload = time.time()

    # -- time --------------------------------------------------------------------------
    async def tick(self) -> None:
        now = time.time()
        if now - self._last_sweep >= self.rt.settings.alert_sweep_interval_s:
            self._last_sweep = now
            await self._publish_sweeps()
        if now - self._last_reload >= SILENCE_RELOAD_S:
            await self.reload_silences()
        await self.notifier.flush(now)

    async def _publish_sweeps(self) -> None:
        topic = self.rt.topics["detections"]
        producer = await self.rt.producer()
        partitions = await producer.partitions_for(topic)
        stamp = datetime.now(UTC)
        futures = [await producer.send(topic, value=AlertOp(op_id=stable_id("sweep", str(p), stamp.isoformat()),
                                                            op="sweep", ts=stamp).model_dump_json().encode(),
                                       partition=p, headers=op_headers()) for p in sorted(partitions)]
        await asyncio.gather(*futures)

    # -- deliveries ------------------------------------------------------------------------
    async def _record_attempt(self, attempt: Attempt) -> None:
        await self.rt.sink.write("alert_deliveries", [attempt.row()], ATTEMPT_COLUMNS)

    async def _delivery_failed(self, receiver: Receiver, group_key: str, alerts: list[Alert]) -> None:
        """A notification could not be delivered: raise (or fold into) a monitor-health alert."""
        now = datetime.now(UTC)
        summary = (f"notification of {len(alerts)} alert(s) ({', '.join(a.rule_id for a in alerts[:5])}) to "
                   f"{receiver.name} ({receiver.kind}) failed after every retry; see alert_deliveries")
        current = self._delivery_alerts.get(receiver.name)
        if current is not None and current.state != "resolved":
            current = current.model_copy(update={"count": current.count + 1, "last_seen": now, "updated_at": now,
                                                 "summary": summary})
        else:
            current = self.book.raise_system_alert(
                rule_id=DELIVERY_RULE, title=f"Alert notifications to {receiver.name} are failing", severity="high",
                scope=Scope(kind="fleet", value=f"receiver:{receiver.name}"), summary=summary,
                tags=["monitor_health", "alerting.delivery"], now=now, save=False)
        self._delivery_alerts[receiver.name] = current
        self._add("delivery_failure_alerts")
        await self.rt.emit_alerts([current])

    def stats(self) -> dict[str, Any]:
        return {**self.counters, **{f"notifier_{k}": v for k, v in self.notifier.counters.items()},
                "lifecycle": dict(self.book.transitions), "silences_active": len(self.silences.active()),
                "notification_groups": len(self.notifier.groups), "routing": self.routing is not None}
