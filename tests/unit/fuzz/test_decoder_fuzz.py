"""Hypothesis against the batch decoder: whatever arrives is an event or a dead letter with a reason.

Never an exception, never a silent drop: for every input message, either it yields events, or
at least one dead letter carries its offset, a known reason and an error text. (Events the decoder
accepts but ClickHouse cannot store are dead-lettered at write time: test_unstorable.py.)
"""

from __future__ import annotations

import math

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.deadletter import DeadLetterReason
from streams.pipeline.decode import Record
from streams.runtime import (
    decode_safely as decode_batch,  # what the worker runs: never raises
)

LIMIT = 64 * 1024
REASONS = {r.value for r in DeadLetterReason}
GOOD = {"event_type": "tool_call", "ts": "2026-03-01T10:00:00Z", "tool_name": "bash", "agent_run_id": "r"}
FIELDS = ["event_id", "event_type", "ts", "tool_name", "egress_bytes", "input_tokens", "latency_ms", "scores",
          "attributes", "is_refusal", "finish_reasons", "request_params", "producer_seq", "step_index",
          "content", "tool_arguments", "action_category", "deployment_id", "x_unknown"]

ODD_TEXT = st.text(alphabet=st.characters(codec=None, categories=None), max_size=40) | st.sampled_from(
    ["\x00", "\ud800", "\udfff", "a\ud83d", "\u202e", "\ufeff", "\uffff", "𝔘𝔫𝔦", "e\u0301", "\U0010ffff", ""])
NUMBERS = st.sampled_from([0, -0.0, 1e308, -1e308, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 5e-324,
                           float("nan"), float("inf"), -float("inf")]) | st.integers() | st.floats()
SCALARS = st.none() | st.booleans() | NUMBERS | ODD_TEXT
JSONISH = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ODD_TEXT, kids, max_size=4),
                       max_leaves=20)


def _raw_json(obj: object) -> bytes:
    """JSON text as a careless producer would write it: NaN/Infinity/huge ints, lone surrogates escaped."""
    import json

    return json.dumps(obj, ensure_ascii=True, allow_nan=True).encode()


def check(values: list[bytes | None]) -> None:
    records = [Record("overseer.events.v1", 0, i, b"k", v) for i, v in enumerate(values)]
    out = decode_batch(records, max_message_bytes=LIMIT)
    assert out.messages == len(values)
    by_offset: dict[int, int] = {}
    for e in out.events:
        by_offset[e["_src"][2]] = by_offset.get(e["_src"][2], 0) + 1
        assert isinstance(e["event_id"], str) and e["event_id"] and math.isfinite(e["_ts"])
    dead: set[int] = set()
    for d in out.deadletters:
        assert d.reason in REASONS and d.error and d.source_topic == "overseer.events.v1"
        dead.add(d.source_offset)
        d.model_dump_json()  # the dead letter itself can be published
    for i, v in enumerate(values):
        assert i in by_offset or i in dead or _empty(v), f"message {i} vanished: {v!r:.200}"


def _empty(value: bytes | None) -> bool:
    """An empty array or an empty producer batch holds no event: nothing to store, nothing lost."""
    try:
        obj = orjson.loads(value or b"null")
    except orjson.JSONDecodeError:
        return False
    return obj == [] or (isinstance(obj, dict) and obj.get("kind") == "batch" and obj.get("events") == [])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200) | st.none(), min_size=1, max_size=5))
def test_random_bytes(values: list[bytes | None]) -> None:
    check(values)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSONISH)
def test_arbitrary_json_shapes(obj: object) -> None:
    check([_raw_json(obj)])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional={f: JSONISH for f in FIELDS}))
def test_events_with_wrong_types_and_odd_values(extra: dict) -> None:
    event = {**GOOD, **extra}
    check([_raw_json(event), _raw_json([event, GOOD]), _raw_json({"kind": "batch", "events": [event, 7]})])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(50, 5000), st.sampled_from(["[", "{\"a\":"]))
def test_deep_nesting(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    nested = (opener * depth + "1" + closer * depth).encode()
    as_field = b'{"event_type":"inference","ts":"2026-01-01T00:00:00Z","request_params":' + nested + b"}"
    check([nested, as_field])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.integers(LIMIT - 100, LIMIT + 100), st.sampled_from(["content", "tool_arguments", "tool_name", "x_big"]))
def test_huge_strings_at_and_around_the_size_limit(size: int, field: str) -> None:
    check([orjson.dumps({**GOOD, field: "x" * size}), orjson.dumps({**GOOD, field: "\u00e9" * (size // 2)})])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["egress_bytes", "input_tokens", "producer_seq", "latency_ms", "step_index"]), NUMBERS)
def test_numeric_edge_cases_in_typed_fields(field: str, value: float) -> None:
    check([_raw_json({**GOOD, field: value})])
    check([b'{"event_type":"tool_call","ts":"2026-01-01T00:00:00Z","' + field.encode() + b'":1e309}',
           b'{"event_type":"tool_call","ts":"2026-01-01T00:00:00Z","' + field.encode() + b'":-0.0}',
           b'{"event_type":"tool_call","ts":"2026-01-01T00:00:00Z","' + field.encode() + b'":18446744073709551616}'])


def test_lone_surrogates_and_nul_are_handled() -> None:
    check([b'{"event_type":"inference","ts":"2026-01-01T00:00:00Z","content":"\\ud800 and \\u0000"}',
           b'{"event_type":"inference","ts":"2026-01-01T00:00:00Z","tool_name":"\\udfff"}',
           b'{"event_type":"inference","ts":"2026-01-01T00:00:00Z","x_attr":"\\ud83d"}',
           '{"event_type":"inference","ts":"2026-01-01T00:00:00Z","content":"\u0000\u202e"}'.encode(),
           b"\xff\xfe{not utf-8}", b"\xed\xa0\x80"])
