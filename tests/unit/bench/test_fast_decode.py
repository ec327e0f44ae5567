"""The msgspec fast path in decode.py is a strict subset of pydantic's Event: whatever it
accepts, pydantic accepts with the same values; whatever it refuses, pydantic decides."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.events import Event
from streams.demo.fleet import FleetGenerator
from streams.pipeline import decode
from streams.pipeline.decode import (
    Decoded,
    Record,
    _fast_event,
    decode_batch,
    event_to_dict,
)

NOW = datetime(2026, 5, 1, tzinfo=UTC)

scalars = st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats() | st.text(max_size=12)
maybe = st.one_of(scalars, st.lists(st.text(max_size=5), max_size=3),
                  st.dictionaries(st.text(max_size=5), st.floats() | st.text(max_size=5) | st.integers(), max_size=3))
stamps = st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.5+02:00", "2026-13-01T00:00:00Z",
                          "2026-01-01", "2026-01-01T00:00:00", "2026-01-01 00:00:00Z", "yesterday",
                          "2026-02-30T00:00:00+00:00", "2026-01-01T00:00:00.1234567Z"]) | st.integers()
events = st.fixed_dictionaries(
    {"event_type": st.sampled_from(["inference", "tool_call", "monitor_health", "bogus"]), "ts": stamps},
    optional={k: maybe for k in ("event_id", "schema_version", "producer_seq", "agent_run_id", "input_tokens",
                                 "latency_ms", "is_refusal", "action_category", "finish_reasons", "scores",
                                 "attributes", "request_params", "span_id", "x_unknown")},
)

# mostly canonical events, so whole messages take the fast path and are compared field by field
good_events = st.fixed_dictionaries(
    {"event_type": st.sampled_from(["inference", "tool_call", "guardrail"]),
     "ts": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T10:00:00.250+02:00", "2026-06-30T23:59:59-05:30"])},
    optional={"event_id": st.text(min_size=1, max_size=70), "producer_id": st.none() | st.text(max_size=5),
              "producer_seq": st.integers(min_value=-1, max_value=2**63), "input_tokens": st.integers(0, 10**6),
              "latency_ms": st.floats(min_value=-1, max_value=1e6) | st.integers(0, 10), "is_refusal": st.booleans(),
              "action_category": st.sampled_from(["exec", "fs_read", "payment", "bogus"]),
              "finish_reasons": st.lists(st.text(max_size=4), max_size=3),
              "scores": st.dictionaries(st.text(max_size=4), st.floats(0, 1), max_size=3),
              "attributes": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
              "request_params": st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=3), max_size=2),
              "span_id": st.text(max_size=40)},
)
events = events | good_events


def _pydantic(obj: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return event_to_dict(Event.model_validate(obj))
    except (ValidationError, ValueError, TypeError):
        return None


def _same(fast: dict[str, Any], slow: dict[str, Any], obj: dict[str, Any]) -> None:
    if "event_id" not in obj:  # a fresh UUIDv7 on both sides
        fast, slow = {**fast, "event_id": ""}, {**slow, "event_id": ""}
    assert list(fast) == list(slow)
    assert fast == slow
    assert fast["ts"].utcoffset() == slow["ts"].utcoffset()
    assert {k: type(v) for k, v in fast.items()} == {k: type(v) for k, v in slow.items()}


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(events)
def test_fast_path_accepts_only_what_pydantic_accepts_with_the_same_values(obj: dict[str, Any]) -> None:
    fast = _fast_event(dict(obj))
    if fast is None:
        return  # pydantic decides
    slow = _pydantic(obj)
    assert slow is not None, f"fast path accepted what pydantic rejects: {obj}"
    _same(fast, slow, obj)


def test_generated_fleet_traffic_takes_the_fast_path() -> None:
    t0 = time.time()
    gen = FleetGenerator(start_ts=t0, seed=11)
    batch = list(gen.events_between(t0, t0 + 300, 400, 0.7))
    for obj in batch:
        fast = _fast_event(obj)
        assert fast is not None
        slow = _pydantic(obj)
        assert slow is not None
        _same(fast, slow, obj)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()  # big integers too (orjson refuses them); NaN makes invalid JSON


def _slow_decode(records: list[Record], limit: int) -> Decoded:
    """The reference: the same decoder with both fast paths switched off (pydantic decides everything)."""
    fast_message, fast_event = decode._fast_message, decode._fast_event
    decode._fast_message, decode._fast_event = (lambda raw, rec: None), (lambda obj: None)
    try:
        return decode_batch(records, max_message_bytes=limit, now=NOW)
    finally:
        decode._fast_message, decode._fast_event = fast_message, fast_event


def _comparable(out: Decoded, ids_from: list[dict[str, Any]]) -> tuple[Any, ...]:
    events = [{**e, "event_id": e["event_id"] if e["event_id"] in ids_from else ""} for e in out.events]
    return events, [d.model_dump() for d in out.deadletters], out.messages


messages = st.one_of(
    events.map(lambda e: _dumps(e)),
    st.lists(events, max_size=4).map(lambda es: _dumps(es)),
    st.tuples(st.lists(events, max_size=4), st.one_of(st.none(), st.just("gw-9"), st.integers())).map(
        lambda t: _dumps({"kind": "batch", "producer_id": t[1], "events": t[0]})),
    st.binary(max_size=40),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(messages, max_size=5))
def test_whole_message_fast_path_decodes_exactly_like_pydantic(payloads: list[bytes]) -> None:
    records = [Record("overseer.events.v1", 1, i, b"k", p, 1.5) for i, p in enumerate(payloads)]
    fast = decode_batch(records, max_message_bytes=100_000, now=NOW)
    slow = _slow_decode(records, 100_000)
    given_ids = [i for p in payloads for i in _event_ids(p)]
    assert _comparable(fast, given_ids) == _comparable(slow, given_ids)


def test_fleet_batches_decode_exactly_like_pydantic() -> None:
    t0 = time.time()
    batch = list(FleetGenerator(start_ts=t0, seed=5).events_between(t0, t0 + 300, 300, 0.7))
    for e in batch[::7]:
        del e["producer_id"]  # the batch's producer_id applies
    records = [Record("t", 0, 1, None, orjson.dumps({"kind": "batch", "producer_id": "gw-x", "events": batch})),
               Record("t", 0, 2, None, orjson.dumps(batch[:10])), Record("t", 0, 3, None, orjson.dumps(batch[0]))]
    fast = decode_batch(records, max_message_bytes=10_000_000, now=NOW)
    assert decode._fast_message(records[0].value, records[0]) is not None  # really the fast path
    ids = [e["event_id"] for e in batch]
    assert _comparable(fast, ids) == _comparable(_slow_decode(records, 10_000_000), ids)
    assert fast.events[0]["producer_id"] == "gw-x"


def _event_ids(payload: bytes) -> list[str]:
    try:
        obj = json.loads(payload)
    except ValueError:
        return []
    items = obj.get("events") if isinstance(obj, dict) and obj.get("kind") == "batch" else obj
    items = items if isinstance(items, list) else [items]
    return [i["event_id"] for i in items if isinstance(i, dict) and isinstance(i.get("event_id"), str)]
