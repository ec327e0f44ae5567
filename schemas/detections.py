"""Detections: a rule or a statistical detector fired, with its evidence."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.value]


SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class ScopeKind(StrEnum):
    fleet = "fleet"
    model = "model"
    deployment = "deployment"
    tenant = "tenant"
    agent_run = "agent_run"
    session = "session"


class Scope(BaseModel):
    """What a detection or command is about: `deployment=dep-7`, `model=gpt-x`."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    kind: ScopeKind
    value: str = Field(max_length=512)

    def __str__(self) -> str:
        return f"{self.kind}={self.value}"


class SourceOffset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    partition: int
    offset: int


class Detection(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    detection_id: str = Field(description="deterministic: replaying the same input yields the same id")
    kind: Literal["rule", "detector", "monitor_health"]
    rule_id: str
    rule_version: str = "1"
    title: str
    severity: Severity
    tags: list[str] = Field(default_factory=list)
    mode: Literal["enforce", "shadow"] = "enforce"
    scope: Scope
    ts: datetime = Field(description="event time of the evidence that completed the match")
    detected_at: datetime
    tenant_id: str | None = None
    deployment_id: str | None = None
    model: str | None = None
    agent_run_id: str | None = None
    group: dict[str, str] = Field(default_factory=dict, description="group-by key of a window or sequence")
    output: str = Field(description="the rule's output template, rendered")
    event_ids: list[str] = Field(default_factory=list, max_length=1000)
    evidence: dict[str, Any] = Field(default_factory=dict,
                                     description="observed value, baseline, deviation, parameters, window...")
    source_offsets: list[SourceOffset] = Field(default_factory=list)
    runbook_url: str | None = None
