"""Producer-side batches: many events in one Kafka message, keyed like the topic.

DESIGN.md keys ``overseer.events.v1`` by ``agent_run_id``, else
``conversation_id``, else ``deployment_id``, so a trajectory's state lives on
one partition. :func:`plan_messages` groups events by that key (keeping their
order), cuts each group into ``EventBatch`` messages of at most ``max_batch``
events *and* ``max_bytes`` bytes (the detect agent dead-letters larger
messages), and reports single events too large to send on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

KEY_FIELDS = ("agent_run_id", "conversation_id", "deployment_id")


@dataclass(frozen=True, slots=True)
class Message:
    key: bytes | None
    value: bytes
    count: int  # events inside


def partition_key(event: dict[str, Any]) -> bytes | None:
    for name in KEY_FIELDS:
        value = event.get(name)
        if value:
            return str(value).encode()
    return None


def encode_batch(events: list[dict[str, Any]], producer_id: str | None) -> bytes:
    return orjson.dumps({"kind": "batch", "producer_id": producer_id, "events": events},
                        option=orjson.OPT_NON_STR_KEYS)


def plan_messages(events: list[dict[str, Any]], producer_id: str | None, max_batch: int,
                  max_bytes: int) -> tuple[list[Message], list[tuple[int, int]]]:
    """-> (messages, oversized) where ``oversized`` lists (index in ``events``, encoded size)."""
    groups: dict[bytes | None, list[int]] = {}
    for i, event in enumerate(events):
        groups.setdefault(partition_key(event), []).append(i)
    messages: list[Message] = []
    oversized: list[tuple[int, int]] = []
    for key, indices in groups.items():
        for start in range(0, len(indices), max_batch):
            _cut(events, indices[start:start + max_batch], key, producer_id, max_bytes, messages, oversized)
    return messages, oversized


def _cut(events: list[dict[str, Any]], indices: list[int], key: bytes | None, producer_id: str | None,
         max_bytes: int, messages: list[Message], oversized: list[tuple[int, int]]) -> None:
    value = encode_batch([events[i] for i in indices], producer_id)
    if len(value) <= max_bytes:
        messages.append(Message(key, value, len(indices)))
    elif len(indices) == 1:
        oversized.append((indices[0], len(value)))
    else:
        half = len(indices) // 2
        _cut(events, indices[:half], key, producer_id, max_bytes, messages, oversized)
        _cut(events, indices[half:], key, producer_id, max_bytes, messages, oversized)
