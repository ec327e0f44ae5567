"""Adapt the units of a file and publish them: the work behind ``overseer send``.

Events are published in chunks (many units per chunk, so an NDJSON file of
single events still travels as producer-side batches); refused items are
dead-lettered with their place in the file (``line 3``, ``item 5``) prefixed
to the error, and everything is counted in a :class:`SendSummary`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams.ingest.adapters import AdapterOptions
from streams.ingest.adapters.base import ItemError
from streams.ingest.files import Unit, adapt_unit
from streams.ingest.producer import EventPublisher

MAX_LISTED_ERRORS = 50


@dataclass(slots=True)
class SendSummary:
    source: str
    format: str
    topic: str
    units: int = 0
    sent: int = 0
    messages: int = 0
    rejected: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "topic": self.topic, "units": self.units,
                "sent": self.sent, "messages": self.messages, "rejected": self.rejected, "skipped": self.skipped,
                "reasons": dict(self.reasons), "errors": self.errors}


async def send_units(publisher: EventPublisher, units: list[Unit], fmt: str, options: AdapterOptions,
                     summary: SendSummary, advance: Callable[[int], None] = lambda _n: None,
                     chunk_events: int = 2000) -> SendSummary:
    origin = f"file:{summary.source}"
    events: list[dict[str, Any]] = []
    refused: list[ItemError] = []
    for unit in units:
        summary.units += 1
        result = adapt_unit(unit, fmt, options)
        events.extend(result.events)
        refused.extend(result.errors)
        summary.skipped += result.skipped
        if len(events) >= chunk_events:
            await _flush(publisher, events, refused, origin, summary)
        advance(1)
    await _flush(publisher, events, refused, origin, summary)
    return summary


async def _flush(publisher: EventPublisher, events: list[dict[str, Any]], refused: list[ItemError], origin: str,
                 summary: SendSummary) -> None:
    if refused:
        await publisher.deadletter(refused, origin)
    counted = list(refused)
    if events:
        receipt = await publisher.publish(events, origin)  # its oversized rejects are dead-lettered inside
        summary.sent += receipt.events
        summary.messages += receipt.messages
        counted += receipt.rejected
    for error in counted:
        summary.rejected += 1
        summary.reasons[str(error.reason)] += 1
        if len(summary.errors) < MAX_LISTED_ERRORS:
            summary.errors.append({"reason": str(error.reason), "error": error.error})
    events.clear()
    refused.clear()
