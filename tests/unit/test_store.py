"""The ClickHouse side, on the real engine (chdb): migrations, rows, idempotent retried inserts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.detections import Detection, Scope
from streams.pipeline.decode import Record, decode_batch
from streams.store import rows
from streams.store.client import connect
from streams.store.migrate import MigrationError, migrate
from streams.store.sink import ClickHouseSink


def test_migrate_is_idempotent_and_creates_every_table(chdb_database: tuple[str, str]) -> None:
    dsn, db = chdb_database
    client = connect(dsn, database=db)
    first = migrate(client)
    second = migrate(client)
    assert first.applied and not first.already
    assert second.applied == [] and second.already == first.applied
    tables = {r[0] for r in client.query(f"SELECT name FROM system.tables WHERE database = '{db}'").result_rows}
    assert {"events", "deadletters", "detections", "alerts", "killswitch_commands", "operator_actions",
            "schema_migrations"} <= tables


def test_a_changed_applied_migration_is_refused(chdb_database: tuple[str, str]) -> None:
    dsn, db = chdb_database
    client = connect(dsn, database=db)
    migrate(client)
    client.command("ALTER TABLE schema_migrations UPDATE checksum = 'tampered' WHERE version = 1")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(client)


def _events(n: int) -> list[dict]:
    payload = [{"event_type": "tool_call", "ts": "2026-03-01T10:00:00Z", "event_id": f"e{i}",
                "deployment_id": "d1", "request_model": "m", "scores": {"jailbreak": 0.5}, "is_refusal": i % 2 == 0,
                "attributes": {"k": "v"}, "request_params": {"temperature": 0.2}, "egress_bytes": 2**40}
               for i in range(n)]
    return decode_batch([Record("t", 0, 100, None, orjson.dumps(payload))], max_message_bytes=10**7).events


def test_events_round_trip_and_a_retried_insert_is_not_duplicated(chdb_database: tuple[str, str]) -> None:
    dsn, db = chdb_database
    sink = ClickHouseSink(lambda: connect(dsn, database=db))
    sink.call(migrate)
    events = _events(50)

    async def write_twice() -> None:
        document = rows.events_json(events)
        for _ in range(2):
            await sink.write_json("events", document, len(events), settings=rows.EVENT_JSON_SETTINGS,
                                  token="ev:t/0/100-100")

    asyncio.run(write_twice())
    count = sink.call(lambda c: c.command("SELECT count() FROM events"))
    assert int(count) == 50  # the second, identical insert was deduplicated by its token
    row = sink.call(lambda c: c.query("SELECT scores['jailbreak'], attributes['k'], request_params, egress_bytes, "
                                      "is_refusal, src_offset FROM events WHERE event_id = 'e0'").result_rows[0])
    assert row == (0.5, "v", '{"temperature":0.2}', 2**40, True, 100)
    sink.close()


def test_every_event_field_is_stored_as_decoded(chdb_database: tuple[str, str]) -> None:
    """The JSONEachRow document loses nothing: each of the model's fields comes back as it went in."""
    dsn, db = chdb_database
    client = connect(dsn, database=db)
    migrate(client)
    recent = datetime.now(UTC).replace(microsecond=123000) - timedelta(hours=1)  # inside the content TTL
    full = {"event_id": "full-1", "event_type": "tool_call", "ts": recent.isoformat(), "producer_id": "gw",
            "producer_seq": 2**63 + 1, "trace_id": "t" * 32, "span_id": "s" * 16, "parent_span_id": "p" * 16,
            "conversation_id": "c", "agent_run_id": "r", "step_index": 2**32 - 1, "tenant_id": "ten",
            "deployment_id": "dep", "environment": "prod", "region": "eu", "provider": "prov",
            "request_model": "m", "response_model": "m2", "model_checkpoint": "/ck", "system_prompt_hash": "h",
            "agent_name": "a", "agent_version": "1", "operation": "execute_tool",
            "request_params": {"n": [1, {"x": "é\u2028"}]}, "finish_reasons": ["stop", "length"],
            "error_type": "e", "input_tokens": 1, "output_tokens": 2, "reasoning_tokens": 3, "cached_tokens": 4,
            "latency_ms": 1.5, "ttft_ms": 0.25, "tool_name": "bash", "tool_type": "function", "tool_call_id": "tc",
            "tool_arguments": 'rm -rf "/x"\n\t', "tool_arguments_hash": "th", "action_category": "exec",
            "resource": "/r", "dest_host": "h.example", "egress_bytes": 2**64 - 1, "privilege": "root",
            "approval": "none", "is_refusal": False, "scores": {"a": -1e300}, "content_ref": "s3://x",
            "content_hash": "sha256:c", "content": "multi\nline \u0000 \U0001F600", "attributes": {"k": "v"}}
    sparse = {"event_id": "sparse-1", "event_type": "inference", "ts": "2026-03-01T10:00:00Z"}
    events = decode_batch([Record("topic-a", 3, 77, None, orjson.dumps([full, sparse]))],
                          max_message_bytes=10**7).events
    assert len(events) == 2
    now = datetime(2026, 3, 1, 10, 0, 5, 250000, tzinfo=UTC)
    client.raw_insert("events", None, rows.events_json(events, now), settings=rows.EVENT_JSON_SETTINGS,
                      fmt="JSONEachRow")
    result = client.query("SELECT * FROM events ORDER BY event_id")
    got = [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]
    stored_full = got[0]
    for name, value in full.items():
        if name == "ts":
            assert stored_full["ts"].replace(tzinfo=UTC) == recent
        elif name == "request_params":
            assert orjson.loads(stored_full[name]) == value
        else:
            assert stored_full[name] == value, name
    assert stored_full["ingested_at"].replace(tzinfo=UTC) == now
    assert (stored_full["src_topic"], stored_full["src_partition"], stored_full["src_offset"]) == ("topic-a", 3, 77)
    stored_sparse = got[1]
    assert stored_sparse["schema_version"] == 1 and stored_sparse["tenant_id"] == ""
    assert stored_sparse["input_tokens"] is None and stored_sparse["is_refusal"] is None
    assert stored_sparse["finish_reasons"] == [] and stored_sparse["scores"] == {}


def test_the_sink_retries_until_clickhouse_answers(chdb_database: tuple[str, str]) -> None:
    dsn, db = chdb_database
    migrate(connect(dsn, database=db))
    attempts = {"n": 0}

    def flaky_factory():  # the first two connections fail, like a server that is still down
        attempts["n"] += 1
        if attempts["n"] <= 2:
            raise ConnectionError("ClickHouse unavailable")
        return connect(dsn, database=db)

    sink = ClickHouseSink(flaky_factory, max_backoff_s=0.05)
    det = Detection(detection_id="d-1", kind="rule", rule_id="r", title="t", severity="high",
                    scope=Scope(kind="deployment", value="dep"), ts=datetime(2026, 1, 1, tzinfo=UTC),
                    detected_at=datetime(2026, 1, 1, tzinfo=UTC), output="o", evidence={"x": 1})
    asyncio.run(sink.write("detections", rows.detection_rows([det]), rows.DETECTION_COLUMNS))
    assert sink.stats.retries == 2 and sink.stats.failing_since is None
    assert "ClickHouse unavailable" in (sink.stats.last_error or "")
    stored = sink.call(lambda c: c.query("SELECT rule_id, evidence FROM detections").result_rows)
    assert stored == [("r", '{"x":1}')]
    sink.close()
