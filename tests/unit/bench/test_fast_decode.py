"""The msgspec fast path in decode.py is a strict subset of pydantic's Event: whatever it
accepts, pydantic accepts with the same values; whatever it refuses, pydantic decides."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.events import Event
from streams.demo.fleet import FleetGenerator
from streams.pipeline.decode import _fast_event, event_to_dict

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
