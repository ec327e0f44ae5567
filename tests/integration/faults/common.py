"""Shared helpers of the fault tests: traffic with a breach, and what must hold afterwards."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.ids import new_event_id
from schemas.killswitch import KillSwitchCommand
from tests.integration.workerproc import WorkerProcess

BREACH_RULES = {"frontier_self_exfiltration_sequence", "frontier_weights_access"}


def traffic(n: int, t0: datetime, *, tag: str = "") -> list[dict[str, Any]]:
    """``n`` ordinary events over seven agent runs."""
    out = []
    for i in range(n):
        base = {"event_id": new_event_id(), "ts": (t0 + timedelta(milliseconds=100 * i)).isoformat(),
                "tenant_id": "t-acme", "deployment_id": f"dep-{i % 3}", "request_model": "cirrus-mini",
                "agent_run_id": f"run{tag}-{i % 7}"}
        if i % 2:
            out.append({**base, "event_type": "inference", "operation": "chat", "input_tokens": 100,
                        "output_tokens": 20, "is_refusal": False, "latency_ms": 200.0})
        else:
            out.append({**base, "event_type": "tool_call", "tool_name": "read_file", "action_category": "fs_read",
                        "resource": "/workspace/src/main.py"})
    return out


def breach(t0: datetime, deployment: str = "dep-atlas-us") -> list[dict[str, Any]]:
    """Weights read, then 4 GB to an unknown host: the frontier self-exfiltration sequence."""
    base = {"tenant_id": "t-acme", "deployment_id": deployment, "request_model": "atlas-7b",
            "agent_run_id": f"run-exfil-{deployment}", "model_checkpoint": "/models/atlas-7b/ckpt-0042",
            "event_type": "tool_call", "operation": "execute_tool"}
    return [
        {**base, "event_id": new_event_id(), "ts": t0.isoformat(), "tool_name": "read_file",
         "action_category": "weights_access", "resource": "/models/atlas-7b/ckpt-0042/model.safetensors"},
        {**base, "event_id": new_event_id(), "ts": (t0 + timedelta(seconds=30)).isoformat(),
         "tool_name": "http_post", "action_category": "net_egress", "dest_host": "paste.exfil-drop.example",
         "egress_bytes": 4_000_000_000},
    ]


async def send(bootstrap: str, topic: str, events: list[dict[str, Any]], per_message: int = 10,
               keep_together: list[dict[str, Any]] | None = None) -> None:
    """Producer-side batches of ``per_message`` events keyed by agent run (idempotent, acks=all).

    ``keep_together`` goes as one message: a sequence whose two steps are always in the same
    Kafka batch (the rule engine's in-flight sequence state is not persisted; see the report)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        by_key: dict[str, list[dict[str, Any]]] = {}
        for e in events:
            by_key.setdefault(e["agent_run_id"], []).append(e)
        futures = []
        for key, evs in by_key.items():
            for i in range(0, len(evs), per_message):
                futures.append(await producer.send(topic, key=key.encode(),
                                                   value=orjson.dumps({"kind": "batch", "events": evs[i:i + per_message]})))
        if keep_together:
            futures.append(await producer.send(topic, key=keep_together[0]["agent_run_id"].encode(),
                                               value=orjson.dumps({"kind": "batch", "events": keep_together})))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every message of a topic, from the beginning to its current end."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    out: list[Any] = []
    try:
        parts = consumer.assignment()
        for _ in range(300):
            if parts:
                break
            await consumer.getmany(timeout_ms=200)
            parts = consumer.assignment()
        if not parts:
            raise AssertionError(f"no partitions of {topic} were assigned")
        ends = await consumer.end_offsets(list(parts))
        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in parts])

        while await behind():
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(msgs)
    finally:
        await consumer.stop()
    return out


def _wait_for_events(worker: WorkerProcess, expected: int, timeout: float = 180.0) -> None:
    """Wait for ``expected`` distinct events; fail at once when the worker's liveness check reports it
    stalled (events waiting, no batch finishing) instead of restarting it — a restarted worker used to
    stop consuming after its first batch now and then (Faust's recovery dropped stream records, fixed
    in streams/faust_recovery.py; docs/operations.md), and a test that restarted it would hide that."""
    import time
    import urllib.error

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.sql("SELECT uniqExact(event_id) FROM events")[0][0] >= expected:
            return
        try:
            worker.get("/healthz")
        except urllib.error.HTTPError as exc:
            if exc.code == 503:
                raise AssertionError(f"worker stalled: {exc.read()[:300]!r}\n{worker.log_tail()}") from None
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {expected} events\n{worker.log_tail()}")


def assert_events_exactly_once(worker: WorkerProcess, sent: list[dict[str, Any]]) -> None:
    """Every valid event stored once — physically, without FINAL."""
    try:
        _wait_for_events(worker, len(sent))
    except AssertionError as exc:  # say where the worker is stuck, not only that it is
        stats = worker.get("/overseer/stats")
        where = {k: stats.get(k) for k in ("consumer_lag", "consumer", "sink")}
        raise AssertionError(f"{exc}\nworker state: counters={stats.get('counters')} {where}") from None
    total, distinct = worker.sql("SELECT count(), uniqExact(event_id) FROM events")[0]
    assert (total, distinct) == (len(sent), len(sent))
    stored = {r[0] for r in worker.sql("SELECT event_id FROM events")}
    assert stored == {e["event_id"] for e in sent}


def killswitch_commands(worker: WorkerProcess) -> list[KillSwitchCommand]:
    msgs = asyncio.run(read_topic(worker.bootstrap, worker.topic("killswitch")))
    return [KillSwitchCommand.model_validate_json(m.value) for m in msgs if m.value]


def assert_one_command_per_key(commands: list[KillSwitchCommand]) -> Counter[str]:
    per_key = Counter(c.idempotency_key for c in commands)
    assert per_key and all(n == 1 for n in per_key.values()), per_key
    return per_key


def assert_breach_detected_and_paused(worker: WorkerProcess, deployment: str = "dep-atlas-us") -> None:
    worker.wait_for(f"SELECT DISTINCT rule_id FROM detections FINAL WHERE deployment_id = '{deployment}'",
                    lambda r: BREACH_RULES <= {x[0] for x in r}, timeout=120)
    worker.wait_for(f"SELECT count() FROM killswitch_commands FINAL WHERE scope_value = '{deployment}' "
                    "AND action = 'pause'", lambda r: r[0][0] >= 1, timeout=120)


def now_minus(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)
