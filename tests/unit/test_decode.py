"""The batch decoder: valid events pass, everything else is dead-lettered with a reason."""

from __future__ import annotations

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.deadletter import DeadLetter
from streams.pipeline.decode import Record, decode_batch

GOOD = {"event_type": "tool_call", "ts": "2026-03-01T10:00:00Z", "deployment_id": "d1", "tool_name": "bash",
        "action_category": "exec", "agent_run_id": "r1"}


def rec(value: bytes | None, offset: int = 0, key: bytes | None = b"k") -> Record:
    return Record("overseer.events.v1", 2, offset, key, value)


def test_single_event_array_and_producer_batch_all_decode() -> None:
    batch = {"kind": "batch", "producer_id": "gw-1", "events": [GOOD, {**GOOD, "producer_seq": 4}]}
    out = decode_batch([rec(orjson.dumps(GOOD), 1), rec(orjson.dumps([GOOD, GOOD]), 2),
                        rec(orjson.dumps(batch), 3)], max_message_bytes=100_000)
    assert not out.deadletters
    assert len(out.events) == 5
    assert [e["_src"][2] for e in out.events] == [1, 2, 2, 3, 3]
    # the batch's producer_id is the default for its events
    assert out.events[3]["producer_id"] == "gw-1" and out.events[4]["producer_seq"] == 4
    assert out.events[0]["_ts"] == 1772359200.0
    assert out.events[0]["action_category"] == "exec"  # enum values, not enum objects


def test_each_kind_of_bad_input_has_its_reason_and_source_offset() -> None:
    records = [
        rec(b'{"event_type": "inference", "ts": ', 10),
        rec(b'{"event_type": "tool_call", "ts": "yesterday"}', 11),
        rec(b'{"event_type": "teleport", "ts": "2026-01-01T00:00:00Z"}', 12),
        rec(b"[1, 2]", 13),
        rec(b"x" * 2000, 14),
        rec(None, 15),
        rec(orjson.dumps({"kind": "batch", "events": "nope"}), 16),
    ]
    out = decode_batch(records, max_message_bytes=1000)
    assert out.events == []
    reasons = [(d.reason, d.source_offset, d.index_in_message) for d in out.deadletters]
    assert reasons == [("malformed_json", 10, None), ("schema_violation", 11, None),
                       ("unknown_event_type", 12, None), ("not_an_object", 13, 0), ("not_an_object", 13, 1),
                       ("oversized", 14, None), ("malformed_json", 15, None), ("schema_violation", 16, None)]
    violation = out.deadletters[1]
    assert "ts" in violation.error and violation.source_topic == "overseer.events.v1"
    assert violation.source_partition == 2
    assert violation.original() == b'{"event_type": "tool_call", "ts": "yesterday"}'
    assert "1000" in out.deadletters[5].error  # says what the limit was


def test_one_bad_event_in_a_batch_does_not_cost_the_good_ones() -> None:
    batch = {"kind": "batch", "events": [GOOD, {**GOOD, "input_tokens": -1}, GOOD]}
    out = decode_batch([rec(orjson.dumps(batch), 5)], max_message_bytes=100_000)
    assert len(out.events) == 2
    [dead] = out.deadletters
    assert dead.index_in_message == 1 and "input_tokens" in dead.error
    assert orjson.loads(dead.original())["input_tokens"] == -1


def test_unknown_attributes_are_kept_as_strings() -> None:
    out = decode_batch([rec(orjson.dumps({**GOOD, "x_team": "red", "x_nested": {"a": 1}}))],
                       max_message_bytes=100_000)
    [event] = out.events
    assert event["attributes"] == {"x_team": "red", "x_nested": '{"a":1}'}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {"event_type": st.sampled_from(["inference", "tool_call", "agent_step", "bogus", 3, None])},
    optional={"ts": st.one_of(st.text(max_size=30), st.integers(), st.just("2026-01-01T00:00:00Z")),
              "input_tokens": json_values, "scores": json_values, "tool_name": json_values,
              "attributes": json_values, "egress_bytes": st.integers(min_value=-2**70, max_value=2**70)},
).flatmap(lambda d: st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(lambda extra: {**extra, **d}))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=200), event_like.map(lambda d: json.dumps(d, default=str).encode())),
                max_size=8))
def test_fuzz_every_message_is_accounted_for(payloads: list[bytes]) -> None:
    records = [rec(p, i) for i, p in enumerate(payloads)]
    out = decode_batch(records, max_message_bytes=150)
    # nothing vanishes: each message yields events or dead letters (an empty array yields neither)
    for i, payload in enumerate(payloads):
        produced = [e for e in out.events if e["_src"][2] == i] + [d for d in out.deadletters if d.source_offset == i]
        try:
            empty_array = orjson.loads(payload) == [] if len(payload) <= 150 else False
        except orjson.JSONDecodeError:
            empty_array = False
        assert produced or empty_array
    for d in out.deadletters:
        assert isinstance(d, DeadLetter) and d.error


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=3000))
def test_deep_nesting_is_dead_lettered_not_a_crash(depth: int) -> None:
    payload = b'{"event_type": "inference", "ts": "2026-01-01T00:00:00Z", "x": ' + b"[" * depth + b"]" * depth + b"}"
    out = decode_batch([rec(payload)], max_message_bytes=10_000)
    assert len(out.events) + len(out.deadletters) == 1
