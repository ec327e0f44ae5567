"""Data contracts: generated JSON Schemas are fresh and accept what the models accept."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest
from pydantic import ValidationError

from schemas.events import Event
from schemas.export import JSON_DIR, MODELS, render
from schemas.migrations import load_migrations


def test_generated_json_schemas_are_not_stale() -> None:
    for filename, text in render().items():
        path = JSON_DIR / filename
        assert path.exists(), f"{filename} missing: run `make schemas`"
        assert path.read_text() == text, f"{filename} is stale: run `make schemas`"


def test_every_topic_message_has_a_schema() -> None:
    assert set(MODELS) == {"event", "event_batch", "dead_letter", "detection", "alert", "killswitch_command",
                           "heartbeat"}


def test_json_schema_agrees_with_the_model_on_an_event() -> None:
    schema = json.loads((JSON_DIR / "event.json").read_text())
    good = {"event_type": "tool_call", "ts": "2026-01-01T00:00:00Z", "egress_bytes": 10}
    jsonschema.validate(good, schema)
    Event.model_validate(good)
    bad = {"event_type": "tool_call", "ts": "2026-01-01T00:00:00Z", "egress_bytes": -1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(ValidationError):
        Event.model_validate(bad)


def test_naive_timestamps_are_utc_and_scores_must_be_finite() -> None:
    e = Event.model_validate({"event_type": "inference", "ts": "2026-01-01T00:00:00"})
    assert e.ts == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError):
        Event.model_validate({"event_type": "inference", "ts": "2026-01-01T00:00:00Z", "scores": {"x": float("nan")}})


def test_migrations_are_ordered_and_split_into_statements() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    first = migrations[0]
    assert all(s.upper().startswith("CREATE TABLE IF NOT EXISTS") for s in first.statements)
    assert {s.split()[5] for s in first.statements} >= {"events", "deadletters", "detections", "alerts",
                                                        "killswitch_commands", "operator_actions"}
