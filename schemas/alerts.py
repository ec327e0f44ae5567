"""Alert state changes, as published on overseer.alerts.v1."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.detections import Scope, Severity


class AlertState(StrEnum):
    firing = "firing"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    alert_id: str
    group_key: str = Field(description="rule id and scope: detections with the same key are one alert")
    state: AlertState
    severity: Severity
    rule_id: str
    title: str
    scope: Scope
    tags: list[str] = Field(default_factory=list)
    summary: str
    detection_ids: list[str] = Field(default_factory=list, max_length=1000)
    count: int = Field(ge=1, description="detections folded into this alert (none are dropped)")
    first_seen: datetime
    last_seen: datetime
    updated_at: datetime
    actor: str | None = Field(default=None, description="who changed the state (None for the system)")
    safety_class: bool = Field(default=False, description="critical or frontier.*: never silenced or inhibited")
    runbook_url: str | None = None
    # lifecycle (all optional: older alert records stay valid)
    acknowledged_by: str | None = Field(default=None, description="operator who acknowledged the alert")
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution: str | None = Field(default=None, description="auto (quiet period elapsed) or manual")
    last_detection_at: datetime | None = Field(
        default=None, description="wall-clock time the last detection was folded in (drives auto-resolve)")
    clearing_since: datetime | None = Field(
        default=None, description="quiet since then; resolves after keep_firing_for unless a detection returns")
    flaps: int = Field(default=0, ge=0, description="detections that returned while clearing (hysteresis held)")
    changed_at: datetime | None = Field(
        default=None, description="last change of state or severity, what notifications are about (not folds)")
    partition: int | None = Field(default=None, description="Kafka partition owning the group (internal)")
