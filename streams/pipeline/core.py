"""The detection core of one worker, built once from the rule files.

``build_core`` loads the rule files (lists, macros, rules, detectors,
policies) through the rules loader and compiles each kind with its own
compiler. A load error raises with every diagnostic (file:line:col).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules.engine import Engine, load_engine
from rules.health import ProducerGapTracker
from rules.metrics import MetricRuntime
from rules.metrics import compile_items as compile_detectors
from rules.policy import PolicyEngine
from rules.policy import compile_items as compile_policies
from rules.rule import SEVERITIES


# holes a producer may have open while its sequence arrives through several partitions: events are keyed by
# agent run, so one producer's sequence interleaves across partitions and a partition that is behind leaves a
# hole at nearly every other number until it catches up (the tracker's default, 64, suits one stream)
PENDING_RANGES = 8192


@dataclass
class DetectionCore:
    engine: Engine
    metrics: MetricRuntime
    policies: PolicyEngine
    health: ProducerGapTracker

    # fresh, empty instances that share the compiled definitions (one per source partition)
    def new_engine(self) -> Engine:
        return self.engine.fresh()

    def new_metrics(self) -> MetricRuntime:
        return compile_detectors(self.engine.items("detector"), self.engine.context)

    def new_policies(self) -> PolicyEngine:
        return compile_policies(self.engine.items("policy"), self.engine.context)

    def new_health(self) -> ProducerGapTracker:
        return ProducerGapTracker(lateness_s=self.health.lateness_s, max_pending_ranges=PENDING_RANGES)

    def new_fastlane_engine(self, min_severity: str) -> Engine | None:
        """An engine with only the single-event rules at or above ``min_severity`` (None if there are none).

        The fast lane evaluates them on every event as it arrives, independent of the windows, the
        metrics and the store, so a critical breach reaches the policies within one fetch. Their hits
        are the same as the full engine's (same rules, same dedup), so their detection ids are too."""
        if not min_severity:
            return None
        floor = SEVERITIES.index(min_severity)
        rules = [r for r in self.engine.rules if r.enabled and r.window is None and r.sequence is None
                 and SEVERITIES.index(r.severity) >= floor]
        if not rules:
            return None
        return Engine(self.engine.loaded, rules, self.engine.context, self.engine.diagnostics,
                      allowed_lateness_s=self.engine.lateness)

    def describe(self) -> dict[str, Any]:
        return {"rules": len(self.engine.items("rule")), "detectors": len(self.engine.items("detector")),
                "policies": len(self.engine.items("policy"))}


def build_core(rules_paths: list[Path] | None, *, allowed_lateness_s: float) -> DetectionCore:
    engine = load_engine(rules_paths or None, allowed_lateness_s=allowed_lateness_s)
    ctx = engine.context
    metrics = compile_detectors(engine.items("detector"), ctx)
    policies = compile_policies(engine.items("policy"), ctx)
    ctx.diags.raise_if_errors()  # detector and policy items report into the same diagnostics
    return DetectionCore(engine, metrics, policies,
                         ProducerGapTracker(lateness_s=allowed_lateness_s, max_pending_ranges=PENDING_RANGES))
