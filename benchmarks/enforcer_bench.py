"""Enforcer ``check()`` latency with many active commands, and command verification throughput.

Run: ``.venv/bin/python benchmarks/enforcer_bench.py [--active 10000] [--checks 200000] [--json]``

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--active", type=int, default=10_000)
    ap.add_argument("--checks", type=int, default=200_000)
    ap.add_argument("--json", action="store_true")
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
    report = {"active_commands": len(enforcer.active), "checks_per_case": args.checks,
              "verify_apply_per_command_us": verify_s / args.active * 1e6, "check": results}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['active_commands']} active commands; verify+apply {report['verify_apply_per_command_us']:.1f} µs/command")
    for name, r in results.items():
        print(f"  check, {name:18s} p50 {r['p50_us']:6.2f} µs   p99 {r['p99_us']:6.2f} µs   mean {r['mean_us']:6.2f} µs")


if __name__ == "__main__":
    main()
