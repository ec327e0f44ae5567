"""Read the checkpoints of one partition back from the compacted state topic.

Checkpoints are written (acks=all) to ``overseer.state.v1`` into the same
partition number as the source partition they belong to; the topic is
compacted, so reading a partition from its beginning to its end yields the
latest snapshot of every component of that partition. The runtime reads a
partition once when it starts owning it (start-up or rebalance), before the
first record from it is evaluated.

This deliberately bypasses Faust's table recovery: a changelog written by a
second producer races Faust's own recovery bookkeeping, and our checkpoints
must be awaited before offsets commit, which Faust's buffered changelog
writes do not promise.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


class StateTopicReader:
    def __init__(self, bootstrap: str, topic: str, **client_kwargs: Any) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.client_kwargs = client_kwargs
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def read_partition(self, partition: int, timeout_s: float = 60.0) -> dict[str, str]:
        """``{key: base64 snapshot}`` — the latest value per key in ``partition``."""
        async with self._lock:
            if self._consumer is None:
                self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                                  **self.client_kwargs)
                await self._consumer.start()
            consumer = self._consumer
            tp = TopicPartition(self.topic, partition)
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            # an explicit seek: seek_to_beginning is lazy and loses to the reset already done above
            consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
            latest: dict[str, str] = {}
            deadline = asyncio.get_running_loop().time() + timeout_s
            while await consumer.position(tp) < end:
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"reading checkpoints of {self.topic}[{partition}] took over {timeout_s}s")
                for msgs in (await consumer.getmany(tp, timeout_ms=500)).values():
                    for m in msgs:
                        if m.key is None:
                            continue
                        key = orjson.loads(m.key)
                        if m.value is None:
                            latest.pop(key, None)
                        else:
                            latest[key] = orjson.loads(m.value)
            return latest

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
