"""Detection state survives a worker restart through its Faust-table checkpoints (real broker).

The first worker sees only the first step of a sequence, commits its
offsets and stops; the second worker never re-reads that step, so only the
restored checkpoint can complete the sequence.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.test_pipeline import exfiltration
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration


def test_a_half_seen_sequence_fires_after_a_restart(tmp_path: Path, kafka_bootstrap: str) -> None:
    read_weights, egress = exfiltration(datetime.now(UTC) - timedelta(minutes=5))
    first = WorkerProcess(tmp_path / "home", kafka_bootstrap)
    first.start()
    try:
        first.send([read_weights])
        first.wait_for("SELECT count() FROM events", lambda r: r[0][0] == 1)
        first.wait_counter("checkpoints", 1)
        assert first.sql("SELECT count() FROM detections WHERE rule_id = 'frontier_self_exfiltration_sequence'") \
            == [[0]]
    finally:
        first.stop()  # graceful: offsets are committed, the first step is never re-read

    second = WorkerProcess(tmp_path / "home", kafka_bootstrap, prefix=first.prefix)
    second.start()
    try:
        second.send([egress])
        rows = second.wait_for("SELECT event_ids FROM detections FINAL "
                               "WHERE rule_id = 'frontier_self_exfiltration_sequence'", lambda r: len(r) == 1)
        assert rows[0][0] == [read_weights["event_id"], egress["event_id"]]
        assert second.get("/overseer/stats")["state"]["rules"]["restored"] >= 1
        # the restart did not replay the first step: it was stored once, by the first worker
        assert second.sql("SELECT count() FROM events") == [[2]]
    finally:
        second.stop()


def _inference_minutes(t0: datetime, minutes: range, refusal_rate: float, per_minute: int = 150) -> list[dict]:
    """``per_minute`` inferences of one model per minute; every ``1/refusal_rate``-th one refused."""
    from schemas.ids import new_event_id

    events = []
    every = round(1 / refusal_rate) if refusal_rate else 0
    for m in minutes:
        for i in range(per_minute):
            events.append({"event_id": new_event_id(), "event_type": "inference", "operation": "chat",
                           "ts": (t0 + timedelta(minutes=m, seconds=i * 59 / per_minute)).isoformat(),
                           "request_model": "borealis-70b", "deployment_id": "dep-borealis-us",
                           "agent_run_id": f"run-{m}-{i % 4}", "is_refusal": bool(every and i % every == 0)})
    return events


async def _send_batches(bootstrap: str, topic: str, events: list[dict]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for i in range(0, len(events), 200):
            await producer.send_and_wait(topic, key=b"bulk",
                                         value=orjson.dumps({"kind": "batch", "events": events[i:i + 200]}))
    finally:
        await producer.stop()


def test_detector_baselines_continue_after_a_restart(tmp_path: Path, kafka_bootstrap: str) -> None:
    t0 = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    baseline = _inference_minutes(t0, range(12), 0.2) + _inference_minutes(t0, range(14, 15), 0.2)[:1]
    first = WorkerProcess(tmp_path / "home", kafka_bootstrap)
    first.start()
    try:
        asyncio.run(_send_batches(kafka_bootstrap, first.topic("events"), baseline))
        first.wait_for("SELECT count() FROM events", lambda r: r[0][0] == len(baseline))
        deadline = time.monotonic() + 60
        while first.get("/overseer/stats")["metrics"].get("buckets_closed", 0) < 12:
            assert time.monotonic() < deadline, "baseline buckets never closed"
            time.sleep(0.5)
        time.sleep(1.0)  # the checkpoint after the last merge
        assert first.sql("SELECT count() FROM detections WHERE rule_id = 'refusal_rate_shift'") == [[0]]
    finally:
        first.stop()

    # the collapse: minutes 15-16 without a single refusal, then one event later to close them
    collapse = _inference_minutes(t0, range(15, 17), 0.0) + _inference_minutes(t0, range(19, 20), 0.2)[:1]
    second = WorkerProcess(tmp_path / "home", kafka_bootstrap, prefix=first.prefix)
    second.start()
    try:
        asyncio.run(_send_batches(kafka_bootstrap, second.topic("events"), collapse))
        rows = second.wait_for("SELECT evidence FROM detections FINAL WHERE rule_id = 'refusal_rate_shift'",
                               lambda r: len(r) >= 1, timeout=60)
        evidence = orjson.loads(rows[0][0])
        assert evidence["observed"] == 0.0 and evidence["baseline"] > 0.1  # judged against the learned baseline
        assert second.get("/overseer/stats")["state"]["metrics"]["restored"] >= 1
    finally:
        second.stop()
