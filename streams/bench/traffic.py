"""Bench traffic: fleet events generated once, framed two ways, produced to fresh topics.

- *batched*: producer-side batches (``{"kind": "batch", "events": [...]}``), each
  holding ``batch_size`` events of one partition — the lever from DESIGN.md;
- *single*: one event per Kafka message, keyed by its trajectory — the framing an
  idiomatic per-event consumer expects.

Partitions are chosen from the event's key (agent run, else conversation, else
deployment) so that state stays where its key is partitioned in both framings.

>>> events = generate(200, seed=3)
>>> len(events) >= 200 and all("event_id" in e for e in events)
True
>>> msgs = batched_messages(events, partitions=2, batch_size=50)
>>> sum(m.count for m in msgs) == len(events)
True
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.demo.fleet import FleetGenerator


@dataclass(frozen=True, slots=True)
class Message:
    partition: int
    key: bytes | None
    value: bytes
    count: int


def generate(n: int, *, seed: int = 7, start_ts: float | None = None, span_s: float = 1200.0,
             progress: tuple[float, float] = (0.0, 1.0)) -> list[dict[str, Any]]:
    """``n`` fleet events (plus the injected breaches) over ``span_s`` seconds of event time."""
    t0 = start_ts if start_ts is not None else time.time() - span_s - 120
    gen = FleetGenerator(start_ts=t0, seed=seed)
    chunks = max(1, min(100, n // 100))
    out: list[dict[str, Any]] = []
    for i in range(chunks):
        a, b = t0 + span_s * i / chunks, t0 + span_s * (i + 1) / chunks
        share = n // chunks + (1 if i < n % chunks else 0)
        done = progress[0] + (progress[1] - progress[0]) * (i + 1) / chunks
        out.extend(gen.events_between(a, b, share, done))
    return out


def key_of(event: dict[str, Any]) -> str:
    return FleetGenerator.key_of(event)


def partition_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


def batched_messages(events: list[dict[str, Any]], *, partitions: int, batch_size: int) -> list[Message]:
    per: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        per.setdefault(partition_of(key_of(e), partitions), []).append(e)
    out = []
    for p, items in sorted(per.items()):
        for i in range(0, len(items), batch_size):
            chunk = items[i:i + batch_size]
            out.append(Message(p, None, orjson.dumps({"kind": "batch", "events": chunk}), len(chunk)))
    return out


def single_messages(events: list[dict[str, Any]], *, partitions: int) -> list[Message]:
    out = []
    for e in events:
        k = key_of(e)
        out.append(Message(partition_of(k, partitions), k.encode(), orjson.dumps(e), 1))
    return out


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if name not in set(await admin.list_topics()):
            try:
                await admin.create_topics([NewTopic(name, partitions, 1)])
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, messages: list[Message], events_of: list[list[str]] | None = None,
                  producer: AIOKafkaProducer | None = None) -> dict[str, float]:
    """Send ``messages`` (acks=all) and return {event_id: Kafka timestamp in s} for the ids in ``events_of``."""
    own = producer is None
    if producer is None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                    max_request_size=16 * 1024 * 1024, max_batch_size=1024 * 1024)
        await producer.start()
    stamps: dict[str, float] = {}
    try:
        futures = [await producer.send(topic, value=m.value, key=m.key, partition=m.partition) for m in messages]
        metas = await asyncio.gather(*futures)
        if events_of is not None:
            for meta, ids in zip(metas, events_of, strict=True):
                for i in ids:
                    stamps[i] = meta.timestamp / 1000.0
    finally:
        if own:
            await producer.stop()
    return stamps
