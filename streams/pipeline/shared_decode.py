"""Decode each Kafka message once, for every agent that reads it.

The fast lane and the detect agent both read the events topic; Faust hands
both the same message object. Decoding is the largest per-event cost after
the rules (~5 µs), so the first agent to see a message decodes it and the
other reuses the result: the same event dicts, the same dead letters (which
only the detect agent stores and publishes). Entries live as long as Faust
holds the message (a weak reference), so nothing outlives its batch.

>>> from streams.pipeline.decode import Record
>>> class Msg: pass
>>> shared, msg = SharedDecode(max_message_bytes=10_000), Msg()
>>> rec = Record("t", 0, 5, None, b'{"event_type": "inference", "ts": "2026-01-01T00:00:00Z"}')
>>> first = shared.decode([msg], [rec]); again = shared.decode([msg], [rec])
>>> first.events[0] is again.events[0], shared.hits
(True, 1)
"""

from __future__ import annotations

import weakref
from typing import Any

from streams.pipeline.decode import Decoded, Record, decode_safely


class SharedDecode:
    def __init__(self, *, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._cache: weakref.WeakKeyDictionary[Any, tuple[list[Any], list[Any]]] = weakref.WeakKeyDictionary()
        self.hits = 0

    def decode(self, messages: list[Any], records: list[Record]) -> Decoded:
        """The batch's decoded events and dead letters, in message order; ``messages[i]`` is ``records[i]``'s."""
        missing = [(m, r) for m, r in zip(messages, records, strict=True) if m not in self._cache]
        if missing:
            decoded = decode_safely([r for _, r in missing], max_message_bytes=self.max_message_bytes)
            parts: dict[tuple[str, int, int], tuple[list[Any], list[Any]]] = {
                (r.topic, r.partition, r.offset): ([], []) for _, r in missing}
            for event in decoded.events:
                parts[event["_src"]][0].append(event)
            for dead in decoded.deadletters:
                parts[(dead.source_topic, dead.source_partition, dead.source_offset)][1].append(dead)
            for message, r in missing:
                self._cache[message] = parts[(r.topic, r.partition, r.offset)]
        self.hits += len(messages) - len(missing)
        out = Decoded(messages=len(records))
        for message in messages:
            events, deadletters = self._cache[message]
            out.events += events
            out.deadletters += deadletters
        return out
