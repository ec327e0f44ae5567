"""Redaction of configured content fields: marker, sha256 kept, producer hashes kept, detections scrubbed."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from schemas.detections import Detection, Scope
from streams.pipeline.core import build_core
from streams.pipeline.decode import Record, decode_safely
from streams.redaction import MARKER, Redactor, sha256_ref
from streams.runtime import WorkerRuntime
from streams.settings import Settings
from streams.store.client import connect
from streams.store.migrate import migrate
from streams.store.sink import ClickHouseSink


def test_settings_accept_a_comma_list_or_json(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OVERSEER_REDACT_FIELDS", "content, tool_arguments,attributes.email")
    assert Settings(kafka_bootstrap="x:1").redact_fields == ["content", "tool_arguments", "attributes.email"]
    monkeypatch.setenv("OVERSEER_REDACT_FIELDS", '["content"]')
    assert Settings(kafka_bootstrap="x:1").redact_fields == ["content"]
    monkeypatch.delenv("OVERSEER_REDACT_FIELDS")
    assert not Redactor(Settings(kafka_bootstrap="x:1").redact_fields)


def test_fields_hashes_and_attributes() -> None:
    r = Redactor(["content", "tool_arguments", "resource", "attributes.email"])
    e = {"content": "hello world", "tool_arguments": "ls", "tool_arguments_hash": "sha256:given", "resource": "/x",
         "attributes": {"email": "a@b.c", "other": "kept"}, "dest_host": "kept.example"}
    assert r.apply([e]) == 4
    assert e["content"] == MARKER and e["content_hash"] == "sha256:" + hashlib.sha256(b"hello world").hexdigest()
    assert e["tool_arguments"] == MARKER and e["tool_arguments_hash"] == "sha256:given"
    assert e["resource"] == MARKER and "resource_hash" not in e
    assert e["attributes"] == {"email": MARKER, "other": "kept"} and e["dest_host"] == "kept.example"
    assert r.apply([e]) == 0  # idempotent: a replayed, already redacted event is left alone


@given(st.text(alphabet="0123456789-_=", min_size=4, max_size=50))  # disjoint from the fixed text
def test_detections_quoting_a_redacted_value_are_scrubbed(secret: str) -> None:
    r = Redactor(["tool_arguments"])
    events = [{"tool_arguments": secret}]
    secrets = r.originals(events)
    now = datetime.now(UTC)
    det = Detection(detection_id="d", kind="rule", rule_id="r", title=f"t {secret}", severity="high",
                    scope=Scope(kind="deployment", value="x"), ts=now, detected_at=now,
                    output=f"command: {secret}!", evidence={"fields": {"tool_arguments": secret, "n": [secret, 1]}})
    (clean,) = r.scrub_detections([det], secrets)
    assert secret not in clean.output + clean.title + str(clean.evidence)
    assert clean.output == f"command: {MARKER}!" and clean.evidence["fields"]["n"] == [MARKER, 1]


def test_the_store_gets_redacted_copies_and_the_shared_events_stay_intact(chdb_database: tuple[str, str],
                                                                            tmp_path: Path) -> None:
    """The fast lane evaluates the same event dicts as the detect agent (one shared decode); redacting them
    in place before the store would hand a lagging fast lane '[REDACTED]' instead of the event."""
    dsn, db = chdb_database
    sink = ClickHouseSink(lambda: connect(dsn, database=db), max_backoff_s=0.05)
    sink.call(migrate)
    settings = Settings(kafka_bootstrap="127.0.0.1:1", home=tmp_path, redact_fields=["content"])
    rt = WorkerRuntime(settings, "127.0.0.1:1", build_core(None, allowed_lateness_s=60), sink)
    rt.checkpoint_topic = None

    async def publish(topic: str, items: list[Any]) -> None:
        return None

    rt.publish = publish  # type: ignore[method-assign]
    event = {"event_id": "r1", "event_type": "inference", "ts": datetime.now(UTC).isoformat(),
             "content": "my secret prompt"}
    records = [Record("overseer.events.v1", 0, 3, None, orjson.dumps(event))]
    decoded = decode_safely(records, max_message_bytes=10**6)

    async def scenario() -> None:
        await rt.commit(await rt.prepare(records, decoded))

    asyncio.run(scenario())
    assert decoded.events[0]["content"] == "my secret prompt"  # what the fast lane may still evaluate
    stored = sink.call(lambda c: c.query("SELECT content, content_hash FROM events").result_rows)
    assert stored == [("[REDACTED]", sha256_ref("my secret prompt"))]
    sink.close()
