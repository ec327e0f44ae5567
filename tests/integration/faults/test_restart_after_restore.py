"""A worker restarted while a Faust table has changelog data to restore takes every waiting event.

Regression test for the stall once listed as an open issue in docs/operations.md ("A worker that
stopped after its first batch"). When a table had something to restore (here: the alert raised by
a breach, in the ``alert-state`` table), faust-streaming 0.15.3 resumed the stream partitions while
the Fetcher that had read the changelogs was still fetching. A fetch in flight returned the events
topic's records right then; they went into the detect agent's queue and were cleared by flow
control milliseconds later, and the seek to the committed offsets did not fetch them again (there
was no committed offset yet). The worker processed the batch it had already taken and then waited
for records that never came: partitions assigned and not paused, flow active, lag constant.

Records were lost for good only on partitions without a committed offset (otherwise the seek
fetched them again), and then in about one such restart in two on a 2-core machine. So the worker
is killed and restarted ``CYCLES`` times, each time with alert state to restore and new events
waiting on a partition the group has never committed (cycle ``i`` writes to partition ``i``); the
test fails on the first restart that stops consuming. No liveness restart here — the point is that
none is needed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.faults.common import (
    assert_breach_detected_and_paused,
    now_minus,
    read_topic,
    traffic,
)
from tests.integration.faults.common import breach as breach_events
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration

CYCLES = 8
FAST = {"OVERSEER_KAFKA_SESSION_TIMEOUT_S": "6", "OVERSEER_LAG_POLL_INTERVAL_S": "2", "OVERSEER_BATCH_MAX": "7",
        "OVERSEER_TOPIC_PARTITIONS": str(CYCLES + 1)}


async def send_to_partition(bootstrap: str, topic: str, events: list[dict[str, Any]], partition: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, key=events[i]["agent_run_id"].encode(), partition=partition,
                                       value=orjson.dumps({"kind": "batch", "events": events[i:i + 5]}))
                   for i in range(0, len(events), 5)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _wait_all_stored(worker: WorkerProcess, expected: int, cycle: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    stored = 0
    while time.monotonic() < deadline:
        stored = worker.sql("SELECT uniqExact(event_id) FROM events")[0][0]
        if stored >= expected:
            return
        time.sleep(0.5)
    stats = worker.get("/overseer/stats")
    raise AssertionError(f"restart {cycle}: {stored} of {expected} events stored after {timeout:.0f}s — the worker "
                         f"stopped consuming; lag {stats.get('consumer_lag')}, consumer {stats.get('consumer')}, "
                         f"counters {stats.get('counters')}")


def _wait_lag_zero(worker: WorkerProcess, cycle: int, timeout: float = 30.0) -> None:
    """Every offset committed: a record lost on a partition whose events were already stored (a replay)
    does not show in the count, but it holds the committed offset back."""
    deadline = time.monotonic() + timeout
    lag: dict[str, int] = {}
    while time.monotonic() < deadline:
        lag = {tp: n for tp, n in worker.get("/overseer/stats")["consumer_lag"].items() if ".events." in tp}
        if lag and not any(lag.values()):
            return
        time.sleep(1.0)
    raise AssertionError(f"restart {cycle}: every event is stored but offsets are not all committed: lag {lag}")


def test_restart_with_table_state_to_restore_consumes_every_waiting_event(tmp_path: Path,
                                                                          kafka_bootstrap: str) -> None:
    home = tmp_path / "home"
    worker = WorkerProcess(home, kafka_bootstrap, env=FAST)
    worker.start()
    t0 = now_minus(30)
    sent = traffic(60, t0, tag="-0") + breach_events(t0 + timedelta(minutes=1))
    asyncio.run(send_to_partition(kafka_bootstrap, worker.topic("events"), sent[:60], partition=0))
    asyncio.run(send_to_partition(kafka_bootstrap, worker.topic("events"), sent[60:], partition=0))
    try:
        _wait_all_stored(worker, len(sent), cycle=0)
        assert_breach_detected_and_paused(worker)
        # the alert is in the alert-state table's changelog: every restart below has state to restore
        changelog = f"{worker.prefix}-app-alert-state-changelog"
        deadline = time.monotonic() + 30
        while not asyncio.run(read_topic(kafka_bootstrap, changelog)):
            assert time.monotonic() < deadline, f"nothing was written to {changelog}"
            time.sleep(1.0)
        for cycle in range(1, CYCLES + 1):
            worker.stop(kill=True)
            more = traffic(35, t0 + timedelta(minutes=2 * cycle), tag=f"-{cycle}")
            asyncio.run(send_to_partition(kafka_bootstrap, worker.topic("events"), more, partition=cycle))
            sent += more
            worker = WorkerProcess(home, kafka_bootstrap, prefix=worker.prefix, env=FAST)
            worker.start()
            _wait_all_stored(worker, len(sent), cycle)
            _wait_lag_zero(worker, cycle)
        total, distinct = worker.sql("SELECT count(), uniqExact(event_id) FROM events")[0]
        assert (total, distinct) == (len(sent), len(sent))
        print(f"{CYCLES} restarts with alert state to restore: {len(sent)} events stored once, no stall")
    finally:
        worker.stop()
