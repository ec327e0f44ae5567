"""A seeded synthetic fleet: event dicts per one-minute bucket, with optional injected anomalies."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.items import RawItem
from rules.metrics import MetricRuntime, compile_items
from tests.unit.detectors.simple_conditions import SimpleContext, raw_items

PACK = Path(__file__).resolve().parents[3] / "rules" / "packs" / "detectors-stable.yaml"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
MODELS = {"borealis-70b": 0.15, "cirrus-8b": 0.08, "nimbus-405b": 0.12, "stratus-1t": 0.15}
DEPLOYMENTS = ("dep-a", "dep-b", "dep-c")
TOOLS = ("bash", "python", "read_file", "search", "http_get")
HOSTS = ("api.github.com", "pypi.org", "docs.python.org", "huggingface.co")


@dataclass
class Anomalies:
    """What to inject from a given bucket on (None: never)."""

    refusal_collapse: str | None = None  # model whose refusal rate drops to 0
    new_tool: tuple[str, str] | None = None  # (deployment, tool)
    new_host: tuple[str, str] | None = None  # (deployment, host)
    host_scan: str | None = None  # deployment contacting 60 distinct hosts per bucket
    big_egress: str | None = None  # deployment uploading 500x its usual bytes
    slow_model: str | None = None  # model whose latency tail grows 10x
    exec_burst: str | None = None  # deployment whose tool calls become mostly exec
    errors: str | None = None  # deployment erroring on half of its events
    extra: dict[str, Any] = field(default_factory=dict)


def bucket_events(b: int, rng: random.Random, anomalies: Anomalies | None = None) -> list[dict[str, Any]]:
    a = anomalies or Anomalies()
    out: list[dict[str, Any]] = []
    start = T0 + b * 60.0

    def ev(**fields: Any) -> None:
        fields.setdefault("_ts", start + rng.random() * 60.0)
        fields.setdefault("event_id", f"e{b}-{len(out)}")
        out.append(fields)

    for model, p_refusal in MODELS.items():
        p = 0.0 if model == a.refusal_collapse else p_refusal
        for i in range(rng.randint(100, 300)):
            dep = DEPLOYMENTS[i % len(DEPLOYMENTS)]
            latency = rng.lognormvariate(6.0, 0.4) * (10.0 if model == a.slow_model and rng.random() < 0.05 else 1.0)
            error = "timeout" if (dep == a.errors and rng.random() < 0.5) or rng.random() < 0.01 else None
            ev(event_type="inference", request_model=model, deployment_id=dep, is_refusal=rng.random() < p,
               latency_ms=latency, error_type=error)
    for dep in DEPLOYMENTS:
        for _ in range(rng.randint(30, 60)):
            exec_share = 0.8 if dep == a.exec_burst else 0.1
            tool = rng.choice(TOOLS)
            category = "exec" if rng.random() < exec_share else ("net_egress" if tool == "http_get" else "fs_read")
            fields: dict[str, Any] = {"event_type": "tool_call", "deployment_id": dep, "tool_name": tool,
                                      "action_category": category}
            if category == "net_egress":
                fields["dest_host"] = rng.choice(HOSTS)
                fields["egress_bytes"] = int(rng.lognormvariate(8.0, 0.5) * (500 if dep == a.big_egress else 1))
            ev(**fields)
    if a.new_tool:
        ev(event_type="tool_call", deployment_id=a.new_tool[0], tool_name=a.new_tool[1], action_category="exec")
    if a.new_host:
        ev(event_type="tool_call", deployment_id=a.new_host[0], tool_name="http_get", action_category="net_egress",
           dest_host=a.new_host[1], egress_bytes=3000)
    if a.host_scan:
        for i in range(60):
            ev(event_type="tool_call", deployment_id=a.host_scan, tool_name="http_get",
               action_category="net_egress", dest_host=f"10.0.{i // 250}.{i % 250}", egress_bytes=3000)
    return out


def pack_items() -> list[RawItem]:
    return raw_items(PACK)


def pack_runtime() -> MetricRuntime:
    ctx = SimpleContext()
    runtime = compile_items(pack_items(), ctx)
    assert ctx.diagnostics == []
    return runtime
