"""What every adapter returns, and the helpers they share.

An adapter is a pure function ``(payload, options) -> AdapterResult``. It
never raises on a bad *item*: the item becomes an :class:`ItemError` with a
dead-letter reason, so one malformed span does not cost the rest of the
export. Every event an adapter returns has been validated by
:class:`schemas.Event` and dumped to a JSON-ready dict, so the producer,
the receiver and the tests see exactly what the detect agent will see.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.deadletter import DeadLetterReason
from schemas.events import Event


@dataclass(frozen=True, slots=True)
class AdapterOptions:
    """How content is treated. Content is opt-in (DESIGN.md, *Events*).

    ``keep_content=False`` (the default) stores only sha256 hashes of prompts,
    completions and tool arguments (``content_hash``, ``tool_arguments_hash``);
    ``True`` also keeps the text in ``content`` / ``tool_arguments``.
    ``keep_arguments=True`` keeps tool arguments only — the commands, paths and
    URLs an agent acted on, which rules such as ``agent_destructive_shell``
    match — while prompts and completions stay hashed.
    """

    keep_content: bool = False
    keep_arguments: bool = False
    context: Mapping[str, Any] = field(default_factory=dict)
    """Fields applied to every event that does not set them itself (e.g. ``deployment_id`` for
    OpenAI objects, which do not say who called the API)."""


DEFAULT_OPTIONS = AdapterOptions()


@dataclass(slots=True)
class ItemError:
    """One item of a payload that could not become an event; it is dead-lettered, not dropped."""

    index: int
    reason: DeadLetterReason
    error: str
    raw: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "reason": str(self.reason), "error": self.error}


@dataclass(slots=True)
class AdapterResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    skipped: int = 0  # items that are not events of interest (e.g. non-GenAI spans): counted, not sent

    def extend(self, other: AdapterResult) -> None:
        self.events.extend(other.events)
        self.errors.extend(other.errors)
        self.skipped += other.skipped


def sha256_hex(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str)


def stable_event_id(ts_ms: int, *parts: object) -> str:
    """A UUIDv7-shaped id that is a pure function of the source record.

    Re-sending the same OTLP export or log line yields the same ``event_id``,
    so every idempotent sink downstream deduplicates the replay, while the
    48-bit millisecond prefix keeps ids time-ordered like a fresh UUIDv7.

    >>> stable_event_id(1, "a") == stable_event_id(1, "a") != stable_event_id(1, "b")
    True
    """
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=10).digest()
    value = (max(ts_ms, 0) & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= (int.from_bytes(digest[:2], "big") & 0x0FFF) << 64
    value |= 0b10 << 62  # RFC 4122 variant
    value |= int.from_bytes(digest[2:], "big") & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def iso_from_ns(ns: int) -> str:
    return iso_from_s(ns / 1e9)


def iso_from_s(seconds: float) -> str:
    """Epoch seconds -> ISO 8601 UTC; a time no calendar can hold is a ``ValueError`` (a bad item)."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).isoformat()
    except (OverflowError, OSError) as exc:
        raise ValueError(f"timestamp {seconds!r} is out of range") from exc


def finalize(draft: dict[str, Any], index: int, raw: Any, result: AdapterResult,
             options: AdapterOptions | None = None) -> None:
    """Validate one draft event; append it to ``result`` or record why it was refused."""
    draft = {k: v for k, v in draft.items() if v is not None}
    for key, value in (options.context if options else {}).items():
        draft.setdefault(key, value)
    try:
        event = Event.model_validate(draft)
    except ValidationError as exc:
        result.errors.append(ItemError(index, _reason(exc), _explain(exc), _raw_bytes(raw)))
        return
    except (TypeError, ValueError) as exc:  # raised by a validator outside pydantic's wrapping
        result.errors.append(ItemError(index, DeadLetterReason.schema_violation,
                                       f"{type(exc).__name__}: {exc}", _raw_bytes(raw)))
        return
    result.events.append(event.model_dump(mode="json", exclude_none=True))


def refuse(result: AdapterResult, index: int, reason: DeadLetterReason, error: str, raw: Any) -> None:
    result.errors.append(ItemError(index, reason, error, _raw_bytes(raw)))


def _raw_bytes(raw: Any) -> bytes:
    if isinstance(raw, bytes):
        return raw
    try:
        return dumps(raw)
    except TypeError:
        return repr(raw).encode()


def _reason(exc: ValidationError) -> DeadLetterReason:
    for err in exc.errors():
        if err.get("loc") == ("event_type",) and err.get("type") in ("enum", "missing"):
            return DeadLetterReason.unknown_event_type
        if err.get("type") == "model_type":
            return DeadLetterReason.not_an_object
    return DeadLetterReason.schema_violation


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "<event>"
        parts.append(f"{loc}: {err.get('msg')}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class PayloadError(ValueError):
    """The payload as a whole cannot be read (not JSON, not protobuf, wrong shape): HTTP 400."""
