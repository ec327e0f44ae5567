"""Window threshold rules: tumbling and sliding, each aggregation, lateness counting."""

from __future__ import annotations

import pytest

from rules.engine import Engine, engine_from_text
from tests.unit.rules.rules_helpers import ev


def window_engine(window: str, condition: str = 'action_category = "exec"', lateness: float = 0.0) -> Engine:
    return engine_from_text(f"""
- rule: w
  title: Window
  severity: high
  condition: {condition}
  window: {window}
  output: "{{window.agg}}={{window.value}} n={{window.count}} run={{agent_run_id}}"
""", allowed_lateness_s=lateness)


def exec_ev(ts: float, run: str = "r1", **kw: object) -> dict[str, object]:
    return ev(ts, action_category="exec", agent_run_id=run, **kw)


def test_tumbling_count_fires_once_when_crossed() -> None:
    engine = window_engine("{agg: count, duration: 60s, group_by: [agent_run_id], op: '>=', value: 3}")
    assert engine.process([exec_ev(0), exec_ev(1)]) == []
    hits = engine.process([exec_ev(2), exec_ev(3), exec_ev(4)])
    assert len(hits) == 1
    h = hits[0]
    assert h.output == "count=3 n=3 run=r1" and h.group == {"agent_run_id": "r1"}
    assert h.evidence["window_start"] == 0 and h.evidence["window_end"] == 60 and len(h.event_ids) == 3
    assert engine.process([exec_ev(5)]) == []  # once per window
    assert len(engine.process([exec_ev(t) for t in (61, 62, 63)])) == 1  # the next window counts afresh


def test_tumbling_groups_are_independent_and_ungrouped_events_are_skipped() -> None:
    engine = window_engine("{agg: count, duration: 60s, group_by: [agent_run_id], op: '>=', value: 2}")
    assert engine.process([exec_ev(0, "a"), exec_ev(1, "b"), ev(2, action_category="exec")]) == []
    assert [h.group for h in engine.process([exec_ev(3, "b")])] == [{"agent_run_id": "b"}]


def test_tumbling_windows_split_at_boundaries() -> None:
    engine = window_engine("{agg: count, duration: 60s, op: '>=', value: 3}")
    assert engine.process([exec_ev(58), exec_ev(59), exec_ev(60), exec_ev(61)]) == []


@pytest.mark.parametrize(("agg", "op", "value", "values", "expected"), [
    ("sum", ">", 10, [4, 5, 2], 11),
    ("max", ">=", 9, [1, 9, 3], 9),
    ("min", "<", 2, [5, 1, 3], 1),
    ("distinct", ">=", 3, ["a", "b", "a", "c"], 3),
])
def test_eager_aggregations(agg: str, op: str, value: float, values: list[object], expected: float) -> None:
    fld = "tool_name" if agg == "distinct" else "egress_bytes"
    engine = window_engine(f"{{agg: {agg}, field: {fld}, duration: 60s, op: '{op}', value: {value}}}")
    hits = engine.process([exec_ev(i, **{fld: v}) for i, v in enumerate(values)])
    assert [h.evidence["value"] for h in hits] == [expected]


def test_avg_is_judged_when_the_window_closes() -> None:
    engine = window_engine("{agg: avg, field: latency_ms, duration: 60s, group_by: [deployment_id], op: '>', "
                           "value: 100, min_count: 3}", condition='event_type = "inference"')
    events = [ev(i, event_type="inference", deployment_id="d1", latency_ms=v) for i, v in enumerate([500, 50, 80])]
    assert engine.process(events) == []  # still open: the average may change
    hits = engine.advance(60)
    assert len(hits) == 1 and hits[0].evidence["value"] == pytest.approx(210.0)
    assert hits[0].scope_value == "d1" and hits[0].output.startswith("avg=210")
    assert engine.advance(1000) == []  # closed windows are gone


def test_at_close_count_below_threshold_and_min_count() -> None:
    engine = window_engine("{agg: count, duration: 60s, group_by: [agent_run_id], op: '<', value: 2}")
    engine.process([exec_ev(0, "a"), exec_ev(1, "b"), exec_ev(2, "b")])
    assert [h.group["agent_run_id"] for h in engine.advance(60)] == ["a"]


def test_sliding_window_counts_across_boundaries_and_resets_after_firing() -> None:
    engine = window_engine("{agg: count, duration: 60s, type: sliding, group_by: [agent_run_id], op: '>=', value: 3}")
    assert engine.process([exec_ev(58), exec_ev(59)]) == []
    assert len(engine.process([exec_ev(61)])) == 1  # tumbling would have split these
    assert engine.process([exec_ev(62), exec_ev(63)]) == []  # evidence consumed: needs three fresh ones
    assert len(engine.process([exec_ev(64)])) == 1


def test_sliding_window_evicts_old_events() -> None:
    engine = window_engine("{agg: sum, field: egress_bytes, duration: 10s, type: sliding, op: '>=', value: 10}")
    assert engine.process([exec_ev(0, egress_bytes=6), exec_ev(11, egress_bytes=6)]) == []
    assert len(engine.process([exec_ev(12, egress_bytes=5)])) == 1


def test_sliding_window_is_bounded() -> None:
    engine = window_engine("{agg: count, duration: 1h, type: sliding, op: '>=', value: 100, max_events: 5}")
    engine.process([exec_ev(i) for i in range(20)])
    assert engine.stats["window_overflow"] == 15
    assert engine.stats["state_keys"] == 1


def test_late_events_are_counted_and_still_applied() -> None:
    engine = window_engine("{agg: count, duration: 60s, op: '>=', value: 2}", lateness=30)
    engine.process([exec_ev(1000)])
    assert engine.stats["late_events"] == 0
    engine.process([exec_ev(975)])  # within the allowed lateness: not late
    assert engine.stats["late_events"] == 0
    hits = engine.process([exec_ev(100), exec_ev(101)])  # 900 s behind the watermark
    assert engine.stats["late_events"] == 2
    assert len(hits) == 1 and hits[0].evidence["window_start"] == 60  # their own (old) window still counts them


def test_window_state_is_evicted_after_close() -> None:
    engine = window_engine("{agg: count, duration: 60s, group_by: [agent_run_id], op: '>=', value: 100}")
    engine.process([exec_ev(i, f"r{i}") for i in range(50)])
    assert engine.stats["state_keys"] == 50
    engine.advance(120)
    assert engine.stats["state_keys"] == 0


def test_distinct_set_is_bounded() -> None:
    engine = window_engine("{agg: distinct, field: tool_name, duration: 60s, op: '>=', value: 1000, max_events: 4}")
    engine.process([exec_ev(i, tool_name=f"t{i}") for i in range(10)])
    assert engine.stats["window_overflow"] == 6
