"""Every ingestion format, end to end: receiver → Kafka → detect agent → ClickHouse → built-in rules.

Each format's sample payloads (following the public specifications, in
tests/fixtures/ingest) go through the OTLP/HTTP receiver to a real broker; a
real worker stores the mapped events and the built-in rules fire on the risky
ones — a weights read, a destructive shell command and a large egress.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.ingest.adapters import AdapterOptions
from streams.ingest.producer import EventPublisher
from streams.ingest.receiver import ReceiverConfig, make_app
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
EXPECTED_RULES = {"frontier_weights_access", "agent_destructive_shell", "frontier_large_egress_unapproved_host"}
REQUESTS = [
    ("otlp-json", "/v1/traces", "application/json", "otlp_genai_trace.json"),
    ("otlp-protobuf", "/v1/traces", "application/x-protobuf", "otlp_genai_trace.pb"),
    ("litellm", "/v1/events?format=litellm", "application/json", "litellm_payloads.json"),
    ("openai", "/v1/events?format=openai", "application/json", "openai_objects.json"),
    ("native", "/v1/events?format=native", "application/x-ndjson", "native_events.ndjson"),
]


async def _post(worker: WorkerProcess, path: str, content_type: str, body: bytes) -> int:
    publisher = EventPublisher(worker.bootstrap, worker.topic("events"), worker.topic("deadletter"))
    await publisher.start()
    try:
        config = ReceiverConfig(options=AdapterOptions(keep_arguments=True))
        async with TestClient(TestServer(make_app(publisher, config))) as client:
            resp = await client.post(path, data=body, headers={"Content-Type": content_type})
            assert resp.status == 200, await resp.text()
            stats = await (await client.get("/v1/stats")).json()
            return int(stats["accepted"])
    finally:
        await publisher.stop()


def _wait_events_in(worker: WorkerProcess, at_least: int, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while worker.get("/overseer/stats")["counters"].get("events_in", 0) < at_least:
        assert time.monotonic() < deadline, "the worker did not consume the export"
        time.sleep(0.3)


def test_each_format_reaches_clickhouse_and_triggers_the_builtin_rules(worker: WorkerProcess) -> None:
    seen: set[str] = set()
    for name, path, content_type, fixture in REQUESTS:
        events_in = worker.get("/overseer/stats")["counters"].get("events_in", 0)
        accepted = asyncio.run(_post(worker, path, content_type, (FIXTURES / fixture).read_bytes()))
        assert accepted > 0, name
        if name == "otlp-protobuf":
            # the same trace as the JSON export: the same span ids give the same event ids, stored once
            _wait_events_in(worker, events_in + accepted)
            assert worker.sql("SELECT uniqExact(event_id) FROM events") == [[len(seen)]]
            continue
        rows = worker.wait_for("SELECT DISTINCT event_id FROM events", lambda r: len(r) >= len(seen) + accepted)
        new = {r[0] for r in rows} - seen
        assert len(new) == accepted, f"{name}: {len(new)} stored of {accepted} accepted"
        seen |= new
        ids = ",".join(f"'{i}'" for i in sorted(new))
        hits = worker.wait_for(
            f"SELECT DISTINCT rule_id FROM detections FINAL ARRAY JOIN event_ids AS eid WHERE eid IN ({ids})",
            lambda r, want=EXPECTED_RULES: want <= {x[0] for x in r}, timeout=60)
        assert EXPECTED_RULES <= {x[0] for x in hits}, name
