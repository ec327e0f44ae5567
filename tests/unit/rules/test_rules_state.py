"""Suppression, snapshot/restore and hot swap of state."""

from __future__ import annotations

from rules.engine import engine_from_text
from tests.unit.rules.rules_helpers import ev
from tests.unit.rules.test_rules_sequences import ABSENT, SEQ, step

DEDUP = """
- rule: d
  title: Shell
  severity: medium
  condition: action_category = "exec"
  output: "exec {tool_arguments}"
  dedup: {key: "{deployment_id}", period: 10m}
"""


def test_dedup_returns_the_first_hit_and_folds_the_rest_into_a_counted_summary() -> None:
    engine = engine_from_text(DEDUP, allowed_lateness_s=0)
    first = engine.process([ev(0, action_category="exec", deployment_id="d1", tool_arguments="a")])
    assert len(first) == 1 and first[0].dedup_key == "d1" and first[0].suppressed_count == 0
    folded = [ev(t, action_category="exec", deployment_id="d1", tool_arguments="b") for t in (10, 20, 30)]
    other = ev(40, action_category="exec", deployment_id="d2", tool_arguments="c")
    assert [h.dedup_key for h in engine.process([*folded, other])] == ["d2"]
    assert engine.stats["suppressed"] == 3
    summaries = engine.advance(600)
    assert len(summaries) == 1
    s = summaries[0]
    assert s.suppressed_count == 3 and s.dedup_key == "d1" and s.ts == 30
    assert s.event_ids == [e["event_id"] for e in folded] and s.evidence["suppressed_count"] == 3
    assert "+3 more suppressed" in s.output
    assert engine.advance(1200) == []  # d2's period ended with nothing folded: no summary


def test_dedup_period_ending_on_a_new_hit_emits_summary_then_the_new_hit() -> None:
    engine = engine_from_text(DEDUP, allowed_lateness_s=1e9)  # watermark never closes periods by itself
    engine.process([ev(t, action_category="exec", deployment_id="d1") for t in (0, 1)])
    hits = engine.process([ev(700, action_category="exec", deployment_id="d1")])
    assert [h.suppressed_count for h in hits] == [1, 0]


def test_snapshot_restore_mid_sequence_still_fires() -> None:
    before = engine_from_text(SEQ, allowed_lateness_s=0)
    before.process([step(0, "weights_access"), step(10, "exec")])
    blob = before.snapshot()
    after = engine_from_text(SEQ, allowed_lateness_s=0)  # a new worker process
    after.restore(blob)
    hits = after.process([step(20, "net_egress")])
    assert len(hits) == 1 and len(hits[0].event_ids) == 3


def test_snapshot_restore_keeps_pending_absence_windows_and_dedup() -> None:
    text = ABSENT + DEDUP + """
- rule: w
  title: Burst
  severity: high
  condition: action_category = "exec"
  window: {agg: count, duration: 60s, group_by: [agent_run_id], op: ">=", value: 3}
"""
    before = engine_from_text(text, allowed_lateness_s=0)
    before.process([step(0, "payment"), step(1, "exec", deployment_id="d"), step(2, "exec", deployment_id="d")])
    after = engine_from_text(text, allowed_lateness_s=0)
    after.restore(before.snapshot())
    hits = after.process([step(3, "exec", deployment_id="d")])
    assert [h.rule_id for h in hits] == ["w"]  # window count carried over; dedup folded the exec hit
    assert after.stats["suppressed"] == 1
    summary_and_absence = after.advance(1000)
    assert sorted(h.rule_id for h in summary_and_absence) == ["a", "d"]  # absence + dedup summary
    assert [h.suppressed_count for h in summary_and_absence if h.rule_id == "d"] == [2]  # 1 before + 1 after


def test_swap_keeps_state_of_unchanged_rules_and_drops_changed_ones() -> None:
    changed = SEQ.replace("\"net_egress\"", "\"payment\"")
    old = engine_from_text(SEQ + ABSENT, allowed_lateness_s=0)
    old.process([step(0, "weights_access"), step(10, "exec"), step(11, "payment")])
    # the title changes (not state-relevant) in one, the condition in the other
    new_same = engine_from_text((SEQ + ABSENT).replace("title: Read then send", "title: Renamed"), allowed_lateness_s=0)
    new_same.swap_from(old)
    assert [h.rule_id for h in new_same.process([step(20, "net_egress")])] == ["s"]
    new_changed = engine_from_text(changed + ABSENT, allowed_lateness_s=0).swap_from(old)
    assert new_changed.stats["state_dropped"] == 1
    assert [h.rule_id for h in new_changed.advance(400)] == ["a"]  # the unchanged absence rule kept its state
    assert new_changed.process([step(420, "payment", "r9")]) == []  # the half-seen sequence of r1 did not survive
    assert new_changed.process([step(421, "weights_access", "r9"), step(422, "exec", "r9"),
                                step(423, "payment", "r9")])[0].rule_id == "s"  # while the changed rule works


def test_failed_reload_leaves_the_running_engine_untouched(tmp_path: object) -> None:
    import pytest

    from rules.errors import RuleLoadError

    running = engine_from_text(SEQ, allowed_lateness_s=0)
    running.process([step(0, "weights_access")])
    with pytest.raises(RuleLoadError):
        engine_from_text(SEQ.replace("maxspan: 10m", "maxspan: often"))
    assert len(running.process([step(1, "exec"), step(2, "net_egress")])) == 1


def test_snapshot_of_a_window_judged_at_close_keeps_what_the_hit_needs() -> None:
    text = """
- rule: slow
  title: Slow
  severity: medium
  condition: event_type = "inference"
  window: {agg: avg, field: latency_ms, duration: 60s, group_by: [deployment_id], op: ">", value: 100}
  output: "avg {window.value:.0f} on {deployment_id} ({request_model})"
"""
    before = engine_from_text(text, allowed_lateness_s=0)
    before.process([ev(t, event_type="inference", deployment_id="d1", request_model="m", latency_ms=300.0,
                       content="x" * 1000) for t in (1, 2)])
    blob = before.snapshot()
    assert b"xxxx" not in blob  # only the fields a hit needs are kept, not the event's content
    after = engine_from_text(text, allowed_lateness_s=0)
    after.restore(blob)
    hits = after.advance(60)
    assert [(h.output, h.scope_value, h.model) for h in hits] == [("avg 300 on d1 (m)", "d1", "m")]
