"""Rule-engine throughput: events per second on one core (not a test; timings live here).

Three measurements over realistic batches of event dicts (as the decoder
produces them), evaluated through `Engine.process` exactly as the worker does:

1. ``packs``      the built-in packs (frontier, agent, operational, with windows,
                  sequences and dedup) over a mixed fleet stream;
2. ``synthetic50`` 50 condition rules typical of a deployment: 40 with an
                  ``action_category``/``event_type`` prerequisite (indexed), 10 without;
3. ``unindexed50`` 50 condition rules none of which can be indexed — the worst case.

``--memory`` instead measures state size: the built-in packs' engine over
``--keys`` distinct agent runs, deployments and conversations (each touched
by one inference, one error, one destructive shell command, one weights read
and one unapproved spawn, all within one window so nothing closes), reporting
the bytes retained per active key (tracemalloc, events freed; ``state_keys``
counts window keys and sequence partials; what the dedup state alone holds
is measured by dropping it afterwards) and per open dedup key.

Run::

    .venv/bin/python benchmarks/rules_bench.py            # human-readable
    .venv/bin/python benchmarks/rules_bench.py --json     # for scripts
    .venv/bin/python benchmarks/rules_bench.py --memory --keys 200000
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from rules.engine import Engine, engine_from_text, load_engine

CATEGORIES = ["fs_read", "fs_write", "net_egress", "exec", "credential_access", "weights_access",
              "training_code_write", "eval_code_write", "monitor_config_write", "permission_change",
              "spawn_agent", "compute_provision", "payment", "other"]
COMMANDS = ["ls -la", "pytest -q", "git status", "python train_probe.py --dry-run", "cat README.md", "make build"]
HOSTS = ["api.github.com", "pypi.org", "files.pythonhosted.org", "huggingface.co", "internal.corp.example"]


def fleet_events(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """A mixed stream: 40 % inference, 60 % tool calls of the usual kinds, rare risky ones."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        base = {"event_id": f"ev-{i}", "_ts": 1_700_000_000.0 + i * 0.001, "deployment_id": f"dep-{i % 16}",
                "request_model": f"model-{i % 4}", "tenant_id": f"t{i % 8}", "agent_run_id": f"run-{i % 500}",
                "conversation_id": f"conv-{i % 900}", "model_checkpoint": f"/models/model-{i % 4}/ckpt-7",
                "scores": {}, "attributes": {}, "request_params": {}, "finish_reasons": []}
        r = rng.random()
        if r < 0.4:
            base.update(event_type="inference", operation="chat", input_tokens=rng.randint(100, 4000),
                        output_tokens=rng.randint(10, 900), latency_ms=rng.uniform(80, 3000), is_refusal=r < 0.01,
                        scores={"jailbreak": rng.random() * 0.3, "injection": rng.random() * 0.3},
                        finish_reasons=["stop"])
        else:
            cat = rng.choices(["fs_read", "exec", "net_egress", "fs_write", "other", "weights_access"],
                              weights=[35, 30, 20, 10, 4, 1])[0]
            base.update(event_type="tool_call", operation="execute_tool", action_category=cat,
                        tool_name={"exec": "bash", "net_egress": "http_get"}.get(cat, "read_file"))
            if cat == "exec":
                base["tool_arguments"] = rng.choice(COMMANDS)
            elif cat == "net_egress":
                base.update(dest_host=rng.choice(HOSTS), egress_bytes=rng.randint(100, 190_000))
            else:
                base["resource"] = f"/workspace/src/mod{rng.randint(0, 999)}.py"
        out.append(base)
    return out


def synthetic_rules(indexed: bool) -> str:
    """50 condition rules mixing every operator kind."""
    templates = [
        'tool_arguments contains "{w}"', 'resource glob "*/{w}/*"', 'resource startswith "/{w}"',
        'dest_host in ({w}.example, {w}2.example)', 'egress_bytes > {n}', 'tool_name = "{w}"',
        'resource endswith ".{w}"', 'tool_arguments regex "^{w}\\\\s+-[a-z]+"',
    ]
    free = ['scores.jailbreak >= 0.{d}', 'scores.injection >= 0.{d}', 'latency_ms > {n}',
            'output_tokens > {n}', 'attributes.team = "{w}"']
    rng = random.Random(1)
    items = ["- list: dangerous_hosts\n  items: [a.example, b.example, c.example]"]
    for i in range(50):
        w, n, d = f"w{i}", 10_000 + i * 1000, 90 + i % 9
        if indexed and i < 40:
            cat = CATEGORIES[i % len(CATEGORIES)]
            cond = f'action_category = "{cat}" and ' + rng.choice(templates).format(w=w, n=n)
        elif indexed:
            cond = free[i % len(free)].format(w=w, n=n, d=d)
        else:
            cond = (rng.choice(templates) if i % 2 else free[i % len(free)]).format(w=w, n=n, d=d)
        items.append(f"- rule: synthetic_{i}\n  title: Synthetic {i}\n  severity: low\n  condition: '{cond}'")
    return "\n".join(items) + "\n"


def measure(make: Callable[[], Engine], events: list[dict[str, Any]], batch: int, repeat: int) -> dict[str, Any]:
    """Best of ``repeat`` runs, each on a fresh engine (window/sequence state starts empty every time)."""
    batches = [events[i:i + batch] for i in range(0, len(events), batch)]
    best, hits = float("inf"), 0
    for _ in range(repeat):
        engine = make()
        start = time.perf_counter()
        hits = 0
        for b in batches:
            hits += len(engine.process(b))
        best = min(best, time.perf_counter() - start)
    return {"events": len(events), "batch": batch, "seconds": round(best, 4),
            "events_per_s": round(len(events) / best), "hits": hits, "rules": len(make().rules)}


def key_events(lo: int, hi: int, keys: int) -> list[dict[str, Any]]:
    """Events of keys ``lo..hi``: each key's run, deployment and conversation opens every stateful rule once."""
    out: list[dict[str, Any]] = []
    for i in range(lo, hi):
        ts = 1_700_000_000.0 + 50.0 * i / keys  # all within one 60 s window: no window closes, no absence is due
        common = {"_ts": ts, "deployment_id": f"dep-{i}", "agent_run_id": f"run-{i}", "conversation_id": f"conv-{i}",
                  "request_model": f"model-{i % 4}", "tenant_id": f"t{i % 8}", "_src": ("events", i % 12, i),
                  "scores": {}, "attributes": {}, "request_params": {}, "finish_reasons": []}
        out += [
            {**common, "event_id": f"ev-{i}-a", "event_type": "inference", "operation": "chat", "input_tokens": 900,
             "output_tokens": 200 + i % 100, "latency_ms": 400.0 + i % 300, "is_refusal": True,
             "finish_reasons": ["stop"]},
            {**common, "event_id": f"ev-{i}-b", "event_type": "inference", "operation": "chat",
             "error_type": "timeout"},
            {**common, "event_id": f"ev-{i}-c", "event_type": "tool_call", "operation": "execute_tool",
             "action_category": "exec", "tool_name": "bash", "tool_arguments": "rm -rf /tmp/build"},
            {**common, "event_id": f"ev-{i}-d", "event_type": "tool_call", "operation": "execute_tool",
             "action_category": "weights_access", "tool_name": "read_file",
             "resource": "/models/model-1/ckpt-7/model.safetensors", "model_checkpoint": "/models/model-1/ckpt-7"},
            {**common, "event_id": f"ev-{i}-e", "event_type": "tool_call", "operation": "execute_tool",
             "action_category": "spawn_agent", "tool_name": "spawn"},
        ]
    return out


def measure_memory(keys: int, batch: int) -> dict[str, Any]:
    """Bytes retained per active key by the built-in packs' engine (state only: events are freed)."""
    engine = load_engine()
    engine.process(key_events(0, 1, 1))  # compile the fused buckets before measuring
    engine = engine.fresh()
    engine.process(key_events(0, 1, 1))
    per_batch = max(1, batch // 5)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    for lo in range(1, keys, per_batch):
        engine.process(key_events(lo, min(keys, lo + per_batch), keys))
    seconds = time.perf_counter() - start
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    # the events' own values the state keeps (ids, group keys, times, sources) were allocated here, in key_events
    here = tracemalloc.Filter(True, __file__)
    event_values = sum(st.size for st in tracemalloc.take_snapshot().filter_traces([here]).statistics("filename"))
    stats = engine.stats
    suppressors = engine._suppressors.values()
    dedup_keys = sum(len(s.open) for s in suppressors)
    state = {rid: ev.size() for rid, ev in engine._stateful.items()}
    for s in suppressors:  # what dropping the dedup state frees is its share (shared strings stay with windows)
        s.open.clear()
    gc.collect()
    dedup = used - (tracemalloc.get_traced_memory()[0] - base)
    tracemalloc.stop()
    return {"keys": keys, "state_keys": stats["state_keys"], "dedup_keys": dedup_keys, "bytes": used,
            "bytes_per_state_key": round((used - dedup) / max(1, stats["state_keys"])),
            "bytes_per_dedup_key": round(dedup / max(1, dedup_keys)),
            "event_values_bytes_per_key": round(event_values / max(1, stats["state_keys"] + dedup_keys)),
            "bytes_per_key_incl_dedup": round(used / max(1, stats["state_keys"] + dedup_keys)),
            "per_rule_keys": state, "hits": stats["hits"], "seconds_traced": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--memory", action="store_true", help="bytes of state per active key instead of speed")
    parser.add_argument("--keys", type=int, default=200_000, help="distinct runs/deployments for --memory")
    args = parser.parse_args()
    if args.memory:
        mem = measure_memory(args.keys, args.batch)
        if args.json:
            print(json.dumps(mem, indent=2))
            return
        print(f"memory      {mem['bytes_per_state_key']:>6} bytes per active key ({mem['state_keys']:,} window keys "
              f"and sequence partials for {mem['keys']:,} distinct runs/deployments/conversations)")
        print(f"            {mem['bytes_per_dedup_key']:>6} bytes per open dedup key ({mem['dedup_keys']:,}); "
              f"{mem['bytes_per_key_incl_dedup']} bytes per key of either kind, {mem['bytes'] / 1e6:.1f} MB in all, "
              f"of which {mem['event_values_bytes_per_key']} bytes per key are the events' own values kept "
              f"(event ids, group keys, times, sources)")
        print(f"            keys per rule: {mem['per_rule_keys']}")
        return
    events = fleet_events(args.events)
    results = {
        "packs": measure(load_engine, events, args.batch, args.repeat),
        "synthetic50": measure(lambda: engine_from_text(synthetic_rules(indexed=True)), events, args.batch,
                               args.repeat),
        "unindexed50": measure(lambda: engine_from_text(synthetic_rules(indexed=False)), events, args.batch,
                               args.repeat),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, r in results.items():
        print(f"{name:12s} {r['events_per_s']:>10,} events/s  ({r['rules']} rules, {r['events']:,} events "
              f"in batches of {r['batch']}, best of {args.repeat}: {r['seconds']} s, {r['hits']} hits)")


if __name__ == "__main__":
    main()
