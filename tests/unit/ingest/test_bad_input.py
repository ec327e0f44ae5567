"""Hypothesis: no input makes an adapter crash; bad items are refused one by one, never all at once."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import Event
from streams.ingest.adapters import FORMATS, PayloadError, adapt
from streams.ingest.adapters.otlp_wire import encode_protobuf

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)

SPAN_KEYS = ["traceId", "spanId", "startTimeUnixNano", "endTimeUnixNano", "attributes", "status", "events", "name"]


def check(fmt: str, payload: Any) -> None:
    try:
        result = adapt(fmt, payload)
    except PayloadError:
        return
    for event in result.events:
        Event.model_validate(event)
    for error in result.errors:
        assert error.error and isinstance(error.raw, bytes)


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(FORMATS), payload=json_values)
def test_arbitrary_json_never_crashes(fmt: str, payload: Any) -> None:
    check(fmt, payload)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(SPAN_KEYS), value=json_values, victim=st.integers(0, 5))
def test_one_broken_span_costs_only_itself(otlp_export: dict[str, Any], key: str, value: Any, victim: int) -> None:
    export = copy.deepcopy(otlp_export)
    spans = export["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[victim][key] = value
    try:
        result = adapt("otlp", export)
    except PayloadError:
        raise AssertionError("a broken span must not fail the whole export") from None
    healthy = adapt("otlp", otlp_export)
    victim_id = otlp_export["resourceSpans"][0]["scopeSpans"][0]["spans"][victim]["spanId"]
    others = {e["span_id"] for e in healthy.events} - {victim_id}
    assert others <= {e.get("span_id") for e in result.events}
    assert len(result.events) + len(result.errors) + result.skipped == 6


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(1, 2000), flip=st.integers(0, 255))
def test_truncated_or_corrupted_protobuf(otlp_export: dict[str, Any], cut: int, flip: int) -> None:
    body = bytearray(encode_protobuf(otlp_export))
    body = body[: min(cut, len(body))]
    body[len(body) // 2] ^= flip
    check("otlp", bytes(body))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["litellm", "openai"]), data=st.data())
def test_one_broken_item_costs_only_itself(litellm_payloads: list[dict[str, Any]],
                                           openai_objects: list[dict[str, Any]], fmt: str,
                                           data: st.DataObject) -> None:
    items = copy.deepcopy(litellm_payloads if fmt == "litellm" else openai_objects)
    victim = items[0]
    key = data.draw(st.sampled_from(sorted(victim)))
    victim[key] = data.draw(json_values)
    if key in ("response", "choices", "output", "usage"):  # break the nested shape too
        victim.setdefault("extra", {})
    healthy = adapt(fmt, items[1:]).events
    result = adapt(fmt, items)
    for event in result.events:
        Event.model_validate(event)
    assert {e["event_id"] for e in healthy} <= {e["event_id"] for e in result.events}
