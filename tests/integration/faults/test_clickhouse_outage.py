"""ClickHouse unavailable for a while: backpressure, bounded memory, an alert, and nothing lost.

The worker's sink is made to fail as a refused connection would
(``OVERSEER_FAULT_CLICKHOUSE_DOWN=START:DURATION``) while a producer keeps sending. During the
outage: ``/readyz`` is 503, ``/overseer/stats`` shows ``sink.failing_for_s`` > 0 and the retries,
a monitor-health alert is raised once and counted, the group's consumer lag grows (consumption is
paused: the detect agent awaits the write) and the worker's memory stays bounded. After it: every
event sent is stored exactly once and the alert is in the alerts table and on the alerts topic.
The log never shows the configured secrets.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.faults.common import (
    assert_events_exactly_once,
    now_minus,
    read_topic,
    send,
    traffic,
)
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration

CH_PW = "ch-pw-never-logged-7Hq"
SASL_PW = "sasl-pw-never-logged-3Kd"


def readyz(worker: WorkerProcess) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/readyz", timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def poll(fn: Any, what: str, worker: WorkerProcess, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{worker.log_tail()}")


class Trickle(threading.Thread):
    """A producer sending 20 events every 0.3 s until stopped."""

    def __init__(self, worker: WorkerProcess) -> None:
        super().__init__(daemon=True)
        self.worker = worker
        self.sent: list[dict[str, Any]] = []
        self.stop_flag = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop_flag.is_set():
            batch = traffic(20, now_minus(10), tag=f"-{i}")
            asyncio.run(send(self.worker.bootstrap, self.worker.topic("events"), batch, per_message=20))
            self.sent += batch
            i += 1
            time.sleep(0.3)


def test_clickhouse_outage_pauses_alerts_and_loses_nothing(tmp_path: Path, kafka_bootstrap: str) -> None:
    worker = WorkerProcess(tmp_path / "home", kafka_bootstrap, env={
        "OVERSEER_FAULT_CLICKHOUSE_DOWN": "20:25", "OVERSEER_SINK_RETRY_MAX_S": "1.5",
        "OVERSEER_SINK_ALERT_AFTER_S": "3", "OVERSEER_LAG_POLL_INTERVAL_S": "1",
        "OVERSEER_CLICKHOUSE_PASSWORD": CH_PW, "OVERSEER_KAFKA_SASL_PASSWORD": SASL_PW})
    worker.start()
    trickle = Trickle(worker)
    try:
        trickle.start()
        proc = psutil.Process(worker.proc.pid)  # type: ignore[union-attr]
        # healthy: events flow, ready
        poll(lambda: worker.sql("SELECT count() FROM events")[0][0] > 100, "events before the outage", worker)
        assert readyz(worker) == 200
        rss_before = proc.memory_info().rss

        # the outage: not ready, failing in stats, one alert, lag grows, memory bounded
        poll(lambda: readyz(worker) == 503, "/readyz 503", worker)
        stats = poll(lambda: (s := worker.get("/overseer/stats"))["counters"].get("sink_failing_alerts") and s,
                     "the monitor-health alert", worker)
        assert stats["sink"]["failing_for_s"] > 0 and stats["sink"]["retries"] > 0
        assert "Connection refused" in stats["sink"]["last_error"]
        assert stats["counters"]["sink_failing_alerts"] == 1
        lag_early = sum(stats["consumer_lag"].values())
        in_early = stats["counters"].get("events_in", 0)
        rss_peak, lag_peak = rss_before, lag_early
        while readyz(worker) == 503:
            s = worker.get("/overseer/stats")
            lag_peak = max(lag_peak, sum(s["consumer_lag"].values()))
            rss_peak = max(rss_peak, proc.memory_info().rss)
            assert s["counters"].get("events_in", 0) <= in_early + 2 * 20 * 2000  # at most the batch in flight
            time.sleep(0.5)
        assert lag_peak > lag_early  # consumption paused: the backlog waits in Kafka
        assert rss_peak - rss_before < 150 * 2**20, (rss_before, rss_peak)

        # recovered: ready again, everything stored once, the alert kept
        trickle.stop_flag.set()
        trickle.join()
        assert_events_exactly_once(worker, trickle.sent)
        rows = worker.wait_for("SELECT count() FROM alerts WHERE rule_id = 'monitor.clickhouse_unavailable'",
                               lambda r: r[0][0] >= 1)
        assert rows[0][0] == 1
        alerts = asyncio.run(read_topic(worker.bootstrap, worker.topic("alerts")))
        assert [m for m in alerts if b"monitor.clickhouse_unavailable" in m.value]
        final = worker.get("/overseer/stats")
        assert final["counters"]["sink_failing_alerts"] == 1 and final["sink"]["failing_for_s"] == 0
        print(f"clickhouse outage: sent {len(trickle.sent)}, stored {final['stored']['events']}, "
              f"retries {final['sink']['retries']}, lag {lag_early} -> peak {lag_peak} messages, "
              f"rss {rss_before / 2**20:.0f} MiB -> peak {rss_peak / 2**20:.0f} MiB")
    finally:
        trickle.stop_flag.set()
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert "ClickHouse insert into" in log  # the outage is in the log ...
    assert CH_PW not in log and SASL_PW not in log  # ... the secrets are not
