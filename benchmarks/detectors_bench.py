"""Cost of the statistical detectors and of the metric runtime.

Measures, per detector: update cost per observation (ns) and snapshot bytes
per key after a long history; for the stable detector pack: ``partials``
throughput on realistic batches (events/s), merge + advance cost per bucket,
and runtime snapshot bytes per key.

    .venv/bin/python benchmarks/detectors_bench.py [--json]

Numbers are the best of several repeats (least disturbed by other load).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml

from rules.detectors import REGISTRY, Detector, create
from rules.items import Location, RawItem
from rules.metrics import MetricRuntime, Partial, compile_items

PACK = Path(__file__).resolve().parent.parent / "rules" / "packs" / "detectors-stable.yaml"
T0 = 1_767_225_600.0
_TERM = re.compile(r'^\s*([A-Za-z_][\w.]*)\s*=\s*("(?:[^"]*)"|true|false|-?\d+(?:\.\d+)?)\s*$')


class _Conditions:
    """Just enough of the loader's CompileContext for the pack's `field = value` conditions."""

    def compile_condition(self, source: str, location: Location) -> Callable[[dict[str, Any]], bool]:
        terms = []
        for part in source.split(" and "):
            match = _TERM.match(part)
            if match is None:
                raise ValueError(f"{location}: unsupported condition {part!r}")
            text = match.group(2)
            value: Any = text[1:-1] if text.startswith('"') else (text == "true" if text in ("true", "false")
                                                                   else float(text))
            terms.append((match.group(1), value))
        if len(terms) == 1:
            (name, value), = terms
            return lambda ev: ev.get(name) == value
        return lambda ev: all(ev.get(n) == v for n, v in terms)

    def error(self, location: Location, code: str, message: str, hint: str = "") -> None:
        raise ValueError(f"{location}: {code} {message}")


def pack_runtime() -> MetricRuntime:
    items = [RawItem("detector", body["detector"], body, Location(str(PACK), 1, 1))
             for body in yaml.safe_load(PACK.read_text()) if "detector" in body]
    return compile_items(items, _Conditions())  # type: ignore[arg-type]


def best(fn: Callable[[], Any], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def detector_costs(n: int = 20_000) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    numbers = [float(v) for v in rng.normal(100.0, 10.0, n)]
    words = [f"tool-{int(v)}" for v in rng.zipf(1.3, n) % 500]
    times = [T0 + 60.0 * i for i in range(n)]
    rows = []
    for name, cls in sorted(REGISTRY.items()):
        xs = words if cls.observation == "hashable" else numbers
        det = create(name)
        for x, t in zip(xs[:1000], times[:1000], strict=True):
            det.update(x, ts=t)
        body = list(zip(xs[1000:], times[1000:], strict=True))

        def run(det: Any = det, body: list[tuple[Any, float]] = body) -> None:
            update = Detector.restore(det.snapshot()).update  # same warm state every repeat
            for x, t in body:
                update(x, ts=t)

        seconds = best(run, repeats=3)
        trained = create(name)
        for x, t in zip(xs, times, strict=True):
            trained.update(x, ts=t)
        rows.append({"detector": name, "update_ns": round(seconds / len(body) * 1e9),
                     "snapshot_bytes_per_key": len(orjson.dumps(trained.snapshot()))})
    return rows


def fleet_batch(rng: random.Random, bucket: int, size: int) -> list[dict[str, Any]]:
    """Realistic events: 70 % inferences over 4 models, 30 % tool calls over 50 deployments."""
    models = ("borealis-70b", "cirrus-8b", "nimbus-405b", "stratus-1t")
    tools = ("bash", "python", "read_file", "search", "http_get")
    out = []
    for i in range(size):
        dep = f"dep-{rng.randrange(50)}"
        ts = T0 + bucket * 60.0 + rng.random() * 60.0
        if rng.random() < 0.7:
            out.append({"event_id": f"e{bucket}-{i}", "_ts": ts, "event_type": "inference",
                        "request_model": rng.choice(models), "deployment_id": dep, "tenant_id": "t1",
                        "is_refusal": rng.random() < 0.1, "latency_ms": rng.lognormvariate(6.0, 0.4),
                        "error_type": "timeout" if rng.random() < 0.01 else None})
        else:
            tool = rng.choice(tools)
            egress = tool == "http_get"
            out.append({"event_id": f"e{bucket}-{i}", "_ts": ts, "event_type": "tool_call", "deployment_id": dep,
                        "tenant_id": "t1", "tool_name": tool,
                        "action_category": "net_egress" if egress else rng.choice(("exec", "fs_read")),
                        "dest_host": f"host-{rng.randrange(20)}.example" if egress else None,
                        "egress_bytes": int(rng.lognormvariate(8.0, 0.5)) if egress else None})
    return out


def runtime_costs(batch_size: int = 5000, buckets: int = 20) -> dict[str, Any]:
    """One batch per one-minute bucket, as a worker would see it, through the whole fleet path."""
    rng = random.Random(3)  # noqa: S311 - synthetic traffic
    batches = [fleet_batch(rng, b, batch_size) for b in range(buckets)]
    worker = pack_runtime()
    partials_seconds = best(lambda: [worker.partials(batch) for batch in batches], repeats=3)
    owner = pack_runtime()
    wire_bytes = n_partials = changelog_bytes = 0
    merge_seconds = changelog_seconds = 0.0
    for b, batch in enumerate(batches):
        wire = [p.to_bytes() for p in worker.partials(batch)]
        n_partials += len(wire)
        wire_bytes += sum(len(w) for w in wire)
        start = time.perf_counter()
        owner.merge([Partial.from_bytes(w) for w in wire])
        owner.advance(T0 + (b + 1) * 60.0)
        merge_seconds += time.perf_counter() - start
        start = time.perf_counter()
        changes = owner.dirty_state()
        changelog_seconds += time.perf_counter() - start
        changelog_bytes += sum(len(v) for v in changes.values() if v is not None)
    snapshot = owner.snapshot()
    keys = owner.stats["keys"]
    return {"batch_size": batch_size, "metrics": len(owner.specs),
            "partials_events_per_s": round(batch_size * buckets / partials_seconds),
            "partials_per_batch": round(n_partials / buckets),
            "partial_bytes_mean": round(wire_bytes / n_partials),
            "decode_merge_advance_ms_per_batch": round(merge_seconds / buckets * 1000, 2),
            "changelog_ms_per_batch": round(changelog_seconds / buckets * 1000, 2),
            "changelog_bytes_per_batch": round(changelog_bytes / buckets),
            "keys": keys, "snapshot_bytes": len(snapshot), "snapshot_bytes_per_key": round(len(snapshot) / keys)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="detector and metric runtime costs")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = {"detectors": detector_costs(), "runtime": runtime_costs()}
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    print("| detector | update (ns/obs) | snapshot (bytes/key) |\n|---|---|---|")
    for row in result["detectors"]:
        print(f"| `{row['detector']}` | {row['update_ns']} | {row['snapshot_bytes_per_key']} |")
    print()
    for name, value in result["runtime"].items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
