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
