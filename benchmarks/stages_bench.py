"""The worker's hot path stage by stage, in one process, without Kafka: µs per event of each stage.

What `WorkerRuntime.prepare` and `commit` do to a batch, on the bench's generated
fleet events in producer batches: decode (msgspec fast path), producer-sequence
partials, the built-in rule packs, metric partials, a state snapshot, detections,
the JSONEachRow document, and the ClickHouse insert (chdb, in this process).
``--gc`` chooses the collector's settings, so their effect can be measured:
``worker`` is what `overseer worker` sets (streams/gc_tuning.py), ``default`` is
CPython's 700, ``off`` disables it.

Run::

    .venv/bin/python benchmarks/stages_bench.py                  # the worker's GC settings
    .venv/bin/python benchmarks/stages_bench.py --gc default --json
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rules.health import seq_partials
from streams import gc_tuning
from streams.bench.traffic import batched_messages, generate
from streams.pipeline.convert import hit_to_detection
from streams.pipeline.core import build_core
from streams.pipeline.decode import Record, decode_safely
from streams.settings import Settings
from streams.store import rows
from streams.store.client import connect
from streams.store.migrate import migrate


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(n_events: int = 100_000, messages_per_batch: int = 20, gc_mode: str = "worker") -> dict[str, Any]:
    events = generate(n_events)
    messages = batched_messages(events, partitions=1, batch_size=500)
    records = [Record("bench", 0, i, m.key, m.value, time.time()) for i, m in enumerate(messages)]
    del events, messages
    core = build_core(None, allowed_lateness_s=60)
    engine, metrics = core.new_engine(), core.new_metrics()
    if gc_mode == "worker":
        gc_tuning.tune(Settings(kafka_bootstrap="127.0.0.1:1").gc_gen0_threshold)
        gc_tuning.freeze()
    elif gc_mode == "off":
        gc.disable()
    seconds: collections.Counter[str] = collections.Counter()
    documents: list[bytes] = []
    n = 0
    started = time.perf_counter()
    for i in range(0, len(records), messages_per_batch):
        t = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal t
            now = time.perf_counter()
            seconds[stage] += now - t
            t = now

        batch = decode_safely(records[i:i + messages_per_batch], max_message_bytes=1 << 30).events
        lap("decode")
        n += len(batch)
        seq_partials(batch)
        lap("seq_partials")
        hits = engine.process(batch) + engine.advance(max(e["_ts"] for e in batch) - 60)
        lap("rules")
        metrics.partials(batch)
        lap("partials")
        engine.snapshot()
        lap("snapshot")
        now = datetime.now(UTC)
        [hit_to_detection(h, now) for h in hits]
        lap("detections")
        documents.append(rows.events_json(batch, now))
        lap("events_json")
    python_s = time.perf_counter() - started
    workdir = Path(tempfile.mkdtemp(prefix="overseer-stages-"))
    try:
        client = connect(f"chdb://{workdir}/db")
        migrate(client)
        c0, w0 = _cpu(), time.perf_counter()
        for doc in documents:
            client.raw_insert("events", insert_block=doc, fmt="JSONEachRow", settings=rows.EVENT_JSON_SETTINGS)
        insert = {"wall_us_per_event": round((time.perf_counter() - w0) / n * 1e6, 3),
                  "cpu_us_per_event": round((_cpu() - c0) / n * 1e6, 3)}
        client.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        gc.enable()
    return {"events": n, "gc": gc_mode, "events_per_batch": round(n / len(documents)),
            "python_eps": round(n / python_s), "us_per_event": {k: round(v / n * 1e6, 3) for k, v in
                                                                seconds.most_common()},
            "insert": insert}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--messages-per-batch", type=int, default=20, help="500-event messages per detect batch")
    ap.add_argument("--gc", choices=["worker", "default", "off"], default="worker")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    r = measure(args.events, args.messages_per_batch, args.gc)
    if args.json:
        print(json.dumps(r))
        return
    print(f"{r['events']:,} events, {r['events_per_batch']:,} per batch, GC {r['gc']}: "
          f"{r['python_eps']:,} events/s before the insert")
    for stage, us in r["us_per_event"].items():
        print(f"  {stage:14s} {us:6.2f} µs/event")
    print(f"  {'insert (chdb)':14s} {r['insert']['wall_us_per_event']:6.2f} µs/event wall, "
          f"{r['insert']['cpu_us_per_event']:.2f} CPU")


if __name__ == "__main__":
    main()
