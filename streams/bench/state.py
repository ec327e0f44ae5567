"""State bytes per active key: drive the built-in rules and detectors over many distinct keys.

Two profiles:

- ``window`` — each key is a conversation with one refusal: the per-conversation
  sliding count window of ``agent_repeated_refusals`` holds it, no rule fires.
  This is the common active key: state, no alert.
- ``worst`` — each key is an agent run with a destructive shell command and a
  weights read: a sliding-window entry (``agent_destructive_shell_burst``), a
  pending sequence (``frontier_self_exfiltration_sequence``) and, because both
  events also fire single-event rules, two open dedup entries.

All events fall inside one minute of event time and the watermark never passes
them, so every key stays active.

Reported: RSS growth per key over all keys (what the process pays, allocator
fragmentation included; measured first, without tracemalloc, after a warm-up
batch), traced bytes per key (tracemalloc over ``--traced-keys`` keys of a
second engine: exactly what the state objects hold), the snapshot size per key
(what a checkpoint or changelog carries), the engine's own count of state
entries, and the peak RSS (the snapshot of every key included).
Runs as its own process (``python -m streams.bench.state --keys N``) so the RSS
is nobody else's.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from typing import Any

import orjson
import psutil

from streams.pipeline.core import build_core
from streams.pipeline.decode import Record, decode_batch

CHUNK = 20_000


def _events(start: int, stop: int, t0: float, profile: str) -> list[bytes]:
    out = []
    for i in range(start, stop):
        ts = t0 + (i % 600) / 10.0
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
        common = {"tenant_id": "t-acme", "deployment_id": f"dep-{i % 64}", "request_model": "atlas-7b",
                  "producer_id": f"gw-{i % 16}", "ts": iso}
        if profile == "window":
            out.append(orjson.dumps({**common, "event_id": f"s{i}c", "event_type": "inference", "operation": "chat",
                                     "conversation_id": f"conv-{i:09d}", "is_refusal": True, "output_tokens": 12}))
            continue
        base = {**common, "event_type": "tool_call", "operation": "execute_tool", "agent_run_id": f"run-{i:09d}",
                "step_index": 0, "agent_name": "coder", "tool_type": "function"}
        out.append(orjson.dumps({**base, "event_id": f"s{i}a", "tool_name": "bash",
                                 "action_category": "exec", "tool_arguments": "rm -rf /var/lib/postgresql"}))
        out.append(orjson.dumps({**base, "event_id": f"s{i}b", "tool_name": "read_file",
                                 "action_category": "weights_access", "step_index": 1,
                                 "resource": "/models/atlas-7b/ckpt-0042/model.safetensors"}))
    return out


def _feed(core: Any, start: int, stop: int, t0: float, profile: str) -> None:
    for lo in range(start, stop, CHUNK):
        payload = b"[" + b",".join(_events(lo, min(stop, lo + CHUNK), t0, profile)) + b"]"
        events = decode_batch([Record("s", 0, lo, None, payload)], max_message_bytes=1 << 30).events
        core.engine.process(events)
        core.health.observe(events)
        core.metrics.partials(events)


def measure(keys: int, profile: str = "window", traced_keys: int = 50_000) -> dict[str, Any]:
    """RSS growth per key over all ``keys`` (what the process really pays, fragmentation included), then,
    on a second engine, traced bytes per key over ``traced_keys`` keys (tracemalloc: exact, allocator-neutral).

    The RSS pass runs first and without tracemalloc (its own tables would otherwise stay in the RSS), after
    one full batch of uncounted keys has warmed up the code paths and the allocator (a batch's transient
    memory is paid once per worker, not per key). ``peak_rss_mb`` is the process high-water mark after the
    snapshot was written (building a checkpoint of every key is part of holding them).
    """
    t0 = time.time() - 3600
    proc = psutil.Process()
    core = build_core(None, allowed_lateness_s=60.0)
    _feed(core, -CHUNK, 0, t0, profile)  # warm up on one full batch of keys not counted
    gc.collect()
    keys_before = core.engine.stats["state_keys"]
    rss_before = proc.memory_info().rss
    started = time.perf_counter()
    _feed(core, 0, keys, t0, profile)
    elapsed = time.perf_counter() - started
    gc.collect()
    rss_after = proc.memory_info().rss
    entries = core.engine.stats["state_keys"] - keys_before
    snapshot = len(core.engine.snapshot()) + len(core.metrics.snapshot()) + len(core.health.snapshot())
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    del core
    gc.collect()
    traced = min(keys, traced_keys)
    core = build_core(None, allowed_lateness_s=60.0)
    _feed(core, -2000, 0, t0, profile)  # warm up code paths on keys not counted
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    _feed(core, 0, traced, t0, profile)
    gc.collect()
    traced_bytes = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return {"profile": profile, "keys": keys, "seconds": round(elapsed, 2),
            "state_bytes_per_key": round(traced_bytes / traced, 1), "traced_keys": traced,
            "rss_bytes_per_key": round((rss_after - rss_before) / keys, 1),
            "rss_growth_mb": round((rss_after - rss_before) / 1e6, 1),
            "snapshot_bytes_per_key": round(snapshot / (keys + CHUNK), 1),  # the warm-up keys are in it too
            "engine_state_entries": entries,
            "rss_after_mb": round(rss_after / 1e6, 1), "peak_rss_mb": round(peak_rss / 1e6, 1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--profile", choices=("window", "worst"), default="window")
    ap.add_argument("--traced-keys", type=int, default=50_000)
    args = ap.parse_args(argv)
    sys.stdout.write(orjson.dumps(measure(args.keys, args.profile, args.traced_keys)).decode() + "\n")


if __name__ == "__main__":
    main()
