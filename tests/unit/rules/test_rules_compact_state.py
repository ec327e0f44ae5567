"""Compact window/sequence/dedup state: snapshots of the earlier representation restore, and
snapshot/restore at any point of a stream changes no hit."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.engine import Engine, engine_from_text
from rules.hits import compact_context, expand_context, reduce_event
from rules.suppression import pack, unpack
from tests.unit.rules.test_rules_state import DEDUP

TEXT = """
- rule: burst
  title: Burst
  severity: high
  condition: action_category = "exec"
  window: {agg: count, duration: 60s, group_by: [agent_run_id], op: ">=", value: 3}
  dedup: {key: "{agent_run_id}", period: 10m}
- rule: slow
  title: Slow
  severity: medium
  condition: event_type = "inference"
  window: {agg: avg, field: latency_ms, duration: 60s, group_by: [deployment_id, request_model], op: ">", value: 100}
  output: "avg {window.value:.0f} on {deployment_id} ({request_model})"
- rule: tokens
  title: Tokens
  severity: low
  condition: event_type = "inference"
  window: {agg: max, field: output_tokens, duration: 60s, group_by: [deployment_id], op: ">", value: 1000}
- rule: refusals
  title: Refusals
  severity: low
  condition: event_type = "inference" and is_refusal
  window: {agg: count, duration: 10m, type: sliding, group_by: [conversation_id], op: ">=", value: 3}
- rule: seq
  title: Read then send
  severity: critical
  output: "run {agent_run_id} sent to {dest_host}"
  sequence:
    by: [agent_run_id]
    maxspan: 10m
    steps:
      - condition: action_category = "weights_access"
      - condition: action_category = "exec"
      - condition: action_category = "net_egress"
- rule: spawn
  title: Spawn not approved
  severity: high
  sequence:
    by: [agent_run_id]
    maxspan: 10m
    steps:
      - condition: action_category = "spawn_agent"
      - absent: approval = "granted"
        within: 5m
- rule: shell
  title: Shell
  severity: medium
  condition: action_category = "exec"
  output: "exec {tool_arguments}"
  dedup: {key: "{deployment_id}", period: 10m}
"""


def ev(ts: float, eid: str, **f: Any) -> dict[str, Any]:
    f.setdefault("event_type", "tool_call")
    return {"event_id": eid, "_ts": float(ts), "_src": ("events", 1, int(ts * 10)), **f}


EVENTS = [
    ev(1, "a1", action_category="exec", agent_run_id="r1", deployment_id="d1", tool_arguments="ls"),
    ev(2, "a2", action_category="exec", agent_run_id="r1", deployment_id="d1", tool_arguments="ls -la"),
    ev(3, "a3", action_category="weights_access", agent_run_id="r2", deployment_id="d2"),
    ev(4, "a4", action_category="exec", agent_run_id="r2", deployment_id="d2", tool_arguments="cat"),
    ev(5, "a5", action_category="spawn_agent", agent_run_id="r3", deployment_id="d3", tenant_id="t1"),
    ev(6, "a6", event_type="inference", deployment_id="d1", request_model="m1", latency_ms=300.0,
       output_tokens=50, is_refusal=True, conversation_id="c1"),
    ev(7, "a7", event_type="inference", deployment_id="d1", request_model="m1", latency_ms=200,
       output_tokens=70, is_refusal=True, conversation_id="c1"),
]

# Engine(TEXT).process(EVENTS).snapshot() as written by the code before state was made compact
# (deques, a dict per dedup key, whole-event context): a worker may restart from such a checkpoint.
OLD_SNAPSHOT = (
    b'{"v":1,"watermark":7.0,"rules":{"burst":{"hash":"c33d0add7f92e970","state":[[0.0,["r1"],[2,0.0,0,nul'
    b'l,null,null,false,["a1","a2"],2.0,null]],[0.0,["r2"],[1,0.0,0,null,null,null,false,["a4"],4.0,null]]'
    b'],"dedup":{}},"slow":{"hash":"cf466ec64b8bbdf1","state":[[0.0,["d1","m1"],[2,500.0,2,200,300.0,null,'
    b'false,["a6","a7"],7.0,{"event_id":"a7","deployment_id":"d1","request_model":"m1","conversation_id":"'
    b'c1","_src":["events",1,70]}]]],"dedup":null},"tokens":{"hash":"c5f3c853a5797692","state":[[0.0,["d1"'
    b'],[2,120.0,2,50,70,null,false,["a6","a7"],7.0,null]]],"dedup":null},"refusals":{"hash":"2b7b66cc77db'
    b'1184","state":[[["c1"],[[6.0,null,"a6"],[7.0,null,"a7"]]]],"dedup":null},"seq":{"hash":"91c8b09b8f07'
    b'526f","state":[[["r2"],[2,3.0,4.0,["a3","a4"],null,null]]],"dedup":null},"spawn":{"hash":"a4beb69d0d'
    b'56b7e0","state":[[["r3"],[1,5.0,5.0,["a5"],{"event_id":"a5","tenant_id":"t1","deployment_id":"d3","a'
    b'gent_run_id":"r3","_src":["events",1,50]},305.0]]],"dedup":null},"shell":{"hash":"8386385c6e47b2f5",'
    b'"state":null,"dedup":{"d1":[{"rule_id":"shell","rule_version":"1","kind":"rule","title":"Shell","sev'
    b'erity":"medium","tags":[],"mode":"enforce","output":"exec ls","ts":1.0,"scope_kind":"deployment","sc'
    b'ope_value":"d1","event_ids":["a1"],"group":{},"evidence":{"fields":{"event_id":"a1","deployment_id":'
    b'"d1","agent_run_id":"r1","tool_arguments":"ls","action_category":"exec","_src":["events",1,10]}},"te'
    b'nant_id":null,"deployment_id":"d1","model":null,"agent_run_id":"r1","runbook_url":null,"sources":[["'
    b'events",1,10]],"dedup_key":"d1","suppressed_count":0},1,2.0,["a2"]],"d2":[{"rule_id":"shell","rule_v'
    b'ersion":"1","kind":"rule","title":"Shell","severity":"medium","tags":[],"mode":"enforce","output":"e'
    b'xec cat","ts":4.0,"scope_kind":"deployment","scope_value":"d2","event_ids":["a4"],"group":{},"eviden'
    b'ce":{"fields":{"event_id":"a4","deployment_id":"d2","agent_run_id":"r2","tool_arguments":"cat","acti'
    b'on_category":"exec","_src":["events",1,40]}},"tenant_id":null,"deployment_id":"d2","model":null,"age'
    b'nt_run_id":"r2","runbook_url":null,"sources":[["events",1,40]],"dedup_key":"d2","suppressed_count":0'
    b'},0,4.0,[]]}}}}'
)

MORE = [
    ev(8, "b1", action_category="exec", agent_run_id="r1", deployment_id="d1", tool_arguments="rm"),
    ev(9, "b2", action_category="net_egress", agent_run_id="r2", deployment_id="d2", dest_host="x.example"),
    ev(10, "b3", event_type="inference", deployment_id="d1", request_model="m1", latency_ms=100.0,
       output_tokens=5000, is_refusal=True, conversation_id="c1"),
    ev(11, "b4", event_type="inference", deployment_id="d9", request_model="m1", latency_ms=10.0),
]


def hits_as_dicts(hits: list[Any]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(h) for h in hits]


def run_rest(engine: Engine) -> list[dict[str, Any]]:
    return hits_as_dicts(engine.process(MORE) + engine.advance(2000))


def test_a_snapshot_of_the_earlier_state_format_restores_to_the_same_state() -> None:
    direct = engine_from_text(TEXT, allowed_lateness_s=0)
    direct.process(EVENTS)
    restored = engine_from_text(TEXT, allowed_lateness_s=0)
    restored.restore(OLD_SNAPSHOT)
    assert restored.stats["state_dropped"] == 0
    assert restored.snapshot() == direct.snapshot()
    rest = run_rest(restored)
    assert rest == run_rest(direct)
    # every kind of state carried over: the burst, the average, the max, the sliding count, the sequence,
    # the absence and both dedup summaries
    assert sorted({h["rule_id"] for h in rest}) == ["burst", "refusals", "seq", "shell", "slow", "spawn", "tokens"]
    summary = next(h for h in rest if h["rule_id"] == "shell" and h["suppressed_count"])
    assert summary["suppressed_count"] == 2 and summary["evidence"]["first_event_ids"] == ["a1"]
    assert summary["sources"] == [("events", 1, 10)] and summary["evidence"]["fields"]["tool_arguments"] == "ls"


def test_the_snapshot_format_is_unchanged_apart_from_unused_aggregate_slots() -> None:
    engine = engine_from_text(TEXT, allowed_lateness_s=0)
    engine.process(EVENTS)
    new, old = orjson.loads(engine.snapshot()), orjson.loads(OLD_SNAPSHOT)
    for rule_id in ("slow", "tokens"):  # an avg keeps no min/max, a max no sum
        for snap in (new, old):
            for row in snap["rules"][rule_id]["state"]:
                row[2][1:5] = [None] * 4
    assert new == old


def test_window_state_keeps_no_event_after_its_batch() -> None:
    engine = engine_from_text(TEXT, allowed_lateness_s=0)
    engine.process(EVENTS)
    bucket = engine._stateful["slow"].buckets[0.0]
    assert list(bucket.index) == [("d1", "m1")] and list(bucket.n) == [2] and list(bucket.b) == [2]
    assert [type(c) for c in bucket.ctx] == [tuple]  # the context the hit needs, not the event
    assert list(engine._stateful["refusals"].keys) == ["c1"]


def test_compact_context_and_packed_evidence_round_trip() -> None:
    fields = ("event_id", "scores.jailbreak", "request_params.a.b", "tenant_id", "missing")
    e = {"event_id": "e", "scores": {"jailbreak": 0.5}, "request_params": {"a.b": [1]}, "tenant_id": None,
         "_src": ["t", 1, 2]}
    assert expand_context(compact_context(e, fields), fields) == reduce_event(e, fields)
    assert expand_context(compact_context({}, fields), fields) == reduce_event({}, fields) == {}
    value: dict[str, Any] = {"fields": {"a": [1, {"b": (2, 3)}], "c": None}, "n": 1.5}
    shapes: dict[tuple[str, ...], tuple[str, ...]] = {}
    packed = pack(value, shapes)
    value["fields"]["a"].append("later change")  # the returned hit may be changed: the state is not
    assert unpack(packed) == {"fields": {"a": [1, {"b": (2, 3)}], "c": None}, "n": 1.5}


KINDS = ["exec", "weights_access", "net_egress", "spawn_agent"]


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(1, 60))
    out, ts = [], 0.0
    for i in range(n):
        ts += rng.choice([0.0, 1.0, 7.0, 45.0, 200.0])
        t = max(0.0, ts - rng.choice([0.0, 0.0, 30.0, 90.0]))  # some events arrive late
        if rng.random() < 0.4:
            out.append(ev(t, f"x{i}", event_type="inference", deployment_id=rng.choice(["d1", "d2"]),
                          request_model=rng.choice(["m1", "m2"]), latency_ms=rng.choice([50.0, 150.0, 400]),
                          output_tokens=rng.choice([10, 2000]), is_refusal=rng.random() < 0.5,
                          conversation_id=rng.choice(["c1", "c2"])))
        elif rng.random() < 0.1:
            out.append(ev(t, f"x{i}", event_type="guardrail", approval="granted", agent_run_id="r1"))
        else:
            out.append(ev(t, f"x{i}", action_category=rng.choice(KINDS), agent_run_id=rng.choice(["r1", "r2"]),
                          deployment_id=rng.choice(["d1", "d2"]), tool_arguments="ls", tenant_id="t"))
    return out


@settings(max_examples=60, deadline=None)
@given(streams(), st.integers(1, 6), st.integers(0, 60))
def test_snapshot_and_restore_anywhere_in_a_stream_changes_no_hit(events: list[dict[str, Any]], batch: int,
                                                                   cut: int) -> None:
    batches = [events[i:i + batch] for i in range(0, len(events), batch)]
    cut = min(cut, len(batches))
    straight = engine_from_text(TEXT, allowed_lateness_s=30)
    expected = [straight.process(b) for b in batches] + [straight.advance(5000)]
    first = engine_from_text(TEXT, allowed_lateness_s=30)
    got = [first.process(b) for b in batches[:cut]]
    second = engine_from_text(TEXT, allowed_lateness_s=30)
    second.restore(first.snapshot())
    got += [second.process(b) for b in batches[cut:]] + [second.advance(5000)]
    assert [hits_as_dicts(h) for h in got] == [hits_as_dicts(h) for h in expected]
    assert second.stats["suppressed"] + first.stats["suppressed"] == straight.stats["suppressed"]


def test_dedup_periods_end_in_the_order_keys_opened_even_after_a_late_hit() -> None:
    engine = engine_from_text(DEDUP, allowed_lateness_s=1e6)
    def hit(t: float, dep: str) -> dict[str, Any]:
        return ev(t, f"{dep}-{t}", action_category="exec", deployment_id=dep, tool_arguments="ls")

    engine.process([hit(100, "d1"), hit(101, "d1")])
    engine.process([hit(50, "d2"), hit(51, "d2"), hit(102, "d3"), hit(103, "d3")])  # d2 is late, opened last
    summaries = engine.advance(700)  # d2 (50 + 600) is due before d1 (100 + 600); d3 not yet
    assert [h.dedup_key for h in summaries] == ["d1", "d2"]
    assert [h.dedup_key for h in engine.advance(800)] == ["d3"]
    engine.process([hit(900, "d4"), hit(901, "d4")])  # in order again: the due keys are a prefix
    assert [(h.dedup_key, h.suppressed_count) for h in engine.advance(1600)] == [("d4", 1)]


def test_a_sliding_count_key_with_one_event_keeps_any_id_exactly() -> None:
    """A lone event is packed (time bytes + UTF-8 id); ids that are not plain strings take the list form.
    Either way the snapshot, a restore and the hit that fires later see the same time and id."""
    for eid in ("r1", "", "ü-ünïcode-✓", "\ud800lone-surrogate", 17, None):
        engine = engine_from_text(TEXT, allowed_lateness_s=0)
        e = ev(6.25, "x", event_type="inference", is_refusal=True, conversation_id="c1")
        e["event_id"] = eid
        engine.process([e])
        h = engine._stateful["refusals"].keys["c1"]
        assert type(h) is (bytes if type(eid) is str else list)
        assert engine._stateful["refusals"].dump() == [[["c1"], [[6.25, None, eid]]]]
        restored = engine_from_text(TEXT, allowed_lateness_s=0)
        restored._stateful["refusals"].load(engine._stateful["refusals"].dump())
        more = [ev(7, "y", event_type="inference", is_refusal=True, conversation_id="c1"),
                ev(8, "z", event_type="inference", is_refusal=True, conversation_id="c1")]
        fired = [h for h in restored.process(more) if h.rule_id == "refusals"]
        assert [h.event_ids for h in fired] == [[eid, "y", "z"]]
        assert fired[0].evidence["window_start"] == 6.25
        assert [h.event_ids for h in engine.process(more) if h.rule_id == "refusals"] == [[eid, "y", "z"]]


def test_a_sequence_partial_that_saw_only_step_0_is_packed_and_behaves_as_a_row() -> None:
    """Step 0 alone: bytes (start + id) when the id is a string, a row otherwise; a restart keeps the key's
    place, the next step turns it into a row, snapshots show the version 1 partial either way."""
    for eid in ("w1", "ü✓", 5, None):
        engine = engine_from_text(TEXT, allowed_lateness_s=0)
        engine.process([ev(1, "w0", action_category="weights_access", agent_run_id="r0"),
                        ev(2, "w0", action_category="weights_access", agent_run_id="r1")])
        e = ev(3, "x", action_category="weights_access", agent_run_id="r0")
        e["event_id"] = eid
        engine.process([e])  # a restart of r0
        seq = engine._stateful["seq"]
        assert list(seq.partials) == ["r0", "r1"]
        assert type(seq.partials["r0"]) is (bytes if type(eid) is str else int)
        assert type(seq.partials["r1"]) is bytes
        assert seq.dump() == [[["r0"], [1, 3.0, 3.0, [eid], None, None]], [["r1"], [1, 2.0, 2.0, ["w0"], None, None]]]
        restored = engine_from_text(TEXT, allowed_lateness_s=0)
        restored.restore(engine.snapshot())
        assert restored._stateful["seq"].dump() == seq.dump()
        more = [ev(4, "y", action_category="exec", agent_run_id="r0"),
                ev(5, "z", action_category="net_egress", agent_run_id="r0", dest_host="h")]
        for eng in (engine, restored):
            assert [h.event_ids for h in eng.process(more) if h.rule_id == "seq"] == [[eid, "y", "z"]]
            assert list(eng._stateful["seq"].partials) == ["r1"]
    spawn = engine_from_text(TEXT, allowed_lateness_s=0)  # step 1 is an absence: always a row (it arms)
    spawn.process([ev(1, "s1", action_category="spawn_agent", agent_run_id="r3")])
    assert type(spawn._stateful["spawn"].partials["r3"]) is int


def test_dedup_state_is_a_tuple_until_a_hit_folds_and_a_bare_key_is_the_field_itself() -> None:
    engine = engine_from_text(TEXT, allowed_lateness_s=0)
    e = ev(1, "a1", action_category="exec", agent_run_id="r1", deployment_id="d1", tool_arguments="ls")
    hits = engine.process([e])
    sup = engine._suppressors["shell"]
    assert type(sup.open["d1"]) is tuple and next(iter(sup.open)) is e["deployment_id"]
    state = sup.open["d1"]
    assert state[14] == ("events", 1, 10) and state[-1] is state[14]  # the evidence's _src is the source
    assert sup._evidence(state) == {"fields": {"event_id": "a1", "deployment_id": "d1", "agent_run_id": "r1",
                                               "tool_arguments": "ls", "action_category": "exec",
                                               "_src": ["events", 1, 10]}}
    assert state[9] == tuple(sup._evidence(state)["fields"])  # the field names; their values end the state
    packed = pack({"fields": {"_src": ["events", True, 10]}}, {}, state[14])  # True == 1, but not the same
    assert [type(x) for x in unpack(packed)["fields"]["_src"]] == [str, bool, int]
    assert [h.dedup_key for h in hits if h.rule_id == "shell"] == ["d1"]
    hits[0].evidence["fields"]["tool_arguments"] = "changed"  # the returned hit is the caller's to change
    engine.process([ev(2, "a2", action_category="exec", agent_run_id="r1", deployment_id="d1")])
    assert type(sup.open["d1"]) is list and sup.open["d1"][1] == 1
    snap = engine.snapshot()
    restored = engine_from_text(TEXT, allowed_lateness_s=0)
    restored.restore(snap)
    assert restored.snapshot() == snap
    summary = [h for h in restored.advance(10_000) if h.rule_id == "shell"]
    assert [h.suppressed_count for h in summary] == [1]
    assert state[5] is None  # the output is rendered again from the evidence: the same text
    assert summary[0].output == "exec ls (+1 more suppressed within 600s)"
    burst = engine_from_text(TEXT, allowed_lateness_s=0)  # a window's output needs more than the event
    burst.process([ev(t, f"b{t}", action_category="exec", agent_run_id="r1") for t in (1, 2, 3, 4, 5, 6)])
    assert [s[5] for s in burst._suppressors["burst"].open.values()] == ["Burst"]
    assert summary[0].evidence["fields"] == {"event_id": "a1", "deployment_id": "d1", "agent_run_id": "r1",
                                             "tool_arguments": "ls", "action_category": "exec",
                                             "_src": ["events", 1, 10]}
    # a key field that is not a string renders as the template does ("<none>" when missing, str() otherwise)
    for value, key in ((7, "7"), (None, "<none>")):
        eng = engine_from_text(TEXT, allowed_lateness_s=0)
        out = eng.process([ev(1, "b", action_category="exec", agent_run_id="r9", deployment_id=value)])
        assert [h.dedup_key for h in out if h.rule_id == "shell"] == [key]
        assert list(eng._suppressors["shell"].open) == [key]


def test_a_common_active_key_costs_at_most_200_bytes() -> None:
    """Issue #8 in small: conversations with one refusal each (the built-in packs' sliding window holds
    them, nothing fires) retain at most 200 traced bytes per key, the events' own strings included."""
    import gc
    import tracemalloc

    from rules.engine import load_engine

    def events(lo: int, hi: int) -> list[dict[str, Any]]:
        return [{"event_id": f"s{i}c", "event_type": "inference", "operation": "chat", "is_refusal": True,
                 "conversation_id": f"conv-{i:09d}", "tenant_id": "t-acme", "deployment_id": f"dep-{i % 64}",
                 "output_tokens": 12, "_ts": 1.7e9 + (i % 600) / 10.0, "_src": ("s", 0, i)} for i in range(lo, hi)]

    engine = load_engine()
    engine.process(events(-2000, 0))  # warm-up keys, not counted
    keys_before = engine.stats["state_keys"]
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for lo in range(0, 20_000, 5000):
            engine.process(events(lo, lo + 5000))
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    refusal_keys = engine._stateful["agent_repeated_refusals"].size()
    assert refusal_keys == 22_000 and engine.stats["state_keys"] - keys_before >= 20_000  # every key is held
    assert retained / 20_000 <= 200
