"""The ceiling: raw aiokafka ``getmany`` batch consume plus orjson decode of every event.

No validation, no rules, no storage — what the machine allows for reading the
topic at all. Runs as its own process (``python -m streams.bench.ceiling``) and
prints one JSON object: events, seconds from the first message to the last
event decoded, events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


async def consume(bootstrap: str, topic: str, expect: int, timeout_s: float = 300.0) -> dict[str, float]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=16 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        parts = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in sorted(parts.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        events = messages = 0
        first = cpu0 = 0.0
        deadline = time.monotonic() + timeout_s
        while events < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=100_000)
            for records in batch.values():
                if records and not first:
                    first, cpu0 = time.perf_counter(), time.process_time()
                for r in records:
                    obj = orjson.loads(r.value)
                    messages += 1
                    if isinstance(obj, dict) and obj.get("kind") == "batch":
                        events += len(obj["events"])
                    elif isinstance(obj, list):
                        events += len(obj)
                    else:
                        events += 1
        elapsed = time.perf_counter() - first if first else 0.0
        cpu = time.process_time() - cpu0 if first else 0.0
    finally:
        await consumer.stop()
    return {"events": events, "messages": messages, "seconds": elapsed, "cpu_seconds": cpu,
            "eps": events / elapsed if elapsed > 0 else 0.0, "cpu_eps": events / cpu if cpu > 0 else 0.0,
            "complete": events >= expect}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--expect", type=int, required=True)
    args = ap.parse_args(argv)
    result = asyncio.run(consume(args.bootstrap, args.topic, args.expect))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
