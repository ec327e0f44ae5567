"""Enforcer ``check()`` latency with many active commands, and command verification throughput.

Run: ``.venv/bin/python benchmarks/enforcer_bench.py [--active 10000] [--checks 200000] [--json]``

With ``--kafka BOOTSTRAP`` (or ``--kafka auto`` to start a throw-away local
broker) it also measures the kill-switch leg end to end on a real broker:
detection -> policy decision -> signed command acknowledged on the compacted
topic (acks=all) -> a running enforcer denies, while a background producer
writes ``--load`` events/s of ~1 KB to another topic of the same broker.

Builds an enforcer holding ``--active`` signed commands spread over every
scope kind (applied through the same verify path as the Kafka loop), then
times ``check()`` one call at a time with ``perf_counter_ns`` for four
request shapes: nothing applies, a deployment pause applies, a revoked tool,
and the dead-man's switch firing. No broker is involved: ``check`` does no I/O.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas.detections import Scope
from streams.enforcer import Enforcer
from streams.killswitch.commands import build_manual_issue
from streams.killswitch.signing import KeyRing, load_or_create_signing_key

KINDS = ("model", "deployment", "tenant", "agent_run", "session")
ACTIONS = ("flag", "throttle", "revoke_tools", "pause", "terminate")


def build(active: int) -> tuple[Enforcer, float]:
    signer = load_or_create_signing_key(Path(tempfile.mkdtemp()) / "k.pem", "bench")
    now = datetime.now(UTC)
    enforcer = Enforcer("127.0.0.1:1", KeyRing({"bench": signer.public_key}), max_heartbeat_age_s=3600)
    messages = []
    for i in range(active):
        kind, action = KINDS[i % len(KINDS)], ACTIONS[(i // len(KINDS)) % len(ACTIONS)]
        cmd = build_manual_issue(Scope(kind=kind, value=f"{kind}-{i}"), action, ["bench"], f"bench {i}", signer,
                                 now - timedelta(seconds=1), 3600, throttle_rate=5.0 if action == "throttle" else None,
                                 revoked_tools=["bash"] if action == "revoke_tools" else (),
                                 mode="shadow" if i % 10 == 9 else "enforce")
        messages.append(cmd.model_dump_json().encode())
    t = time.perf_counter()
    for m in messages:
        enforcer.apply_message(m)
    verify_s = time.perf_counter() - t
    enforcer.checker.heartbeat(time.time())
    return enforcer, verify_s


def timed(fn, n: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t = clock()
        fn()
        samples.append(clock() - t)
    samples.sort()
    return {"p50_us": samples[n // 2] / 1000, "p99_us": samples[int(n * 0.99)] / 1000,
            "mean_us": statistics.fmean(samples) / 1000}


async def kafka_leg(bootstrap: str, breaches: int, load_eps: int) -> dict[str, object]:
    import asyncio
    import uuid

    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from rules.items import Location, RawItem
    from rules.policy import RaisingContext, compile_items
    from streams.killswitch.commands import build_command
    from streams.killswitch.topic import ensure_compacted_topic

    run = uuid.uuid4().hex[:8]
    topic, load_topic = f"bench.killswitch.{run}", f"bench.load.{run}"
    await ensure_compacted_topic(bootstrap, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(load_topic, 4, 1)])
    finally:
        await admin.close()
    signer = load_or_create_signing_key(Path(tempfile.mkdtemp()) / "k.pem", "bench")
    engine = compile_items([RawItem("policy", "bench", {"match": {"severity_at_least": "critical"},
                                                        "scope": "deployment", "ladder": ["pause"]},
                                    Location("bench", 1, 1))], RaisingContext())
    enforcer = Enforcer(bootstrap, KeyRing({"bench": signer.public_key}), topic=topic, heartbeat_topic=None)
    await enforcer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    loader = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    await loader.start()
    sent = [0]
    payload = b'{"event_type":"tool_call","pad":"' + b"x" * 1000 + b'"}'

    async def background() -> None:
        tick = 0.01
        while True:
            t = time.perf_counter()
            for _ in range(max(1, int(load_eps * tick))):
                await loader.send(load_topic, payload)
                sent[0] += 1
            await asyncio.sleep(max(0.0, tick - (time.perf_counter() - t)))

    load_task = asyncio.create_task(background()) if load_eps else None
    await asyncio.sleep(1.0 if load_eps else 0)
    load_start, sent_start = time.perf_counter(), sent[0]
    to_topic, to_deny = [], []
    try:
        for i in range(breaches):
            det = {"detection_id": f"b{i}", "kind": "rule", "rule_id": "bench", "severity": "critical",
                   "tags": [], "mode": "enforce", "scope": {"kind": "deployment", "value": f"dep-{i}"},
                   "ts": datetime.now(UTC).isoformat(), "deployment_id": f"dep-{i}", "event_ids": [f"e{i}"],
                   "source_offsets": []}
            t0 = time.perf_counter()
            [decision] = engine.on_detection(det, now=time.time())
            cmd = build_command(decision, signer, datetime.now(UTC), "bench")
            await producer.send_and_wait(topic, cmd.model_dump_json().encode(), key=cmd.kafka_key())
            t1 = time.perf_counter()
            while enforcer.check(deployment=f"dep-{i}").allowed:
                await asyncio.sleep(0.0005)
            t2 = time.perf_counter()
            to_topic.append((t1 - t0) * 1000)
            to_deny.append((t2 - t0) * 1000)
            await asyncio.sleep(0.02)
    finally:
        achieved = (sent[0] - sent_start) / (time.perf_counter() - load_start)
        if load_task:
            load_task.cancel()
        await loader.stop()
        await producer.stop()
        await enforcer.stop()

    def pct(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {"p50_ms": round(xs[len(xs) // 2], 2), "p99_ms": round(xs[min(len(xs) - 1, int(len(xs) * 0.99))], 2)}

    return {"breaches": breaches, "background_events_per_s": round(achieved),
            "decision_to_acked_on_topic": pct(to_topic), "decision_to_enforcer_denies": pct(to_deny)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--active", type=int, default=10_000)
    ap.add_argument("--checks", type=int, default=200_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--kafka", help="BOOTSTRAP, or 'auto' to start a local broker, for the end-to-end leg")
    ap.add_argument("--breaches", type=int, default=200)
    ap.add_argument("--load", type=int, default=10_000, help="background events/s during the Kafka leg")
    args = ap.parse_args()
    enforcer, verify_s = build(args.active)
    rnd = random.Random(7)
    paused = next(e.scope_value for e in enforcer.active.slots.values()
                  if e.scope_kind == "deployment" and e.action == "pause" and e.mode == "enforce")
    revoked = next(e.scope_value for e in enforcer.active.slots.values()
                   if e.action == "revoke_tools" and e.scope_kind == "model" and e.mode == "enforce")
    misses = [f"deployment-miss-{rnd.randrange(10**6)}" for _ in range(1024)]
    i = [0]

    def miss() -> None:
        i[0] = (i[0] + 1) & 1023
        enforcer.check(model="model-x", deployment=misses[i[0]], tenant="tenant-x", agent_run="run-x", tool="bash")

    results = {
        "nothing applies": timed(miss, args.checks),
        "deployment paused": timed(lambda: enforcer.check(model="m", deployment=paused, tenant="t"), args.checks),
        "tool revoked": timed(lambda: enforcer.check(model=revoked, tool="bash"), args.checks),
    }
    assert not enforcer.check(deployment=paused).allowed and not enforcer.check(model=revoked, tool="bash").allowed
    enforcer.checker.last_heartbeat = time.time() - 7200
    results["dead-man's switch"] = timed(lambda: enforcer.check(deployment="d", new_run=True), args.checks)
    report: dict[str, object] = {"active_commands": len(enforcer.active), "checks_per_case": args.checks,
                                 "verify_apply_per_command_us": verify_s / args.active * 1e6, "check": results}
    if args.kafka:
        report["kafka"] = run_kafka(args.kafka, args.breaches, args.load)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['active_commands']} active commands; verify+apply {report['verify_apply_per_command_us']:.1f} µs/command")
    for name, r in results.items():
        print(f"  check, {name:18s} p50 {r['p50_us']:6.2f} µs   p99 {r['p99_us']:6.2f} µs   mean {r['mean_us']:6.2f} µs")
    if "kafka" in report:
        print(f"  kafka leg: {json.dumps(report['kafka'])}")


def run_kafka(bootstrap: str, breaches: int, load_eps: int) -> dict[str, object]:
    import asyncio

    if bootstrap != "auto":
        return asyncio.run(kafka_leg(bootstrap, breaches, load_eps))
    from streams.kafka.launcher import LocalKafka

    launcher = LocalKafka(Path(tempfile.mkdtemp()), Path(".cache"), base_port=None)
    cluster = launcher.up(brokers=1)
    try:
        return asyncio.run(kafka_leg(cluster.bootstrap, breaches, load_eps))
    finally:
        launcher.down()


if __name__ == "__main__":
    main()
