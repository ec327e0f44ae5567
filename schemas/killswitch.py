"""Kill-switch commands: graded, leased, signed containment.

The signature is Ed25519 over :meth:`KillSwitchCommand.signing_payload`, a
canonical encoding (sorted keys, no whitespace, UTC timestamps always written
as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``) of every field except ``signature`` itself.
Timestamps are normalised to UTC when the model is built (naive values are
taken as UTC), so the same instant written as ``+02:00`` or without
microseconds signs to the same bytes. ``key_id`` names the public key, so keys
can be rotated while old commands stay verifiable.

Every message on the compacted topic is self-contained state for its slot
(:meth:`KillSwitchCommand.kafka_key`): an ``extend`` repeats the action it
extends, a ``release`` lifts it. Shadow commands use their own slot, so a
shadow decision never overwrites an enforced one.

>>> from datetime import timedelta, timezone
>>> t = datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
>>> canonical_ts(t)
'2026-01-01T00:00:00.000000Z'
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from schemas.detections import Scope, SourceOffset

LADDER = ("flag", "throttle", "revoke_tools", "pause", "terminate")


def to_utc(value: datetime) -> datetime:
    """Aware -> the same instant in UTC; naive -> taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def canonical_ts(value: datetime) -> str:
    """The one textual form of an instant inside a signed payload."""
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KillSwitchAction(StrEnum):
    flag = "flag"
    throttle = "throttle"
    revoke_tools = "revoke_tools"
    pause = "pause"
    terminate = "terminate"

    @property
    def rank(self) -> int:
        return LADDER.index(self.value)


class KillSwitchEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detection_ids: list[str] = Field(default_factory=list, max_length=1000)
    event_ids: list[str] = Field(default_factory=list, max_length=1000)
    rule_ids: list[str] = Field(default_factory=list)
    rule_versions: dict[str, str] = Field(default_factory=dict)
    policy_id: str | None = None
    policy_version: str | None = None
    offsets: list[SourceOffset] = Field(default_factory=list)


class KillSwitchCommand(BaseModel):
    """One command on overseer.killswitch.v1 (compacted, keyed by scope).

    ``op`` is ``issue`` for a new containment, ``extend`` for a new lease on
    it, and ``release`` to lift it; the latest message per scope is the state.
    """

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    command_id: str
    idempotency_key: str = Field(description="same breach -> same key -> never a second command")
    op: Literal["issue", "extend", "release"] = "issue"
    scope: Scope
    action: KillSwitchAction
    throttle_rate: float | None = Field(default=None, gt=0, description="requests/s, for action=throttle")
    revoked_tools: list[str] = Field(default_factory=list, description="for action=revoke_tools")
    reason: str
    evidence: KillSwitchEvidence = Field(default_factory=KillSwitchEvidence)
    issued_at: datetime
    lease_expires_at: datetime
    mode: Literal["enforce", "shadow"] = "enforce"
    issuer: str = Field(description="the policy, or the operator, that issued it")
    operators: list[str] = Field(default_factory=list, description="humans behind a manual op")
    key_id: str
    signature: str | None = Field(default=None, description="base64 Ed25519 over signing_payload()")

    @field_validator("issued_at", "lease_expires_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return to_utc(value)

    @field_serializer("issued_at", "lease_expires_at", when_used="json")
    def _ts_text(self, value: datetime) -> str:
        return canonical_ts(value)

    def signing_payload(self) -> bytes:
        """Canonical bytes that the signature covers: everything but ``signature``."""
        body = self.model_dump(mode="json", exclude={"signature"})
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)

    def slot(self) -> str:
        """The state slot: ``deployment=dep-1``, or ``shadow:deployment=dep-1`` for shadow commands."""
        base = f"{self.scope.kind}={self.scope.value}"
        return base if self.mode == "enforce" else f"shadow:{base}"

    def kafka_key(self) -> bytes:
        """Compaction key: the latest message per slot is that slot's state."""
        return self.slot().encode()


class Heartbeat(BaseModel):
    """The monitor is alive: published every few seconds on overseer.heartbeat.v1, signed.

    Enforcers apply their fail-closed action when the newest verified
    heartbeat is older than their configured age (the dead-man's switch).
    """

    model_config = ConfigDict(extra="forbid")

    monitor_id: str
    seq: int = Field(ge=0)
    ts: datetime
    key_id: str
    signature: str | None = None

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return to_utc(value)

    @field_serializer("ts", when_used="json")
    def _ts_text(self, value: datetime) -> str:
        return canonical_ts(value)

    def signing_payload(self) -> bytes:
        body = self.model_dump(mode="json", exclude={"signature"})
        return orjson.dumps({"heartbeat": body}, option=orjson.OPT_SORT_KEYS)
