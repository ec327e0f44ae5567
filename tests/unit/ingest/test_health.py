"""ProducerGapTracker: gaps become hits, reordering and duplicates do not, state round-trips."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.health import RULE_ID, ProducerGapTracker, seq_partials


def ev(seq: int, ts: float, pid: str = "gw-1", **extra: Any) -> dict[str, Any]:
    return {"producer_id": pid, "producer_seq": seq, "_ts": ts, "event_id": f"{pid}-{seq}", **extra}


def test_gap_is_declared_after_lateness_with_evidence() -> None:
    t = ProducerGapTracker(lateness_s=30)
    assert t.observe([ev(i, float(i)) for i in range(5)]) == []
    assert t.observe([ev(8, 10.0, deployment_id="atlas-prod", tenant_id="acme")]) == []
    assert t.pending("gw-1") == [(5, 7)]
    hits = t.observe([ev(9, 45.0)])
    assert len(hits) == 1
    h = hits[0]
    assert (h.rule_id, h.kind, h.severity, h.tags) == (RULE_ID, "monitor_health", "high", ["monitor_health"])
    assert h.evidence == {"producer_id": "gw-1", "expected_seq": 5, "got_seq": 8, "missing_count": 3}
    assert (h.scope_kind, h.scope_value, h.deployment_id, h.tenant_id) == ("deployment", "atlas-prod",
                                                                            "atlas-prod", "acme")
    assert h.ts == 10.0 and h.event_ids == ["gw-1-8"]
    assert t.pending("gw-1") == []
    assert (t.stats.gaps, t.stats.missing_events) == (1, 3)


def test_fleet_scope_without_deployment() -> None:
    t = ProducerGapTracker(lateness_s=1)
    hits = t.observe([ev(0, 0.0), ev(2, 0.5), ev(3, 5.0)])
    assert [(h.scope_kind, h.scope_value) for h in hits] == [("fleet", "fleet")]


def test_shuffled_batch_and_late_across_batches_are_tolerated() -> None:
    t = ProducerGapTracker(lateness_s=60)
    seqs = list(range(200))
    random.Random(3).shuffle(seqs)
    assert t.observe([ev(s, s / 10) for s in seqs if s not in (50, 51, 120)]) == []
    assert t.pending("gw-1") == [(50, 51), (120, 120)]
    assert t.observe([ev(51, 5.1), ev(120, 12.0)]) == []
    assert t.observe([ev(50, 5.0)]) == []
    assert t.pending("gw-1") == []
    assert t.observe([ev(200, 400.0)]) == []  # time passes: nothing was lost
    assert (t.stats.gaps, t.stats.reordered) == (0, 3)


def test_events_older_than_first_sighting_are_late_not_duplicates() -> None:
    t = ProducerGapTracker(lateness_s=60)
    t.observe([ev(s, float(s)) for s in range(5, 10)])
    t.observe([ev(0, 0.0), ev(2, 2.0)])
    assert t.pending("gw-1") == [(1, 1), (3, 4)]
    t.observe([ev(1, 1.0), ev(3, 3.0), ev(4, 4.0), ev(10, 10.0)])
    assert t.pending("gw-1") == [] and t.stats.duplicates == 0 and t.stats.restarts == 0


def test_duplicates_counted_not_reported() -> None:
    t = ProducerGapTracker(lateness_s=1)
    assert t.observe([ev(0, 0.0), ev(1, 1.0), ev(1, 1.0), ev(0, 0.0), ev(2, 5.0)]) == []
    assert t.stats.duplicates == 2 and t.stats.restarts == 0


def test_restart_resets_instead_of_reporting_a_huge_gap() -> None:
    t = ProducerGapTracker(lateness_s=1)
    t.observe([ev(s, float(s)) for s in range(10)])
    restarted = [{**ev(0, 20.0), "event_id": "new-0"}, {**ev(1, 21.0), "event_id": "new-1"}]
    assert t.observe(restarted) == []
    assert t.stats.restarts == 1 and t.pending("gw-1") == []


def test_sequence_distance_declares_without_time() -> None:
    t = ProducerGapTracker(lateness_s=3600, max_reorder_seq=10)
    t.observe([ev(0, 0.0), ev(2, 0.0)])
    assert t.observe([ev(s, 0.0) for s in range(3, 12)]) == []
    hits = t.observe([ev(13, 0.0)])
    assert [h.evidence["expected_seq"] for h in hits] == [1]


def test_advance_declares_for_quiet_producers() -> None:
    t = ProducerGapTracker(lateness_s=10)
    t.observe([ev(0, 100.0), ev(5, 101.0)])
    assert t.advance(105.0) == []
    hits = t.advance(111.0)
    assert [h.evidence["missing_count"] for h in hits] == [4]


def test_pending_ranges_are_bounded_and_counted() -> None:
    t = ProducerGapTracker(lateness_s=3600, max_pending_ranges=4)
    hits = t.observe([ev(s, 0.0) for s in range(0, 20, 2)])  # 9 holes
    assert len(t.pending("gw-1")) == 4
    assert [h.evidence["expected_seq"] for h in hits] == [1, 3, 5, 7, 9]
    assert t.stats.forced_by_bound == 5


def test_producers_are_bounded_oldest_evicted() -> None:
    t = ProducerGapTracker(max_producers=2)
    t.observe([ev(0, 0.0, pid="a"), ev(0, 0.0, pid="b"), ev(0, 0.0, pid="c")])
    assert t.stats.producers_evicted == 1 and t.pending("a") == []


def test_events_without_sequence_are_ignored_and_counted() -> None:
    t = ProducerGapTracker()
    assert t.observe([{"_ts": 1.0, "event_id": "x"}, {"producer_id": "p", "_ts": 1.0}]) == []
    assert t.stats.ignored_events == 2


def test_snapshot_restore_round_trip() -> None:
    t = ProducerGapTracker(lateness_s=30)
    t.observe([ev(0, 0.0, deployment_id="d"), ev(3, 1.0), ev(2, 1.5)])
    blob = t.snapshot()
    u = ProducerGapTracker(lateness_s=30)
    u.restore(blob)
    assert u.pending("gw-1") == [(1, 1)]
    assert u.snapshot() == blob
    hits = u.observe([ev(4, 40.0)])
    assert [(h.evidence["expected_seq"], h.deployment_id) for h in hits] == [(1, "d")]


def test_restore_rejects_unknown_version() -> None:
    with pytest.raises(ValueError, match="version"):
        ProducerGapTracker().restore(b'{"v": 99, "producers": {}}')


def test_partials_from_several_workers_feed_one_tracker() -> None:
    events = [ev(s, s / 10, deployment_id="d") for s in range(100) if s not in (40, 41, 42)]
    worker_a = [e for e in events if e["producer_seq"] % 3 == 0]  # keyed by run: each worker sees a part
    worker_b = [e for e in events if e["producer_seq"] % 3 != 0]
    parts_a, _ = seq_partials(worker_a)
    parts_b, _ = seq_partials(worker_b)
    owner = ProducerGapTracker(lateness_s=30)
    wire = orjson.loads(orjson.dumps(parts_a + parts_b))  # partials travel through Kafka as JSON
    assert owner.observe_partials(wire) == []
    hits = owner.observe_partials(seq_partials([ev(100, 60.0)])[0])
    assert [(h.evidence["expected_seq"], h.evidence["missing_count"]) for h in hits] == [(40, 3)]
    lonely = ProducerGapTracker(lateness_s=30)  # a tracker fed by one worker alone sees false gaps
    assert lonely.observe(worker_a + [ev(101, 60.0)]) != []


def test_range_filling_and_duplicates_across_batches() -> None:
    t = ProducerGapTracker(lateness_s=60)
    t.observe([ev(0, 0.0), ev(10, 1.0)])
    assert t.pending("gw-1") == [(1, 9)]
    t.observe([ev(s, 2.0) for s in (3, 4, 5, 5, 10)])
    assert t.pending("gw-1") == [(1, 2), (6, 9)]
    assert (t.stats.reordered, t.stats.duplicates) == (3, 2)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(5, 120), data=st.data())
def test_any_reordering_reports_exactly_the_lost_events(n: int, data: st.DataObject) -> None:
    lost = data.draw(st.sets(st.integers(1, n - 2), max_size=5))
    order = data.draw(st.permutations([s for s in range(n) if s not in lost]))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(order)), max_size=6)))
    t = ProducerGapTracker(lateness_s=1000, max_reorder_seq=10 * n)
    hits = []
    for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True):
        hits += t.observe([ev(s, 0.0) for s in order[a:b]])
    assert hits == []  # within the allowance nothing is declared, whatever the order
    hits = t.advance(2000.0)
    assert sum(h.evidence["missing_count"] for h in hits) == len(lost)
    assert t.stats.duplicates == 0
