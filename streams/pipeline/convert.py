"""Hits (from `rules`) become `schemas.Detection` messages with deterministic ids."""

from __future__ import annotations

from datetime import UTC, datetime

from rules.base import Hit
from schemas.detections import Detection, Scope, SourceOffset
from schemas.ids import stable_id


def detection_id(hit: Hit) -> str:
    """Replaying the same input yields the same id, so downstream dedup works."""
    return stable_id("det", hit.rule_id, hit.rule_version, hit.scope_kind, hit.scope_value,
                     f"{hit.ts:.3f}", ",".join(sorted(hit.event_ids)[:100]),
                     ",".join(f"{k}={v}" for k, v in sorted(hit.group.items())))


def hit_to_detection(hit: Hit, now: datetime | None = None) -> Detection:
    return Detection(
        detection_id=detection_id(hit),
        kind=hit.kind,
        rule_id=hit.rule_id,
        rule_version=hit.rule_version,
        title=hit.title,
        severity=hit.severity,
        tags=list(hit.tags),
        mode=hit.mode,
        scope=Scope(kind=hit.scope_kind, value=hit.scope_value or "<unknown>"),
        ts=datetime.fromtimestamp(hit.ts, UTC),
        detected_at=now or datetime.now(UTC),
        tenant_id=hit.tenant_id,
        deployment_id=hit.deployment_id,
        model=hit.model,
        agent_run_id=hit.agent_run_id,
        group={str(k): str(v) for k, v in hit.group.items()},
        output=hit.output,
        event_ids=list(hit.event_ids)[:1000],
        evidence={**hit.evidence, **({"suppressed_count": hit.suppressed_count} if hit.suppressed_count else {})},
        source_offsets=[SourceOffset(topic=t, partition=p, offset=o) for t, p, o in hit.sources[:100]],
        runbook_url=hit.runbook_url,
    )
