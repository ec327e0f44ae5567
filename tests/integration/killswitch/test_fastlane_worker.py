"""A real worker: a critical breach is decided once although both lanes detect it (real broker, real store).

The fast lane evaluates critical single-event rules as batches arrive; the full engine finds the
same breach with the same detection id. The policy agent must act on one copy only, and the
audit table must hold the detection once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from schemas.ids import new_event_id
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration


def _breach() -> dict:
    return {"event_id": new_event_id(), "event_type": "tool_call", "ts": datetime.now(UTC).isoformat(),
            "tenant_id": "t-fast", "deployment_id": "dep-fast", "request_model": "atlas-7b",
            "agent_run_id": "run-fast-1", "operation": "execute_tool", "tool_name": "http_post",
            "action_category": "net_egress", "dest_host": "drop.exfil.example", "egress_bytes": 4_000_000_000}


async def _commands_after(worker: WorkerProcess, event: dict, settle_s: float = 10.0) -> list[dict]:
    """Send ``event``, then every command on the kill-switch topic until ``settle_s`` after the first."""
    consumer = AIOKafkaConsumer(worker.topic("killswitch"), bootstrap_servers=worker.bootstrap,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        await asyncio.to_thread(worker.send, [event])
        commands: list[dict] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                commands += [orjson.loads(m.value) for m in msgs]
            if commands:  # a second copy acted upon would follow within seconds
                deadline = min(deadline, time.monotonic() + settle_s)
        return commands
    finally:
        await consumer.stop()


def test_both_lanes_detect_the_breach_and_it_is_decided_once(worker: WorkerProcess) -> None:
    breach = _breach()
    commands = asyncio.run(_commands_after(worker, breach))
    worker.wait_for("SELECT count() FROM events", lambda r: r[0][0] == 1)
    counters = worker.wait_counter("detections_already_decided", 1)  # one copy was skipped ...
    assert counters.get("fastlane_detections", 0) >= 1, counters  # ... the fast lane saw it ...
    assert counters.get("detections", 0) >= 1, counters  # ... and so did the full engine
    keys = [c["idempotency_key"] for c in commands]
    assert commands and len(keys) == len(set(keys)), commands  # one command per decision, no copy acted twice
    rows = worker.sql("SELECT detection_id, count() FROM detections WHERE chain_seq > 0 "
                      "AND rule_id = 'frontier_large_egress_unapproved_host' GROUP BY detection_id")
    assert len(rows) == 1 and rows[0][1] == 1, rows  # chained (stored) once
    assert breach["event_id"] in worker.sql(
        "SELECT event_ids FROM detections WHERE rule_id = 'frontier_large_egress_unapproved_host'")[0][0]
