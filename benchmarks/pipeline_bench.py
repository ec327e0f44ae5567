"""The whole pipeline against its ceiling and the per-event Faust baseline (not a test; timings live here).

The same generated fleet events, on one real Kafka broker, in one run:

(a) ceiling   — raw aiokafka ``getmany`` + orjson decode of every event;
(b) baseline  — an idiomatic per-event Faust agent (pydantic model, rules per event, a windowed table);
(c) Overseer  — real ``overseer worker`` subprocesses, built-in packs and detectors, every event stored in
                ClickHouse; 1 and 2 workers on as many partitions;

plus live event-to-detection latency and state bytes per active key. This is ``overseer bench``;
see docs/performance.md for what the numbers mean. Run::

    .venv/bin/python benchmarks/pipeline_bench.py                 # human-readable
    .venv/bin/python benchmarks/pipeline_bench.py --json          # one JSON object as the last line
    OVERSEER_KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python benchmarks/pipeline_bench.py --events 200000
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import typer

from streams.commands.bench import bench

if __name__ == "__main__":
    typer.run(bench)
