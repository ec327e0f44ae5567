"""Content expires, metadata stays: the column TTL on the real engine, and the configurable retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.audit.retention import apply_retention, current_retention
from streams.store import rows
from streams.store.client import connect
from streams.store.migrate import migrate


def _event(event_id: str, age_days: int) -> dict:
    return {"event_id": event_id, "schema_version": 1, "event_type": "tool_call", "request_model": "atlas-7b",
            "ts": datetime.now(UTC) - timedelta(days=age_days), "tool_name": "bash", "tool_arguments": "rm -rf /tmp/x",
            "content": "the model said something", "content_hash": "sha256:abc"}


def test_content_expires_after_the_retention_and_metadata_stays(chdb_database: tuple[str, str]) -> None:
    dsn, db = chdb_database
    client = connect(dsn, database=db)
    migrate(client)
    assert current_retention(client) == {"content": 90, "tool_arguments": 90}
    assert apply_retention(client, 30) and not apply_retention(client, 30)
    assert current_retention(client) == {"content": 30, "tool_arguments": 30}
    events = [_event("recent", 3), _event("old", 45)]
    client.raw_insert("events", None, rows.events_json(events), settings=rows.EVENT_JSON_SETTINGS, fmt="JSONEachRow")
    client.command("OPTIMIZE TABLE events FINAL")
    got = {r[0]: r[1:] for r in client.query(
        "SELECT event_id, content, tool_arguments, content_hash, tool_name FROM events").result_rows}
    assert got["recent"] == ("the model said something", "rm -rf /tmp/x", "sha256:abc", "bash")
    assert got["old"] == ("", "", "sha256:abc", "bash")
