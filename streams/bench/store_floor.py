"""The storage floor: CPU per event that ClickHouse itself spends storing the bench's events.

Issue #8 asks Overseer (which stores every event) to reach half of the ceiling
(which only decodes them). This measures, on the same generated events and in
one run, what each costs per event in CPU time, so the question "is half of
the ceiling reachable here at all?" has a number instead of an opinion:

- ``decode``     ``orjson.loads`` of every producer batch: the ceiling's own work
                 (without aiokafka's share, so the ceiling is cheaper still);
- ``encode``     Overseer's JSONEachRow document of the same events
                 (``streams.store.rows.events_json``: one msgspec call per batch);
- ``parse``      ClickHouse (chdb, in-process) inserting the document into a
                 ``Null`` table with the events table's columns: parsing only;
- ``plain``      the same into a ``MergeTree ORDER BY tuple()``: parse + write;
- ``store``      the same into the real ``events`` table (daily partitions,
                 ordered by tenant, model, time, id; ReplacingMergeTree).

CPU is the process's user + system time (ClickHouse's threads included),
divided by the events. ``max_ratio_vs_ceiling`` is the best (c)/(a) possible
on ``--cores`` cores if Overseer did nothing but the ceiling's own work plus
the store — no rules, no detectors, no Kafka broker sharing the cores:

    (a) = 1 / d          one core, d = the ceiling's CPU per event
    (c) ≤ cores / (d + s)     s = the store's CPU per event
    (c)/(a) ≤ cores · d / (d + s)

``d`` is the measured ``decode`` unless ``--ceiling-eps`` gives the bench's
(a) (aiokafka included, so d is larger and the bound looser).

``overseer bench`` runs it after the ceiling (``storage_floor`` in its JSON, with the
run's own (a)). Run alone::

    .venv/bin/python benchmarks/store_floor.py             # 100,000 events, a table
    .venv/bin/python benchmarks/store_floor.py --json      # one JSON object
    .venv/bin/python -m streams.bench.store_floor --ceiling-eps 435713
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from streams.bench.traffic import batched_messages, generate
from streams.pipeline.decode import Record, decode_safely
from streams.store import rows
from streams.store.client import connect
from streams.store.migrate import migrate


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _measure(fn: Callable[[], Any], n: int) -> dict[str, float]:
    gc.collect()
    c0, w0 = _cpu(), time.perf_counter()
    fn()
    c1, w1 = _cpu(), time.perf_counter()
    return {"cpu_us_per_event": round((c1 - c0) / n * 1e6, 3), "wall_us_per_event": round((w1 - w0) / n * 1e6, 3)}


def measure(n_events: int = 100_000, batch_size: int = 500, messages_per_insert: int = 20,
            cores: int = 2, ceiling_eps: float | None = None) -> dict[str, Any]:
    events = generate(n_events)
    messages = batched_messages(events, partitions=1, batch_size=batch_size)
    records = [Record("bench", 0, i, m.key, m.value, time.time()) for i, m in enumerate(messages)]
    n = sum(m.count for m in messages)
    chunks = [records[i:i + messages_per_insert] for i in range(0, len(records), messages_per_insert)]
    decoded = [decode_safely(c, max_message_bytes=1 << 30).events for c in chunks]
    documents: list[bytes] = []

    def decode() -> None:
        for r in records:
            orjson.loads(r.value)

    def encode() -> None:
        documents.extend(rows.events_json(evs) for evs in decoded)

    workdir = Path(tempfile.mkdtemp(prefix="overseer-store-floor-"))
    try:
        client = connect(f"chdb://{workdir}/db")
        migrate(client)
        client.command("CREATE TABLE events_parse_only AS events ENGINE = Null")
        client.command("CREATE TABLE events_plain AS events ENGINE = MergeTree ORDER BY tuple()")

        def insert(table: str) -> Callable[[], None]:
            def run() -> None:
                for doc in documents:
                    client.raw_insert(table, insert_block=doc, fmt="JSONEachRow", settings=rows.EVENT_JSON_SETTINGS)
            return run

        result: dict[str, Any] = {"events": n, "bytes_per_event": round(sum(len(r.value) for r in records) / n, 1),
                                  "events_per_insert": round(n / len(chunks)), "cores": cores}
        result["decode"] = _measure(decode, n)
        result["encode"] = _measure(encode, n)
        for name, table in (("parse", "events_parse_only"), ("plain", "events_plain"), ("store", "events")):
            result[name] = _measure(insert(table), n)
        stored = int(client.query("SELECT count() FROM events").result_rows[0][0])
        assert stored == n, f"stored {stored} of {n} events"
        client.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    decode_us, store_us = result["decode"]["cpu_us_per_event"], result["store"]["cpu_us_per_event"]
    ceiling_us = 1e6 / ceiling_eps if ceiling_eps else decode_us
    result["ceiling_us_per_event"] = round(ceiling_us, 3)
    result["store_vs_ceiling"] = round(store_us / ceiling_us, 2)
    result["max_ratio_vs_ceiling"] = round(cores * ceiling_us / (ceiling_us + store_us), 3)
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=500, help="events per Kafka message, as in `overseer bench`")
    ap.add_argument("--messages-per-insert", type=int, default=20, help="messages per worker batch (one insert)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--ceiling-eps", type=float, default=None, help="the bench's (a), events/s (default: "
                    "the decode measured here)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    r = measure(args.events, args.batch_size, args.messages_per_insert, args.cores, args.ceiling_eps)
    if args.json:
        print(json.dumps(r))
        return
    print(f"{r['events']:,} events, {r['bytes_per_event']} bytes each, {r['events_per_insert']:,} per insert")
    print(f"{'stage':10s} {'CPU µs/event':>13s} {'wall µs/event':>14s}")
    for name in ("decode", "encode", "parse", "plain", "store"):
        print(f"{name:10s} {r[name]['cpu_us_per_event']:13.2f} {r[name]['wall_us_per_event']:14.2f}")
    print(f"storing costs {r['store_vs_ceiling']}x the ceiling's {r['ceiling_us_per_event']} µs per event; "
          f"doing only the ceiling's work and the store, {r['cores']} cores allow (c)/(a) <= "
          f"{r['max_ratio_vs_ceiling']:.0%}")


if __name__ == "__main__":
    main()
