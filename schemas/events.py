"""The event model: one inference, one tool call or one agent step.

Field names follow the OpenTelemetry GenAI semantic conventions where they
have one. Unknown top-level attributes are *kept*, not rejected: they are
moved, stringified, into ``attributes`` so that a producer running a newer
schema never loses data in an older monitor.

>>> e = Event.model_validate({"event_type": "tool_call", "ts": "2026-01-01T00:00:00Z",
...     "deployment_id": "d1", "tool_name": "bash", "action_category": "exec",
...     "x_custom": 7})
>>> e.attributes["x_custom"], e.action_category
('7', 'exec')
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.ids import new_event_id

SCHEMA_VERSION = 1
MAX_STRING_MAP_ENTRIES = 256
# the ClickHouse column types' ranges (schemas/migrations/0001): a value beyond them can never be stored,
# so it is a schema violation at the door (dead-lettered with the field named), not an insert failure
UINT16_MAX = 2**16 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


def _to_json_text(value: Any) -> str:
    """JSON text for an unknown attribute; integers beyond 64 bits fall back to the stdlib encoder."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, default=str)


_KNOWN: dict[type, frozenset[str]] = {}


def _known_fields(cls: type[BaseModel]) -> frozenset[str]:
    known = _KNOWN.get(cls)
    if known is None:
        known = _KNOWN[cls] = frozenset(cls.model_fields)
    return known


class EventType(StrEnum):
    inference = "inference"
    tool_call = "tool_call"
    agent_step = "agent_step"
    guardrail = "guardrail"
    evaluation = "evaluation"
    monitor_health = "monitor_health"


class ActionCategory(StrEnum):
    """What a tool call *does*, independent of the tool's name."""

    fs_read = "fs_read"
    fs_write = "fs_write"
    net_egress = "net_egress"
    exec = "exec"
    credential_access = "credential_access"
    weights_access = "weights_access"
    training_code_write = "training_code_write"
    eval_code_write = "eval_code_write"
    monitor_config_write = "monitor_config_write"
    permission_change = "permission_change"
    spawn_agent = "spawn_agent"
    compute_provision = "compute_provision"
    payment = "payment"
    other = "other"


class Event(BaseModel):
    """One observed step of a model or agent. See DESIGN.md, *Events*."""

    model_config = ConfigDict(extra="allow", frozen=False, use_enum_values=True)

    # envelope
    event_id: str = Field(default_factory=new_event_id, max_length=64,
                          description="UUIDv7; the idempotency key of the event everywhere downstream")
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1, le=UINT16_MAX)
    event_type: EventType
    ts: datetime = Field(description="event time (when it happened at the producer), UTC")
    producer_id: str | None = Field(default=None, max_length=256)
    producer_seq: int | None = Field(default=None, ge=0, le=UINT64_MAX)

    # correlation
    trace_id: str | None = Field(default=None, max_length=64)
    span_id: str | None = Field(default=None, max_length=32)
    parent_span_id: str | None = Field(default=None, max_length=32)
    conversation_id: str | None = Field(default=None, max_length=256)
    agent_run_id: str | None = Field(default=None, max_length=256)
    step_index: int | None = Field(default=None, ge=0, le=UINT32_MAX)

    # deployment
    tenant_id: str | None = Field(default=None, max_length=256)
    deployment_id: str | None = Field(default=None, max_length=256)
    environment: str | None = Field(default=None, max_length=64)
    region: str | None = Field(default=None, max_length=64)
    provider: str | None = Field(default=None, max_length=128)
    request_model: str | None = Field(default=None, max_length=256)
    response_model: str | None = Field(default=None, max_length=256)
    model_checkpoint: str | None = Field(default=None, max_length=1024)
    system_prompt_hash: str | None = Field(default=None, max_length=128)
    agent_name: str | None = Field(default=None, max_length=256)
    agent_version: str | None = Field(default=None, max_length=64)

    # operation
    operation: str | None = Field(default=None, max_length=64,
                                  description="gen_ai.operation.name: chat, execute_tool, invoke_agent, ...")
    request_params: dict[str, Any] = Field(default_factory=dict)
    finish_reasons: list[str] = Field(default_factory=list, max_length=64)
    error_type: str | None = Field(default=None, max_length=256)
    input_tokens: int | None = Field(default=None, ge=0, le=UINT32_MAX)
    output_tokens: int | None = Field(default=None, ge=0, le=UINT32_MAX)
    reasoning_tokens: int | None = Field(default=None, ge=0, le=UINT32_MAX)
    cached_tokens: int | None = Field(default=None, ge=0, le=UINT32_MAX)
    latency_ms: float | None = Field(default=None, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)

    # tool / action
    tool_name: str | None = Field(default=None, max_length=256)
    tool_type: str | None = Field(default=None, max_length=64)
    tool_call_id: str | None = Field(default=None, max_length=256)
    tool_arguments: str | None = Field(default=None, max_length=65536,
                                       description="arguments as sent (opt-in content; may be redacted)")
    tool_arguments_hash: str | None = Field(default=None, max_length=128)
    action_category: ActionCategory | None = None
    resource: str | None = Field(default=None, max_length=4096, description="normalised path or URI")
    dest_host: str | None = Field(default=None, max_length=512)
    egress_bytes: int | None = Field(default=None, ge=0, le=UINT64_MAX)
    privilege: str | None = Field(default=None, max_length=64)
    approval: str | None = Field(default=None, max_length=64)

    # upstream guard signals
    is_refusal: bool | None = None
    scores: dict[str, float] = Field(default_factory=dict)

    # opt-in content, references and hashes by default
    content_ref: str | None = Field(default=None, max_length=2048)
    content_hash: str | None = Field(default=None, max_length=128)
    content: str | None = Field(default=None, max_length=262144)

    attributes: dict[str, str] = Field(default_factory=dict,
                                       description="unknown extra attributes, kept as strings")

    @model_validator(mode="before")
    @classmethod
    def _keep_unknown_as_attributes(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = _known_fields(cls)
        unknown = [k for k in data if k not in known]
        if not unknown:
            return data
        data = dict(data)
        attrs = data.get("attributes")
        attrs = dict(attrs) if isinstance(attrs, dict) else {}
        for key in unknown:
            value = data.pop(key)
            if isinstance(value, str):
                attrs[str(key)] = value
            else:
                attrs[str(key)] = _to_json_text(value)
        data["attributes"] = attrs
        return data

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @field_validator("attributes", "scores")
    @classmethod
    def _bounded_map(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_STRING_MAP_ENTRIES:
            raise ValueError(f"at most {MAX_STRING_MAP_ENTRIES} entries allowed, got {len(value)}")
        return value

    @field_validator("scores")
    @classmethod
    def _finite_scores(cls, value: dict[str, float]) -> dict[str, float]:
        for name, score in value.items():
            if score != score or score in (float("inf"), float("-inf")):
                raise ValueError(f"score {name!r} must be finite")
        return value


class EventBatch(BaseModel):
    """A producer-side batch: one Kafka message holding many events.

    This is the cheap path: Faust's per-message cost is paid once per batch.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["batch"] = "batch"
    producer_id: str | None = None
    events: list[Event] = Field(max_length=100_000)
