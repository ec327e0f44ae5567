"""`overseer bench` end to end on tiny sizes: every phase runs on the real broker and the real engine,
and the JSON carries every field with a positive number. Timings are not asserted (they live in the bench)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
FIELDS = ("ceiling_eps", "baseline_eps", "overseer_eps", "ratio_vs_ceiling", "ratio_vs_baseline", "latency_ms_p50",
          "latency_ms_p99", "state_bytes_per_key")


def test_bench_runs_every_phase_and_prints_one_json_object(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {**os.environ, "OVERSEER_KAFKA_BOOTSTRAP": kafka_bootstrap, "OVERSEER_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "pipeline_bench.py"), "--events", "3000", "--batch-size", "200",
         "--workers", "1,2", "--baseline-events", "300", "--latency-seconds", "3", "--latency-rate", "500",
         "--state-keys", "2000", "--workdir", str(tmp_path / "work"), "--json"],
        cwd=REPO, env=env, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-4000:]
    result = orjson.loads(proc.stdout.decode().strip().splitlines()[-1])
    for name in FIELDS:
        assert isinstance(result[name], (int, float)) and result[name] > 0, (name, result[name])
    assert set(result["workers"]) == {"1", "2"}
    for run in result["workers"].values():
        assert run["eps_total"] > 0 and run["stored"] >= result["events"]
        for stages in run["stages"]:  # where each worker's time went, and how busy its ClickHouse thread was
            assert stages["seconds"]["rules"] > 0 and stages["sink_busy_s"] > 0
    assert len(result["workers"]["2"]["stored_per_worker"]) == 2 and all(result["workers"]["2"]["stored_per_worker"])
    assert result["every_event_stored"] and result["deadlettered"] == 0
    floor = result["storage_floor"]  # what storing an event costs ClickHouse, and the (c)/(a) it allows
    assert floor["store"]["cpu_us_per_event"] > 0 and 0 < result["ratio_vs_ceiling_storage_bound"] < 2
    assert abs(floor["ceiling_us_per_event"] - 1e6 / result["ceiling_eps"]) < 0.01  # against this run's (a)
    assert result["rules"] > 0 and result["detectors"] > 0  # the built-in packs were loaded
    assert result["latency_samples"] > 0
    assert result["overseer_single_message_eps"] > 0  # the baseline's framing through Overseer too
    assert all(v > 0 for v in result["peak_rss_mb"].values())
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())  # cleaned up
