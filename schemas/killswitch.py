"""Kill-switch commands: graded, leased, signed containment.

The signature is Ed25519 over :meth:`KillSwitchCommand.signing_payload`, a
canonical encoding (sorted keys, no whitespace, UTC timestamps with
microseconds) of every field except ``signature`` itself. ``key_id`` names the
public key, so keys can be rotated while old commands stay verifiable.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.detections import Scope, SourceOffset

LADDER = ("flag", "throttle", "revoke_tools", "pause", "terminate")


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

    def signing_payload(self) -> bytes:
        body = self.model_dump(mode="json", exclude={"signature"})
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)

    def kafka_key(self) -> bytes:
        return f"{self.scope.kind}={self.scope.value}".encode()
