"""The fast lane's engine: which rules it runs, and that its detections are the full engine's."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import orjson

from streams.pipeline.convert import detection_id
from streams.pipeline.core import build_core
from streams.pipeline.decode import Record, decode_batch


def _events() -> list[dict]:
    now = datetime.now(UTC).isoformat()
    base = {"event_type": "tool_call", "ts": now, "tenant_id": "t", "deployment_id": "dep-1",
            "request_model": "atlas-7b", "agent_run_id": "run-1", "operation": "execute_tool"}
    raw = [{**base, "event_id": "e-egress", "tool_name": "http_post", "action_category": "net_egress",
            "dest_host": "drop.exfil.example", "egress_bytes": 4_000_000_000},
           {**base, "event_id": "e-shell", "tool_name": "bash", "action_category": "exec",
            "tool_arguments": "rm -rf /var/lib/postgresql"},
           {**base, "event_id": "e-weights", "tool_name": "read_file", "action_category": "weights_access",
            "resource": "/models/atlas-7b/ckpt-0042/model.safetensors"}]
    return decode_batch([Record("ev", 0, 1, None, orjson.dumps(raw))], max_message_bytes=10**7).events


def test_only_single_event_rules_at_or_above_the_floor() -> None:
    core = build_core(None, allowed_lateness_s=60)
    fast = core.new_fastlane_engine("critical")
    assert fast is not None
    assert fast.rules and all(r.severity == "critical" and r.window is None and r.sequence is None
                              for r in fast.rules)
    stateful_critical = [r.id for r in core.engine.rules if r.severity == "critical" and
                         (r.window is not None or r.sequence is not None)]
    assert stateful_critical and not set(stateful_critical) & {r.id for r in fast.rules}
    high = core.new_fastlane_engine("high")
    assert high is not None and len(high.rules) > len(fast.rules)
    assert core.new_fastlane_engine("") is None


def test_the_fast_lane_finds_what_the_full_engine_finds_with_the_same_ids() -> None:
    core = build_core(None, allowed_lateness_s=60)
    fast = core.new_fastlane_engine("critical")
    full = core.new_engine()
    assert fast is not None
    events = _events()  # one set of events (ids depend on their timestamps), a copy for each engine
    fast_hits = fast.process(copy.deepcopy(events))
    full_hits = full.process(copy.deepcopy(events))
    assert fast_hits, "the 4 GB egress to an unapproved host is a critical single-event breach"
    fast_ids = {detection_id(h) for h in fast_hits}
    full_ids = {detection_id(h) for h in full_hits if h.rule_id in {r.id for r in fast.rules}}
    assert fast_ids == full_ids
    assert {h.rule_id for h in full_hits} - {h.rule_id for h in fast_hits}  # the rest stays in the full engine


def test_both_lanes_share_one_decode_per_message_whatever_their_batches() -> None:
    from streams.pipeline.shared_decode import SharedDecode

    class Message:  # stands for Faust's message object (weakly referenced)
        pass

    good = [orjson.dumps({"kind": "batch", "events": [{"event_type": "inference", "event_id": f"e{i}-{j}",
                                                         "ts": "2026-01-01T00:00:00Z"} for j in range(3)]})
            for i in range(3)]
    values = [good[0], b'{"event_type": "inference", "ts": ', good[1], good[2]]  # offset 11 is malformed
    records = [Record("ev", 0, 10 + i, None, v) for i, v in enumerate(values)]
    messages = [Message() for _ in values]
    shared = SharedDecode(max_message_bytes=10**6)
    fast = shared.decode(messages[:2], records[:2])  # the fast lane's cut ...
    detect = shared.decode(messages, records)  # ... and the detect agent's
    assert shared.hits == 2
    assert [e["event_id"] for e in detect.events] == [f"e{i}-{j}" for i in range(3) for j in range(3)]
    assert detect.events[0] is fast.events[0]  # the same dicts, decoded once
    assert [(d.source_offset, d.reason) for d in detect.deadletters] == [(11, "malformed_json")]
    assert detect.messages == 4
