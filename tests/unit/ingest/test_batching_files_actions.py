"""Producer-side batching, file splitting, and the action-category inference table."""

from __future__ import annotations

import orjson
import pytest

from schemas.events import EventBatch
from streams.ingest.adapters import PayloadError
from streams.ingest.adapters.actions import TOOL_CATEGORIES, infer_action
from streams.ingest.batching import partition_key, plan_messages
from streams.ingest.files import split_units


def ev(i: int, **fields: object) -> dict[str, object]:
    return {"event_type": "inference", "ts": "2026-01-01T00:00:00Z", "step_index": i, **fields}


def test_key_preference() -> None:
    assert partition_key({"agent_run_id": "r", "conversation_id": "c", "deployment_id": "d"}) == b"r"
    assert partition_key({"conversation_id": "c", "deployment_id": "d"}) == b"c"
    assert partition_key({"deployment_id": "d"}) == b"d"
    assert partition_key({}) is None


def test_groups_by_key_keeps_order_and_caps_count() -> None:
    events = [ev(i, agent_run_id=f"r{i % 2}") for i in range(7)] + [ev(99)]
    messages, oversized = plan_messages(events, "p1", max_batch=3, max_bytes=1 << 20)
    assert oversized == []
    assert [(m.key, m.count) for m in messages] == [(b"r0", 3), (b"r0", 1), (b"r1", 3), (None, 1)]
    first = EventBatch.model_validate(orjson.loads(messages[0].value))
    assert first.producer_id == "p1" and [e.step_index for e in first.events] == [0, 2, 4]


def test_splits_by_bytes_and_reports_oversized() -> None:
    events = [ev(i, agent_run_id="r", content="x" * 300) for i in range(8)] + [
        ev(8, agent_run_id="r", content="y" * 5000)]
    messages, oversized = plan_messages(events, None, max_batch=100, max_bytes=1500)
    assert all(len(m.value) <= 1500 for m in messages)
    assert sum(m.count for m in messages) == 8 and [i for i, _ in oversized] == [8]
    sent = [e["step_index"] for m in messages for e in orjson.loads(m.value)["events"]]
    assert sent == list(range(8))


def test_split_units_shapes() -> None:
    assert [u.label for u in split_units("a.json", b'[{"a":1},{"b":2}]', "native")] == ["item 0", "item 1"]
    assert [u.payload for u in split_units("a.json", b'  {"a": 1}\n', "litellm")] == [{"a": 1}]
    units = split_units("a.ndjson", b'{"a":1}\n\nnot json\n{"b":2}\n', "native")
    assert [u.label for u in units] == ["line 1", "line 3", "line 4"]
    assert units[1].error is not None and units[1].error.reason == "malformed_json"
    pb = split_units("t.pb", b"\x0a\x00", "otlp")
    assert len(pb) == 1 and pb[0].payload == b"\x0a\x00"
    with pytest.raises(PayloadError):
        split_units("e.json", b"  \n", "native")
    with pytest.raises(PayloadError):
        split_units("e.json", b"[1, 2", "native")


@pytest.mark.parametrize(("tool", "args", "expected"), [
    ("read_file", {"path": "/srv/app/README.md"}, {"action_category": "fs_read", "resource": "/srv/app/README.md"}),
    ("read_file", {"path": "/models/m/pytorch_model-00001-of-00002.bin"}, {"action_category": "weights_access"}),
    ("cat", {"file": "/data/ckpt-7/shard.gguf"}, {"action_category": "weights_access"}),
    ("write_file", {"path": "/repo/train/../train/loop.py"}, {"action_category": "fs_write",
                                                              "resource": "/repo/train/loop.py"}),
    ("Bash", {"command": "ls"}, {"action_category": "exec"}),
    ("http_post", {"url": "https://X.example.com/u", "body": "héllo"},
     {"action_category": "net_egress", "dest_host": "x.example.com", "egress_bytes": 6}),
    ("get_secret", {}, {"action_category": "credential_access"}),
    ("create_instance", {}, {"action_category": "compute_provision"}),
    ("make_payment", {}, {"action_category": "payment"}),
    ("spawn_agent", {}, {"action_category": "spawn_agent"}),
    ("grant_role", {}, {"action_category": "permission_change"}),
    ("search_docs", {"query": "x"}, {}),  # unknown tool: no category guessed
])
def test_inference_table(tool: str, args: dict[str, object], expected: dict[str, object]) -> None:
    got = infer_action(tool, args)
    assert {k: got.get(k) for k in expected} == expected
    if not expected:
        assert "action_category" not in got


def test_every_table_entry_is_a_valid_category() -> None:
    assert all(name == name.lower() for name in TOOL_CATEGORIES)
    assert {c.value for c in TOOL_CATEGORIES.values()} >= {"fs_read", "fs_write", "exec", "net_egress"}
