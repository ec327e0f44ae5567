"""Crash consistency: kill -9 a worker at each point of a batch, restart it, lose nothing, repeat nothing.

The worker kills itself with SIGKILL (``OVERSEER_FAULT_CRASH_AT``, see
streams/faults.py) at a deterministic point; a fresh worker process on the same
home, topics and consumer group then replays whatever was not committed —
with a different batch size, so the replayed batches are cut at other offsets
than the ones already stored. Afterwards:

- every valid event is in ClickHouse exactly once (count() == uniqExact(event_id)
  == events sent, without FINAL — the replay fence, not a merge, made it so);
- the breach's detections exist (none lost);
- every idempotency key on the kill-switch topic appears once (no command
  issued twice), and the breach's deployment is paused.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.faults.common import (
    assert_breach_detected_and_paused,
    assert_events_exactly_once,
    assert_one_command_per_key,
    breach,
    killswitch_commands,
    now_minus,
    send,
    traffic,
)
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration

FAST = {"OVERSEER_KAFKA_SESSION_TIMEOUT_S": "6", "OVERSEER_STALL_AFTER_S": "20", "OVERSEER_LAG_POLL_INTERVAL_S": "2"}  # the killed member leaves the group quickly

POINTS = [
    "before_sink:3",     # nothing of the third batch written
    "after_sink:3",      # third batch in ClickHouse, nothing published, offsets not committed
    "before_ack:3",      # third batch stored and published, offsets not committed
    "before_command:1",  # a policy decided; the command is not on the topic yet
    "after_command:1",   # the command is on the topic; not yet recorded as issued
]


@pytest.mark.parametrize("spec", POINTS)
def test_kill_at_point_then_restart_loses_nothing_repeats_nothing(spec: str, tmp_path: Path,
                                                                 kafka_bootstrap: str) -> None:
    home = tmp_path / "home"
    crashing = WorkerProcess(home, kafka_bootstrap, env={**FAST, "OVERSEER_FAULT_CRASH_AT": spec, "OVERSEER_BATCH_MAX": "4"})
    crashing.start()
    t0 = now_minus(20)
    ordinary = traffic(240, t0)
    exfil = breach(t0 + timedelta(minutes=5))
    asyncio.run(send(kafka_bootstrap, crashing.topic("events"), ordinary, per_message=10, keep_together=exfil))
    assert crashing.proc is not None
    code = crashing.proc.wait(timeout=180)
    assert code == -signal.SIGKILL, f"the fault point {spec} was not reached:\n{crashing.log_tail()}"

    worker = WorkerProcess(home, kafka_bootstrap, prefix=crashing.prefix, env={**FAST, "OVERSEER_BATCH_MAX": "7"})
    worker.start()
    try:
        sent = ordinary + exfil
        assert_events_exactly_once(worker, sent)
        assert_breach_detected_and_paused(worker)
        per_key = assert_one_command_per_key(killswitch_commands(worker))
        stats = worker.get("/overseer/stats")
        print(f"{spec}: sent {len(sent)}, stored {stats['stored']['events']}, "
              f"replayed-and-skipped {stats['sink']['replayed_skipped']}, commands {dict(per_key)}, "
              f"replays suppressed {stats['counters'].get('killswitch_replays_suppressed', 0)}")
    finally:
        worker.stop()


def test_kill_while_evaluated_batches_wait_for_the_store_loses_nothing(tmp_path: Path, kafka_bootstrap: str) -> None:
    """The detect agent evaluates batches ahead of the store (up to OVERSEER_COMMITS_IN_FLIGHT); Faust acks a
    batch when its loop body returns, so each message holds a reference until its batch is stored. With
    ClickHouse down, batches are evaluated but never stored: a kill -9 then must find none of their offsets
    committed (Faust commits every second), or the restarted worker would never see those events again."""
    home = tmp_path / "home"
    stuck = WorkerProcess(home, kafka_bootstrap, env={**FAST, "OVERSEER_FAULT_CLICKHOUSE_DOWN": "40:600",
                                                      "OVERSEER_BATCH_MAX": "3", "OVERSEER_SINK_RETRY_MAX_S": "1"})
    stuck.start()
    t0 = now_minus(20)
    before = traffic(60, t0, tag="-before")
    during = traffic(400, t0 + timedelta(minutes=2), tag="-during")
    try:
        asyncio.run(send(kafka_bootstrap, stuck.topic("events"), before, per_message=10))
        assert_events_exactly_once(stuck, before)
        sent = 0  # trickle until a store fails: the outage has begun
        deadline = time.monotonic() + 90
        while stuck.get("/overseer/stats")["sink"]["failing_for_s"] <= 0:
            assert time.monotonic() < deadline and sent < len(during), "the ClickHouse outage never began"
            asyncio.run(send(kafka_bootstrap, stuck.topic("events"), during[sent:sent + 5], per_message=5))
            sent += 5
            time.sleep(1.0)
        stored_then = stuck.get("/overseer/stats")["counters"].get("events_in", 0)
        asyncio.run(send(kafka_bootstrap, stuck.topic("events"), during[sent:], per_message=10))
        stuck.wait_counter("fastlane_events", len(before) + len(during))  # fetched and decoded
        time.sleep(3.0)  # three of Faust's commit intervals
        stats = stuck.get("/overseer/stats")
        assert stats["counters"].get("events_in", 0) == stored_then  # nothing stored since ...
        assert stats["rules_engine"]["events"] > stored_then  # ... but batches were evaluated ahead of the store
    finally:
        stuck.stop(kill=True)

    worker = WorkerProcess(home, kafka_bootstrap, prefix=stuck.prefix, env=FAST)
    worker.start()
    try:
        assert_events_exactly_once(worker, before + during)
    finally:
        worker.stop()
