"""The gateway emitter against the real broker: stamping, batching, contiguous seqs, bounded buffer."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from rules.health import ProducerGapTracker
from schemas.events import Event
from streams.ingest.emitter import AsyncEmitter, BufferFull, Emitter
from tests.integration.ingest.conftest import Topics, events_of, read_topic

pytestmark = pytest.mark.integration


def event(i: int) -> dict[str, object]:
    return {"event_type": "tool_call", "ts": "2026-11-27T10:00:00Z", "deployment_id": "gw-test",
            "agent_run_id": f"run-{i % 7}", "tool_name": "read_file", "step_index": i}


def test_sync_emitter_from_threads_round_trip(topics: Topics) -> None:
    n_threads, per_thread = 4, 300
    with Emitter(topics.bootstrap, "gw-eu-1", topic=topics.events, deadletter_topic=topics.deadletter,
                 max_batch=100, linger_s=0.05) as emitter:
        def work(base: int) -> None:
            for i in range(per_thread):
                emitter.emit(event(base + i))
        threads = [threading.Thread(target=work, args=(k * per_thread,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert emitter.flush(timeout=30)
        stats = emitter.stats
        assert (stats.emitted, stats.sent, stats.dropped, stats.rejected_full) == (1200, 1200, 0, 0)
        assert stats.batches >= 12  # max_batch=100

    landed = asyncio.run(read_topic(topics.bootstrap, topics.events, stats.batches))
    events = events_of(landed)
    assert len(events) == 1200 and all(len(m.value["events"]) <= 100 for m in landed)
    assert sorted(e["producer_seq"] for e in events) == list(range(1200))  # contiguous, no duplicates
    assert {e["producer_id"] for e in events} == {"gw-eu-1"}
    assert len({e["event_id"] for e in events}) == 1200
    for m in landed:  # keyed by agent run: a run's events stay on one partition
        assert {e["agent_run_id"].encode() for e in m.value["events"]} == {m.key}
    for e in events[:5]:
        Event.model_validate(e)
    tracker = ProducerGapTracker(lateness_s=0)
    assert tracker.observe([{**e, "_ts": 0.0} for e in events]) == [] and tracker.stats.duplicates == 0


def test_async_emitter_fills_ids_and_time(topics: Topics) -> None:
    async def main() -> list[int]:
        emitter = AsyncEmitter(topics.bootstrap, "gw-async", topic=topics.events, deadletter_topic=topics.deadletter,
                               linger_s=0.01)
        await emitter.start()
        seqs = [emitter.emit({"event_type": "inference", "deployment_id": "d"}) for _ in range(3)]
        assert await emitter.flush(timeout=20)
        await emitter.close()
        return seqs

    assert asyncio.run(main()) == [0, 1, 2]
    events = events_of(asyncio.run(read_topic(topics.bootstrap, topics.events, 1)))
    assert [e["producer_seq"] for e in events] == [0, 1, 2]
    for e in events:
        ev = Event.model_validate(e)
        assert ev.event_id and ev.ts.tzinfo is not None


def _dead_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_bounded_buffer_raises_or_drops_oldest_counted() -> None:
    async def main() -> None:
        strict = AsyncEmitter(_dead_port(), "gw-x", max_buffer=3, linger_s=60, retry_max_s=0.2)
        for i in range(3):
            strict.emit(event(i))
        with pytest.raises(BufferFull, match="max_buffer"):
            strict.emit(event(3))
        assert strict.stats.rejected_full == 1 and strict.buffered == 3

        lossy = AsyncEmitter(_dead_port(), "gw-y", max_buffer=3, linger_s=60, on_full="drop_oldest",
                             retry_max_s=0.2)
        seqs = [lossy.emit(event(i)) for i in range(5)]
        assert seqs == [0, 1, 2, 3, 4] and lossy.stats.dropped == 2 and lossy.buffered == 3

    asyncio.run(main())


def test_unreachable_kafka_keeps_events_and_counts_them_on_close() -> None:
    async def main() -> None:
        emitter = AsyncEmitter(_dead_port(), "gw-down", linger_s=0.01, retry_max_s=0.3)
        await emitter.start()
        for i in range(4):
            emitter.emit(event(i))
        assert await emitter.flush(timeout=1.0) is False
        assert emitter.buffered + emitter._sending == 4  # nothing vanished while Kafka was away
        assert emitter.stats.retries >= 1
        await emitter.close(timeout=0.1)
        assert emitter.stats.sent == 0 and emitter.stats.lost_on_close == 4

    asyncio.run(main())


def test_bad_configuration_fails_fast_without_leaking_the_thread() -> None:
    before = threading.active_count()
    with pytest.raises(ValueError, match="on_full"):
        Emitter(_dead_port(), "gw-bad", on_full="block")
    assert threading.active_count() == before
