"""The ClickHouse side, on the real engine (chdb): migrations, rows, idempotent retried inserts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

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
        cols = rows.event_columns(events)
        await sink.write("events", cols, rows.EVENT_COLUMNS, token="ev:t/0/100-100", column_oriented=True)
        await sink.write("events", cols, rows.EVENT_COLUMNS, token="ev:t/0/100-100", column_oriented=True)

    asyncio.run(write_twice())
    count = sink.call(lambda c: c.command("SELECT count() FROM events"))
    assert int(count) == 50  # the second, identical insert was deduplicated by its token
    row = sink.call(lambda c: c.query("SELECT scores['jailbreak'], attributes['k'], request_params, egress_bytes, "
                                      "is_refusal, src_offset FROM events WHERE event_id = 'e0'").result_rows[0])
    assert row == (0.5, "v", '{"temperature":0.2}', 2**40, True, 100)
    sink.close()


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
