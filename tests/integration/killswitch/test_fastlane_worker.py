"""A real worker: a critical breach is decided once although both lanes detect it (real broker, real store).

The fast lane evaluates critical single-event rules as batches arrive; the full engine finds the
same breach with the same detection id. The policy agent must act on one copy only, and the
audit table must hold the detection once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.ids import new_event_id
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration


def _breach() -> dict:
    return {"event_id": new_event_id(), "event_type": "tool_call", "ts": datetime.now(UTC).isoformat(),
            "tenant_id": "t-fast", "deployment_id": "dep-fast", "request_model": "atlas-7b",
            "agent_run_id": "run-fast-1", "operation": "execute_tool", "tool_name": "http_post",
            "action_category": "net_egress", "dest_host": "drop.exfil.example", "egress_bytes": 4_000_000_000}


async def _send_and_collect(bootstrap: str, events_topic: str, ks_topic: str, event: dict) -> list[dict]:
    consumer = AIOKafkaConsumer(ks_topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(events_topic, orjson.dumps(event), key=event["agent_run_id"].encode())
        commands: list[dict] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                commands += [orjson.loads(m.value) for m in msgs]
            if commands and time.monotonic() > deadline - 50:  # a second copy would follow within seconds
                break
        return commands
    finally:
        await producer.stop()
        await consumer.stop()


def test_both_lanes_detect_the_breach_and_it_is_decided_once(tmp_path: Path, kafka_bootstrap: str) -> None:
    worker = WorkerProcess(tmp_path / "home", kafka_bootstrap)
    worker.start()
    try:
        breach = _breach()
        commands = asyncio.run(_send_and_collect(kafka_bootstrap, worker.topic("events"), worker.topic("killswitch"),
                                                 breach))
        worker.wait_for("SELECT count() FROM events", lambda r: r[0][0] == 1)
        deadline = time.monotonic() + 30
        while True:
            counters = worker.get("/overseer/stats")["counters"]
            if counters.get("detections_already_decided", 0) >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert counters.get("fastlane_detections", 0) >= 1, counters  # the fast lane saw it ...
        assert counters.get("detections", 0) >= 1, counters  # ... and so did the full engine
        assert counters.get("detections_already_decided", 0) >= 1, counters  # one copy was skipped
        keys = [c["idempotency_key"] for c in commands]
        assert commands and len(keys) == len(set(keys)), commands  # one command per decision, no copy acted twice
        rows = worker.sql("SELECT detection_id, count() FROM detections WHERE chain_seq > 0 "
                          "AND rule_id = 'frontier_large_egress_unapproved_host' GROUP BY detection_id")
        assert len(rows) == 1 and rows[0][1] == 1, rows  # chained (stored) once
        assert breach["event_id"] in worker.sql(
            "SELECT event_ids FROM detections WHERE rule_id = 'frontier_large_egress_unapproved_host'")[0][0]
    finally:
        worker.stop()
