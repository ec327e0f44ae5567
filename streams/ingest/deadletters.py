"""Items refused at the door become :class:`schemas.DeadLetter` records, never silence.

Ingestion rejects happen before Kafka, so there is no source offset: the
record names its origin in ``source_topic`` as ``ingest:<origin>`` (e.g.
``ingest:http:/v1/traces``, ``ingest:file:trace.json``) with partition and
offset ``-1``, and ``index_in_message`` is the item's position in the
payload. ``original_b64`` holds the item itself (for OTLP, a one-span
export), so an operator can fix and replay it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.deadletter import DeadLetter, DeadLetterReason
from streams.ingest.adapters.base import ItemError

MAX_ERROR_CHARS = 2000


def to_deadletter(error: ItemError, origin: str, now: datetime | None = None) -> DeadLetter:
    return DeadLetter(
        reason=error.reason, error=error.error[:MAX_ERROR_CHARS], source_topic=f"ingest:{origin}",
        source_partition=-1, source_offset=-1, index_in_message=error.index, original_key_b64=None,
        original_b64=DeadLetter.encode(error.raw) or "", original_size=len(error.raw),
        received_at=now or datetime.now(UTC),
    )


def oversized_error(index: int, size: int, limit: int, raw: bytes) -> ItemError:
    return ItemError(index, DeadLetterReason.oversized,
                     f"event #{index} encodes to {size} bytes, more than the {limit}-byte message limit "
                     "(OVERSEER_MAX_MESSAGE_BYTES); send content by reference (content_ref) instead", raw)
