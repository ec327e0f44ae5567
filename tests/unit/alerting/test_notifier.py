"""Notifications to real loopback receivers: exact payloads, retries, failures, escalation, suppression."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from schemas.detections import Scope
from schemas.killswitch import KillSwitchCommand
from streams.alerting.book import AlertBook
from streams.alerting.delivery import Attempt
from streams.alerting.matchers import parse_matcher
from streams.alerting.notifier import Notifier
from streams.alerting.routing import Receiver as ReceiverConf
from streams.alerting.routing import parse_routing
from streams.alerting.silences import SilenceSet, new_silence
from streams.killswitch.state import ActiveSet
from tests.unit.alerting.conftest import T0, det
from tests.unit.alerting.receivers import Receiver

NOW = T0.timestamp()


def _config(urls: dict[str, str], **route: Any) -> Any:
    return parse_routing({
        "receivers": [{"name": "hook", "webhook": {"url": urls["hook"]}},
                      {"name": "slack", "slack": {"url": urls.get("slack", urls["hook"])}},
                      {"name": "pd", "pagerduty": {"url": urls.get("pd", urls["hook"]), "routing_key": "RK1"}}],
        "route": {"receiver": "hook", "group_wait": "0s", "group_interval": "60s", "repeat_interval": "1h", **route},
        "delivery": {"attempts": 3, "backoff": 0.01, "max_backoff": 0.05, "timeout": 2},
    })


class Harness:
    def __init__(self, config: Any, active: ActiveSet | None = None) -> None:
        self.attempts: list[Attempt] = []
        self.failed: list[tuple[str, list[str]]] = []
        self.silences = SilenceSet()
        active = active or ActiveSet()

        async def record(a: Attempt) -> None:
            self.attempts.append(a)

        async def on_failed(r: ReceiverConf, key: str, alerts: list) -> None:
            self.failed.append((r.name, [a.alert_id for a in alerts]))

        self.n = Notifier(config, self.silences, lambda: active, record, on_failed)

    async def flush(self, now: float) -> None:
        await self.n.flush(now)
        await self.n.drain()


def test_webhook_slack_and_pagerduty_payloads_are_exact() -> None:
    async def main() -> None:
        async with Receiver() as hook, Receiver() as slack, Receiver() as pd:
            cfg = _config({"hook": hook.url, "slack": slack.url, "pd": pd.url}, routes=[
                {"matchers": ["severity=critical"], "receiver": "pd", "continue": True},
                {"matchers": ["severity=critical"], "receiver": "slack"}])
            h = Harness(cfg)
            book = AlertBook({})
            plain = book.on_detection(det(1, rule="r_plain"), T0)
            crit = book.on_detection(det(2, rule="r_crit", severity="critical"), T0)
            assert plain and crit
            assert h.n.observe(plain, NOW) == h.n.observe(crit, NOW) == "routed"
            await h.flush(NOW)
            assert hook.accepted == [{"version": "1", "receiver": "hook", "status": "firing", "reason": "new",
                                      "groupKey": "route|hook|rule_id=r_plain,scope=deployment=dep-1",
                                      "alerts": [plain.model_dump(mode="json")]}]
            assert pd.accepted == [{"routing_key": "RK1", "event_action": "trigger", "dedup_key": crit.alert_id,
                                    "payload": {"summary": "Rule r_crit — deployment=dep-1", "severity": "critical",
                                                "source": "deployment=dep-1", "component": "r_crit",
                                                "group": "deployment", "class": "r_crit",
                                                "custom_details": {"summary": "hit 2", "count": 1, "tags": [],
                                                                   "first_seen": crit.first_seen.isoformat(),
                                                                   "safety_class": True}}}]
            [msg] = slack.accepted
            assert msg["text"] == "FIRING 1 alert(s): Rule r_crit (deployment=dep-1)"
            assert msg["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": msg["text"]}}
            assert msg["blocks"][1]["type"] == "section" and f"alert `{crit.alert_id}`" in msg["blocks"][1]["text"]["text"]
            # acknowledging and resolving map onto PagerDuty's event actions, same dedup key
            acked = book.acknowledge(crit.group_key, "alice", T0)
            h.n.observe(acked, NOW + 1)
            await h.flush(NOW + 61)
            resolved = book.resolve(crit.group_key, "alice", T0)
            h.n.observe(resolved, NOW + 62)
            await h.flush(NOW + 122)
            assert [(e["event_action"], e["dedup_key"]) for e in pd.accepted[1:]] == [
                ("acknowledge", crit.alert_id), ("resolve", crit.alert_id)]
            assert {a.status for a in h.attempts} == {"ok"}

    asyncio.run(main())


def test_a_failing_receiver_is_retried_with_backoff_then_delivered() -> None:
    async def main() -> None:
        async with Receiver(fail_first=2) as hook:
            h = Harness(_config({"hook": hook.url}))
            a = AlertBook({}).on_detection(det(1), T0)
            assert a
            h.n.observe(a, NOW)
            await h.flush(NOW)
            assert len(hook.requests) == 3 and len(hook.accepted) == 1
            assert [(x.attempt, x.status, x.http_status) for x in h.attempts] == [
                (1, "retry", 503), (2, "retry", 503), (3, "ok", 202)]
            assert h.n.counters["delivery_retries"] == 2 and h.n.counters["deliveries_ok"] == 1
            assert h.failed == []

    asyncio.run(main())


def test_a_receiver_that_always_fails_is_counted_recorded_and_alerted() -> None:
    async def main() -> None:
        async with Receiver(always_fail=True) as hook:
            h = Harness(_config({"hook": hook.url}))
            a = AlertBook({}).on_detection(det(1), T0)
            assert a
            h.n.observe(a, NOW)
            await h.flush(NOW)
            assert [x.status for x in h.attempts] == ["retry", "retry", "failed"]
            assert h.attempts[-1].error == "receiver down"
            assert h.n.counters["deliveries_failed"] == 1
            assert h.failed == [("hook", [a.alert_id])]

    asyncio.run(main())


def test_group_wait_interval_and_repeat() -> None:
    async def main() -> None:
        async with Receiver() as hook:
            h = Harness(_config({"hook": hook.url}, group_wait="10s", group_interval="60s", repeat_interval="300s"))
            book = AlertBook({})
            a = book.on_detection(det(1), T0)
            assert a
            h.n.observe(a, NOW)
            await h.flush(NOW + 9)
            assert hook.accepted == []  # waiting for the group to fill
            b = book.on_detection(det(2), T0)
            assert b
            h.n.observe(b, NOW + 5)
            await h.flush(NOW + 10)
            assert [x["reason"] for x in hook.accepted] == ["new"]
            assert hook.accepted[0]["alerts"][0]["count"] == 2  # one notification for both detections
            acked = book.acknowledge(a.group_key, "alice", T0)
            h.n.observe(acked, NOW + 20)
            await h.flush(NOW + 30)
            assert len(hook.accepted) == 1  # within group_interval
            await h.flush(NOW + 70)
            folded = book.on_detection(det(3), T0)
            assert folded and folded.count == 3
            h.n.observe(folded, NOW + 80)
            await h.flush(NOW + 200)
            assert len(hook.accepted) == 2  # one more detection folding in does not notify again
            await h.flush(NOW + 369)
            await h.flush(NOW + 370)
            assert [x["reason"] for x in hook.accepted] == ["new", "update", "repeat"]
            assert hook.accepted[2]["alerts"][0]["count"] == 3  # the repeat carries the latest record
            assert hook.accepted[1]["alerts"][0]["state"] == "acknowledged"

    asyncio.run(main())


def test_unacknowledged_critical_escalates_to_the_next_receiver_acknowledged_does_not() -> None:
    async def main() -> None:
        async with Receiver() as pd, Receiver() as slack:
            cfg = _config({"hook": pd.url, "pd": pd.url, "slack": slack.url}, receiver="pd",
                          escalation=[{"after": "5m", "receiver": "slack"}])
            h = Harness(cfg)
            book = AlertBook({})
            crit = book.on_detection(det(1, rule="c", severity="critical"), T0)
            other = book.on_detection(det(2, rule="o", severity="critical", dep="dep-2"), T0)
            assert crit and other
            h.n.observe(crit, NOW)
            h.n.observe(other, NOW)
            await h.flush(NOW)
            h.n.observe(book.acknowledge(other.group_key, "alice", T0), NOW + 10)
            await h.flush(NOW + 299)
            assert slack.accepted == []
            await h.flush(NOW + 300)
            assert [m["text"] for m in slack.accepted] == ["ESCALATION: FIRING 1 alert(s): Rule c (deployment=dep-1)"]
            await h.flush(NOW + 900)
            assert len(slack.accepted) == 1 and h.n.counters["escalations"] == 1

    asyncio.run(main())


def test_silenced_and_inhibited_changes_are_counted_never_sent_protected_ones_always_are() -> None:
    async def main() -> None:
        async with Receiver() as hook:
            active = ActiveSet()
            pause = KillSwitchCommand(command_id="c1", idempotency_key="i", key_id="k", reason="r", issuer="x",
                                      scope=Scope(kind="deployment", value="dep-paused"), action="pause",
                                      issued_at=T0, lease_expires_at=T0 + timedelta(hours=1))
            active.apply(pause, NOW)
            h = Harness(_config({"hook": hook.url}), active)
            book = AlertBook({})
            noisy = book.on_detection(det(1, rule="noisy", severity="medium"), T0)
            under_pause = book.on_detection(det(2, rule="x", severity="high", dep="dep-paused"), T0)
            frontier = book.on_detection(det(3, rule="x2", severity="medium", dep="dep-paused",
                                             tags=["frontier.weights"]), T0)
            crit_noisy = book.on_detection(det(4, rule="noisy", severity="critical", dep="dep-3"), T0)
            assert noisy and under_pause and frontier and crit_noisy
            h.silences.put(new_silence([parse_matcher("rule_id=noisy")], "alice", "flaky", "alice",
                                       T0 + timedelta(hours=1), T0, [noisy]))
            assert [h.n.observe(a, NOW) for a in (noisy, under_pause, frontier, crit_noisy)] == [
                "silenced", "inhibited", "routed", "routed"]
            await h.flush(NOW)
            sent = {a["rule_id"] for m in hook.accepted for a in m["alerts"]}
            assert sent == {"x2", "noisy"} and all(a["severity"] == "critical" or a["safety_class"]
                                                    for m in hook.accepted for a in m["alerts"])
            assert h.n.counters["suppressed_silenced"] == 1 and h.n.counters["suppressed_inhibited"] == 1
            assert h.n.counters["silence_ignored_protected"] == 1

    asyncio.run(main())


def test_resume_after_restart_resends_only_what_was_not_delivered_after_its_last_change() -> None:
    async def main() -> None:
        async with Receiver() as hook:
            cfg = _config({"hook": hook.url}, escalation=[{"after": "5m", "receiver": "slack"}])
            h = Harness(cfg)
            book = AlertBook({})
            delivered = book.on_detection(det(1, rule="a", severity="critical"), T0)
            changed = book.on_detection(det(2, rule="b"), T0)
            assert delivered and changed
            later = {delivered.alert_id: delivered.updated_at.timestamp() + 1,
                     changed.alert_id: changed.updated_at.timestamp() - 1}  # b changed after its last delivery
            assert h.n.resume([delivered, changed], later, NOW) == 1
            await h.flush(NOW)
            assert [[a["rule_id"] for a in m["alerts"]] for m in hook.accepted] == [["b"]]
            # escalation keeps counting from the delivery before the restart, not from the restart
            assert h.n.groups[next(k for k in h.n.groups if "rule_id=a" in k)].notified_at == {
                delivered.alert_id: later[delivered.alert_id]}

    asyncio.run(main())
