"""Policy engine: thresholds, ladder, cooldown, blast-radius cap, shadow, replay, state, compile errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.items import Location, RawItem
from rules.policy import PolicyEngine, compile_items

PACK = Path(__file__).resolve().parents[3] / "rules" / "packs" / "policies-stable.yaml"
BASE = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


class FakeContext:
    """Collects diagnostics like the real loader does."""

    def __init__(self) -> None:
        self.errors: list[tuple[Location, str, str]] = []

    def compile_condition(self, source: str, location: Location) -> None:
        raise AssertionError("policies do not use conditions")

    def error(self, location: Location, code: str, message: str, hint: str = "") -> None:
        self.errors.append((location, code, message))


def engine_of(**body: Any) -> PolicyEngine:
    body.setdefault("match", {"severity_at_least": "high"})
    ctx = FakeContext()
    engine = compile_items([RawItem("policy", "p", body, Location("test.yaml", 3, 3))], ctx)
    assert ctx.errors == [] and len(engine.policies) == 1
    return engine


def det(n: int, t: float, deployment: str = "dep-1", severity: str = "high", **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "detection_id": f"d{n}", "kind": "rule", "rule_id": "r.exfil", "rule_version": "2", "severity": severity,
        "tags": ["frontier.exfil"], "mode": "enforce", "scope": {"kind": "agent_run", "value": f"run-{n}"},
        "ts": datetime.fromtimestamp(BASE + t, UTC).isoformat().replace("+00:00", "Z"), "tenant_id": "t1",
        "deployment_id": deployment, "model": "m1", "agent_run_id": f"run-{n}", "event_ids": [f"e{n}"],
        "evidence": {}, "source_offsets": [{"topic": "overseer.events.v1", "partition": 0, "offset": n}]}
    d.update(extra)
    return d


def feed(engine: PolicyEngine, dets: list[dict[str, Any]]) -> list[Any]:
    return [x for d in dets for x in engine.on_detection(d, now=0.0)]


def test_threshold_counts_within_the_window_only() -> None:
    engine = engine_of(threshold={"count": 3, "window": "10m"}, ladder=["pause"])
    assert feed(engine, [det(1, 0), det(2, 300)]) == []
    assert feed(engine, [det(3, 850)]) == []  # d1 fell out of the window: only 2 inside
    [decision] = feed(engine, [det(4, 860)])
    assert (decision.outcome, decision.action, decision.scope_kind, decision.scope_value) == \
        ("command", "pause", "deployment", "dep-1")
    assert decision.detection_ids == ["d2", "d3", "d4"]
    assert decision.event_ids == ["e2", "e3", "e4"] and decision.rule_versions == {"r.exfil": "2"}
    assert decision.offsets[0] == {"topic": "overseer.events.v1", "partition": 0, "offset": 2}
    assert "3 matching detection(s) for deployment=dep-1 within 10m (threshold 3): d2, d3, d4" in decision.reason


def test_scopes_are_counted_separately() -> None:
    engine = engine_of(threshold={"count": 2, "window": "10m"})
    assert feed(engine, [det(1, 0, "dep-1"), det(2, 1, "dep-2")]) == []
    assert [d.scope_value for d in feed(engine, [det(3, 2, "dep-2")])] == ["dep-2"]


def test_match_filters_severity_tags_rules_kinds_score() -> None:
    engine = engine_of(match={"severity_at_least": "critical", "tags_any": ["frontier.*"], "rule_ids": ["r.exfil"],
                              "kinds": ["rule"], "min_score": 0.9}, threshold={"count": 1})
    assert feed(engine, [det(1, 0, severity="high", evidence={"score": 1.0})]) == []
    assert feed(engine, [det(2, 0, severity="critical", tags=["ops.noise"], evidence={"score": 1.0})]) == []
    assert feed(engine, [det(3, 0, severity="critical", rule_id="other", evidence={"score": 1.0})]) == []
    assert feed(engine, [det(4, 0, severity="critical", kind="detector", evidence={"score": 1.0})]) == []
    assert feed(engine, [det(5, 0, severity="critical", evidence={"score": 0.5})]) == []
    assert len(feed(engine, [det(6, 0, severity="critical", evidence={"score": 0.95})])) == 1


def test_ladder_climbs_after_cooldown_and_breaches_inside_cooldown_are_suppressed() -> None:
    engine = engine_of(threshold={"count": 1}, ladder=["throttle", "revoke_tools", "pause"], throttle_rate=2.0,
                       revoke_tools=["bash"], cooldown="5m")
    first = feed(engine, [det(1, 0)])[0]
    assert (first.action, first.throttle_rate, first.revoked_tools) == ("throttle", 2.0, [])
    during = feed(engine, [det(2, 60)])[0]
    assert during.outcome == "suppressed_cooldown" and "cooldown" in during.reason
    second = feed(engine, [det(3, 301)])[0]
    assert (second.outcome, second.action, second.revoked_tools) == ("command", "revoke_tools", ["bash"])
    third, fourth = feed(engine, [det(4, 700), det(5, 1100)])
    assert (third.action, fourth.action) == ("pause", "pause")  # the top rung repeats
    assert engine.stats["suppressed_cooldown"] == 1 and engine.stats["command"] == 4


def test_ladder_resets_after_a_quiet_period() -> None:
    engine = engine_of(threshold={"count": 1}, ladder=["pause", "terminate"], cooldown="1m", ladder_reset="1h")
    assert [d.action for d in feed(engine, [det(1, 0), det(2, 120), det(3, 120 + 7200)])] == \
        ["pause", "terminate", "pause"]


def test_blast_radius_cap_asks_a_human_instead() -> None:
    engine = engine_of(threshold={"count": 1}, ladder=["pause"],
                       blast_radius={"max_share": 0.2, "window": "1h", "fleet_size_hint": 10})
    decisions = feed(engine, [det(i, i, f"dep-{i}") for i in range(1, 5)])
    assert [d.outcome for d in decisions] == ["command", "command", "needs_confirmation", "needs_confirmation"]
    assert "blast-radius cap" in decisions[2].reason and "20% of 10 known deployment(s)" in decisions[2].reason
    # outside the blast window the budget is back
    assert feed(engine, [det(9, 3700, "dep-9")])[0].outcome == "command"


def test_blast_radius_uses_the_observed_fleet_size() -> None:
    engine = engine_of(threshold={"count": 1}, ladder=["pause"], blast_radius={"max_share": 0.5, "window": "1h"})
    for i in range(6):
        engine.observe_scope("deployment", f"dep-{i}", BASE)
    outcomes = [d.outcome for d in feed(engine, [det(i, i, f"dep-{i}") for i in range(5)])]
    assert outcomes == ["command", "command", "command", "needs_confirmation", "needs_confirmation"]


def test_shadow_policy_and_shadow_detections_never_enforce() -> None:
    shadow_policy = engine_of(threshold={"count": 1}, mode="shadow")
    assert [d.mode for d in feed(shadow_policy, [det(1, 0)])] == ["shadow"]
    enforce_policy = engine_of(threshold={"count": 2})
    decisions = feed(enforce_policy, [det(1, 0, mode="shadow"), det(2, 1)])
    assert decisions == []  # shadow and enforce detections are counted apart
    [decision] = feed(enforce_policy, [det(3, 2, mode="shadow")])
    assert decision.mode == "shadow" and enforce_policy.stats["shadow_decisions"] == 1


def test_replayed_detections_are_not_counted_twice() -> None:
    engine = engine_of(threshold={"count": 2}, cooldown=0)
    batch = [det(1, 0), det(2, 1)]
    [first] = feed(engine, batch)
    assert feed(engine, batch) == [] and engine.stats["replayed"] == 2


def test_idempotency_key_is_stable_when_the_breach_is_replayed_from_scratch() -> None:
    batch = [det(1, 0), det(2, 1), det(3, 2)]
    engine = engine_of(threshold={"count": 3})
    before = engine.snapshot()
    a = feed(engine, batch)[0]
    crashed = engine_of(threshold={"count": 3})  # a worker that lost its state after the breach
    crashed.restore(before)
    b = [x for d in batch for x in crashed.on_detection(d, now=1e9)][0]  # ... at a later wall-clock time
    c = feed(engine_of(threshold={"count": 3}), list(reversed(batch)))[0]
    assert a.idempotency_key == b.idempotency_key == c.idempotency_key
    other = feed(engine_of(threshold={"count": 3}), [det(1, 0), det(2, 1), det(4, 2)])[0]
    assert other.idempotency_key != a.idempotency_key


def test_snapshot_restore_keeps_windows_ladder_cooldown_and_blast_radius() -> None:
    kw: dict[str, Any] = dict(threshold={"count": 2}, ladder=["pause", "terminate"], cooldown="5m",
                              blast_radius={"max_share": 0.5, "window": "1h", "fleet_size_hint": 4})
    live = engine_of(**kw)
    feed(live, [det(1, 0), det(2, 1), det(3, 10)])  # breach on dep-1, then one detection in the window
    restored = engine_of(**kw)
    restored.restore(live.snapshot())
    tail = [det(4, 20), det(5, 400), det(6, 401), det(7, 402, "dep-2"), det(8, 403, "dep-2"),
            det(9, 404, "dep-3"), det(10, 405, "dep-3")]
    expected = [(d.outcome, d.action, d.scope_value) for d in feed(live, tail)]
    assert [(d.outcome, d.action, d.scope_value) for d in feed(restored, tail)] == expected
    assert expected == [("suppressed_cooldown", "terminate", "dep-1"), ("command", "terminate", "dep-1"),
                        ("command", "pause", "dep-2"), ("needs_confirmation", "pause", "dep-3")]
    assert restored.snapshot() == live.snapshot()


@pytest.mark.parametrize(("body", "code"), [
    ({"match": {"severity_at_least": "huge"}}, "OVR510"),
    ({"match": {"severity": "high"}}, "OVR510"),
    ({}, "OVR510"),
    ({"match": {}, "scope": "galaxy"}, "OVR503"),
    ({"match": {}, "ladder": ["pause", "explode"]}, "OVR504"),
    ({"match": {}, "ladder": ["throttle"]}, "OVR505"),
    ({"match": {}, "ladder": ["revoke_tools"]}, "OVR505"),
    ({"match": {}, "mode": "maybe"}, "OVR506"),
    ({"match": {}, "cooldown": "soon"}, "OVR507"),
    ({"match": {}, "threshold": {"count": 0}}, "OVR508"),
    ({"match": {}, "blast_radius": {"max_share": 2}}, "OVR509"),
    ({"match": {}, "treshold": {"count": 1}}, "OVR502"),
])
def test_compile_errors_are_reported_with_their_location(body: dict[str, Any], code: str) -> None:
    ctx = FakeContext()
    item = RawItem("policy", "bad", body, Location("p.yaml", 7, 3), {"scope": Location("p.yaml", 9, 10)})
    engine = compile_items([item], ctx)
    assert engine.policies == []
    assert code in [c for _, c, _ in ctx.errors]
    loc = next(loc for loc, c, _ in ctx.errors if c == code)
    assert loc.path == "p.yaml" and (loc.line, loc.col) == ((9, 10) if code == "OVR503" else (7, 3))


def pack_engine() -> PolicyEngine:
    ctx = FakeContext()
    items = [RawItem("policy", raw["policy"], raw, Location(str(PACK), 1, 1)) for raw in yaml.safe_load(PACK.read_text())]
    engine = compile_items(items, ctx)
    assert ctx.errors == []
    return engine


def test_builtin_pack_pauses_on_one_frontier_critical() -> None:
    [decision] = pack_engine().on_detection(det(1, 0, severity="critical"), now=0.0)
    assert (decision.policy_id, decision.action, decision.scope_value, decision.mode) == \
        ("pause_deployment_on_frontier_critical", "pause", "dep-1", "enforce")


def test_builtin_pack_pauses_on_three_high_and_flags_detectors() -> None:
    engine = pack_engine()
    highs = [det(i, i * 60, tags=[]) for i in range(1, 4)]
    assert [(d.policy_id, d.action) for d in feed(engine, highs)] == [("pause_deployment_on_repeated_high", "pause")]
    flagged = feed(engine, [det(9, 0, "dep-7", severity="medium", kind="detector", tags=[])])
    assert [(d.policy_id, d.action) for d in flagged] == [("flag_detector_hits", "flag")]


def test_idle_state_is_forgotten_by_event_time_without_changing_decisions() -> None:
    engine = engine_of(threshold={"count": 2, "window": "10m"}, cooldown="1m", ladder_reset="1h")
    for n in range(2048):  # one detection per deployment, a minute apart: ~34 hours of event time
        assert engine.on_detection(det(n, n * 60, f"dep-{n}"), now=1e12) == []
    assert len(engine.state) < 200  # only the last hour or so is kept
    [decision] = engine.on_detection(det(5000, 2047 * 60 + 1, "dep-2047"), now=1e12)
    assert decision.detection_ids == ["d2047", "d5000"]
