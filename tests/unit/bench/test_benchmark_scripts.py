"""The in-process benchmarks (benchmarks/store_floor.py, stages_bench.py) run on the real engine (timings live there)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[3]


def test_store_floor_stores_every_event_and_bounds_the_ratio() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "store_floor.py"), "--events", "2000", "--json"],
                          cwd=REPO, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]  # it asserts every event stored
    r = orjson.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert r["events"] >= 2000
    for stage in ("decode", "encode", "parse", "plain", "store"):
        assert r[stage]["cpu_us_per_event"] > 0, stage
    d, s = r["ceiling_us_per_event"], r["store"]["cpu_us_per_event"]
    assert r["max_ratio_vs_ceiling"] == round(2 * d / (d + s), 3)


def test_stages_bench_times_every_stage_and_stores_the_batches() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "stages_bench.py"), "--events", "2000",
                           "--messages-per-batch", "2", "--json"], cwd=REPO, capture_output=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    r = orjson.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert r["events"] >= 2000 and r["gc"] == "worker"
    assert set(r["us_per_event"]) == {"decode", "seq_partials", "rules", "partials", "snapshot", "detections",
                                      "events_json"}
    assert r["insert"]["cpu_us_per_event"] > 0
