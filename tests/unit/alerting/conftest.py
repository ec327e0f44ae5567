"""Builders shared by the alerting unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.detections import Detection, Scope

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def det(i: int, *, rule: str = "r1", severity: str = "high", dep: str = "dep-1",
        tags: list[str] | None = None) -> Detection:
    return Detection(detection_id=f"d{i}", kind="rule", rule_id=rule, title=f"Rule {rule}", severity=severity,
                     tags=tags or [], scope=Scope(kind="deployment", value=dep),
                     ts=T0 + timedelta(seconds=i), detected_at=T0, output=f"hit {i}")
