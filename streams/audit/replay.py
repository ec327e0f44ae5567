"""Stored events back into the decoder's exact representation, page by page, ordered by event time.

ClickHouse stores absent strings as '' and request parameters as JSON text;
rebuilding through `schemas.Event` and `decode.event_to_dict` undoes that, so
a replayed event is the dict the live hot path saw (with ``_ts`` and ``_src``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.events import Event
from streams.audit.access import Store
from streams.audit.report.data import literal
from streams.pipeline.decode import Record, event_to_dict
from streams.store.rows import EVENT_NULLABLE_COLUMNS, EVENT_STRING_COLUMNS

PAGE = 5000
_COLS = ("event_id", "schema_version", "event_type", *EVENT_STRING_COLUMNS, *EVENT_NULLABLE_COLUMNS,
         "request_params", "finish_reasons", "scores", "attributes", "src_topic", "src_partition", "src_offset")


def to_event(row: dict[str, Any]) -> dict[str, Any]:
    ts_ms = int(row.pop("ts_ms"))
    src = (row.pop("src_topic"), int(row.pop("src_partition")), int(row.pop("src_offset")))
    data: dict[str, Any] = {k: (None if v == "" and k in EVENT_STRING_COLUMNS else v) for k, v in row.items()}
    data["request_params"] = orjson.loads(row["request_params"]) if row["request_params"] else {}
    data["ts"] = datetime.fromtimestamp(ts_ms / 1000, UTC)
    event = Event.model_validate(data)
    return event_to_dict(event, Record(src[0], src[1], src[2], None, None))


def stored_events(store: Store, since: str, until: str) -> Iterator[list[dict[str, Any]]]:
    """Pages of events in (ts, event_id) order, read with keyset paging (no OFFSET scans)."""
    lo = literal(since or "1970-01-01")
    hi = literal(until or "2199-12-31")
    after_ms, after_id = -1, ""
    cols = ", ".join(_COLS)
    while True:
        page = store.sql(
            f"SELECT toUnixTimestamp64Milli(ts) AS ts_ms, {cols} FROM events FINAL "
            f"WHERE ts >= parseDateTime64BestEffort({lo}, 3, 'UTC') AND ts < parseDateTime64BestEffort({hi}, 3, 'UTC') "
            f"AND (toUnixTimestamp64Milli(ts), event_id) > ({after_ms}, {literal(after_id)}) "
            f"ORDER BY ts, event_id LIMIT {PAGE}")
        if not page.rows:
            return
        yield [to_event(r) for r in page.dicts()]
        after_ms, after_id = int(page.rows[-1][0]), str(page.rows[-1][1])
        if len(page.rows) < PAGE:
            return
