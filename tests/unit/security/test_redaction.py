"""Redaction of configured content fields: marker, sha256 kept, producer hashes kept, detections scrubbed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from schemas.detections import Detection, Scope
from streams.redaction import MARKER, Redactor
from streams.settings import Settings


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
