"""Contracts between the detection core and the runtime.

The detection core is plain Python over batches of event dicts, so the same
code runs live in Faust (`streams/`) and offline (`overseer backtest`,
`overseer rules test`). `rules` never imports `streams`.

An *event dict* is what the decoder produces from a validated
:class:`schemas.Event`: the model's fields (enum values as strings), plus
``_ts`` — event time as float epoch seconds, precomputed once per event —
and, when it came from Kafka, ``_src`` = (topic, partition, offset).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Mode = Literal["enforce", "shadow"]


@dataclass(slots=True)
class Hit:
    """A rule or detector matched. The runtime turns it into a `schemas.Detection`."""

    rule_id: str
    rule_version: str
    kind: Literal["rule", "detector", "monitor_health"]
    title: str
    severity: str  # info | low | medium | high | critical
    tags: list[str]
    mode: Mode
    output: str  # rendered output template
    ts: float  # event time (epoch seconds) of the evidence that completed the match
    scope_kind: str  # fleet | model | deployment | tenant | agent_run | session
    scope_value: str
    event_ids: list[str] = field(default_factory=list)
    group: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    tenant_id: str | None = None
    deployment_id: str | None = None
    model: str | None = None
    agent_run_id: str | None = None
    runbook_url: str | None = None
    sources: list[tuple[str, int, int]] = field(default_factory=list)  # (topic, partition, offset)
    dedup_key: str | None = None  # suppression: hits with the same key in the period fold together
    suppressed_count: int = 0


class BatchEvaluator(Protocol):
    """What the runtime calls. Implemented by `rules.engine.Engine`."""

    def process(self, events: list[dict[str, Any]]) -> list[Hit]:
        """Evaluate one batch (any order of event time); update window/sequence state."""

    def advance(self, watermark: float) -> list[Hit]:
        """Event time has reached ``watermark``: fire absences and close windows."""

    def snapshot(self) -> bytes:
        """Compact serialised state (for Faust tables / restarts)."""

    def restore(self, blob: bytes) -> None:
        """Load state written by :meth:`snapshot` (of the same or an older rule set)."""
