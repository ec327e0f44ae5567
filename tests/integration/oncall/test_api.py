"""The on-call loop on a real worker: alerts from real detections, the authenticated API, routing, restart.

One worker (real Kafka, the embedded ClickHouse) with a tokens file and a
routing tree whose receivers are loopback HTTP servers in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from openapi_spec_validator import validate

from schemas.detections import Scope
from streams.killswitch.commands import build_manual_issue
from streams.killswitch.signing import load_or_create_signing_key
from tests.integration.oncall.harness import (
    TOKENS,
    OnCallWorker,
    ThreadedReceiver,
    destructive,
    exfiltration,
    now_minus,
    publish_raw,
    send,
    write_config,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def receiver() -> Iterator[ThreadedReceiver]:
    r = ThreadedReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str,
           receiver: ThreadedReceiver) -> Iterator[OnCallWorker]:
    home = tmp_path_factory.mktemp("oncall") / "home"
    w = OnCallWorker(home, kafka_bootstrap, env=write_config(home, receiver))
    w.start()
    try:
        yield w
    finally:
        w.stop()


def _alerts(w: OnCallWorker, **query: str) -> list[dict[str, Any]]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    status, body = w.request("GET", f"/api/v1/alerts?{qs}")
    assert status == 200, body
    return body["alerts"]


def _wait_alert(w: OnCallWorker, rule: str, scope: str, pred: Any = lambda a: True) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def ready(_: Any) -> bool:
        found[:] = [a for a in _alerts(w, rule_id=rule, scope=scope) if pred(a)]
        return bool(found)

    w.wait_for("SELECT 1", ready, timeout=60)
    return found[0]


def test_authentication_roles_and_openapi(worker: OnCallWorker) -> None:
    send(worker.bootstrap, worker.topic("events"), destructive(now_minus(5), "dep-auth"))
    alert = _wait_alert(worker, "agent_destructive_shell", "deployment=dep-auth")
    path = f"/api/v1/alerts/{alert['alert_id']}/ack"
    assert worker.request("GET", "/api/v1/alerts", token=None)[0] == 401
    assert worker.request("GET", "/api/v1/alerts", token="not-a-token")[0] == 401
    assert worker.request("POST", "/overseer/sql", {"sql": "SELECT 1"}, token=None)[0] == 401
    assert worker.request("GET", "/overseer/stats", token=None)[0] == 401
    assert worker.request("POST", path, {}, token=None)[0] == 401
    status, body = worker.request("POST", path, {"reason": "mine"}, token="viewer")
    assert status == 403 and "needs oncall" in body["error"]
    status, body = worker.request("POST", "/api/v1/killswitch/release", {"scope": "deployment=dep-auth",
                                                                         "reason": "x"}, token="viewer")
    assert status == 403
    status, body = worker.request("POST", "/api/v1/silences", {"matchers": ["rule_id=x"], "owner": "v",
                                                               "reason": "r", "duration": "1h"}, token="viewer")
    assert status == 403
    # nothing changed: still firing, no operator action recorded
    assert worker.request("GET", f"/api/v1/alerts/{alert['alert_id']}", token="viewer")[1]["alert"]["state"] == "firing"
    assert worker.sql(f"SELECT count() FROM operator_actions WHERE target = '{alert['alert_id']}'") == [[0]]
    # bad input: 400 (not JSON) and 422 (does not validate), with a message
    status, body = worker.request("POST", "/api/v1/silences", {"matchers": [], "owner": "", "reason": "r"},
                                  token="oncall")
    assert status == 422 and "matchers" in body["error"]
    status, body = worker.request("POST", f"/api/v1/alerts/{alert['alert_id']}/resolve", {}, token="oncall")
    assert status == 422 and "reason" in body["error"]
    assert worker.request("GET", "/api/v1/alerts?limit=zero", token="viewer")[0] == 400
    assert worker.request("GET", "/api/v1/alerts/nope", token="viewer")[0] == 404
    status, doc = worker.request("GET", "/api/v1/openapi.json", token=None)
    assert status == 200
    validate(doc)
    assert worker.request("GET", "/api/v1/whoami", token="oncall")[1] == {"name": "alice", "role": "oncall",
                                                                          "tokens_configured": True}


def test_alert_lifecycle_routing_release_and_restart(worker: OnCallWorker, receiver: ThreadedReceiver) -> None:
    send(worker.bootstrap, worker.topic("events"), exfiltration(now_minus(10)))
    crit = _wait_alert(worker, "frontier_large_egress_unapproved_host", "deployment=dep-atlas-us")
    assert crit["severity"] == "critical" and crit["protected"] and crit["state"] == "firing"

    # routed: a PagerDuty trigger for the critical alert, webhook JSON for the rest (the critical route matched
    # first, so the root's receiver does not get the critical one)
    pages = receiver.wait_for("pager", lambda b: any(e["dedup_key"] == crit["alert_id"] for e in b))
    trigger = next(e for e in pages if e["dedup_key"] == crit["alert_id"])
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == "RK"
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == "deployment=dep-atlas-us"
    hooks = receiver.wait_for("hook", lambda b: any(a["rule_id"] == "frontier_weights_access" and
                                                    a["scope"]["value"] == "dep-atlas-us" for m in b for a in m["alerts"]))
    assert not any(a["alert_id"] == crit["alert_id"] for m in hooks for a in m["alerts"])

    # the evidence: detections, the events behind them, the rule, a timeline
    status, detail = worker.request("GET", f"/api/v1/alerts/{crit['alert_id']}", token="viewer")
    assert status == 200
    assert detail["rule"]["id"] == "frontier_large_egress_unapproved_host" and detail["rule"]["source"]
    assert {e["dest_host"] for e in detail["events"]} >= {"paste.exfil-drop.example"}
    assert {t["kind"] for t in detail["timeline"]} >= {"event", "detection", "state"}
    status, one = worker.request("GET", f"/api/v1/detections/{crit['detection_ids'][0]}", token="viewer")
    assert status == 200 and one["detection"]["rule_id"] == "frontier_large_egress_unapproved_host"
    assert [e["event_id"] for e in one["events"]] == one["detection"]["event_ids"]
    status, recent = worker.request("GET", "/api/v1/detections?deployment_id=dep-atlas-us", token="viewer")
    assert status == 200 and crit["detection_ids"][0] in {d["detection_id"] for d in recent["detections"]}

    # a safety-class alert can never be silenced
    status, body = worker.request("POST", f"/api/v1/alerts/{crit['alert_id']}/silence",
                                  {"owner": "alice", "reason": "noise?", "duration": "1h"}, token="oncall")
    assert status == 422 and "never be silenced" in body["error"]
    status, body = worker.request("POST", "/api/v1/silences", {"matchers": ["scope=deployment=dep-atlas-us"],
                                  "owner": "alice", "reason": "all of it", "duration": "1h"}, token="oncall")
    assert status == 422 and "safety-class" in body["error"]

    # ack: applied by the partition's owner, audited, and PagerDuty hears "acknowledge"
    status, body = worker.request("POST", f"/api/v1/alerts/{crit['alert_id']}/ack", {"reason": "on it"},
                                  token="oncall")
    assert status == 200 and body["alert"]["state"] == "acknowledged" and body["alert"]["acknowledged_by"] == "alice"
    receiver.wait_for("pager", lambda b: any(e["dedup_key"] == crit["alert_id"] and e["event_action"] == "acknowledge"
                                             for e in b))
    assert worker.sql(f"SELECT operator, role, action, reason FROM operator_actions FINAL "
                      f"WHERE target = '{crit['alert_id']}'") == [["alice", "oncall", "alert.ack", "on it"]]

    # a failing receiver: retried, recorded, and raised as a monitor-health alert
    send(worker.bootstrap, worker.topic("events"), destructive(now_minus(9), "dep-broken"))
    worker.wait_for("SELECT status, count() FROM alert_deliveries WHERE receiver = 'broken' GROUP BY status "
                    "ORDER BY status", lambda r: [x[0] for x in r] == ["failed", "retry"])
    _wait_alert(worker, "overseer.notification_delivery_failed", "fleet=receiver:broken")

    # the kill-switch board shows the pause; an alert about the paused deployment is inhibited
    board = worker.request("GET", "/api/v1/killswitch", token="viewer")[1]
    [pause] = [k for k in board["active"] if k["scope"] == "deployment=dep-atlas-us"]
    assert pause["action"] == "pause" and pause["issuer"].startswith("policy:")
    send(worker.bootstrap, worker.topic("events"), destructive(now_minus(8), "dep-atlas-us", run="run-shell-9"))
    shell = _wait_alert(worker, "agent_destructive_shell", "deployment=dep-atlas-us")
    assert shell["inhibited_by"] == pause["command_id"]
    stats = worker.get("/overseer/stats")["oncall"]
    assert stats["notifier_suppressed_inhibited"] >= 1 and stats["notifier_deliveries_failed"] >= 1

    # release from the API: a signed command, recorded by the mirror with the operator
    status, body = worker.request("POST", "/api/v1/killswitch/release",
                                  {"scope": "deployment=dep-atlas-us", "reason": "false positive: sanctioned backup"},
                                  token="oncall")
    assert status == 200 and body["status"] == "released"
    worker.wait_for("SELECT operator, action FROM operator_actions FINAL WHERE action = 'killswitch.release'",
                    lambda r: r == [["alice", "killswitch.release"]])
    assert worker.request("POST", "/api/v1/killswitch/release", {"scope": "deployment=dep-atlas-us", "reason": "again"},
                          token="oncall")[0] == 409

    # restart: the alert state comes back from the Faust table's changelog
    worker.stop()
    worker.start()
    send(worker.bootstrap, worker.topic("events"), exfiltration(now_minus(3)))
    again = _wait_alert(worker, "frontier_large_egress_unapproved_host", "deployment=dep-atlas-us",
                        lambda a: a["count"] > crit["count"])
    assert again["alert_id"] == crit["alert_id"] and again["state"] == "acknowledged"
    status, body = worker.request("POST", f"/api/v1/alerts/{crit['alert_id']}/resolve",
                                  {"reason": "contained and reviewed"}, token="oncall2")
    assert status == 200 and body["alert"]["state"] == "resolved" and body["alert"]["actor"] == "bob"
    pages = receiver.wait_for("pager", lambda b: any(e["dedup_key"] == crit["alert_id"] and
                                                     e["event_action"] == "resolve" for e in b))
    # the acknowledgement was delivered once: neither the restart nor the later detection re-sent it
    assert [e["event_action"] for e in pages if e["dedup_key"] == crit["alert_id"]] == [
        "trigger", "acknowledge", "resolve"]


def _cli(w: OnCallWorker, *args: str, token: str = "oncall") -> tuple[int, Any]:
    env = {**os.environ, "OVERSEER_API_TOKEN": TOKENS[token][0]}
    done = subprocess.run([sys.executable, "-m", "streams.cli", "alerts", *args, "--url",
                           f"http://127.0.0.1:{w.port}", "--json"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    return done.returncode, json.loads(done.stdout) if done.returncode == 0 else done.stderr


def test_cli_list_ack_silence_resolve_and_two_person_fleet_release(worker: OnCallWorker) -> None:
    send(worker.bootstrap, worker.topic("events"), destructive(now_minus(4), "dep-cli"))
    alert = _wait_alert(worker, "agent_destructive_shell", "deployment=dep-cli")
    code, listed = _cli(worker, "list", "--scope", "deployment=dep-cli")
    assert code == 0 and [a["alert_id"] for a in listed["alerts"]] == [alert["alert_id"]]
    code, acked = _cli(worker, "ack", alert["alert_id"], "--reason", "from the terminal")
    assert code == 0 and acked["alert"]["state"] == "acknowledged"
    code, silenced = _cli(worker, "silence", alert["alert_id"], "--owner", "alice", "--reason", "known noisy run",
                          "--duration", "30m")
    assert code == 0 and silenced["silence"]["owner"] == "alice"
    code, shown = _cli(worker, "list", "--scope", "deployment=dep-cli")
    assert shown["alerts"][0]["silenced_by"] == silenced["silence"]["silence_id"]
    code, refused = _cli(worker, "silence", "-m", "severity=critical", "--owner", "a", "--reason", "r")
    assert code == 1 and "never be silenced" in refused
    code, message = _cli(worker, "ack", alert["alert_id"], token="viewer")
    assert code == 1 and "403" in message
    code, resolved = _cli(worker, "resolve", alert["alert_id"], "--reason", "cleaned up")
    assert code == 0 and resolved["alert"]["state"] == "resolved"
    expected = {("alert.ack", "alice"), ("silence.create", "alice"), ("alert.resolve", "alice")}
    rows = worker.wait_for(f"SELECT action, operator FROM operator_actions FINAL WHERE target IN "
                           f"('{alert['alert_id']}', '{silenced['silence']['silence_id']}')",
                           lambda r: {tuple(x) for x in r} >= expected)
    assert {tuple(x) for x in rows} == expected

    # a fleet-scope release needs two distinct operators (a shadow fleet pause: no side effects on other tests)
    signer = load_or_create_signing_key(worker.home / "keys" / "killswitch-ed25519.pem", "local-dev-1")
    cmd = build_manual_issue(Scope(kind="fleet", value="all"), "pause", ["root"], "drill", signer,
                             datetime.now(UTC), lease_s=600, mode="shadow")
    publish_raw(worker.bootstrap, worker.topic("killswitch"), cmd.kafka_key(), cmd.model_dump_json().encode())
    worker.wait_for("SELECT count() FROM killswitch_commands FINAL WHERE scope_kind = 'fleet'", lambda r: r[0][0] == 1)
    code, pending = _cli(worker, "release", "fleet", "--reason", "drill over", "--mode", "shadow")
    assert code == 0 and pending["status"] == "pending_second_operator"
    request_id = pending["request"]["request_id"]
    code, same = _cli(worker, "release", "fleet", "--reason", "me again", "--approve", request_id)
    assert code == 1 and "second, different operator" in same
    code, done = _cli(worker, "release", "fleet", "--reason", "confirmed", "--approve", request_id, token="oncall2")
    assert code == 0 and done["operators"] == ["alice", "bob"]
    rows = worker.wait_for("SELECT role, details FROM operator_actions FINAL WHERE action = 'killswitch.release' "
                           "AND target LIKE '%fleet%'", lambda r: len(r) == 1)
    assert rows[0][0] == "two_person" and json.loads(rows[0][1])["operators"] == ["alice", "bob"]
