"""Sequence rules: order, join keys, maxspan, absence firing from advance()."""

from __future__ import annotations

from rules.engine import Engine, engine_from_text
from tests.unit.rules.rules_helpers import ev

SEQ = """
- rule: s
  title: Read then send
  severity: critical
  output: "run={agent_run_id} steps={sequence.steps} absent={sequence.absent}"
  sequence:
    by: [agent_run_id]
    maxspan: 10m
    steps:
      - condition: action_category = "weights_access"
      - condition: action_category = "exec"
      - condition: action_category = "net_egress"
"""

ABSENT = """
- rule: a
  title: Payment without approval
  severity: high
  output: "unapproved payment in run={agent_run_id} ({tool_name})"
  sequence:
    by: [agent_run_id]
    maxspan: 10m
    steps:
      - condition: action_category = "payment"
      - absent: approval = "granted"
        within: 5m
"""


def seq(text: str = SEQ, lateness: float = 0.0) -> Engine:
    return engine_from_text(text, allowed_lateness_s=lateness)


def step(ts: float, cat: str, run: str = "r1", **kw: object) -> dict[str, object]:
    return ev(ts, action_category=cat, agent_run_id=run, **kw)


def test_three_steps_in_order_fire_once_with_all_evidence() -> None:
    engine = seq()
    events = [step(0, "weights_access"), step(10, "exec"), step(20, "net_egress")]
    hits = engine.process(events)
    assert len(hits) == 1
    assert hits[0].event_ids == [e["event_id"] for e in events]
    assert hits[0].output == "run=r1 steps=3 absent=False" and hits[0].group == {"agent_run_id": "r1"}
    assert engine.stats["state_keys"] == 0


def test_steps_across_batches_in_any_order_within_a_batch() -> None:
    engine = seq()
    assert engine.process([step(10, "exec"), step(0, "weights_access")]) == []  # sorted by event time
    assert len(engine.process([step(20, "net_egress")])) == 1


def test_wrong_order_other_keys_and_maxspan_do_not_fire() -> None:
    assert seq().process([step(0, "exec"), step(1, "weights_access"), step(2, "net_egress")]) == []
    assert seq().process([step(0, "weights_access"), step(1, "exec", "r2"), step(2, "net_egress")]) == []
    assert seq().process([step(0, "weights_access"), step(10, "exec"), step(601, "net_egress")]) == []


def test_absence_fires_from_advance_without_a_later_event() -> None:
    engine = seq(ABSENT)
    assert engine.process([step(0, "payment", tool_name="stripe")]) == []
    assert engine.advance(299) == []
    hits = engine.advance(300)
    assert len(hits) == 1
    assert hits[0].output == "unapproved payment in run=r1 (stripe)" and hits[0].ts == 300
    assert hits[0].evidence["absent"] is True
    assert engine.advance(10_000) == []


def test_absence_cancelled_by_the_awaited_event() -> None:
    engine = seq(ABSENT)
    engine.process([step(0, "payment"), ev(120, approval="granted", agent_run_id="r1")])
    assert engine.advance(10_000) == []


def test_absence_waits_for_the_allowed_lateness() -> None:
    engine = seq(ABSENT, lateness=60)
    engine.process([step(0, "payment")])
    assert engine.advance(330) == []  # an approval stamped before 300 could still arrive
    assert len(engine.advance(360)) == 1


def test_absence_fires_when_another_keys_batch_moves_event_time() -> None:
    engine = seq(ABSENT)
    engine.process([step(0, "payment", "r1")])
    hits = engine.process([step(400, "exec", "r2")])
    assert [h.agent_run_id for h in hits] == ["r1"]
