"""Publishing event dicts to the events topic, with backpressure.

:class:`EventPublisher` wraps one aiokafka producer with idempotence and
``acks=all``: a batch counts as published when every in-sync replica has it,
and a retried send is not duplicated by the broker. Events travel as
``EventBatch`` messages (see :mod:`streams.ingest.batching`).

``client_kwargs`` (TLS/SASL, see ``streams.kafka.clients.producer_kwargs``)
are applied last, so ``{"enable_idempotence": False}`` turns idempotence off
for brokers that cannot do it (the Tansu fallback).

Backpressure: at most ``max_pending_events`` events may be in flight (sent,
not yet acknowledged). :meth:`EventPublisher.publish` *waits* for room;
callers that must not wait (the HTTP receiver answers 503 instead) ask
:meth:`EventPublisher.has_capacity` first. Rejected items go to the
dead-letter topic through :meth:`EventPublisher.deadletter`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams.ingest.adapters.base import ItemError
from streams.ingest.batching import Message, plan_messages
from streams.ingest.deadletters import oversized_error, to_deadletter


@dataclass(slots=True)
class PublishStats:
    messages: int = 0
    events: int = 0
    deadletters: int = 0
    waits: int = 0  # publishes that had to wait for room (backpressure engaged)


@dataclass(slots=True)
class Receipt:
    """What one :meth:`EventPublisher.publish` call did."""

    events: int = 0
    messages: int = 0
    rejected: list[ItemError] = field(default_factory=list)


class EventPublisher:
    def __init__(self, bootstrap: str, topic: str, deadletter_topic: str, *, producer_id: str | None = None,
                 max_batch: int = 500, max_message_bytes: int = 1_048_576, max_pending_events: int = 50_000,
                 linger_ms: int = 5, compression_type: str | None = None,
                 client_kwargs: dict[str, Any] | None = None) -> None:
        self.topic = topic
        self.deadletter_topic = deadletter_topic
        self.producer_id = producer_id
        self.max_batch = max_batch
        self.max_message_bytes = max_message_bytes
        self.max_pending_events = max_pending_events
        self.stats = PublishStats()
        self._pending = 0
        self._room = asyncio.Condition()
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap, "enable_idempotence": True, "acks": "all", "linger_ms": linger_ms,
            "compression_type": compression_type,
            "max_request_size": max(max_message_bytes, 1_048_576) + 65_536, **(client_kwargs or {})}
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect (aiokafka needs the running loop, so the client is made here, not in ``__init__``)."""
        if self._producer is None:
            producer = AIOKafkaProducer(**self._config)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def __aenter__(self) -> EventPublisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def pending(self) -> int:
        return self._pending

    def has_capacity(self, n: int) -> bool:
        return self._pending == 0 or self._pending + n <= self.max_pending_events

    async def publish(self, events: list[dict[str, Any]], origin: str = "api") -> Receipt:
        """Send ``events`` as batches and wait for the brokers' acknowledgement.

        Events too large for one message are not sent; they are dead-lettered
        (reason ``oversized``) and listed in the receipt.
        """
        messages, oversized = plan_messages(events, self.producer_id, self.max_batch, self.max_message_bytes)
        receipt = Receipt()
        for index, size in oversized:
            raw = orjson.dumps(events[index], option=orjson.OPT_NON_STR_KEYS)
            receipt.rejected.append(oversized_error(index, size, self.max_message_bytes, raw))
        if receipt.rejected:
            await self.deadletter(receipt.rejected, origin)
        await self._send_all(self.topic, messages)
        receipt.events = sum(m.count for m in messages)
        receipt.messages = len(messages)
        self.stats.events += receipt.events
        self.stats.messages += receipt.messages
        return receipt

    async def deadletter(self, errors: Iterable[ItemError], origin: str) -> int:
        messages = [Message(None, to_deadletter(e, origin).model_dump_json().encode(), 1) for e in errors]
        await self._send_all(self.deadletter_topic, messages)
        self.stats.deadletters += len(messages)
        return len(messages)

    async def _send_all(self, topic: str, messages: list[Message]) -> None:
        if not messages:
            return
        if self._producer is None:
            raise RuntimeError("EventPublisher.start() was not awaited")
        futures = []
        for message in messages:
            await self._reserve(message.count)
            try:
                future = await self._producer.send(topic, value=message.value, key=message.key)
            except BaseException:
                await self._release(message.count)
                raise
            future.add_done_callback(lambda _f, n=message.count: asyncio.ensure_future(self._release(n)))
            futures.append(future)
        await asyncio.gather(*futures)

    async def _reserve(self, n: int) -> None:
        async with self._room:
            if not self.has_capacity(n):
                self.stats.waits += 1
                await self._room.wait_for(lambda: self.has_capacity(n))
            self._pending += n

    async def _release(self, n: int) -> None:
        async with self._room:
            self._pending -= n
            self._room.notify_all()
