"""The metric runtime: compile detector items, pre-aggregate per batch, merge, close buckets, restore."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from rules.base import Hit
from rules.items import Location, RawItem
from rules.metrics import MetricRuntime, Partial, compile_items
from tests.unit.detectors.fleet import T0, Anomalies, bucket_events, pack_items, pack_runtime
from tests.unit.detectors.simple_conditions import SimpleContext


def item(name: str = "m", **body: Any) -> RawItem:
    body.setdefault("metric", {"kind": "count"})
    locations = {k: Location("t.yaml", 10 + i, 3) for i, k in enumerate(body)}
    return RawItem("detector", name, {"detector": name, **body}, Location("t.yaml", 1, 3), locations)


def compile_one(**body: Any) -> tuple[MetricRuntime, SimpleContext]:
    ctx = SimpleContext()
    return compile_items([item(**body)], ctx), ctx


def stream(runtime: MetricRuntime, buckets: range, anomalies: Anomalies | None = None, at: int = 10**9,
           seed: int = 5) -> list[Hit]:
    rng = random.Random(seed)  # noqa: S311 - synthetic traffic
    hits: list[Hit] = []
    for b in buckets:
        runtime.merge(runtime.partials(bucket_events(b, rng, anomalies if b >= at else None)))
        hits += runtime.advance(T0 + (b + 1) * 60.0)
    return hits


def bucket_of(hit: Hit) -> int:
    return int((hit.ts - T0) // 60)


# -- compiling ---------------------------------------------------------------
def test_stable_pack_compiles_to_eight_metrics() -> None:
    runtime = pack_runtime()
    assert sorted(runtime.specs) == sorted(i.name for i in pack_items())
    assert {s.kind for s in runtime.specs.values()} == {"rate", "quantile", "mean", "distinct", "first_seen"}


@pytest.mark.parametrize(("body", "code", "key"), [
    ({"metric": {"kind": "median"}}, "OVR402", "metric"),
    ({"metric": {"kind": "mean"}}, "OVR403", "metric"),
    ({"metric": {"kind": "rate"}}, "OVR403", "metric"),
    ({"algorithm": "prophet"}, "OVR406", "algorithm"),
    ({"metric": {"kind": "first_seen", "field": "tool_name"}, "algorithm": "ewma_zscore"}, "OVR406", "algorithm"),
    ({"metric": {"kind": "count"}, "algorithm": "novelty"}, "OVR406", "algorithm"),
    ({"params": {"alpha": 0.1, "treshold": 3}}, "OVR407", "params"),
    ({"params": {"direction": "sideways"}}, "OVR407", "params"),
    ({"bucket": "one minute"}, "OVR405", "bucket"),
    ({"key": "deployment_id, tenant_id", "severity": "urgent"}, "OVR408", "severity"),
    ({"scope": "galaxy"}, "OVR408", "scope"),
    ({"min_count": 0}, "OVR408", "min_count"),
    ({"windw": "5m"}, "OVR409", "windw"),
])
def test_bad_items_report_code_and_location(body: dict[str, Any], code: str, key: str) -> None:
    ctx = SimpleContext()
    good = item("good", metric={"kind": "count"})
    runtime = compile_items([item("bad", **body), good], ctx)
    assert [d.code for d in ctx.diagnostics] == [code]
    assert ctx.diagnostics[0].location == Location("t.yaml", 10 + list(item("bad", **body).body).index(key) - 1, 3)
    assert "'bad'" in ctx.diagnostics[0].message
    assert list(runtime.specs) == ["good"]  # the other items still compile


def test_condition_errors_come_from_the_context_and_drop_the_item() -> None:
    runtime, ctx = compile_one(metric={"kind": "rate", "where": "event_type in (1, 2)", "match": "x = 1"})
    assert [d.code for d in ctx.diagnostics] == ["OVR100"]
    assert runtime.specs == {}


def test_duplicate_and_disabled_items() -> None:
    ctx = SimpleContext()
    runtime = compile_items([item("a"), item("a"), item("b", enabled=False)], ctx)
    assert [d.code for d in ctx.diagnostics] == ["OVR410"]
    assert list(runtime.specs) == ["a"]


# -- partials ----------------------------------------------------------------
def test_partial_bytes_round_trip_with_sketches() -> None:
    runtime = pack_runtime()
    partials = runtime.partials(bucket_events(0, random.Random(1), Anomalies(host_scan="dep-a")))  # noqa: S311 - synthetic traffic
    kinds = {runtime.specs[p.metric_id].kind for p in partials}
    assert kinds == {"rate", "quantile", "mean", "distinct", "first_seen"}
    assert any(p.kll for p in partials) and any(p.hll for p in partials) and any(p.values for p in partials)
    for p in partials:
        assert Partial.from_bytes(p.to_bytes()) == p


def test_route_key_is_metric_and_key_not_bucket() -> None:
    a = Partial("m", ("dep-a",), 0.0)
    assert a.route_key == Partial("m", ("dep-a",), 60.0).route_key
    assert a.route_key != Partial("m", ("dep-b",), 0.0).route_key
    assert a.route_key != Partial("n", ("dep-a",), 0.0).route_key


def test_partials_aggregate_per_key_and_bucket() -> None:
    runtime, _ = compile_one(metric={"kind": "mean", "field": "latency_ms"}, key=["deployment_id"])
    events = [{"_ts": T0 + 1, "deployment_id": "d1", "latency_ms": 10},
              {"_ts": T0 + 2, "deployment_id": "d1", "latency_ms": 30.0},
              {"_ts": T0 + 61, "deployment_id": "d1", "latency_ms": 5},
              {"_ts": T0 + 3, "deployment_id": "d2", "latency_ms": "fast"},
              {"_ts": T0 + 4, "latency_ms": 1.0}]
    partials = {(p.key, p.bucket_start): p for p in runtime.partials(events)}
    first = partials[(("d1",), T0)]
    assert (first.count, first.n, first.sum, first.sumsq, first.min, first.max, first.max_ts) == \
        (2, 2, 40.0, 1000.0, 10.0, 30.0, T0 + 2)
    assert partials[(("d1",), T0 + 60)].sum == 5.0
    assert partials[(("d2",), T0)].n == 0
    assert runtime.stats["non_numeric"] == 1
    assert runtime.stats["missing_key"] == 1


def test_fleet_merge_from_two_workers_equals_one_worker() -> None:
    """Each worker pre-aggregates its half; the key owner merges partials, never raw events."""
    single, owner, worker_a, worker_b = (pack_runtime() for _ in range(4))
    rng = random.Random(9)  # noqa: S311 - synthetic traffic
    anomalies = Anomalies(refusal_collapse="borealis-70b", host_scan="dep-b", new_tool=("dep-c", "nmap"))
    hits_single: list[Hit] = []
    hits_split: list[Hit] = []
    for b in range(40):
        events = bucket_events(b, rng, anomalies if b >= 30 else None)
        single.merge(single.partials(events))
        hits_single += single.advance(T0 + (b + 1) * 60.0)
        routed: dict[str, list[Partial]] = {}
        for p in worker_a.partials(events[::2]) + worker_b.partials(events[1::2]):
            routed.setdefault(p.route_key, []).append(Partial.from_bytes(p.to_bytes()))
        for partials in routed.values():
            owner.merge(partials)
        hits_split += owner.advance(T0 + (b + 1) * 60.0)

    def summary(hits: list[Hit]) -> list[tuple[Any, ...]]:
        # quantile buckets merge KLL sketches whose compaction is randomised: compared separately
        return sorted((h.rule_id, h.scope_value, h.evidence["bucket_start"], str(h.evidence["observed"]),
                       h.evidence["count"]) for h in hits if h.evidence["metric"] != "quantile")

    assert summary(hits_split) == summary(hits_single)
    assert {h.rule_id for h in hits_single} >= {"refusal_rate_shift", "distinct_dest_hosts_spike", "first_seen_tool"}


# -- closing buckets ---------------------------------------------------------
def test_late_partials_are_counted_not_lost() -> None:
    runtime, _ = compile_one(metric={"kind": "count"}, key=["deployment_id"], lateness="30s")
    runtime.merge(runtime.partials([{"_ts": T0 + 5, "deployment_id": "d"}]))
    assert runtime.advance(T0 + 89.0) == [] and runtime.stats["buckets_closed"] == 0  # end + lateness not reached
    runtime.advance(T0 + 90.0)
    assert runtime.stats["buckets_closed"] == 1
    runtime.merge(runtime.partials([{"_ts": T0 + 7, "deployment_id": "d"}, {"_ts": T0 + 8, "deployment_id": "d"}]))
    assert runtime.stats["late_partials"] == 1
    assert runtime.stats["late_events"] == 2


def test_count_metrics_observe_empty_buckets_as_zero_rates_skip_them() -> None:
    body = {"key": ["deployment_id"], "params": {"warmup": 3, "min_std": 0.5}}
    count, _ = compile_one(metric={"kind": "count"}, **body)
    rate, _ = compile_one(metric={"kind": "rate", "match": 'tool_name = "bash"'}, **body)
    hits: dict[str, list[Hit]] = {"count": [], "rate": []}
    for b in [0, 1, 2, 3, 4, 9]:  # buckets 5..8 are empty
        events = [{"_ts": T0 + b * 60 + i, "deployment_id": "d", "tool_name": "bash"} for i in range(10)]
        for name, runtime in (("count", count), ("rate", rate)):
            runtime.merge(runtime.partials(events))
            hits[name] += runtime.advance(T0 + (b + 1) * 60.0)
    assert count.stats["gap_buckets"] == 4
    assert [h.evidence["observed"] for h in hits["count"]] == [0.0]  # the first empty bucket is the change
    assert hits["count"][0].evidence["bucket_start"] == "2026-01-01T00:05:00Z"
    assert rate.stats["gap_buckets"] == 0 and hits["rate"] == []


def test_sparse_buckets_are_not_scored() -> None:
    runtime, _ = compile_one(metric={"kind": "rate", "match": "is_refusal = true"}, key=["request_model"],
                             min_count=20, params={"warmup": 2})
    for b, n in enumerate([30, 30, 5, 30]):
        events = [{"_ts": T0 + b * 60 + 1, "request_model": "m", "is_refusal": i < n // 10} for i in range(n)]
        runtime.merge(runtime.partials(events))
        runtime.advance(T0 + (b + 1) * 60.0)
    assert runtime.stats["sparse_buckets"] == 1
    assert runtime.stats["buckets_closed"] == 4


def test_hit_carries_the_evidence_an_on_call_engineer_needs() -> None:
    hits = stream(pack_runtime(), range(24), Anomalies(refusal_collapse="borealis-70b"), at=15)
    hit = next(h for h in hits if h.rule_id == "refusal_rate_shift")
    ev = hit.evidence
    assert (hit.kind, hit.scope_kind, hit.scope_value, hit.model) == ("detector", "model", "borealis-70b",
                                                                       "borealis-70b")
    assert hit.severity == "high" and "frontier.guardrail_erosion" in hit.tags
    assert ev["key"] == {"request_model": "borealis-70b"}
    assert ev["bucket_start"] == "2026-01-01T00:15:00Z" and ev["bucket_end"] == "2026-01-01T00:16:00Z"
    assert ev["observed"] == 0.0 and 0.08 < ev["baseline"] < 0.2 and ev["deviation"] < -4
    assert ev["detector"] == "ewma_zscore" and ev["params"]["threshold"] == 4.0
    assert ev["count"] >= 100 and ev["matched"] == 0 and 0.5 <= ev["score"] <= 1.0
    assert "borealis-70b" in hit.output and "baseline" in hit.output
    assert hit.dedup_key and T0 + 15 * 60 <= hit.ts <= T0 + 16 * 60
    orjson.dumps(ev)


# -- the stable pack on a synthetic fleet ---------------------------------------
def test_stable_pack_is_quiet_on_a_stable_fleet() -> None:
    runtime = pack_runtime()
    hits = stream(runtime, range(90))
    assert hits == []
    assert runtime.stats["buckets_closed"] > 900


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_refusal_collapse_detected_within_three_buckets_only_for_that_model(seed: int) -> None:
    hits = stream(pack_runtime(), range(30), Anomalies(refusal_collapse="borealis-70b"), at=12, seed=seed)
    refusal = [h for h in hits if h.rule_id == "refusal_rate_shift"]
    assert {h.model for h in refusal} == {"borealis-70b"}
    assert min(bucket_of(h) for h in refusal) <= 12 + 2
    assert [h for h in hits if h.rule_id != "refusal_rate_shift"] == []


@pytest.mark.parametrize(("anomaly", "rule_id", "scope_value"), [
    (Anomalies(new_tool=("dep-b", "nmap")), "first_seen_tool", "dep-b"),
    (Anomalies(new_host=("dep-c", "paste.example.net")), "first_seen_dest_host", "dep-c"),
    (Anomalies(host_scan="dep-a"), "distinct_dest_hosts_spike", "dep-a"),
    (Anomalies(big_egress="dep-a"), "egress_bytes_spike", "dep-a"),
    (Anomalies(slow_model="nimbus-405b"), "p99_latency_shift", "nimbus-405b"),
    (Anomalies(exec_burst="dep-c"), "exec_call_rate_spike", "dep-c"),
    (Anomalies(errors="dep-b"), "error_rate_spike", "dep-b"),
])
def test_each_stable_detector_fires_on_its_anomaly(anomaly: Anomalies, rule_id: str, scope_value: str) -> None:
    hits = stream(pack_runtime(), range(34), anomaly, at=30)
    fired = [h for h in hits if h.rule_id == rule_id]
    assert fired and {h.scope_value for h in fired} == {scope_value}
    assert min(bucket_of(h) for h in fired) <= 31
    assert all(bucket_of(h) >= 30 for h in hits)  # nothing fired before the injection


# -- state -------------------------------------------------------------------
def test_restart_from_snapshot_continues_the_baselines() -> None:
    anomalies = Anomalies(refusal_collapse="borealis-70b", new_tool=("dep-a", "nmap"))
    uninterrupted = stream(pack_runtime(), range(40), anomalies, at=30)
    first = pack_runtime()
    rng = random.Random(5)  # noqa: S311 - synthetic traffic
    before: list[Hit] = []
    for b in range(20):
        first.merge(first.partials(bucket_events(b, rng)))
        before += first.advance(T0 + (b + 1) * 60.0)
    pending = first.partials(bucket_events(20, rng))  # an open bucket survives the restart too
    first.merge(pending)
    blob = first.snapshot()
    restarted = pack_runtime()
    restarted.restore(blob)
    assert restarted.snapshot() == blob
    after = restarted.advance(T0 + 21 * 60.0)
    for b in range(21, 40):
        restarted.merge(restarted.partials(bucket_events(b, rng, anomalies if b >= 30 else None)))
        after += restarted.advance(T0 + (b + 1) * 60.0)

    def summary(hits: list[Hit]) -> list[tuple[Any, ...]]:
        return [(h.rule_id, h.scope_value, h.evidence["bucket_start"], h.evidence["score"]) for h in hits]

    assert summary(before + after) == summary(uninterrupted)
    assert restarted.stats["warming_up"] == first.stats["warming_up"]  # nothing was relearned


def test_restore_with_changed_params_relearns_and_counts_it() -> None:
    runtime = pack_runtime()
    stream(runtime, range(12))
    items = pack_items()
    for it in items:
        if it.name == "refusal_rate_shift":
            it.body["params"] = {**it.body["params"], "threshold": 5.0}
    changed = compile_items(items, SimpleContext())
    changed.restore(runtime.snapshot())
    assert changed.stats["state_reset_on_restore"] == len(MODELS_KEYS)
    assert changed.stats["keys"] == runtime.stats["keys"]


MODELS_KEYS = ("borealis-70b", "cirrus-8b", "nimbus-405b", "stratus-1t")


def test_keys_per_metric_are_capped_and_evictions_counted() -> None:
    runtime, _ = compile_one(metric={"kind": "count"}, key=["agent_run_id"], max_keys=50)
    events = [{"_ts": T0 + 1, "agent_run_id": f"run-{i}"} for i in range(80)]
    runtime.merge(runtime.partials(events))
    runtime.advance(T0 + 60.0)
    assert runtime.stats["keys"] == 50
    assert runtime.stats["evicted_keys"] == 30
    restored, _ = compile_one(metric={"kind": "count"}, key=["agent_run_id"], max_keys=50)
    restored.restore(runtime.snapshot())
    assert restored.stats["keys"] == 50


def test_snapshot_bytes_per_key_are_bounded() -> None:
    runtime = pack_runtime()
    stream(runtime, range(120))
    keys = runtime.stats["keys"]
    per_key = len(runtime.snapshot()) / keys
    assert keys == 4 + 3 * 6 + 4  # rate+p99 per model (2x4); six deployment metrics x 3; ...
    assert per_key < 4096, per_key


def test_stable_pack_through_the_real_rule_loader_behaves_like_the_test_context() -> None:
    """The loader's condition compiler and this suite's stand-in agree on the pack's conditions."""
    from rules.engine import load_engine
    from tests.unit.detectors.fleet import PACK

    engine = load_engine([PACK], allowed_lateness_s=0.0)
    real = compile_items(engine.items("detector"), engine.context)
    assert sorted(real.specs) == sorted(pack_runtime().specs)
    anomalies = Anomalies(refusal_collapse="borealis-70b", exec_burst="dep-a", new_host=("dep-b", "x.example"))

    def summary(hits: list[Hit]) -> list[tuple[Any, ...]]:
        return [(h.rule_id, h.scope_value, h.evidence["bucket_start"], h.evidence["score"]) for h in hits]

    expected = summary(stream(pack_runtime(), range(24), anomalies, at=20))
    assert expected and summary(stream(real, range(24), anomalies, at=20)) == expected


def test_open_buckets_are_capped_when_event_time_stalls() -> None:
    """Keys x buckets cannot grow without bound: the oldest bucket closes early, counted, hits kept."""
    runtime, _ = compile_one(metric={"kind": "count"}, key=["deployment_id"], max_keys=2,
                             params={"warmup": 1, "min_std": 0.1})
    for b in range(20):  # the watermark never advances; bucket 2 holds a burst
        events = [{"_ts": T0 + 60 * b, "deployment_id": "d"} for _ in range(21 if b == 2 else 1)]
        runtime.merge(runtime.partials(events))
    assert runtime.stats["open_buckets"] == 2 * 8
    assert runtime.stats["forced_closes"] == 4  # buckets 0..3, in event-time order
    restored, _ = compile_one(metric={"kind": "count"}, key=["deployment_id"], max_keys=2,
                              params={"warmup": 1, "min_std": 0.1})
    restored.restore(runtime.snapshot())  # the burst's hit, waiting for advance(), survives too
    assert restored.snapshot() == runtime.snapshot()
    hits = restored.advance(T0 + 60 * 20)
    assert restored.stats["buckets_closed"] == 20
    assert (hits[0].evidence["bucket_start"], hits[0].evidence["observed"]) == ("2026-01-01T00:02:00Z", 21.0)
    assert runtime.advance(T0 + 60 * 20)[0].dedup_key == hits[0].dedup_key


@pytest.mark.parametrize("blob", [
    b"", b"{}", b"[1, 2]",
    b'["m", ["k"], 0, 1, 1, 0, 0, 0, null, null, "%%", null, null, 0, 0]',  # sketch not base64
    b'["m", "k", "x", 1, 1, 0, 0, 0, null, null, null, null, null, 0, 0]',  # bucket start not a number
])
def test_malformed_partials_raise_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError, match="malformed partial"):
        Partial.from_bytes(blob)


def test_restore_refuses_foreign_blobs() -> None:
    runtime = pack_runtime()
    with pytest.raises(ValueError, match="version 1"):
        runtime.restore(b'{"v": 99}')
    with pytest.raises(ValueError, match="version 1"):
        runtime.restore(b"[]")


def test_per_key_changelog_restores_like_a_faust_table() -> None:
    """dirty_state() after each batch, applied to a dict (the table), restores to the same detections."""
    anomalies = Anomalies(refusal_collapse="borealis-70b", host_scan="dep-c")
    uninterrupted = stream(pack_runtime(), range(36), anomalies, at=30)
    table: dict[str, bytes] = {}
    first = pack_runtime()
    rng = random.Random(5)  # noqa: S311 - synthetic traffic
    hits: list[Hit] = []
    written = []
    for b in range(36):
        runtime = first
        if b == 22:  # the worker dies; a new one loads the table for its partitions
            runtime = first = pack_runtime()
            first.load_state(table.items())
        runtime.merge(runtime.partials(bucket_events(b, rng, anomalies if b >= 30 else None)))
        hits += runtime.advance(T0 + (b + 1) * 60.0)
        changes = runtime.dirty_state()
        written.append(len(changes))
        for route, blob in changes.items():
            if blob is None:
                table.pop(route, None)
            else:
                table[route] = blob
    assert [(h.rule_id, h.scope_value, h.evidence["bucket_start"], h.evidence["score"]) for h in hits] == \
        [(h.rule_id, h.scope_value, h.evidence["bucket_start"], h.evidence["score"]) for h in uninterrupted]
    assert len(table) == first.stats["keys"]
    assert max(written) == len(table)  # one entry per touched key per batch, never the whole state blob
    assert max(len(v) for v in table.values()) < 8192


def test_per_key_changelog_deletes_evicted_keys() -> None:
    runtime, _ = compile_one(metric={"kind": "count"}, key=["agent_run_id"], max_keys=3)
    runtime.merge(runtime.partials([{"_ts": T0 + 1, "agent_run_id": f"run-{i}"} for i in range(5)]))
    runtime.advance(T0 + 60.0)
    changes = runtime.dirty_state()
    assert sorted(r for r, blob in changes.items() if blob is None) == ['["m","run-0"]', '["m","run-1"]']
    assert runtime.dirty_state() == {}


def test_binomial_spread_keeps_quiet_hours_quiet_and_busy_hours_sharp() -> None:
    """A share of 12 calls swings far more than a share of 500: judged by its own sampling noise."""
    def runtime(binomial: bool) -> MetricRuntime:
        return compile_one(metric={"kind": "rate", "match": 'action_category = "exec"'}, key=["deployment_id"],
                           params={"alpha": 0.1, "warmup": 8, "threshold": 4.0, "binomial": binomial})[0]

    def bucket(b: int, n: int, execs: int) -> list[dict[str, Any]]:
        return [{"_ts": T0 + 60 * b + i * 0.01, "deployment_id": "d", "action_category": "exec" if i < execs else "x"}
                for i in range(n)]

    rng = random.Random(4)  # noqa: S311 - synthetic traffic
    busy = [(500, int(rng.gauss(50, 6))) for _ in range(12)]
    results = {}
    for binomial in (False, True):
        rt = runtime(binomial)
        hits = []
        for b, (n, execs) in enumerate([*busy, (12, 4), (500, 150)]):  # a quiet hour at 33 %, then a real burst
            rt.merge(rt.partials(bucket(b, n, execs)))
            hits += rt.advance(T0 + 60 * (b + 1))
        results[binomial] = [bucket_of(h) for h in hits]
    assert results[False][:1] == [12]  # without it, 4 exec calls out of 12 page someone
    assert results[True] == [13]


def test_the_demo_fleet_fires_exactly_the_injected_behaviours() -> None:
    """`overseer demo` traffic (seeded): the refusal collapse and the exfiltration, nothing else."""
    from datetime import datetime

    from streams.demo.fleet import FleetGenerator

    end = T0 + 3600.0
    span = 40 * 30.0  # the demo's 40 s at 30x: twenty minutes of fleet time
    gen = FleetGenerator(start_ts=end - span, seed=7)
    runtime = pack_runtime()
    hits: list[Hit] = []
    sim_t = end - span
    for tick in range(400):
        target = end - span + (tick + 1) * 3.0
        events = [{**e, "_ts": datetime.fromisoformat(e["ts"]).timestamp()}
                  for e in gen.events_between(sim_t, target, 40, tick / 400)]
        sim_t = target
        runtime.merge(runtime.partials(events))
        hits += runtime.advance(max(e["_ts"] for e in events) - 5.0)
    hits += runtime.advance(end + 120.0)
    first: dict[str, tuple[str, int]] = {}
    for h in hits:
        first.setdefault(h.rule_id, (h.scope_value, int((h.ts - (end - span)) // 60)))
    # the collapse starts at 55 % of the run (minute 11), the exfiltration at 60 % (minute 12)
    assert first == {"refusal_rate_shift": ("borealis-70b", 11), "egress_bytes_spike": ("dep-atlas-us", 12),
                     "first_seen_tool": ("dep-atlas-us", 12), "first_seen_dest_host": ("dep-atlas-us", 12)}
    assert {(h.rule_id, h.scope_value) for h in hits} == {(r, s) for r, (s, _) in first.items()}
