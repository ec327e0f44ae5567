"""Decode and validate a whole batch of Kafka records at once.

A record's value is one event (JSON object), a JSON array of events, or a
producer-side batch (``{"kind": "batch", "events": [...]}``). Every event is
validated against :class:`schemas.Event`; anything that fails goes to the
dead-letter list with its reason and its source topic/partition/offset —
never silently dropped, never raising.

>>> recs = [Record("t", 0, 7, None, b'{"event_type": "inference", "ts": "2026-01-01T00:00:00Z"}'),
...         Record("t", 0, 8, None, b'{not json')]
>>> out = decode_batch(recs, max_message_bytes=1024)
>>> len(out.events), [d.reason for d in out.deadletters]
(1, ['malformed_json'])
"""

from __future__ import annotations

import logging
import math
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

import msgspec
import orjson
from pydantic import ValidationError

from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.events import MAX_STRING_MAP_ENTRIES, Event, EventType

log = logging.getLogger(__name__)

_EVENT_TYPES = frozenset(t.value for t in EventType)
_MAX_ERROR_CHARS = 2000

# -- the fast path ---------------------------------------------------------------
# A msgspec Struct mirroring schemas.Event, derived from its pydantic fields, that
# accepts only the canonical form (exact JSON types, RFC 3339 timestamps with an
# offset, no unknown keys). It is a strict subset of what pydantic accepts: whatever
# it rejects goes through ``Event.model_validate``, which then decides (and writes the
# dead-letter reason), so accept/reject and the error messages are pydantic's.
_TS_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
_KNOWN_FIELDS = frozenset(Event.model_fields)


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None  # Kafka append/create time, epoch seconds: the start of detection latency


@dataclass
class Decoded:
    events: list[dict[str, Any]] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)
    messages: int = 0


def _fast_type(name: str, info: Any) -> Any:
    ann, optional = info.annotation, False
    if get_origin(ann) in (Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        ann, optional = args[0], len(args) < len(get_args(ann))
    if name == "ts":
        ann = Annotated[str, msgspec.Meta(pattern=_TS_PATTERN)]
    elif isinstance(ann, type) and issubclass(ann, Enum):
        ann = Literal[tuple(m.value for m in ann)]  # type: ignore[misc]
    meta = {k: getattr(m, k) for m in info.metadata for k in ("max_length", "ge", "le") if hasattr(m, k)}
    if meta.get("le", 0) > 2**63 - 1:  # msgspec bounds stop at int64: larger UInt64 values take pydantic's path
        meta["le"] = 2**63 - 1
    if meta:
        ann = Annotated[ann, msgspec.Meta(**meta)]
    return ann | None if optional else ann


def _fast_struct() -> type[msgspec.Struct]:
    fields: list[Any] = []  # in the model's order, so the dicts' keys come in the same order
    for name, info in Event.model_fields.items():
        typ = _fast_type(name, info)
        if name == "producer_id":  # absent (a producer batch's default applies) vs explicit null
            fields.append((name, typ | msgspec.UnsetType, msgspec.UNSET))
        elif info.default_factory is not None:
            fields.append((name, typ, msgspec.field(default_factory=info.default_factory)))  # type: ignore[arg-type]
        elif info.is_required():
            fields.append((name, typ))
        else:
            fields.append((name, typ, info.default))
    struct = msgspec.defstruct("FastEvent", fields, kw_only=True, forbid_unknown_fields=True)
    assert set(struct.__struct_fields__) == set(Event.model_fields)
    return struct


_FastEvent = _fast_struct()


class _FastBatch(msgspec.Struct):
    kind: Literal["batch"]
    events: list[_FastEvent]  # type: ignore[valid-type]
    producer_id: Any = None


_DECODE_BATCH = msgspec.json.Decoder(_FastBatch)
_DECODE_LIST = msgspec.json.Decoder(list[_FastEvent])  # type: ignore[valid-type]
_DECODE_ONE = msgspec.json.Decoder(_FastEvent)
_FAST_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, ValueError, TypeError, RecursionError)


def _from_struct(ev: Any, default_producer: Any = None) -> dict[str, Any] | None:
    """The hot-path dict of a decoded FastEvent, or None when a check pydantic makes in Python fails."""
    d = msgspec.structs.asdict(ev)
    if d["producer_id"] is msgspec.UNSET:
        d["producer_id"] = default_producer if isinstance(default_producer, str) else None
    scores = d["scores"]
    if len(scores) > MAX_STRING_MAP_ENTRIES or len(d["attributes"]) > MAX_STRING_MAP_ENTRIES:
        return None
    if not all(map(math.isfinite, scores.values())):
        return None
    try:
        ts = datetime.fromisoformat(d["ts"]).astimezone(UTC)
    except ValueError:
        return None
    d["ts"] = ts
    d["_ts"] = ts.timestamp()
    return d


def _fast_event(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The validated hot-path dict for a canonical event (already parsed), or None: let pydantic decide."""
    if not obj.keys() <= _KNOWN_FIELDS:
        return None
    try:
        ev = msgspec.convert(obj, _FastEvent, strict=True)
    except _FAST_ERRORS:
        return None
    return _from_struct(ev)


def _fast_message(raw: bytes, rec: Record) -> list[dict[str, Any]] | None:
    """Every event of a message whose events are all canonical, decoded straight from the bytes; else None
    (then the message takes the general path: orjson, and pydantic for anything non-canonical)."""
    default = None
    try:
        if raw[:1] == b"[":
            items = _DECODE_LIST.decode(raw)
        elif b'"kind"' in raw:
            batch = _DECODE_BATCH.decode(raw)
            items, default = batch.events, batch.producer_id
        else:
            items = [_DECODE_ONE.decode(raw)]
    except _FAST_ERRORS:
        return None
    src = (rec.topic, rec.partition, rec.offset)
    out = []
    for ev in items:
        d = _from_struct(ev, default)
        if d is None:
            return None
        d["_src"] = src
        if rec.timestamp is not None:
            d["_kts"] = rec.timestamp
        out.append(d)
    return out


def _dead(rec: Record, reason: DeadLetterReason, error: str, raw: bytes | None,
          index: int | None, now: datetime) -> DeadLetter:
    raw = raw if raw is not None else b""
    return DeadLetter(
        reason=reason, error=error[:_MAX_ERROR_CHARS], source_topic=rec.topic, source_partition=rec.partition,
        source_offset=rec.offset, index_in_message=index, original_key_b64=DeadLetter.encode(rec.key),
        original_b64=DeadLetter.encode(raw) or "", original_size=len(raw), received_at=now,
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:10]:
        loc = ".".join(str(p) for p in err["loc"]) or "<event>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - 10
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def event_to_dict(event: Event, rec: Record | None = None) -> dict[str, Any]:
    """The hot-path representation: the model's fields plus ``_ts`` (epoch s) and ``_src``."""
    d = dict(event.__dict__)
    extra = event.__pydantic_extra__
    if extra:
        d.update(extra)
    d["_ts"] = event.ts.timestamp()
    if rec is not None:
        d["_src"] = (rec.topic, rec.partition, rec.offset)
        if rec.timestamp is not None:
            d["_kts"] = rec.timestamp
    return d


def _validate_one(obj: Any, rec: Record, index: int | None, raw_for_dlq: bytes | None,
                  out: Decoded, now: datetime) -> None:
    if not isinstance(obj, dict):
        raw = raw_for_dlq if raw_for_dlq is not None else orjson.dumps(obj)
        out.deadletters.append(_dead(rec, DeadLetterReason.not_an_object,
                                     f"expected a JSON object for an event, got {type(obj).__name__}", raw, index, now))
        return
    etype = obj.get("event_type")
    if etype is not None and (not isinstance(etype, str) or etype not in _EVENT_TYPES):
        raw = raw_for_dlq if raw_for_dlq is not None else orjson.dumps(obj)
        out.deadletters.append(_dead(
            rec, DeadLetterReason.unknown_event_type,
            f"unknown event_type {str(etype)[:100]!r}; expected one of {sorted(_EVENT_TYPES)}", raw, index, now))
        return
    fast = _fast_event(obj)
    if fast is not None:
        fast["_src"] = (rec.topic, rec.partition, rec.offset)
        if rec.timestamp is not None:
            fast["_kts"] = rec.timestamp
        out.events.append(fast)
        return
    try:
        event = Event.model_validate(obj)
    except ValidationError as exc:
        raw = raw_for_dlq if raw_for_dlq is not None else orjson.dumps(obj, default=str)
        out.deadletters.append(_dead(rec, DeadLetterReason.schema_violation, _describe(exc), raw, index, now))
        return
    except (ValueError, TypeError, RecursionError) as exc:  # pathological input the validator rejects
        raw = raw_for_dlq if raw_for_dlq is not None else repr(obj)[:10000].encode()
        out.deadletters.append(_dead(rec, DeadLetterReason.schema_violation, f"{type(exc).__name__}: {exc}",
                                     raw, index, now))
        return
    out.events.append(event_to_dict(event, rec))


def decode_batch(records: list[Record], *, max_message_bytes: int, now: datetime | None = None) -> Decoded:
    now = now or datetime.now(UTC)
    out = Decoded(messages=len(records))
    for rec in records:
        raw = rec.value
        if raw is None:
            out.deadletters.append(_dead(rec, DeadLetterReason.malformed_json, "empty message (null value)",
                                         b"", None, now))
            continue
        if len(raw) > max_message_bytes:
            out.deadletters.append(_dead(
                rec, DeadLetterReason.oversized,
                f"message of {len(raw)} bytes exceeds the limit of {max_message_bytes} "
                "(OVERSEER_MAX_MESSAGE_BYTES); split producer batches", raw, None, now))
            continue
        fast = _fast_message(raw, rec)
        if fast is not None:
            out.events.extend(fast)
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            out.deadletters.append(_dead(rec, DeadLetterReason.malformed_json, f"invalid JSON: {exc}", raw, None, now))
            continue
        if isinstance(obj, dict) and obj.get("kind") == "batch":
            items = obj.get("events")
            if not isinstance(items, list):
                out.deadletters.append(_dead(rec, DeadLetterReason.schema_violation,
                                             "batch without an 'events' array", raw, None, now))
                continue
            defaults = {"producer_id": obj["producer_id"]} if isinstance(obj.get("producer_id"), str) else {}
            for i, item in enumerate(items):
                if defaults and isinstance(item, dict) and "producer_id" not in item:
                    item = {**defaults, **item}
                _validate_one(item, rec, i, None, out, now)
        elif isinstance(obj, list):
            for i, item in enumerate(obj):
                _validate_one(item, rec, i, None, out, now)
        else:
            _validate_one(obj, rec, None, raw, out, now)
    return out


def decode_safely(records: list[Record], *, max_message_bytes: int) -> Decoded:
    """``decode_batch``, but a decoder bug can never crash the worker on a poison message.

    Should the batch decoder raise, the batch is decoded again message by message and each message that
    still raises becomes a dead letter (``schema_violation``, with the exception) — otherwise the worker
    would crash, restart, re-read the same message and crash again, forever."""
    try:
        return decode_batch(records, max_message_bytes=max_message_bytes)
    except Exception:
        log.exception("the batch decoder raised; isolating the message(s) responsible")
    out = Decoded(messages=len(records))
    now = datetime.now(UTC)
    for rec in records:
        try:
            one = decode_batch([rec], max_message_bytes=max_message_bytes)
        except Exception as exc:  # noqa: BLE001 - dead-lettered with the reason
            raw = rec.value or b""
            out.deadletters.append(DeadLetter(
                reason=DeadLetterReason.schema_violation, error=f"decoder error {type(exc).__name__}: {exc}"[:2000],
                source_topic=rec.topic, source_partition=rec.partition, source_offset=rec.offset,
                index_in_message=None, original_key_b64=DeadLetter.encode(rec.key),
                original_b64=DeadLetter.encode(raw) or "", original_size=len(raw), received_at=now))
            continue
        out.events += one.events
        out.deadletters += one.deadletters
    return out
