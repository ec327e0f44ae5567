"""A small emitter for model gateways: stamp, buffer, batch, retry — never block the gateway.

``emit(event)`` only appends to an in-memory buffer: it stamps
``producer_id`` and a strictly increasing ``producer_seq`` (the numbers that
let :class:`rules.health.ProducerGapTracker` see lost logs), fills
``event_id`` (UUIDv7) and ``ts`` when missing, and returns the seq. A
background task sends up to ``max_batch`` events per Kafka message after at
most ``linger_s`` through :class:`~streams.ingest.producer.EventPublisher`
(idempotent, ``acks=all``), retrying with exponential backoff (tenacity) while
Kafka is away — events wait in the buffer, in order.

The buffer is bounded by ``max_buffer`` events. When it is full,
``on_full="raise"`` (default) makes ``emit`` raise :class:`BufferFull` so the
gateway decides; ``on_full="drop_oldest"`` discards the oldest buffered event
and counts it in ``stats.dropped`` (the seq gap then shows up as a
monitor-health detection too). Nothing is lost without a counter.

:class:`AsyncEmitter` is for asyncio gateways; :class:`Emitter` is the same
thing for threaded code, running the asyncio emitter on its own thread.
No Faust here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from aiokafka.errors import KafkaError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from schemas.ids import new_event_id
from streams.ingest.producer import EventPublisher

log = logging.getLogger(__name__)
T = TypeVar("T")
OnFull = Literal["raise", "drop_oldest"]


class BufferFull(RuntimeError):
    """The emitter's buffer holds ``max_buffer`` events: Kafka is slower than the gateway, or away."""


@dataclass(slots=True)
class EmitterStats:
    emitted: int = 0  # accepted by emit()
    sent: int = 0  # acknowledged by Kafka
    batches: int = 0
    retries: int = 0  # send attempts that failed and were retried
    send_failures: int = 0  # batches put back after the retry budget ran out
    dropped: int = 0  # oldest events discarded because the buffer was full (on_full="drop_oldest")
    rejected_full: int = 0  # emit() calls refused with BufferFull
    lost_on_close: int = 0  # still buffered when close() gave up


class AsyncEmitter:
    def __init__(self, bootstrap: str, producer_id: str, *, topic: str = "overseer.events.v1",
                 deadletter_topic: str = "overseer.deadletter.v1", max_batch: int = 500, linger_s: float = 0.2,
                 max_buffer: int = 100_000, on_full: OnFull = "raise", retry_max_s: float = 30.0,
                 first_seq: int = 0, client_kwargs: dict[str, Any] | None = None) -> None:
        if on_full not in ("raise", "drop_oldest"):
            raise ValueError("on_full must be 'raise' or 'drop_oldest'")
        self.producer_id = producer_id
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.max_buffer = max_buffer
        self.on_full = on_full
        self.retry_max_s = retry_max_s
        self.stats = EmitterStats()
        self._publisher = EventPublisher(bootstrap, topic, deadletter_topic, producer_id=producer_id,
                                         max_batch=max_batch, client_kwargs=client_kwargs)
        self._buffer: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()  # emit() may be called from other threads (see Emitter)
        self._seq = first_seq
        self._sending = 0
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._closing = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def start(self) -> None:
        """Start the sender. Kafka need not be up yet: events buffer until it is."""
        self._loop = asyncio.get_running_loop()
        self._wake, self._idle = asyncio.Event(), asyncio.Event()
        self._idle.set()
        self._task = asyncio.create_task(self._run(), name=f"emitter:{self.producer_id}")

    def emit(self, event: dict[str, Any]) -> int:
        """Buffer one event (never blocks); return its ``producer_seq``."""
        with self._lock:
            if len(self._buffer) >= self.max_buffer:
                if self.on_full == "raise":
                    self.stats.rejected_full += 1
                    raise BufferFull(f"emitter buffer holds {self.max_buffer} events (Kafka unreachable or slow); "
                                     "retry later, raise max_buffer, or use on_full='drop_oldest'")
                self._buffer.popleft()
                self.stats.dropped += 1
            seq = self._seq
            self._seq += 1
            stamped = dict(event)
            stamped["producer_id"] = self.producer_id
            stamped["producer_seq"] = seq
            if not stamped.get("event_id"):
                stamped["event_id"] = new_event_id()
            if not stamped.get("ts"):
                stamped["ts"] = datetime.now(UTC).isoformat()
            self._buffer.append(stamped)
            self.stats.emitted += 1
            size = len(self._buffer)
        if size == 1 or size >= self.max_batch:
            self._signal()
        return seq

    async def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered now; True when all of it is acknowledged within ``timeout``."""
        assert self._idle is not None, "start() first"
        self._signal()
        try:
            await asyncio.wait_for(self._wait_idle(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float | None = 10.0) -> None:
        """Flush (up to ``timeout``), then stop. Whatever is still buffered is counted in ``lost_on_close``."""
        if self._task is None:
            return
        done = await self.flush(timeout)
        self._closing = True
        self._signal()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
        if not done:
            with self._lock:
                self.stats.lost_on_close += len(self._buffer)
                self._buffer.clear()
            log.warning("emitter %s closed with %d events unsent", self.producer_id, self.stats.lost_on_close)
        await self._publisher.stop()

    async def _wait_idle(self) -> None:
        assert self._idle is not None
        while self._buffer or self._sending:
            self._idle.clear()
            self._signal()
            await self._idle.wait()

    def _signal(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def _run(self) -> None:
        assert self._wake is not None and self._idle is not None
        while True:
            if not self._buffer:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._buffer) < self.max_batch and self._idle.is_set() and not self._closing:
                self._wake.clear()  # linger: let the batch fill, unless someone flushes
                try:
                    await asyncio.wait_for(self._wake.wait(), self.linger_s)
                except TimeoutError:
                    pass
            with self._lock:
                batch = [self._buffer.popleft() for _ in range(min(self.max_batch, len(self._buffer)))]
                self._sending = len(batch)
            try:
                await self._send(batch)
            except asyncio.CancelledError:
                self._requeue(batch)  # closing mid-send: keep them to be counted, not vanish
                raise
            finally:
                self._sending = 0

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        try:
            async for attempt in AsyncRetrying(stop=stop_after_delay(self.retry_max_s),
                                               wait=wait_exponential(multiplier=0.1, max=5.0),
                                               retry=retry_if_exception_type(KafkaError), reraise=True):
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        self.stats.retries += 1
                    if not self._connected:
                        await self._publisher.start()
                        self._connected = True
                    await self._publisher.publish(batch, origin=f"emitter:{self.producer_id}")
        except KafkaError as exc:
            self.stats.send_failures += 1
            log.warning("emitter %s: Kafka send failed for %.0fs (%s); %d events kept in the buffer",
                        self.producer_id, self.retry_max_s, exc, len(batch))
            self._requeue(batch)
            return
        self.stats.sent += len(batch)
        self.stats.batches += 1

    def _requeue(self, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            self._buffer.extendleft(reversed(batch))
            while len(self._buffer) > self.max_buffer:  # the newest would push them out: drop oldest, counted
                self._buffer.popleft()
                self.stats.dropped += 1


class Emitter:
    """The synchronous face of :class:`AsyncEmitter`, for threaded gateways.

    The asyncio emitter runs on a private event loop in a daemon thread;
    ``emit`` is thread-safe and never blocks.
    """

    def __init__(self, bootstrap: str, producer_id: str, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"emitter:{producer_id}", daemon=True)
        self._thread.start()
        try:
            self._inner: AsyncEmitter = self._call(self._make(bootstrap, producer_id, kwargs))
        except BaseException:
            self._stop_loop()
            raise

    async def _make(self, bootstrap: str, producer_id: str, kwargs: dict[str, Any]) -> AsyncEmitter:
        emitter = AsyncEmitter(bootstrap, producer_id, **kwargs)
        await emitter.start()
        return emitter

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def stats(self) -> EmitterStats:
        return self._inner.stats

    @property
    def buffered(self) -> int:
        return self._inner.buffered

    def emit(self, event: dict[str, Any]) -> int:
        return self._inner.emit(event)

    def flush(self, timeout: float | None = None) -> bool:
        return self._call(self._inner.flush(timeout))

    def close(self, timeout: float | None = 10.0) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._call(self._inner.close(timeout))
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
