"""Replay stored events through a candidate rule set on the live code path, and diff it against the current one.

Both rule sets run through `streams.pipeline.core.build_core`, the same
batch calls as the worker (``engine.process`` / ``engine.advance`` with the
event-time watermark, metric partials merged and advanced), the same
`hit_to_detection` and the same `PolicyEngine`. Only the clock differs: the
policy's "now" is the detection's event time, so cooldowns and windows mean
what they meant when the events happened. Producer-gap health hits do not
depend on rules and are left out. When the events run out, event time is
advanced past the allowed lateness, as if the stream had gone quiet.

Hits are matched by what they say (rule, scope, time, events, group) rather
than by detection id, so bumping a rule's version alone changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.detections import Detection
from streams.pipeline.convert import hit_to_detection
from streams.pipeline.core import DetectionCore, build_core


@dataclass
class Run:
    detections: list[Detection] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0


def hit_key(d: Detection) -> tuple[Any, ...]:
    return (d.rule_id, d.scope.kind, d.scope.value, round(d.ts.timestamp(), 3), tuple(sorted(d.event_ids)),
            tuple(sorted(d.group.items())))


class Replayer:
    """One rule set's worker, fed pages of stored events."""

    def __init__(self, core: DetectionCore, lateness_s: float) -> None:
        self.core = core
        self.lateness = lateness_s
        self.max_ts = 0.0
        self.max_partial_ts = 0.0
        self.run = Run()
        self.issued: set[str] = set()  # like the worker's idempotency table: one command per key

    def feed(self, events: list[dict[str, Any]]) -> None:
        core = self.core
        hits = core.engine.process(events)
        if events:
            self.max_ts = max(self.max_ts, max(e["_ts"] for e in events))
        hits += core.engine.advance(self.max_ts - self.lateness)
        partials = core.metrics.partials(events)
        core.metrics.merge(partials)
        for p in partials:
            self.max_partial_ts = max(self.max_partial_ts, p.max_ts)
        hits += core.metrics.advance(self.max_partial_ts - self.lateness)
        self.run.events += len(events)
        self._detect(hits)

    def finish(self) -> Run:
        end = max(self.max_ts, self.max_partial_ts) + self.lateness + 1
        self._detect(self.core.engine.advance(end) + self.core.metrics.advance(end))
        return self.run

    def _detect(self, hits: list[Any]) -> None:
        for det in sorted((hit_to_detection(h) for h in hits), key=lambda d: (d.ts, d.detection_id)):
            self.run.detections.append(det)
            for kind, value in (("deployment", det.deployment_id), ("model", det.model), ("tenant", det.tenant_id)):
                if value:
                    self.core.policies.observe_scope(kind, value, det.ts.timestamp())
            for dec in self.core.policies.on_detection(det.model_dump(mode="json"), det.ts.timestamp()):
                if dec.outcome == "command" and dec.idempotency_key not in self.issued:
                    self.issued.add(dec.idempotency_key)
                    self.run.commands.append({
                        "ts": det.ts.isoformat(), "policy_id": dec.policy_id, "action": dec.action,
                        "scope": f"{dec.scope_kind}={dec.scope_value}", "mode": dec.mode,
                        "idempotency_key": dec.idempotency_key, "reason": dec.reason,
                        "rule_ids": list(dec.rule_ids)})


def _hit_json(d: Detection) -> dict[str, Any]:
    return {"rule_id": d.rule_id, "ts": d.ts.astimezone(UTC).isoformat(), "scope": str(d.scope),
            "severity": d.severity, "output": d.output, "event_ids": d.event_ids[:20]}


def compare(baseline: Run, candidate: Run) -> dict[str, Any]:
    base = {hit_key(d): d for d in baseline.detections}
    cand = {hit_key(d): d for d in candidate.detections}
    new = [cand[k] for k in cand if k not in base]
    lost = [base[k] for k in base if k not in cand]
    same = [k for k in cand if k in base]
    by_rule: dict[str, Counter[str]] = {}
    for label, items in (("new", [d.rule_id for d in new]), ("lost", [d.rule_id for d in lost]),
                         ("unchanged", [k[0] for k in same])):
        for rule in items:
            by_rule.setdefault(rule, Counter())[label] += 1
    ckey = lambda c: (c["policy_id"], c["scope"], c["action"], c["ts"])
    bcmd = {ckey(c) for c in baseline.commands}
    ccmd = {ckey(c) for c in candidate.commands}
    return {
        "events": candidate.events,
        "baseline": {"hits": len(baseline.detections), "commands": len(baseline.commands)},
        "candidate": {"hits": len(candidate.detections), "commands": len(candidate.commands)},
        "new": [_hit_json(d) for d in new], "lost": [_hit_json(d) for d in lost], "unchanged": len(same),
        "by_rule": {r: dict(c) for r, c in sorted(by_rule.items())},
        "commands": {"candidate": candidate.commands,
                     "new": [c for c in candidate.commands if ckey(c) not in bcmd],
                     "lost": [c for c in baseline.commands if ckey(c) not in ccmd]},
    }


def backtest(pages: Iterable[list[dict[str, Any]]], candidate: list[Path], baseline: list[Path] | None,
             lateness_s: float) -> dict[str, Any]:
    """``baseline`` None means the built-in packs. Rule files that do not load raise `RuleLoadError`."""
    cand = Replayer(build_core(candidate, allowed_lateness_s=lateness_s), lateness_s)
    base = Replayer(build_core(baseline or None, allowed_lateness_s=lateness_s), lateness_s)
    for page in pages:
        cand.feed([dict(e) for e in page])
        base.feed([dict(e) for e in page])
    out = compare(base.finish(), cand.finish())
    out["generated_at"] = datetime.now(UTC).isoformat()
    return out
