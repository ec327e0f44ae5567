"""Kill-switch latency: from the breaching event being produced to the signed command on the topic.

Runs a real worker (built-in packs + one benchmark policy that pauses the
breaching agent run, so every breach yields its own command without hitting
cooldowns or the blast-radius cap), drives background fleet traffic at
``--rate`` events/s as producer-side batches, injects one breach (4 GB egress
to an unapproved host: a critical frontier detection) every ``--every``
seconds, and measures, per breach, the command's Kafka timestamp minus the
moment the breach was handed to the producer.

    .venv/bin/python benchmarks/killswitch_latency.py --rate 10000 --duration 40 --json

Prints p50/p99 latency and the background rate actually achieved (on a
2-core machine the load generator, the broker and the worker share the CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from rules.engine import builtin_packs
from schemas.ids import new_event_id
from streams.bench.procs import Worker
from streams.demo.fleet import FleetGenerator
from streams.kafka.launcher import LocalKafka

BENCH_POLICY = """
- policy: bench_pause_agent_run_on_frontier_critical
  description: Benchmark only — pause the breaching agent run, one command per breach.
  version: "1"
  match: {severity_at_least: critical, tags_any: ["frontier.*"], kinds: [rule]}
  scope: agent_run
  threshold: {count: 1, window: 10m}
  ladder: [pause]
  cooldown: 1s
  lease: 10m
  mode: enforce
"""


def breach(i: int) -> dict[str, Any]:
    return {"event_id": new_event_id(), "event_type": "tool_call", "ts": _iso(time.time()),
            "agent_run_id": f"run-breach-{i}-{uuid.uuid4().hex[:6]}", "deployment_id": "dep-bench",
            "tenant_id": "t-bench", "request_model": "atlas-7b", "tool_name": "http_post",
            "action_category": "net_egress", "dest_host": "drop.bench-exfil.example", "egress_bytes": 4_000_000_000}


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat()


async def run(bootstrap: str, workdir: Path, rate: float, duration: float, every: float) -> dict[str, Any]:
    rules = workdir / "rules"
    shutil.copytree(builtin_packs(), rules)
    (rules / "bench-policy.yaml").write_text(BENCH_POLICY)
    prefix = f"ksl{uuid.uuid4().hex[:6]}"
    worker = Worker(workdir / "home", bootstrap, prefix, 4,
                    {"OVERSEER_RULES_PATHS": json.dumps([str(rules)]), "OVERSEER_RULES_RELOAD_INTERVAL_S": "0"})
    worker.start()
    try:
        worker.wait_ready()
        topic, ks_topic = f"{prefix}.events.v1", f"{prefix}.killswitch.v1"
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        consumer = AIOKafkaConsumer(ks_topic, bootstrap_servers=bootstrap, auto_offset_reset="latest")
        await consumer.start()
        await consumer.getmany(timeout_ms=200)  # join before the first breach

        async def collect() -> None:
            while True:
                for msgs in (await consumer.getmany(timeout_ms=200)).values():
                    for m in msgs:
                        cmd = orjson.loads(m.value)
                        run_id = cmd["scope"]["value"]
                        if cmd["scope"]["kind"] == "agent_run" and run_id in sent_at:
                            latencies.append(m.timestamp / 1000 - sent_at.pop(run_id))

        collector = asyncio.create_task(collect())
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
        await producer.start()
        # pre-encode the background traffic, so generating it does not compete for the CPU while timing
        gen = FleetGenerator(start_ts=time.time(), seed=11, injections=[])
        tick = 0.05
        per_tick = int(rate * tick)
        t_gen = time.time()
        ticks: list[list[tuple[bytes, bytes]]] = []
        for k in range(int(duration / tick) + 1):
            events = list(gen.events_between(t_gen + k * tick, t_gen + (k + 1) * tick, per_tick, 0.0))
            ticks.append([(events[i]["deployment_id"].encode(),
                           orjson.dumps({"kind": "batch", "events": events[i:i + 250]}))
                          for i in range(0, len(events), 250)])
        background = 0
        t0 = time.monotonic()
        next_breach = t0 + 3.0
        breaches = 0
        try:
            k = 0
            while (now := time.monotonic()) - t0 < duration and k < len(ticks):
                for key, payload in ticks[k]:
                    await producer.send(topic, payload, key=key)
                background += per_tick
                k += 1
                if now >= next_breach:
                    b = breach(breaches)
                    sent_at[b["agent_run_id"]] = time.time()
                    await producer.send(topic, orjson.dumps(b), key=b["agent_run_id"].encode())
                    breaches += 1
                    next_breach = now + every
                await asyncio.sleep(max(0.0, tick - (time.monotonic() - now)))
            await producer.flush()
            elapsed = time.monotonic() - t0
            deadline = time.monotonic() + 60
            while sent_at and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
        finally:
            collector.cancel()
            await producer.stop()
            await consumer.stop()
        ms = sorted(1000 * x for x in latencies)
        stats = worker.get("/overseer/stats")

        def pct(q: float) -> float | None:
            return round(ms[min(len(ms) - 1, int(q * len(ms)))], 1) if ms else None

        return {"breaches": breaches, "commands": len(ms), "missing": len(sent_at),
                "latency_ms_p50": pct(0.5), "latency_ms_p99": pct(0.99),
                "latency_ms_mean": round(statistics.fmean(ms), 1) if ms else None,
                "background_rate_requested": rate, "background_rate_achieved": round(background / elapsed, 1),
                "worker_events_in": stats["counters"].get("events_in", 0),
                "worker_stages": stats.get("stages")}
    finally:
        worker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10_000.0, help="background events/s")
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--every", type=float, default=1.0, help="seconds between breaches")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bootstrap = os.environ.get("OVERSEER_KAFKA_BOOTSTRAP")
        launcher = None
        if not bootstrap:
            launcher = LocalKafka(work / "kafka-home", Path(".cache"), base_port=None)
            bootstrap = launcher.up(1).bootstrap
        try:
            result = asyncio.run(run(bootstrap, work, args.rate, args.duration, args.every))
        finally:
            if launcher:
                launcher.down()
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:28} {v}")


if __name__ == "__main__":
    main()
