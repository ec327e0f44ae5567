"""Native Overseer JSON: one event, a JSON array of events, or an ``EventBatch``.

Native events already speak the event model; the adapter only validates them
one by one (so one bad event is dead-lettered, not the batch), fills a
missing ``event_id``, and stamps a batch's ``producer_id`` on events that
lack one. Content fields are left as the producer sent them.
"""

from __future__ import annotations

from typing import Any

from schemas.deadletter import DeadLetterReason
from streams.ingest.adapters.base import (
    DEFAULT_OPTIONS,
    AdapterOptions,
    AdapterResult,
    PayloadError,
    finalize,
    refuse,
)


def adapt(payload: dict[str, Any] | list[Any], options: AdapterOptions = DEFAULT_OPTIONS) -> AdapterResult:
    producer_id = None
    if isinstance(payload, dict) and payload.get("kind") == "batch":
        if not isinstance(payload.get("events"), list):
            raise PayloadError("an EventBatch needs an 'events' list")
        producer_id, items = payload.get("producer_id"), payload["events"]
    elif isinstance(payload, list):
        items = payload
    elif isinstance(payload, dict):
        items = [payload]
    else:
        raise PayloadError(f"native input is an event object, an array or an EventBatch, not {type(payload).__name__}")
    result = AdapterResult()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            refuse(result, index, DeadLetterReason.not_an_object, f"event #{index} is not a JSON object", item)
            continue
        draft = dict(item)
        if producer_id is not None:
            draft.setdefault("producer_id", producer_id)
        finalize(draft, index, item, result, options)
    return result
