"""Events ClickHouse cannot store never stall the pipeline, and never take good events with them.

Two lines of defence, both on the real embedded engine:

- at the door: a number beyond its column's range (``input_tokens`` is UInt32, ``egress_bytes``
  UInt64) is a schema violation, dead-lettered by the decoder with the field named — ClickHouse's
  JSON input would otherwise wrap it silently;
- at the sink: rows that still cannot be stored (a string the JSON encoder refuses, a value
  ClickHouse's parser rejects) would make every insert of the batch fail — forever, since the sink
  retries. The runtime halves the batch until the culprits are isolated: everything else is stored
  once, each culprit becomes a dead letter with the reason, and nothing counts as an outage.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.pipeline.core import build_core
from streams.pipeline.decode import Record
from streams.runtime import WorkerRuntime, decode_safely
from streams.settings import Settings
from streams.store.client import connect
from streams.store.migrate import migrate
from streams.store.sink import ClickHouseSink

GOOD = {"event_type": "inference", "ts": "2026-03-01T10:00:00Z", "request_model": "m", "tenant_id": "t"}
OUT_OF_RANGE = st.sampled_from([("input_tokens", 2**32), ("egress_bytes", 2**64), ("step_index", 2**40),
                                ("producer_seq", 2**64 + 5), ("output_tokens", 10**12), ("schema_version", 2**16)])
# what the decoder accepts but the store path cannot take: the encoder refuses lone surrogates,
# ClickHouse refuses a Bool column's "maybe" (both crafted after decoding: no JSON input yields them)
AFTER_DECODE = st.sampled_from([("content", "bad \ud800 surrogate"), ("is_refusal", "maybe"),
                                ("attributes", {"k": "\udfff"})])


def _nested(depth: int) -> dict:
    out: dict = {"leaf": 1}
    for _ in range(depth):
        out = {"a": out}
    return out


def _runtime(chdb_database: tuple[str, str], tmp_path: Path) -> tuple[WorkerRuntime, ClickHouseSink]:
    dsn, db = chdb_database
    sink = ClickHouseSink(lambda: connect(dsn, database=db), max_backoff_s=0.05)
    sink.call(migrate)
    rt = WorkerRuntime(Settings(kafka_bootstrap="127.0.0.1:1", home=tmp_path), "127.0.0.1:1",
                       build_core(None, allowed_lateness_s=60), sink)
    return rt, sink


def test_out_of_range_numbers_are_dead_lettered_at_the_door(chdb_database: tuple[str, str], tmp_path: Path) -> None:
    rt, sink = _runtime(chdb_database, tmp_path)
    seen: list[int] = []

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.booleans(), OUT_OF_RANGE), min_size=1, max_size=12))
    def run(plan: list[tuple[bool, tuple[str, int]]]) -> None:
        base = 1000 + len(seen) * 100
        seen.append(1)
        records = [Record("ev", 0, base + i, b"k", json.dumps({**GOOD, **({kv[0]: kv[1]} if bad else {})}).encode())
                   for i, (bad, kv) in enumerate(plan)]
        decoded = decode_safely(records, max_message_bytes=10_000_000)
        bad = {base + i: kv[0] for i, (is_bad, kv) in enumerate(plan) if is_bad}
        assert {d.source_offset for d in decoded.deadletters} == set(bad)
        for d in decoded.deadletters:
            assert d.reason == "schema_violation" and bad[d.source_offset] in d.error
        assert len(decoded.events) == len(plan) - len(bad)
        assert asyncio.run(rt._write_events(decoded.events, datetime.now(UTC), f"r{base}", records)) == []

    run()
    stored = sink.call(lambda c: c.query("SELECT count(), uniqExact(event_id) FROM events").result_rows[0])
    assert stored[0] == stored[1] > 0
    sink.close()


def test_deeply_nested_params_are_stored_intact(chdb_database: tuple[str, str], tmp_path: Path) -> None:
    rt, sink = _runtime(chdb_database, tmp_path)
    params = _nested(900)
    records = [Record("ev", 0, 5, b"k", json.dumps({**GOOD, "event_id": "deep", "request_params": params}).encode())]
    decoded = decode_safely(records, max_message_bytes=10_000_000)
    assert asyncio.run(rt._write_events(decoded.events, datetime.now(UTC), "deep", records)) == []
    text = sink.call(lambda c: c.command("SELECT request_params FROM events WHERE event_id = 'deep'"))
    assert json.loads(text) == params
    sink.close()


def test_unstorable_rows_are_isolated_by_halving(chdb_database: tuple[str, str], tmp_path: Path) -> None:
    rt, sink = _runtime(chdb_database, tmp_path)
    seen: list[int] = []

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.booleans(), AFTER_DECODE), min_size=1, max_size=12))
    def run(plan: list[tuple[bool, tuple[str, object]]]) -> None:
        base = 1000 + len(seen) * 100
        seen.append(1)
        records = [Record("ev", 0, base + i, b"k", json.dumps(GOOD).encode()) for i in range(len(plan))]
        decoded = decode_safely(records, max_message_bytes=10_000_000)
        for event, (bad, (field, value)) in zip(decoded.events, plan, strict=True):
            if bad:
                event[field] = value
        dead = asyncio.run(rt._write_events(decoded.events, datetime.now(UTC), f"t{base}", records))
        expect_bad = {base + i for i, (bad, _) in enumerate(plan) if bad}
        assert {d.source_offset for d in dead} == expect_bad  # the culprits, and only them, dead-lettered
        assert all("cannot be stored" in d.error and d.reason == "schema_violation" for d in dead)
        good_ids = {e["event_id"] for e in decoded.events if e["_src"][2] not in expect_bad}
        stored = sink.call(lambda c: c.query(
            "SELECT event_id FROM events WHERE src_offset BETWEEN %(a)s AND %(b)s",
            parameters={"a": base, "b": base + 99}).result_rows)
        assert sorted(r[0] for r in stored) == sorted(good_ids)  # each good event once, nothing of the culprits

    run()
    sink.close()
    assert sink.stats.retries == 0  # nothing was retried: data errors are not outages
