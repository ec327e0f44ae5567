"""The whole loop on real infrastructure: Kafka → worker → ClickHouse → detections → kill-switch.

Valid events land in ClickHouse exactly once (checked by event_id), bad input
lands in the dead-letter topic with its reason and source offset, and the
injected self-exfiltration produces a detection and a signed pause command.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.ids import new_event_id
from schemas.killswitch import KillSwitchCommand
from streams.killswitch.signing import KeyRing
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration


def fleet_events(n: int, t0: datetime) -> list[dict]:
    events = []
    for i in range(n):
        run = f"run-{i % 7}"
        base = {"event_id": new_event_id(), "ts": (t0 + timedelta(seconds=i)).isoformat(), "tenant_id": "t-acme",
                "deployment_id": f"dep-{i % 3}", "request_model": "cirrus-mini", "agent_run_id": run}
        if i % 2:
            events.append({**base, "event_type": "inference", "operation": "chat", "input_tokens": 100,
                           "output_tokens": 20, "is_refusal": False, "latency_ms": 200.0})
        else:
            events.append({**base, "event_type": "tool_call", "tool_name": "read_file", "action_category": "fs_read",
                           "resource": "/workspace/src/main.py"})
    return events


def exfiltration(t0: datetime) -> list[dict]:
    base = {"tenant_id": "t-acme", "deployment_id": "dep-atlas-us", "request_model": "atlas-7b",
            "agent_run_id": "run-exfil-1", "model_checkpoint": "/models/atlas-7b/ckpt-0042",
            "event_type": "tool_call", "operation": "execute_tool"}
    return [
        {**base, "event_id": new_event_id(), "ts": t0.isoformat(), "tool_name": "read_file",
         "action_category": "weights_access", "resource": "/models/atlas-7b/ckpt-0042/model.safetensors"},
        {**base, "event_id": new_event_id(), "ts": (t0 + timedelta(seconds=30)).isoformat(), "tool_name": "http_post",
         "action_category": "net_egress", "dest_host": "paste.exfil-drop.example", "egress_bytes": 4_000_000_000},
    ]


BAD = {
    b'{"event_type": "inference", "ts": ': "malformed_json",
    b'{"event_type": "tool_call", "ts": "yesterday"}': "schema_violation",
    b'{"event_type": "teleport", "ts": "2026-01-01T00:00:00Z"}': "unknown_event_type",
    b'"a string"': "not_an_object",
    b'{"event_type": "inference", "content": "' + b"x" * 1_100_000 + b'"}': "oversized",
}


async def _send(bootstrap: str, topic: str, good: list[dict]) -> dict[bytes, tuple[int, int]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    where: dict[bytes, tuple[int, int]] = {}
    try:
        by_key: dict[str, list[dict]] = {}
        for e in good:
            by_key.setdefault(e["agent_run_id"], []).append(e)
        for key, events in by_key.items():  # producer-side batches of up to 20 events
            for i in range(0, len(events), 20):
                await producer.send_and_wait(topic, key=key.encode(),
                                             value=orjson.dumps({"kind": "batch", "events": events[i:i + 20]}))
        for raw in BAD:
            md = await producer.send_and_wait(topic, key=b"bad", value=raw)
            where[raw] = (md.partition, md.offset)
    finally:
        await producer.stop()
    return where


async def _consume_all(bootstrap: str, topic: str, expect: int, timeout: float = 60) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    out: list = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(msgs)
    finally:
        await consumer.stop()
    return out


def test_valid_events_stored_once_bad_ones_deadlettered_breach_pauses(worker: WorkerProcess) -> None:
    t0 = datetime.now(UTC) - timedelta(minutes=20)
    good = fleet_events(300, t0) + exfiltration(t0 + timedelta(minutes=5))
    where = asyncio.run(_send(worker.bootstrap, worker.topic("events"), good))

    # exactly the valid events, each once
    worker.wait_for("SELECT count() FROM events", lambda r: r[0][0] >= len(good))
    stored = worker.sql("SELECT event_id, count() FROM events GROUP BY event_id")
    assert sorted(r[0] for r in stored) == sorted(e["event_id"] for e in good)
    assert all(r[1] == 1 for r in stored)

    # every bad message is in the dead-letter topic with its reason and source offset
    dead = asyncio.run(_consume_all(worker.bootstrap, worker.topic("deadletter"), len(BAD)))
    letters = [orjson.loads(m.value) for m in dead]
    assert len(letters) == len(BAD)
    for letter in letters:
        raw = base64.b64decode(letter["original_b64"])
        assert letter["reason"] == BAD[raw]
        assert (letter["source_partition"], letter["source_offset"]) == where[raw]
        assert letter["source_topic"] == worker.topic("events") and letter["error"]
    stats = worker.get("/overseer/stats")
    assert stats["counters"]["deadlettered"] == len(BAD)
    assert stats["stored"]["deadletters"] == len(BAD)

    # the breach: detections, then exactly one signed pause of the deployment from the frontier policy
    rows = worker.wait_for("SELECT rule_id FROM detections FINAL WHERE deployment_id = 'dep-atlas-us'",
                           lambda r: {"frontier_self_exfiltration_sequence", "frontier_weights_access"}
                           <= {x[0] for x in r})
    assert rows
    worker.wait_for("SELECT count() FROM killswitch_commands FINAL WHERE scope_value = 'dep-atlas-us' "
                    "AND action = 'pause'", lambda r: r[0][0] >= 1)
    commands = asyncio.run(_consume_all(worker.bootstrap, worker.topic("killswitch"), 1))
    ring = KeyRing.load(worker.home / "keys" / "keyring.json")
    pauses = [KillSwitchCommand.model_validate_json(m.value) for m in commands]
    pauses = [c for c in pauses if c.scope.value == "dep-atlas-us" and c.action == "pause"]
    assert pauses and all(ring.verify(c).ok for c in pauses)
    frontier = [c for c in pauses if c.issuer == "policy:pause_deployment_on_frontier_critical"]
    assert len(frontier) == 1
    assert frontier[0].evidence.detection_ids and frontier[0].lease_expires_at > frontier[0].issued_at


def test_a_gap_in_a_producers_sequence_is_a_monitor_health_detection(worker: WorkerProcess) -> None:
    """Events of one producer spread over partitions (keyed by agent run); only the real gap is reported."""
    t0 = datetime.now(UTC) - timedelta(minutes=30)

    def event(producer: str, seq: int) -> dict:
        return {"event_id": new_event_id(), "event_type": "inference", "ts": (t0 + timedelta(seconds=seq)).isoformat(),
                "producer_id": producer, "producer_seq": seq, "deployment_id": "dep-1", "request_model": "m",
                "agent_run_id": f"run-{seq % 5}"}

    lossy = [event("gw-lossy", s) for s in range(100) if not 40 <= s < 45]
    whole = [event("gw-whole", s) for s in range(100)]
    asyncio.run(_send(worker.bootstrap, worker.topic("events"), lossy + whole))
    rows = worker.wait_for("SELECT rule_id, evidence FROM detections FINAL WHERE kind = 'monitor_health'",
                           lambda r: len(r) >= 1, timeout=90)
    evidence = [orjson.loads(e) for _, e in rows]
    assert {e["producer_id"] for e in evidence} == {"gw-lossy"}
    assert sum(e["missing_count"] for e in evidence) == 5
