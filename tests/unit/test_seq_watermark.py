"""Producer-sequence loss is declared against the low watermark of the events topic's partitions.

Events of one producer are spread over partitions; a partition that is merely behind must not make
its share of the sequence look lost.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from streams.pipeline.core import build_core
from streams.runtime import WorkerRuntime
from streams.settings import Settings
from streams.store.sink import ClickHouseSink


def _runtime(tmp_path: Path) -> WorkerRuntime:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", home=tmp_path, topic_partitions=2, allowed_lateness_s=60)
    sink = ClickHouseSink(lambda: (_ for _ in ()).throw(AssertionError("no store in this test")))
    return WorkerRuntime(settings, "127.0.0.1:1", build_core(None, allowed_lateness_s=60), sink)


def _partial(rt: WorkerRuntime, progress: dict[int, float]) -> tuple[int, bytes]:
    src = {f"{rt.topics['events']}/{p}": ts for p, ts in progress.items()}
    return 0, orjson.dumps({"producer_id": "gw", "ranges": [[0, 0, 0.0, "e0"]], "duplicates": 0,
                            "max_ts": max(progress.values()), "deployment_id": None, "tenant_id": None, "src": src})


def test_a_partition_that_is_behind_holds_the_watermark(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    rt.checkpoint_topic = None
    assert rt.seq_watermark() is None  # nothing seen
    rt.created_wall -= 600  # the worker idled for ten minutes before traffic came: no partition is "silent" yet
    rt.last_event_wall -= 600  # and its own detect agent has not had a batch yet: partials alone mean "not idle"
    t0 = time.time() - 1800  # a backlog: event time half an hour behind the wall clock
    asyncio.run(rt.handle_seq_partials([_partial(rt, {0: t0 + 100})]))
    assert rt.seq_watermark() is None  # partition 1 has not reported yet and is not silent for long
    asyncio.run(rt.handle_seq_partials([_partial(rt, {1: t0 + 20})]))
    assert rt.seq_watermark() == t0 + 20 - 60  # the slower partition decides
    asyncio.run(rt.handle_seq_partials([_partial(rt, {1: t0 + 90})]))
    assert rt.seq_watermark() == t0 + 90 - 60
    # a partition silent for longer than the lateness (while others report) stops holding it back
    rt._src_progress[f"{rt.topics['events']}/1"] = (t0 + 90, time.time() - 61)
    rt._active_since = time.time() - 120
    assert rt.seq_watermark() == t0 + 100 - 60
    # after an idle spell, traffic resumes: the partition that reported before it holds the watermark again
    rt._last_seq_wall = time.time() - 300
    asyncio.run(rt.handle_seq_partials([_partial(rt, {0: t0 + 200})]))
    assert rt.seq_watermark() == t0 + 90 - 60
    # nothing arriving at all: wall time lets the last gaps be declared
    rt.last_event_wall = rt._last_seq_wall = time.time() - 61
    assert rt.seq_watermark() >= time.time() - 121


def test_a_producer_spread_over_two_partitions_is_not_lost_when_one_runs_ahead() -> None:
    from rules.health import ProducerGapTracker, seq_partials
    from streams.pipeline.core import PENDING_RANGES

    def events(parity: int) -> list[dict]:
        return [{"producer_id": "gw", "producer_seq": s, "_ts": 1000.0 + s, "event_id": f"e{s}"}
                for s in range(200) if s % 2 == parity]

    ahead, behind = seq_partials(events(0))[0], seq_partials(events(1))[0]
    naive = ProducerGapTracker(lateness_s=60)
    assert naive.observe_partials(ahead)  # one stream's own clock: the other partition's share looks lost
    tracker = ProducerGapTracker(lateness_s=60, max_pending_ranges=PENDING_RANGES)
    assert tracker.observe_partials(ahead, own_clock=False) == []
    assert tracker.advance(1000.0 - 60, own_clock=False) == []  # the slow partition holds the low watermark
    assert tracker.observe_partials(behind, own_clock=False) == []
    assert tracker.pending("gw") == []  # every hole filled
    assert tracker.advance(10_000.0, own_clock=False) == []
