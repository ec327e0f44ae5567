"""Fresh topics per test on the session's real broker, and a reader to check what landed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

EVENT_PARTITIONS = 3


@dataclass(frozen=True)
class Topics:
    bootstrap: str
    events: str
    deadletter: str


@dataclass(frozen=True)
class Landed:
    key: bytes | None
    value: dict[str, Any]
    partition: int


async def _create(bootstrap: str, names: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, p, 1) for n, p in names.items()])
    finally:
        await admin.close()


@pytest.fixture()
def topics(kafka_bootstrap: str) -> Iterator[Topics]:
    tag = uuid.uuid4().hex[:8]
    t = Topics(kafka_bootstrap, f"test.events.{tag}", f"test.deadletter.{tag}")
    asyncio.run(_create(kafka_bootstrap, {t.events: EVENT_PARTITIONS, t.deadletter: 1}))
    yield t


async def read_topic(bootstrap: str, topic: str, expect: int, timeout_s: float = 20.0) -> list[Landed]:
    """Read from the start until ``expect`` messages arrived (or the timeout; the caller asserts the count)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[Landed] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(out) < expect and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                out += [Landed(r.key, orjson.loads(r.value), r.partition) for r in records]
        if len(out) >= expect:  # anything beyond what we expected would be a duplicate: look briefly
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out += [Landed(r.key, orjson.loads(r.value), r.partition) for r in records]
    finally:
        await consumer.stop()
    return out


def events_of(messages: list[Landed]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        assert m.value["kind"] == "batch"
        out += m.value["events"]
    return out
