"""The bench's parts that need no broker: traffic framing, the state probe, the report."""

from __future__ import annotations

from collections import Counter

import orjson

from streams.bench import traffic
from streams.bench.run import BenchOptions, report
from streams.bench.state import measure


def test_both_framings_carry_every_event_once_on_the_partition_of_its_key() -> None:
    events = traffic.generate(1500, seed=4)
    assert len(events) >= 1500  # plus the injected breaches
    assert {e.get("tool_arguments") for e in events} & {"rm -rf /var/lib/postgresql"}  # destructive burst injected
    batched = traffic.batched_messages(events, partitions=3, batch_size=100)
    seen: Counter[str] = Counter()
    for m in batched:
        body = orjson.loads(m.value)
        assert body["kind"] == "batch" and len(body["events"]) == m.count <= 100
        for e in body["events"]:
            assert traffic.partition_of(traffic.key_of(e), 3) == m.partition
            seen[e["event_id"]] += 1
    assert seen == Counter(e["event_id"] for e in events)
    single = traffic.single_messages(events, partitions=3)
    assert [orjson.loads(m.value)["event_id"] for m in single] == [e["event_id"] for e in events]
    assert all(m.key == traffic.key_of(orjson.loads(m.value)).encode() for m in single)


def test_state_probe_counts_active_keys_and_their_bytes() -> None:
    for profile, entries_per_key in (("window", 1), ("worst", 2)):
        out = measure(3000, profile, traced_keys=1000)
        assert out["keys"] == 3000 and out["traced_keys"] == 1000
        assert out["engine_state_entries"] == entries_per_key * 3000  # every key really holds state
        assert out["state_bytes_per_key"] > 0 and out["snapshot_bytes_per_key"] > 0


def test_report_has_the_fields_scripts_read() -> None:
    opts = BenchOptions(events=1000, workers=(1, 2))
    run = {"eps_total": 9000.0, "eps_per_worker": 9000.0, "stored": 1000, "stored_per_worker": [1000],
           "wall_eps_total": 8000.0, "per_worker": [], "rules": 23, "detectors": 8, "detections": 3,
           "deadlettered": 0, "peak_rss_mb": [300.0], "latency": {"p50": 120.0, "p99": 400.0, "samples": 5}}
    runs = {"1": run, "2": {**run, "eps_total": 12000.0, "eps_per_worker": 6000.0, "stored_per_worker": [500, 500]},
            "single_message": {**run, "eps_per_worker": 3000.0, "stored": 500}}
    state = {"state_bytes_per_key": 150.0, "rss_bytes_per_key": 300.0, "snapshot_bytes_per_key": 60.0,
             "keys": 5000, "peak_rss_mb": 90.0}
    r = report(opts, 1000, {"eps": 90000.0, "peak_rss_mb": 40.0, "events": 1000},
               {"eps": 80000.0, "peak_rss_mb": 40.0}, {"eps": 600.0, "events": 500, "peak_rss_mb": 70.0}, runs,
               {"window": state, "worst": state})
    assert r["ratio_vs_ceiling"] == 0.1 and r["ratio_vs_baseline"] == 15.0
    assert r["targets"] == {"overseer_10x_baseline": True, "overseer_half_of_ceiling": False,
                            "state_200_bytes_per_key": True}
    assert r["workers"]["2"]["eps_total"] == 12000.0 and r["latency_ms_p99"] == 400.0
    assert set(r["workers"]) == {"1", "2"} and r["ratio_vs_baseline_single_message"] == 5.0
    orjson.dumps(r)
