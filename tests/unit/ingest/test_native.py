"""Native events: single, array, EventBatch; per-item validation; unknown keys kept."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import Event
from streams.ingest.adapters import PayloadError, adapt


def test_single_array_and_batch(native_lines: list[Any]) -> None:
    single = adapt("native", native_lines[0])
    array = adapt("native", native_lines[:3])
    batch = adapt("native", native_lines[3])
    assert (len(single.events), len(array.events), len(batch.events)) == (1, 3, 2)
    for e in array.events + batch.events:
        assert Event.model_validate(e).model_dump(mode="json", exclude_none=True) == e
        assert e["producer_id"] == "gw-eu-1" and e["event_id"]
    assert [e["producer_seq"] for e in batch.events] == [3, 4]  # the batch's producer_id is stamped


def test_fields_kept_and_unknown_keys_moved_to_attributes(native_lines: list[Any]) -> None:
    e = adapt("native", native_lines[1]).events[0]
    assert (e["tool_name"], e["action_category"], e["resource"]) == (
        "read_file", "weights_access", "/models/atlas-7b/ckpt-0042/model.safetensors")
    assert e["attributes"] == {"gateway_region": "eu-west-1"}
    first = adapt("native", native_lines[0]).events[0]
    assert (first["scores"], first["model_checkpoint"], first["latency_ms"]) == (
        {"jailbreak": 0.02}, "ckpt-0042", 950.5)


def test_given_event_id_is_kept() -> None:
    e = adapt("native", {"event_id": "abc", "event_type": "inference", "ts": "2026-01-01T00:00:00Z"}).events[0]
    assert e["event_id"] == "abc"


def test_bad_items(native_lines: list[Any]) -> None:
    items = [native_lines[0], {"event_type": "telepathy", "ts": "2026-01-01T00:00:00Z"},
             {"event_type": "inference"}, "text", {"event_type": "tool_call", "ts": "2026-01-01T00:00:00Z",
                                                   "egress_bytes": -1}]
    r = adapt("native", items)
    assert len(r.events) == 1
    assert [(x.index, x.reason) for x in r.errors] == [
        (1, "unknown_event_type"), (2, "schema_violation"), (3, "not_an_object"), (4, "schema_violation")]
    assert "ts" in r.errors[1].error and "egress_bytes" in r.errors[3].error
    assert r.errors[3].raw.startswith(b'{"event_type":"tool_call"')


@pytest.mark.parametrize("payload", [7, "x", {"kind": "batch", "events": "no"}])
def test_unreadable(payload: Any) -> None:
    with pytest.raises(PayloadError):
        adapt("native", payload)


def test_unknown_format() -> None:
    with pytest.raises(PayloadError, match="unknown format"):
        adapt("csv", {})


def test_an_unknown_attribute_beyond_64_bits_is_kept_as_text() -> None:
    r = adapt("native", [{"event_type": "inference", "ts": "2026-01-01T00:00:00Z", "x": 2**70},
                         {"event_type": "inference", "ts": "2026-01-01T00:00:00Z"}])
    assert len(r.events) == 2 and r.errors == []
    assert r.events[0]["attributes"] == {"x": str(2**70)}

