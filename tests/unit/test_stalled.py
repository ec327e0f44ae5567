"""/healthz's verdict (WorkerRuntime.stalled): events wait on the events topic and no batch finishes."""

from __future__ import annotations

from pathlib import Path

from streams.pipeline.core import build_core
from streams.runtime import WorkerRuntime
from streams.settings import Settings
from streams.store.sink import ClickHouseSink


def test_stalled_when_events_wait_and_no_batch_finishes(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", home=tmp_path)
    sink = ClickHouseSink(lambda: (_ for _ in ()).throw(AssertionError("no store in this test")))
    rt = WorkerRuntime(settings, "127.0.0.1:1", build_core(None, allowed_lateness_s=60), sink)
    rt.created_wall = rt.last_progress_wall = rt.created_wall - settings.stall_after_s - 1
    rt.telemetry.consumer_lag(rt.topics["detections"], 0, 50)  # lag elsewhere does not count
    assert rt.stalled() is None
    rt.telemetry.consumer_lag(rt.topics["events"], 0, 7)
    rt.telemetry.consumer_lag(rt.topics["events"], 1, 5)
    assert (rt.stalled() or "").startswith("12 events are waiting")
    rt.last_progress_wall += settings.stall_after_s + 1  # a batch just finished
    assert rt.stalled() is None
