"""Events the decoder accepts but ClickHouse cannot store never stall the pipeline.

A number beyond its column's range (``input_tokens`` is UInt32, ``egress_bytes`` UInt64) or JSON
nested deeper than can be serialised would make every insert of the batch fail — forever, since
the sink retries. The runtime halves the batch until the culprits are isolated: everything else
is stored, each culprit becomes a dead letter with the reason. On the real embedded engine.
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
POISON = st.sampled_from([("input_tokens", 2**32), ("egress_bytes", 2**64), ("step_index", 2**40),
                          ("producer_seq", 2**64 + 5), ("output_tokens", 10**12)]).map(lambda kv: {kv[0]: kv[1]}) | \
    st.integers(300, 900).map(lambda d: {"request_params": _nested(d)})


def _nested(depth: int) -> dict:
    out: dict = {"leaf": 1}
    for _ in range(depth):
        out = {"a": out}
    return out


def test_poison_events_are_dead_lettered_the_rest_stored(chdb_database: tuple[str, str], tmp_path: Path) -> None:
    dsn, db = chdb_database
    sink = ClickHouseSink(lambda: connect(dsn, database=db), max_backoff_s=0.05)
    sink.call(migrate)
    rt = WorkerRuntime(Settings(kafka_bootstrap="127.0.0.1:1", home=tmp_path), "127.0.0.1:1",
                       build_core(None, allowed_lateness_s=60), sink)
    seen: list[int] = []

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.booleans(), POISON), min_size=1, max_size=12))
    def run(plan: list[tuple[bool, dict]]) -> None:
        base = len(seen) * 100
        records = [Record("ev", 0, base + i, b"k", json.dumps({**GOOD, **(poison if bad else {})}).encode())
                   for i, (bad, poison) in enumerate(plan)]
        decoded = decode_safely(records, max_message_bytes=10_000_000)
        assert len(decoded.events) == len(plan)  # all accepted by the decoder ...
        dead = asyncio.run(rt._write_events(decoded.events, datetime.now(UTC), f"t{base}", records))
        expect_bad = {base + i for i, (bad, _) in enumerate(plan) if bad}
        assert {d.source_offset for d in dead} == expect_bad  # ... the culprits, and only them, dead-lettered
        assert all("cannot be stored" in d.error and d.reason == "schema_violation" for d in dead)
        good_ids = {e["event_id"] for e in decoded.events if e["_src"][2] not in expect_bad}
        stored = {r[0] for r in sink.call(lambda c: c.query(
            "SELECT event_id FROM events WHERE src_offset BETWEEN %(a)s AND %(b)s",
            parameters={"a": base, "b": base + 99}).result_rows)}
        assert stored == good_ids
        seen.append(1)

    run()
    sink.close()
    assert sink.stats.retries == 0  # nothing was retried: data errors are not outages
